// Access log sinks: '/dev/stdout', '/dev/stderr' or an append-mode file, buffered and written once per event-loop
// turn (or at 64 KiB), optionally in writes of whole lines no larger than a pipe writes atomically (several worker
// processes share the sink). A write error never throws: it is counted, the file is reopened later, and lines beyond the
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
  /**
   * Largest write, in bytes, made of whole lines (a longer line goes alone): set to PIPE_BUF (4096) when other
   * processes write to the same pipe or file, so lines never interleave. Default: no limit.
   */
  maxWriteBytes?: number;
  clock?: Clock;
}

class StreamSink implements AccessLogSink {
  readonly path: string;
  readonly stats: AccessLogSinkStats = { linesBuffered: 0, linesWritten: 0, linesDropped: 0, writeErrors: 0, reopenFailed: 0 };
  readonly #stdio: Writable | undefined;
  readonly #maxBufferBytes: number;
  readonly #flushBytes: number;
  readonly #reopenIntervalMs: number;
  readonly #maxWriteBytes: number;
  readonly #clock: Clock;
  #target: Writable | undefined;
  #broken = false;
  #lastOpen = Number.NEGATIVE_INFINITY;
  #blocked = false;
  #pending: string[] = [];
  /** maxWriteBytes: lines taken from #pending, written a batch at a time from #inflightHead on. */
  #inflight: string[] = [];
  #inflightHead = 0;
  /** flush() callers waiting for the atomic writes to catch up. */
  #idle: Array<() => void> = [];
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
    this.#maxWriteBytes = opts.maxWriteBytes ?? Number.POSITIVE_INFINITY;
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
    if (this.#atomic) {
      if (this.#blocked || this.#queued() > 0) await new Promise<void>((resolve) => this.#idle.push(resolve));
      return;
    }
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
    this.#dropQueued();
    this.#settleIdle();
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
    this.#settleIdle();
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
    if (this.#queued() === 0 || this.#closed) return;
    if (this.#broken) {
      if (this.#stdio) {
        // stdout/stderr cannot be reopened: what is queued is lost.
        this.#dropQueued();
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
      const lines = this.#queued();
      this.#pending = [];
      this.#pendingBytes = 0;
      this.#inflight = [];
      this.#inflightHead = 0;
      this.#failed(new Error('stream destroyed'), lines);
      return;
    }
    if (this.#atomic) {
      this.#drainAtomic(target);
      return;
    }
    const pending = this.#pending;
    this.#pending = [];
    this.#pendingBytes = 0;
    const ok = this.#write(target, pending);
    if (!ok) {
      this.#blocked = true;
      target.once('drain', () => {
        this.#blocked = false;
        this.#drain();
      });
    }
  }

  get #atomic(): boolean {
    return this.#maxWriteBytes !== Number.POSITIVE_INFINITY;
  }

  #queued(): number {
    return this.#pending.length + this.#inflight.length - this.#inflightHead;
  }

  #dropQueued(): void {
    this.stats.linesDropped += this.#queued();
    this.#pending = [];
    this.#pendingBytes = 0;
    this.#inflight = [];
    this.#inflightHead = 0;
  }

  #settleIdle(): void {
    const waiting = this.#idle;
    this.#idle = [];
    for (const resolve of waiting) resolve();
  }

  /**
   * Writes of whole lines, at most maxWriteBytes each, one at a time: the next waits for the previous one's
   * callback, so the stream never merges queued chunks into one larger write (writev) that could interleave.
   */
  #drainAtomic(target: Writable): void {
    if (this.#inflightHead >= this.#inflight.length) {
      this.#inflight = this.#pending;
      this.#inflightHead = 0;
      this.#pending = [];
      this.#pendingBytes = 0;
    }
    const q = this.#inflight;
    const start = this.#inflightHead;
    let end = start;
    let bytes = 0;
    while (end < q.length) {
      const n = Buffer.byteLength(q[end] as string);
      if (end > start && bytes + n > this.#maxWriteBytes) break;
      bytes += n;
      end++;
    }
    if (end === start) {
      this.#settleIdle();
      return;
    }
    this.#inflightHead = end;
    this.#blocked = true;
    this.#write(target, q.slice(start, end), () => {
      this.#blocked = false;
      this.#drain();
      if (!this.#blocked) this.#settleIdle();
    });
  }

  /** One write of these lines; false when the stream asks to wait for 'drain'. `done` runs once it succeeded. */
  #write(target: Writable, batch: readonly string[], done?: () => void): boolean {
    const lines = batch.length;
    const chunk = lines === 1 ? (batch[0] as string) : batch.join('');
    return target.write(chunk, (err) => {
      if (err) {
        if (this.#target === target) this.#failed(err, lines);
        else this.stats.linesDropped += lines;
      } else {
        this.stats.linesWritten += lines;
        if (this.#target === target) this.#retrying = false;
        done?.();
      }
    });
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
