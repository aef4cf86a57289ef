// One ADS stream (AggregatedDiscoveryService/StreamAggregatedResources, state of the world) over node:http2 with
// gRPC's framing, for the sidecar: a gRPC library would cost every sidecar about 7 MB for this one call. Sends
// DiscoveryRequests, hands on each DiscoveryResponse, and reports exactly once why the stream ended (its gRPC status,
// a transport error, an unanswered keepalive ping, a malformed message); never throws. Reconnecting is the caller's.

import http2 from 'node:http2';
import type { DiscoveryRequest, DiscoveryResponse } from '../../xds/ads-service.ts';
import { decodeDiscoveryResponse, encodeDiscoveryRequest } from '../../xds/ads-codec.ts';

const METHOD = '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources';

/** gRPC status names, for the reasons reported. */
const STATUS_NAMES = ['OK', 'CANCELLED', 'UNKNOWN', 'INVALID_ARGUMENT', 'DEADLINE_EXCEEDED', 'NOT_FOUND', 'ALREADY_EXISTS', 'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED', 'FAILED_PRECONDITION', 'ABORTED', 'OUT_OF_RANGE', 'UNIMPLEMENTED', 'INTERNAL', 'UNAVAILABLE', 'DATA_LOSS', 'UNAUTHENTICATED'];

export interface AdsStreamOptions {
  /** host:port of the control plane (plaintext HTTP/2, as istiod's 15010). */
  address: string;
  onResponse(r: DiscoveryResponse): void;
  /** Called once, when the stream is over for any reason other than close(). */
  onClose(reason: string): void;
  /** A PING every this many ms while connected; default 30 s (what the sidecar's gRPC client was configured with). */
  keepaliveMs?: number;
  /** A PING unanswered this long ends the stream; default 20 s (gRPC's keepalive timeout). */
  keepaliveTimeoutMs?: number;
  /** The connection must be up within this; default 20 s (gRPC's minimum connect timeout). */
  connectTimeoutMs?: number;
  /** Larger responses end the stream; default 64 MiB (a mesh's whole CDS can pass 4 MiB, gRPC's usual default). */
  maxMessageBytes?: number;
}

/** The stream: send() requests until it ends; close() ends it without a report. */
export class AdsStream {
  readonly #opts: AdsStreamOptions;
  readonly #session: http2.ClientHttp2Session;
  readonly #call: http2.ClientHttp2Stream;
  #over = false;
  #chunks: Buffer[] = [];
  #buffered = 0;
  /** Length of the message being read, or -1 while its 5-byte prefix is awaited. */
  #length = -1;
  #status: string | undefined;
  #keepalive: NodeJS.Timeout | undefined;
  #pingTimer: NodeJS.Timeout | undefined;
  #connectTimer: NodeJS.Timeout | undefined;

