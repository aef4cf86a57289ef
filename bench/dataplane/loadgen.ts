// The data-plane load generator, run as its own process (pinned, inside a client network namespace): N keep-alive connections over raw sockets sending HTTP/1.1 GETs (or fixed-size TCP echo messages) either at a fixed total rate, each request timed from its intended send time (coordinated omission corrected, as wrk2), or closed-loop. Prints JSON lines on stdout (`measure-start`, `measure-end`, then `result`); a bad argument exits 2, everything else is counted as errors in the result.

import net from 'node:net';
import { Worker } from 'node:worker_threads';
import { Histogram, type Summary } from './histogram.ts';

export interface LoadSpec {
  mode: 'http' | 'tcp' | 'probe';
  host: string;
  port: number;
  /** HTTP: the Host header and path. */
  hostHeader?: string;
  path?: string;
  /** TCP: bytes per echo message (default 1024). */
  size?: number;
  connections: number;
  /** Requests per second over all connections; 0 = closed-loop (each connection sends again once answered). */
  rate: number;
  warmupS: number;
  durationS: number;
  /** A request unanswered this long fails its connection (default 10000). */
  timeoutMs?: number;
}

export interface LoadResult {
  spec: LoadSpec;
  /** Requests whose intended send time fell in the measured window, and of those: */
  scheduled: number;
  completed: number;
  errors: { connect: number; closed: number; timeout: number; unsent: number; status: number };
  /** Completed in-window requests per second of the window. */
  achievedRps: number;
  /** From the intended send time (fixed rate) or the send (closed loop) to the response's last byte. */
  latency: Summary;
  /** From the actual send to the last byte (not corrected: what a closed-loop tool reports). */
  service: Summary;
  /** How late each request left relative to its intended time (the generator's own timer jitter plus queueing behind a slow response). */
  sendLag: Summary;
  /** First status seen other than 2xx, if any. */
  badStatus?: number;
  firstError?: string;
}

export interface ProbeResult {
  status: number;
  bodyBytes: number;
  headers: Record<string, string>;
  error?: string;
}

const CRLF2 = Buffer.from('\r\n\r\n');

/** Incremental parser of HTTP/1.1 responses (Content-Length, chunked, or bodiless); `feed` returns true when one response is complete. */
class ResponseParser {
  status = 0;
  headers: Record<string, string> = {};
  bodyBytes = 0;
  close = false;
  #head: Buffer | undefined;
  #state: 'head' | 'body' | 'chunk-size' | 'chunk-data' | 'chunk-crlf' | 'trailers' = 'head';
  #remaining = 0;
  #line = '';
  #keepHeaders: boolean;

  constructor(keepHeaders = false) {
    this.#keepHeaders = keepHeaders;
  }

