// What a host pool and its connections (HTTP/1.1 on our own sockets, HTTP/2 via node:http2) say to each other;
// one PoolRequest per upstream request carries its promise, abort hook and accounting. Never throws.

import type { UpstreamHttpRequest, UpstreamHttpResponse } from '../types.ts';

export type ConnState = 'connecting' | 'ready' | 'draining' | 'closed';

export interface PoolConnection {
  state: ConnState;
  /** In the pool's ready stack (bookkeeping for the pool). */
  inReady: boolean;
  /** Streams it is expected to take once connected (1 for HTTP/1.1). */
  readonly initialCapacity: number;
  /** Streams it can take now (0 unless ready). */
  available(): number;
  /** Streams in flight. */
  active(): number;
  start(): void;
  dispatch(pr: PoolRequest): void;
  /** No new streams; closes once the ones in flight end. */
  close(): void;
}

/** What a connection tells its pool. */
export interface PoolEvents {
  onConnected(c: PoolConnection): void;
  onConnectFailed(c: PoolConnection, err: unknown): void;
  /** A stream ended and the connection may take more. */
  onStreamDone(c: PoolConnection): void;
  /** The connection is gone (after onConnected). */
  onClosed(c: PoolConnection): void;
  /** Remote settings raised or lowered what the connection can take. */
  onCapacity(c: PoolConnection): void;
}

const EMPTY_TRAILERS: Record<string, string> = Object.freeze({});
export const NO_TRAILERS: Promise<Record<string, string>> = Promise.resolve(EMPTY_TRAILERS);

export class PoolRequest {
  state: 'pending' | 'dispatched' | 'done' = 'pending';
  responded = false;
  /** Set by the connection once the request is on the wire: aborts it there. */
  abortHook: ((reason: unknown) => void) | undefined;
  /** Set by the pool while the request waits: takes it out of the queue. */
  cancelPending: ((reason: unknown) => void) | undefined;
  private settled = false;
  private readonly onAbort = (): void => {
    const reason: unknown = this.req.signal.reason;
    if (this.state === 'pending') this.cancelPending?.(reason);
    else if (this.state === 'dispatched') this.abortHook?.(reason);
  };

  constructor(
    readonly req: UpstreamHttpRequest,
    private readonly resolveFn: (r: UpstreamHttpResponse) => void,
    private readonly rejectFn: (e: unknown) => void,
    private readonly onFinish: () => void,
  ) {
    req.signal.addEventListener('abort', this.onAbort, { once: true });
  }

  resolve(res: UpstreamHttpResponse): void {
    if (this.settled) return;
    this.settled = true;
    this.responded = true;
    this.resolveFn(res);
  }

  /** Rejects the promise if no response was given yet; returns whether it did. */
  fail(err: unknown): boolean {
    if (this.settled) return false;
    this.settled = true;
    this.rejectFn(err);
    return true;
  }

  /** The request is over (response body ended, or failed): releases its accounting, once. */
  finish(): void {
    if (this.state === 'done') return;
    this.state = 'done';
    this.req.signal.removeEventListener('abort', this.onAbort);
    this.onFinish();
  }
}

/** An abort signal's reason as an Error (AbortController.abort() may be given anything). */
export function abortError(reason: unknown): Error {
  return reason instanceof Error ? reason : new Error(reason === undefined ? 'aborted' : String(reason));
}

/** Headers an HTTP/1.1 or HTTP/2 upstream request must not carry (framing is the connection's job). */
export const CONNECTION_HEADERS: ReadonlySet<string> = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'expect', 'http2-settings']);