  constructor(opts: AdsStreamOptions) {
    this.#opts = opts;
    const window = 8 * 2 ** 20;
    this.#session = http2.connect(`http://${opts.address}`, { settings: { initialWindowSize: window, enablePush: false } });
    const session = this.#session;
    session.on('error', (err) => this.#end(`connection to ${opts.address}: ${err.message}`));
    session.on('goaway', (code) => this.#end(`the control plane closed the connection (GOAWAY ${code})`));
    session.on('close', () => this.#end(`connection to ${opts.address} closed`));
    this.#connectTimer = setTimeout(() => this.#end(`no connection to ${opts.address} within ${duration(opts.connectTimeoutMs ?? 20_000)}`), opts.connectTimeoutMs ?? 20_000);
    this.#connectTimer.unref();
    session.once('connect', () => {
      clearTimeout(this.#connectTimer);
      session.setLocalWindowSize(window);
      this.#keepalive = setInterval(() => this.#ping(), opts.keepaliveMs ?? 30_000);
      this.#keepalive.unref();
    });

    this.#call = session.request({
      ':method': 'POST',
      ':path': METHOD,
      'content-type': 'application/grpc',
      te: 'trailers',
      'user-agent': 'tsmesh-proxy',
    }, { endStream: false });
    const call = this.#call;
    call.on('response', (headers) => {
      const status = headers[':status'];
      if (status !== 200) return this.#end(`the control plane answered HTTP ${status ?? '?'} instead of a gRPC stream`);
      if (headers['grpc-status'] !== undefined) return this.#end(statusReason(headers)); // trailers-only: an error at once
      const type = String(headers['content-type'] ?? '');
      if (!type.startsWith('application/grpc')) this.#end(`the control plane answered content-type ${JSON.stringify(type)}, not gRPC`);
    });
    call.on('data', (chunk: Buffer) => this.#onData(chunk));
    call.on('trailers', (trailers) => {
      this.#status = statusReason(trailers);
    });
    call.on('error', (err) => this.#end(`stream: ${err.message}`));
    call.on('close', () => this.#end(this.#status ?? `stream ended without a gRPC status (HTTP/2 code ${call.rstCode ?? '?'})`));
  }

  /** Sends one request (queued until the connection is up); does nothing once the stream is over. */
  send(req: DiscoveryRequest): void {
    if (this.#over) return;
    const body = encodeDiscoveryRequest(req);
    const frame = Buffer.allocUnsafe(5 + body.length);
    frame[0] = 0; // not compressed
    frame.writeUInt32BE(body.length, 1);
    body.copy(frame, 5);
    this.#call.write(frame);
  }

  /** Ends the stream and its connection; onClose is not called. */
  close(): void {
    if (this.#over) return;
    this.#over = true;
    this.#teardown();
  }

  #ping(): void {
    if (this.#over || this.#pingTimer) return;
    const timeout = this.#opts.keepaliveTimeoutMs ?? 20_000;
    this.#pingTimer = setTimeout(() => this.#end(`keepalive ping to ${this.#opts.address} unanswered for ${duration(timeout)}`), timeout);
    this.#pingTimer.unref();
    const sent = this.#session.ping((err) => {
      clearTimeout(this.#pingTimer);
      this.#pingTimer = undefined;
      if (err) this.#end(`keepalive ping to ${this.#opts.address}: ${err.message}`);
    });
    if (!sent) {
      clearTimeout(this.#pingTimer);
      this.#pingTimer = undefined;
    }
  }

  /** Reads length-prefixed messages out of the byte stream, however the chunks split them. */
  #onData(chunk: Buffer): void {
    if (this.#over) return;
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
    for (;;) {
      if (this.#length < 0) {
        if (this.#buffered < 5) return;
        const prefix = this.#take(5);
        if (prefix[0] !== 0) return this.#end('the control plane sent a compressed message (none was offered)');
        this.#length = prefix.readUInt32BE(1);
        const max = this.#opts.maxMessageBytes ?? 64 * 2 ** 20;
        if (this.#length > max) return this.#end(`a DiscoveryResponse of ${this.#length} bytes is over the ${max}-byte limit`);
      }
      if (this.#buffered < this.#length) return;
      const body = this.#take(this.#length);
      this.#length = -1;
      let response: DiscoveryResponse;
      try {
        response = decodeDiscoveryResponse(body);
      } catch (err) {
        return this.#end(`malformed DiscoveryResponse: ${(err as Error).message}`);
      }
      this.#opts.onResponse(response);
      if (this.#over) return;
    }
  }

  /** The next n buffered bytes (n <= buffered), copying only when they span chunks. */
  #take(n: number): Buffer {
    const first = this.#chunks[0];
    let out: Buffer;
    if (first && first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.#chunks.shift();
      else this.#chunks[0] = first.subarray(n);
    } else {
      out = Buffer.allocUnsafe(n);
      let at = 0;
      while (at < n) {
        const c = this.#chunks[0];
        if (!c) break;
        const k = Math.min(c.length, n - at);
        c.copy(out, at, 0, k);
        at += k;
        if (k === c.length) this.#chunks.shift();
        else this.#chunks[0] = c.subarray(k);
      }
    }
    this.#buffered -= n;
    return out;
  }

  #end(reason: string): void {
    if (this.#over) return;
    this.#over = true;
    this.#teardown();
    this.#opts.onClose(reason);
  }

  #teardown(): void {
    clearTimeout(this.#connectTimer);
    clearTimeout(this.#pingTimer);
    clearInterval(this.#keepalive);
    this.#chunks = [];
    this.#buffered = 0;
    if (!this.#call.closed && !this.#call.destroyed) this.#call.close(http2.constants.NGHTTP2_CANCEL);
    if (!this.#session.destroyed) this.#session.destroy();
  }
}

const duration = (ms: number): string => (ms >= 1000 ? `${Math.round(ms / 1000)} s` : `${ms} ms`);

/** "grpc-status 14 (UNAVAILABLE): message" from trailers (or trailers-only headers). */
function statusReason(h: http2.IncomingHttpHeaders): string {
  const code = Number(h['grpc-status']);
  const raw = h['grpc-message'];
  let message = typeof raw === 'string' ? raw : '';
  try {
    message = decodeURIComponent(message);
  } catch {
    // not percent-encoded as it should be: shown as sent
  }
  const name = STATUS_NAMES[code] ?? 'UNKNOWN';
  return code === 0 ? 'the control plane ended the stream (grpc-status 0)' : `grpc-status ${code} (${name})${message ? `: ${message}` : ''}`;
}
