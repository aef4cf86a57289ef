// The control plane's config store: every resource it serves, by source (a watched file, or the API),
// behind a validation gate. A change with any error is rejected whole and the last good config keeps
// serving; an accepted change yields an immutable snapshot and a description of what changed.

import type { Diagnostic } from '../config/diagnostics.ts';
import { resourceKey, type Resource } from '../config/resource.ts';

export interface ConfigChange {
  /** Kinds whose resources were added, changed or removed (e.g. 'VirtualService'). */
  kinds: Set<string>;
  namespaces: Set<string>;
  keys: Set<string>;
}

export interface ChangeResult {
  accepted: boolean;
  /** Errors (when rejected) and warnings (always). */
  diagnostics: Diagnostic[];
  change: ConfigChange;
  /** Store version after the change (unchanged when rejected or when nothing changed). */
  version: number;
}

export type Validator = (resources: readonly Resource[]) => Diagnostic[];

interface Entry {
  resource: Resource;
  source: string;
  fingerprint: string;
}

/** The API source name; files use their path. */
export const API_SOURCE = 'api';

function fingerprint(r: Resource): string {
  return JSON.stringify(r.body);
}

export class ConfigStore {
  readonly #entries = new Map<string, Entry>();
  readonly #validate: Validator;
  readonly #listeners = new Set<(change: ConfigChange, version: number) => void>();
  #version = 0;
  #snapshot: readonly Resource[] = [];

  constructor(validate: Validator) {
    this.#validate = validate;
  }

  get version(): number {
    return this.#version;
  }

  /** Every resource, in a stable order (by key); the same array until the next accepted change. */
  snapshot(): readonly Resource[] {
    return this.#snapshot;
  }

  get(key: string): Resource | undefined {
    return this.#entries.get(key)?.resource;
  }

  sourceOf(key: string): string | undefined {
    return this.#entries.get(key)?.source;
  }

  onChange(fn: (change: ConfigChange, version: number) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  /** Makes `resources` the whole content of `source` (a file reload): absent ones are removed. */
  replaceSource(source: string, resources: readonly Resource[], loadDiagnostics: readonly Diagnostic[] = []): ChangeResult {
    const removals = [...this.#entries.entries()].filter(([key, e]) => e.source === source && !resources.some((r) => resourceKey(r) === key)).map(([key]) => key);
    return this.#commit(source, resources, removals, loadDiagnostics);
  }

  /** Adds or replaces resources (kubectl apply). */
  apply(resources: readonly Resource[], source: string = API_SOURCE, loadDiagnostics: readonly Diagnostic[] = []): ChangeResult {
    return this.#commit(source, resources, [], loadDiagnostics);
  }

  /** Removes resources by key; unknown keys are ignored. */
  delete(keys: readonly string[]): ChangeResult {
    return this.#commit(API_SOURCE, [], keys.filter((k) => this.#entries.has(k)), []);
  }

  #commit(source: string, upserts: readonly Resource[], removals: readonly string[], loadDiagnostics: readonly Diagnostic[]): ChangeResult {
    const change: ConfigChange = { kinds: new Set(), namespaces: new Set(), keys: new Set() };
    const loadErrors = loadDiagnostics.filter((d) => d.severity === 'error');
    const diagnostics = [...loadDiagnostics, ...this.#validate(upserts)];
    if (loadErrors.length > 0 || diagnostics.some((d) => d.severity === 'error')) {
      return { accepted: false, diagnostics, change, version: this.#version };
    }
    const seen = new Set<string>();
    for (const r of upserts) {
      const key = resourceKey(r);
      if (seen.has(key)) {
        diagnostics.push({ severity: 'warning', file: r.source.file, line: r.source.line, col: r.source.col, resource: `${r.kind} ${r.metadata.namespace}/${r.metadata.name}`, path: '', message: 'defined more than once in this change; the last definition wins' });
      }
      seen.add(key);
      const fp = fingerprint(r);
      const old = this.#entries.get(key);
      this.#entries.set(key, { resource: r, source, fingerprint: fp });
      if (old?.fingerprint === fp) continue;
      change.kinds.add(r.kind);
      change.namespaces.add(r.metadata.namespace);
      change.keys.add(key);
    }
    for (const key of removals) {
      const old = this.#entries.get(key);
      if (!old) continue;
      this.#entries.delete(key);
      change.kinds.add(old.resource.kind);
      change.namespaces.add(old.resource.metadata.namespace);
      change.keys.add(key);
    }
    if (change.keys.size > 0) {
      this.#version++;
      this.#snapshot = [...this.#entries.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, e]) => e.resource);
      for (const fn of this.#listeners) fn(change, this.#version);
    }
    return { accepted: true, diagnostics, change, version: this.#version };
  }
}
