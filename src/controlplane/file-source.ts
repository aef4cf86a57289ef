// Watches a directory of YAML and feeds each file into the config store as its own source. A file
// that fails to parse or validate is rejected (its errors logged with file:line) and its last good
// content keeps serving; the rest of the directory is unaffected.

import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { formatDiagnostic } from '../config/diagnostics.ts';
import { listYamlFiles, loadString } from '../config/loader.ts';
import type { Logger } from '../common/log.ts';
import type { ChangeResult, ConfigStore } from './config-store.ts';

export interface FileSourceOptions {
  /** Quiet period after the last file event before reloading, in ms (default 100). */
  debounceMs?: number;
  defaultNamespace?: string;
  log?: Logger;
  /** Called after every reload of a file, accepted or not. */
  onResult?: (file: string, result: ChangeResult) => void;
}

export class FileSource {
  readonly #dirs: string[];
  readonly #store: ConfigStore;
  readonly #opts: FileSourceOptions;
  readonly #contents = new Map<string, string>();
  #watchers: FSWatcher[] = [];
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> = Promise.resolve();

  constructor(dirs: readonly string[], store: ConfigStore, opts: FileSourceOptions = {}) {
    this.#dirs = [...dirs];
    this.#store = store;
    this.#opts = opts;
  }

  /** Loads everything once; returns the results by file. */
  async start(watchForChanges = true): Promise<Map<string, ChangeResult>> {
    const results = await this.sync();
    if (watchForChanges) {
      for (const dir of this.#dirs) {
        const w = watch(dir, { recursive: true }, () => this.#schedule());
        w.on('error', (err) => this.#opts.log?.warn('file watch error', { dir, error: String(err) }));
        this.#watchers.push(w);
      }
    }
    return results;
  }

  stop(): void {
    for (const w of this.#watchers) w.close();
    this.#watchers = [];
    if (this.#timer) clearTimeout(this.#timer);
  }

  /** Resolves once pending reloads are done (for tests and shutdown). */
  async idle(): Promise<void> {
    await this.#running;
  }

  #schedule(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#running = this.#running.then(() => this.sync()).then(
        () => undefined,
        (err: unknown) => this.#opts.log?.error('reload failed', { error: String(err) }),
      );
    }, this.#opts.debounceMs ?? 100);
  }

  /** Re-reads the directories: new and changed files are loaded, deleted ones removed. */
  async sync(): Promise<Map<string, ChangeResult>> {
    const results = new Map<string, ChangeResult>();
    const files = new Set<string>();
    for (const dir of this.#dirs) {
      try {
        for (const f of await listYamlFiles(dir)) files.add(f);
      } catch (err) {
        this.#opts.log?.warn('cannot list config directory', { dir, error: String(err) });
      }
    }
    for (const file of files) {
      let text: string;
      try {
        text = await readFile(file, 'utf8');
      } catch {
        continue; // removed between listing and reading: handled on the next event
      }
      if (this.#contents.get(file) === text) continue;
      const loaded = loadString(text, file, this.#opts.defaultNamespace ? { defaultNamespace: this.#opts.defaultNamespace } : {});
      const result = this.#store.replaceSource(file, loaded.resources, loaded.diagnostics);
      if (result.accepted) this.#contents.set(file, text);
      this.#report(file, result);
      results.set(file, result);
    }
    for (const file of [...this.#contents.keys()]) {
      if (files.has(file)) continue;
      this.#contents.delete(file);
      const result = this.#store.replaceSource(file, []);
      this.#report(file, result);
      results.set(file, result);
    }
    return results;
  }

  #report(file: string, result: ChangeResult): void {
    const log = this.#opts.log;
    if (log) {
      for (const d of result.diagnostics) {
        if (d.severity === 'error') log.error(formatDiagnostic(d));
        else log.warn(formatDiagnostic(d));
      }
      if (!result.accepted) log.error(`rejected ${file}: the last good version keeps serving`);
      else if (result.change.keys.size > 0) log.info(`loaded ${file}`, { changed: result.change.keys.size, version: result.version });
    }
    this.#opts.onResult?.(file, result);
  }
}
