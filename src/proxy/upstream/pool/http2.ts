// One HTTP/2 (prior knowledge, h2c) connection: our own socket handed to node:http2, many streams up to
// the peer's SETTINGS_MAX_CONCURRENT_STREAMS (and the cluster's), closed after idle_timeout without
// streams. GOAWAY drains it (streams in flight finish, the pool opens a new one for new requests).
// Failures: reset (UR) for RST_STREAM or a connection closing before the response; aborts reject with
// the signal's reason. The response body is the stream itself (backpressure is HTTP/2 flow control).

import * as http2 from 'node:http2';
import type { Socket } from 'node:net';
import type { Timer } from '../clock.ts';
import { UpstreamError, type OutgoingHeaders } from '../types.ts';
import { connectSocket, socketLocalAddress } from './connect.ts';
import type { ConnectionOptions } from './http1.ts';
import { CONNECTION_HEADERS, type ConnState, type PoolConnection, type PoolRequest } from './types.ts';

const { NGHTTP2_CANCEL, NGHTTP2_REFUSED_STREAM, NGHTTP2_NO_ERROR } = http2.constants;

/** Request headers for HTTP/2: pseudo-headers first, `host` becomes :authority, connection headers go. */
export function http2Headers(method: string, path: string, h: OutgoingHeaders): http2.OutgoingHttpHeaders {
  const out: http2.OutgoingHttpHeaders = { ':method': method, ':path': path, ':scheme': 'http' };
  for (const k in h) {
    const v = h[k];
    if (v === undefined || CONNECTION_HEADERS.has(k)) continue;
    if (k === 'host') out[':authority'] = Array.isArray(v) ? v[0] : v;
    else if (k === 'te') {
      if (String(v).toLowerCase() === 'trailers') out.te = 'trailers';
    } else out[k] = v;
  }
  return out;
}

function resetDetail(code: number): string {
  return code === NGHTTP2_REFUSED_STREAM ? 'remote refused stream reset' : `remote reset (code ${code})`;
}

export class Http2Connection implements PoolConnection {
  state: ConnState = 'connecting';
  inReady = false;
  readonly initialCapacity: number;
  localAddress: string | undefined;
  private session: http2.ClientHttp2Session | undefined;
  private streams = 0;
  private served = 0;
  private peerMax = Number.POSITIVE_INFINITY;
  private idleTimer: Timer | undefined;

  constructor(private readonly opts: ConnectionOptions) {
    const { info } = opts;
    this.initialCapacity = Math.min(info.http2MaxConcurrentStreams, info.maxRequestsPerConnection ?? Number.POSITIVE_INFINITY);
  }

  available(): number {
    if (this.state !== 'ready') return 0;
    const { info } = this.opts;
    const concurrent = Math.min(this.peerMax, info.http2MaxConcurrentStreams) - this.streams;
    const total = info.maxRequestsPerConnection !== undefined ? info.maxRequestsPerConnection - this.served : Number.POSITIVE_INFINITY;
    return Math.max(0, Math.min(concurrent, total));
  }

  active(): number {
    return this.streams;
  }

  start(): void {
    const { info, clock, host } = this.opts;
    connectSocket(host, {
      cluster: info.name,
      timeoutMs: info.connectTimeoutMs,
      clock,
      ...(info.bindAddress ? { localAddress: info.bindAddress } : {}),
      ...(info.tcpKeepaliveSec !== undefined ? { keepAliveSec: info.tcpKeepaliveSec } : {}),
    }).then(
      (socket) => this.onSocket(socket),
      (err: unknown) => {
        this.state = 'closed';
        this.opts.events.onConnectFailed(this, err);
      },
    );
  }

  private onSocket(socket: Socket): void {
    if (this.state === 'closed') {
      socket.destroy();
      return;
    }
    this.localAddress = socketLocalAddress(socket);
    const h = this.opts.host;
    const authority = h.pipe !== undefined ? 'http://localhost' : h.address.includes(':') ? `http://[${h.address}]:${h.port}` : `http://${h.address}:${h.port}`;
    const session = http2.connect(authority, { createConnection: () => socket, settings: { enablePush: false } });
    this.session = session;
    session.on('remoteSettings', (s: http2.Settings) => {
      this.peerMax = s.maxConcurrentStreams ?? Number.POSITIVE_INFINITY;
      this.opts.events.onCapacity(this);
    });
    session.on('goaway', () => {
      this.opts.log?.debug('upstream sent GOAWAY', { cluster: this.opts.info.name, host: h.key });
      this.close();
    });
    session.on('error', (err: Error) => this.opts.log?.debug('upstream HTTP/2 session error', { cluster: this.opts.info.name, host: h.key, error: err.message }));
    session.on('close', () => this.closed());
    this.state = 'ready';
    this.armIdle();
    this.opts.events.onConnected(this);
  }