  /** Consumes from `buf` at `off`; returns the offset after a complete response, or -1 when it needs more. */
  feed(buf: Buffer, off: number): number {
    while (off < buf.length) {
      switch (this.#state) {
        case 'head': {
          let data = buf;
          let start = off;
          if (this.#head) {
            data = Buffer.concat([this.#head, buf.subarray(off)]);
            start = 0;
          }
          const end = data.indexOf(CRLF2, start);
          if (end < 0) {
            this.#head = Buffer.from(data.subarray(start));
            return -1;
          }
          const consumedFromBuf = this.#head ? end + 4 - this.#head.length : end + 4 - off;
          this.#parseHead(data.toString('latin1', start, end));
          this.#head = undefined;
          off += consumedFromBuf;
          if (this.#state === 'head') return off; // bodiless response
          break;
        }
        case 'body': {
          const take = Math.min(this.#remaining, buf.length - off);
          this.#remaining -= take;
          this.bodyBytes += take;
          off += take;
          if (this.#remaining === 0) {
            this.#state = 'head';
            return off;
          }
          break;
        }
        case 'chunk-size':
        case 'chunk-crlf':
        case 'trailers': {
          const nl = buf.indexOf(10, off);
          const piece = buf.toString('latin1', off, nl < 0 ? buf.length : nl + 1);
          off = nl < 0 ? buf.length : nl + 1;
          this.#line += piece;
          if (nl < 0) break;
          const line = this.#line.trimEnd();
          this.#line = '';
          if (this.#state === 'chunk-crlf') {
            this.#state = 'chunk-size';
          } else if (this.#state === 'chunk-size') {
            const size = parseInt(line, 16);
            if (size === 0) this.#state = 'trailers';
            else {
              this.#remaining = size;
              this.#state = 'chunk-data';
            }
          } else if (line === '') {
            this.#state = 'head';
            return off;
          }
          break;
        }
        case 'chunk-data': {
          const take = Math.min(this.#remaining, buf.length - off);
          this.#remaining -= take;
          this.bodyBytes += take;
          off += take;
          if (this.#remaining === 0) this.#state = 'chunk-crlf';
          break;
        }
      }
    }
    return -1;
  }

  #parseHead(head: string): void {
    this.status = Number(head.slice(9, 12));
    this.bodyBytes = 0;
    const lower = head.toLowerCase();
    this.close = /\r\nconnection:\s*close/.test(lower);
    if (this.#keepHeaders) {
      this.headers = {};
      for (const line of head.split('\r\n').slice(1)) {
        const i = line.indexOf(':');
        if (i > 0) this.headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
      }
    }
    if (/\r\ntransfer-encoding:[^\r]*chunked/.test(lower)) {
      this.#state = 'chunk-size';
      return;
    }
    const m = /\r\ncontent-length:\s*(\d+)/.exec(lower);
    const length = m ? Number(m[1]) : 0;
    if (length > 0 && this.status !== 204 && this.status !== 304) {
      this.#remaining = length;
      this.#state = 'body';
    }
  }
}

/** One keep-alive connection: writes a message, waits for one complete answer. */
class Conn {
  socket!: net.Socket;
  busy = false;
  /** Index of this connection's next request (fixed rate: intended at t0 + (id + k*N)/rate). */
  k = 0;
  intended = 0;
  sentAt = 0;
  #parser: ResponseParser | undefined;
  #echoLeft = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(
    readonly id: number,
    readonly spec: LoadSpec,
    readonly message: Buffer,
    readonly onDone: (c: Conn, ok: boolean, status: number, error?: string) => void,
  ) {}

  connect(): Promise<void> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ host: this.spec.host, port: this.spec.port, noDelay: true });
      this.socket = s;
      this.#parser = this.spec.mode === 'tcp' ? undefined : new ResponseParser();
      // events of a socket this connection has replaced are ignored
      s.once('connect', () => resolve());
      s.on('error', (err) => {
        reject(err);
        if (s === this.socket) this.#fail(`socket: ${err.message}`);
      });
      s.on('close', () => {
        if (s === this.socket) this.#fail('connection closed');
      });
      s.on('data', (buf: Buffer) => {
        if (s === this.socket) this.#onData(buf);
      });
    });
  }

  send(intended: number, now: number): void {
    this.busy = true;
    this.intended = intended;
    this.sentAt = now;
    this.#echoLeft = this.message.length;
    this.#timer = setTimeout(() => {
      this.#fail('timeout', true);
      this.socket.destroy();
    }, this.spec.timeoutMs ?? 10_000);
    this.socket.write(this.message);
  }

  #onData(buf: Buffer): void {
    if (!this.busy) return;
    if (!this.#parser) {
      this.#echoLeft -= buf.length;
      if (this.#echoLeft <= 0) this.#finish(true, 0);
      return;
    }
    const end = this.#parser.feed(buf, 0);
    if (end < 0) return;
    const p = this.#parser;
    this.#finish(true, p.status);
    if (p.close) this.socket.destroy();
  }

  #finish(ok: boolean, status: number, error?: string): void {
    clearTimeout(this.#timer);
    this.busy = false;
    this.onDone(this, ok, status, error);
  }

  #failed = false;
  #fail(error: string, timeout = false): void {
    if (this.#failed) return;
    this.#failed = true;
    if (this.busy) this.#finish(false, timeout ? -1 : 0, error);
  }

  get dead(): boolean {
    return this.#failed;
  }

  revive(): Promise<void> {
    this.#failed = false;
    return this.connect();
  }
}

