// Access log sinks: '/dev/stdout', '/dev/stderr' or an append-mode file, buffered and written once per event-loop
// turn (or at 64 KiB). A write error never throws: it is counted, the file is reopened later, and lines beyond the
// buffer bound are dropped and counted.

import { createWriteStream } from 'node:fs';
import type { Writable } from 'node:stream';
import { logger } from '../../common/log.ts';
import { systemClock, type Clock } from './clock.ts';

const log = logger('access-log');

export interface AccessLogSinkStats {
  /** Lines accepted into the buffer. */
  linesBuffered: number;
  /** Lines the operating system accepted. */
  linesWritten: number;
  /** Lines lost: buffer full, sink closed, or their write failed. */
  linesDropped: number;
  /** Failed writes and open errors. */
  writeErrors: number;
  /** Reopen attempts of a failed file that failed again. */
  reopenFailed: number;
}

export interface AccessLogSink {
  readonly path: string;
  readonly stats: Readonly<AccessLogSinkStats>;
  /** Queues one line (already newline-terminated); never throws. */
  write(line: string): void;
  /** Resolves when every queued line has been handed to the OS (or counted as dropped). */
  flush(): Promise<void>;
  /** Closes and reopens the file (log rotation); a no-op for stdout/stderr. */
  reopen(): void;
  close(): Promise<void>;
}

export interface SinkOptions {
  /** Lines beyond this many buffered bytes are dropped (default 16 MiB). */
  maxBufferBytes?: number;
  /** Buffered bytes that trigger an immediate write (default 64 KiB). */
  flushBytes?: number;
  /** Minimum time between reopen attempts of a failed file, ms (default 1000). */
  reopenIntervalMs?: number;
  clock?: Clock;
}

class StreamSink implements AccessLogSink {
  readonly path: string;
  readonly stats: AccessLogSinkStats = { linesBuffered: 0, linesWritten: 0, linesDropped: 0, writeErrors: 0, reopenFailed: 0 };
  readonly #stdio: Writable | undefined;
  readonly #maxBufferBytes: number;
  readonly #flushBytes: number;
  readonly #reopenIntervalMs: number;
  readonly #clock: Clock;
  #target: Writable | undefined;
  #broken = false;
  #lastOpen = Number.NEGATIVE_INFINITY;
  #blocked = false;
  #pending: string[] = [];
  #pendingBytes = 0;
  #scheduled = false;
  #retryTimer: NodeJS.Timeout | undefined;
  #closed = false;
  /** The current stream was opened to recover from a failure and has not written yet. */
  #retrying = false;
  readonly #onStdioError = (err: Error): void => this.#failed(err, 0);

  constructor(path: string, opts: SinkOptions) {
    this.path = path;
    this.#maxBufferBytes = opts.maxBufferBytes ?? 16 * 1024 * 1024;
    this.#flushBytes = opts.flushBytes ?? 64 * 1024;
    this.#reopenIntervalMs = opts.reopenIntervalMs ?? 1000;
    this.#clock = opts.clock ?? systemClock;
    this.#stdio = path === '/dev/stdout' ? process.stdout : path === '/dev/stderr' ? process.stderr : undefined;
    if (this.#stdio) {
      this.#target = this.#stdio;
      this.#stdio.on('error', this.#onStdioError);
    } else {
      this.#open();
    }
  }

  write(line: string): void {
    if (this.#closed || this.#pendingBytes + line.length > this.#maxBufferBytes) {
      this.stats.linesDropped++;
      return;
    }
    this.#pending.push(line);
    this.#pendingBytes += line.length;
    this.stats.linesBuffered++;
    if (this.#pendingBytes >= this.#flushBytes) this.#drain();
    else if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(() => {
        this.#scheduled = false;
        this.#drain();
      });
    }
  }