  private armIdle(): void {
    this.idleTimer?.cancel();
    this.idleTimer = undefined;
    const idle = this.opts.info.idleTimeoutMs;
    if (idle === undefined || this.streams > 0) return;
    this.idleTimer = this.opts.clock.setTimer(idle, () => {
      this.idleTimer = undefined;
      if (this.streams === 0) this.close();
    });
  }

  dispatch(pr: PoolRequest): void {
    const session = this.session;
    if (!session) throw new Error('dispatch on a connection that is not ready');
    pr.state = 'dispatched';
    this.streams++;
    this.served++;
    this.idleTimer?.cancel();
    this.idleTimer = undefined;
    const { req } = pr;
    const host = this.opts.host;
    let stream: http2.ClientHttp2Stream;
    try {
      stream = session.request(http2Headers(req.method, req.path, req.headers), { endStream: req.body === null });
    } catch (err) {
      this.streamDone(pr);
      pr.fail(new UpstreamError('reset', `connection termination (${(err as Error).message})`, host));
      return;
    }
    let trailersResolve: ((t: Record<string, string>) => void) | undefined;
    pr.abortHook = (reason) => {
      if (!pr.responded) {
        pr.fail(reason);
        stream.close(NGHTTP2_CANCEL);
      } else {
        stream.destroy(reason instanceof Error ? reason : new Error(String(reason)));
      }
    };
    stream.on('response', (headers, flags) => {
      const status = Number(headers[':status']);
      // No body (END_STREAM on the headers): let the stream end by itself, so that a caller that
      // never reads an empty body (204, HEAD) does not hold the stream open.
      const endStream = (flags & http2.constants.NGHTTP2_FLAG_END_STREAM) !== 0;
      if (endStream) stream.resume();
      const out: Record<string, string | string[] | undefined> = {};
      for (const k in headers) if (k.charCodeAt(0) !== 58 /* ':' */) out[k] = headers[k];
      const trailers = new Promise<Record<string, string>>((resolve) => (trailersResolve = resolve));
      pr.resolve({ statusCode: status, headers: out, body: stream, trailers, ...(endStream ? { endStream } : {}), ...(this.localAddress ? { localAddress: this.localAddress } : {}) });
    });
    stream.on('trailers', (t: http2.IncomingHttpHeaders) => {
      const out: Record<string, string> = {};
      for (const k in t) {
        const v = t[k];
        if (v !== undefined) out[k] = Array.isArray(v) ? v.join(', ') : v;
      }
      trailersResolve?.(out);
    });
    stream.on('error', () => {
      // Reported through 'close' below (before the response) or to the body's reader (after it).
    });
    stream.on('close', () => {
      trailersResolve?.({});
      if (!pr.responded) {
        const signal = req.signal;
        const code = stream.rstCode ?? NGHTTP2_NO_ERROR;
        const err = signal.aborted ? signal.reason : code !== NGHTTP2_NO_ERROR && code !== NGHTTP2_CANCEL ? new UpstreamError('reset', resetDetail(code), host) : new UpstreamError('reset', 'connection termination', host);
        pr.fail(err);
      }
      this.streamDone(pr);
    });
    const body = req.body;
    if (body === null) return;
    if (Buffer.isBuffer(body)) {
      stream.end(body);
    } else {
      body.on('error', (err) => stream.destroy(err));
      body.pipe(stream);
    }
  }

  private streamDone(pr: PoolRequest): void {
    this.streams--;
    pr.finish();
    const max = this.opts.info.maxRequestsPerConnection;
    if (max !== undefined && this.served >= max && this.state === 'ready') this.state = 'draining';
    if (this.state === 'draining') {
      if (this.streams === 0) this.closeSession();
      return;
    }
    if (this.state !== 'ready') return;
    this.armIdle();
    this.opts.events.onStreamDone(this);
  }

  close(): void {
    if (this.state === 'closed') return;
    this.state = 'draining';
    if (this.streams === 0) this.closeSession();
  }

  private closeSession(): void {
    this.idleTimer?.cancel();
    this.idleTimer = undefined;
    const s = this.session;
    if (!s || s.closed || s.destroyed) {
      this.closed();
      return;
    }
    s.close();
    // Do not wait for the peer to acknowledge: the connection is gone for the pool from now on.
    this.closed();
  }

  private closed(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.idleTimer?.cancel();
    this.idleTimer = undefined;
    if (this.session && !this.session.destroyed && !this.session.closed) this.session.destroy();
    this.opts.events.onClosed(this);
  }
}