// The pacer's thread: sleeps on a futex (Atomics.wait, sub-millisecond) until the armed time, posts one
// message (which wakes the main event loop at once), then waits to be re-armed.
const PACER_THREAD = `
const { workerData, parentPort } = require('node:worker_threads');
const ctl = new Int32Array(workerData, 0, 1);
const at = new Float64Array(workerData, 8, 1);
for (;;) {
  const seq = Atomics.load(ctl, 0);
  const target = at[0];
  if (target < 0) break;
  if (target === Infinity) { Atomics.wait(ctl, 0, seq); continue; }
  const d = target - (performance.timeOrigin + performance.now());
  if (d > 0 && Atomics.wait(ctl, 0, seq, d) !== 'timed-out') continue;
  parentPort.postMessage(0);
  Atomics.wait(ctl, 0, seq);
}
`;

/**
 * Wakes the main thread at an armed time with sub-millisecond precision: Node's timers have 1 ms
 * granularity (a request would leave up to ~1 ms late), a futex wait on another thread does not.
 */
class Pacer {
  readonly #sab = new SharedArrayBuffer(16);
  readonly #ctl = new Int32Array(this.#sab, 0, 1);
  readonly #at = new Float64Array(this.#sab, 8, 1);
  readonly #worker: Worker;

  constructor(onWake: () => void) {
    this.#at[0] = Infinity;
    this.#worker = new Worker(PACER_THREAD, { eval: true, workerData: this.#sab });
    this.#worker.on('message', onWake);
  }

  #set(v: number): void {
    this.#at[0] = v;
    Atomics.add(this.#ctl, 0, 1);
    Atomics.notify(this.#ctl, 0);
  }

  /** `at` on this thread's performance.now() clock. */
  arm(at: number): void {
    this.#set(performance.timeOrigin + at);
  }

  async stop(): Promise<void> {
    this.#set(-1);
    await this.#worker.terminate();
  }
}

function httpRequest(spec: LoadSpec): Buffer {
  return Buffer.from(`GET ${spec.path ?? '/'} HTTP/1.1\r\nHost: ${spec.hostHeader ?? spec.host}\r\nUser-Agent: tsmesh-bench\r\nAccept: */*\r\n\r\n`);
}

async function probe(spec: LoadSpec): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const s = net.connect({ host: spec.host, port: spec.port });
    const parser = new ResponseParser(true);
    const timer = setTimeout(() => {
      s.destroy();
      resolve({ status: 0, bodyBytes: 0, headers: {}, error: 'timeout' });
    }, spec.timeoutMs ?? 5000);
    s.on('connect', () => s.write(httpRequest(spec)));
    s.on('data', (buf: Buffer) => {
      if (parser.feed(buf, 0) < 0) return;
      clearTimeout(timer);
      s.destroy();
      resolve({ status: parser.status, bodyBytes: parser.bodyBytes, headers: parser.headers });
    });
    s.on('error', (err) => {
      clearTimeout(timer);
      resolve({ status: 0, bodyBytes: 0, headers: {}, error: err.message });
    });
  });
}

function emit(v: unknown): void {
  process.stdout.write(`${JSON.stringify(v)}\n`);
}