  async flush(): Promise<void> {
    this.#drain();
    const target = this.#target;
    if (!target || this.#broken || target.destroyed) return;
    await new Promise<void>((resolve) => {
      if (!this.#blocked) {
        target.write('', () => resolve());
        return;
      }
      // Blocked: wait for 'drain', or for the failure that means it will never come.
      const done = (): void => {
        target.off('drain', done).off('error', done).off('close', done);
        resolve();
      };
      target.once('drain', done).once('error', done).once('close', done);
    });
    if (this.#pending.length > 0 && !this.#broken) await this.flush();
  }

  reopen(): void {
    if (this.#stdio || this.#closed) return;
    this.#drain();
    const old = this.#target;
    this.#target = undefined;
    if (old) old.end();
    this.#open();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    await this.flush();
    this.#closed = true;
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    this.stats.linesDropped += this.#pending.length;
    this.#pending = [];
    this.#pendingBytes = 0;
    if (this.#stdio) {
      this.#stdio.off('error', this.#onStdioError);
      return;
    }
    const target = this.#target;
    this.#target = undefined;
    if (target && !target.destroyed) await new Promise<void>((resolve) => target.end(() => resolve()));
  }

  #open(): void {
    this.#lastOpen = this.#clock.now();
    const stream = createWriteStream(this.path, { flags: 'a' });
    stream.on('error', (err) => {
      if (this.#target === stream) this.#failed(err, 0);
    });
    this.#target = stream;
    this.#broken = false;
    this.#blocked = false;
    this.#retrying = false;
  }

  /** A failed write or stream: the lines are lost; the first failure of a stream is counted and logged. */
  #failed(err: Error, lines: number): void {
    this.stats.linesDropped += lines;
    this.#blocked = false;
    if (this.#broken) return;
    this.#broken = true;
    this.stats.writeErrors++;
    if (this.#retrying) this.stats.reopenFailed++;
    else log.warn('access log write failed', { path: this.path, error: err.message });
    this.#scheduleRetry();
  }

  #scheduleRetry(): void {
    if (this.#stdio || this.#closed || this.#retryTimer) return;
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      this.#drain();
    }, this.#reopenIntervalMs);
    this.#retryTimer.unref();
  }

  #drain(): void {
    if (this.#pending.length === 0 || this.#closed) return;
    if (this.#broken) {
      if (this.#stdio) {
        // stdout/stderr cannot be reopened: what is queued is lost.
        this.stats.linesDropped += this.#pending.length;
        this.#pending = [];
        this.#pendingBytes = 0;
        return;
      }
      if (this.#clock.now() - this.#lastOpen < this.#reopenIntervalMs) {
        this.#scheduleRetry();
        return;
      }
      this.#open();
      this.#retrying = true;
    }
    const target = this.#target;
    if (!target || this.#blocked) return;
    if (target.destroyed) {
      this.#failed(new Error('stream destroyed'), this.#pending.length);
      this.#pending = [];
      this.#pendingBytes = 0;
      return;
    }
    const lines = this.#pending.length;
    const chunk = lines === 1 ? (this.#pending[0] as string) : this.#pending.join('');
    this.#pending = [];
    this.#pendingBytes = 0;
    const ok = target.write(chunk, (err) => {
      if (err) {
        if (this.#target === target) this.#failed(err, lines);
        else this.stats.linesDropped += lines;
      } else {
        this.stats.linesWritten += lines;
        if (this.#target === target) this.#retrying = false;
      }
    });
    if (!ok) {
      this.#blocked = true;
      target.once('drain', () => {
        this.#blocked = false;
        this.#drain();
      });
    }
  }
}

/** A new sink for `path`; '/dev/stdout' and '/dev/stderr' write to the process's own streams. */
export function createAccessLogSink(path: string, opts: SinkOptions = {}): AccessLogSink {
  return new StreamSink(path, opts);
}

/** One sink per path, shared by every access logger that names it (config pushes reuse them). */
export class SinkRegistry {
  readonly #sinks = new Map<string, AccessLogSink>();
  readonly #opts: SinkOptions;

  constructor(opts: SinkOptions = {}) {
    this.#opts = opts;
  }

  get(path: string): AccessLogSink {
    let sink = this.#sinks.get(path);
    if (!sink) this.#sinks.set(path, (sink = createAccessLogSink(path, this.#opts)));
    return sink;
  }

  all(): AccessLogSink[] {
    return [...this.#sinks.values()];
  }

  reopenAll(): void {
    for (const s of this.#sinks.values()) s.reopen();
  }

  async closeAll(): Promise<void> {
    const sinks = [...this.#sinks.values()];
    this.#sinks.clear();
    await Promise.all(sinks.map((s) => s.close()));
  }
}