export async function runLoad(spec: LoadSpec): Promise<LoadResult> {
  const now = (): number => performance.now();
  const message = spec.mode === 'tcp' ? Buffer.alloc(spec.size ?? 1024, 0x61) : httpRequest(spec);
  const latency = new Histogram();
  const service = new Histogram();
  const lag = new Histogram();
  const errors = { connect: 0, closed: 0, timeout: 0, unsent: 0, status: 0 };
  let scheduled = 0;
  let completed = 0;
  let badStatus: number | undefined;
  let firstError: string | undefined;
  const N = spec.connections;
  const closed = spec.rate <= 0;
  const interval = closed ? 0 : 1000 / spec.rate;
  let t0 = 0;
  let tStart = 0;
  let tEnd = 0;
  let ending = false;
  let armedAt = Infinity;
  let finish: () => void = () => undefined;

  const due = (c: Conn): number => t0 + (c.id + c.k * N) * interval;
  const inWindow = (intended: number): boolean => intended >= tStart && intended < tEnd;

  const conns: Conn[] = [];
  const kick = (c: Conn, t: number): void => {
    if (c.busy || c.dead) return;
    if (closed) {
      if (t >= tEnd) return;
      if (t >= tStart) scheduled++;
      c.send(t, t);
      return;
    }
    const d = due(c);
    if (d >= tEnd) return;
    if (d <= t) {
      if (inWindow(d)) {
        scheduled++;
        lag.record((t - d) * 1000);
      }
      c.send(d, t);
      c.k++;
      return;
    }
    arm(d);
  };
  const tick = (): void => {
    armedAt = Infinity;
    const t = now();
    for (const c of conns) kick(c, t);
  };
  const pacer = closed ? undefined : new Pacer(tick);
  const arm = (at: number): void => {
    if (at >= armedAt) return;
    armedAt = at;
    pacer?.arm(at);
  };
  const onDone = (c: Conn, ok: boolean, status: number, error?: string): void => {
    const t = now();
    const measured = inWindow(c.intended);
    if (ok) {
      if (measured) {
        completed++;
        latency.record((t - c.intended) * 1000);
        service.record((t - c.sentAt) * 1000);
        if (spec.mode === 'http' && (status < 200 || status > 299)) {
          errors.status++;
          badStatus ??= status;
        }
      }
    } else {
      if (measured) {
        if (status === -1) errors.timeout++;
        else errors.closed++;
      }
      firstError ??= error;
      // a new connection in its place; its schedule continues where it stopped
      void c.revive().then(() => kick(c, now()), (err: Error) => {
        errors.connect++;
        firstError ??= `reconnect: ${err.message}`;
      });
      return;
    }
    kick(c, t);
    if (ending) maybeFinish();
  };
  // done once nothing is in flight and nothing intended inside the window is still waiting to leave
  const maybeFinish = (): void => {
    if (conns.every((x) => !x.busy && (closed || x.dead || due(x) >= tEnd))) finish();
  };

  for (let i = 0; i < N; i++) conns.push(new Conn(i, spec, message, onDone));
  await Promise.all(conns.map((c) => c.connect()));

  t0 = now();
  tStart = t0 + spec.warmupS * 1000;
  tEnd = tStart + spec.durationS * 1000;
  const markers = [
    setTimeout(() => emit({ event: 'measure-start' }), tStart - t0),
    setTimeout(() => {
      emit({ event: 'measure-end' });
      ending = true;
      tick();
      maybeFinish();
    }, tEnd - t0),
  ];
  const done = new Promise<void>((resolve) => {
    finish = resolve;
  });
  for (const c of conns) kick(c, now());
  // requests due in the window but still queued behind slow answers get 10 s to leave after it
  const drain = setTimeout(() => finish(), tEnd - t0 + (spec.timeoutMs ?? 10_000) + 1000);
  await done;
  clearTimeout(drain);
  for (const m of markers) clearTimeout(m);
  await pacer?.stop();
  if (!closed) {
    for (const c of conns) {
      // this connection's requests intended inside the window that never left
      while (due(c) < tEnd) {
        if (inWindow(due(c))) {
          scheduled++;
          errors.unsent++;
        }
        c.k++;
      }
    }
  }
  for (const c of conns) c.socket.destroy();
  return {
    spec,
    scheduled,
    completed,
    errors,
    achievedRps: completed / spec.durationS,
    latency: latency.summary(),
    service: service.summary(),
    sendLag: lag.summary(),
    ...(badStatus !== undefined ? { badStatus } : {}),
    ...(firstError !== undefined ? { firstError } : {}),
  };
}

async function main(): Promise<void> {
  let spec: LoadSpec;
  try {
    spec = JSON.parse(process.argv[2] ?? '') as LoadSpec;
    if (!spec.host || !spec.port || !(spec.connections > 0)) throw new Error('host, port and connections are required');
  } catch (err) {
    process.stderr.write(`usage: loadgen.ts '<LoadSpec JSON>': ${(err as Error).message}\n`);
    process.exit(2);
  }
  if (spec.mode === 'probe') {
    emit({ event: 'result', result: await probe(spec) });
    return;
  }
  try {
    emit({ event: 'result', result: await runLoad(spec) });
  } catch (err) {
    emit({ event: 'result', error: (err as Error).message });
  }
  process.exit(0);
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
