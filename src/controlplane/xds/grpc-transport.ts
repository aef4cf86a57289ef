// The ADS server's gRPC transport, on node:http2 directly: the two AggregatedDiscoveryService streaming methods (plaintext h2c, as istiod's 15010), length-prefixed messages, statuses in trailers. Responses are written as chunks that may be shared by many streams (an encoded resource goes to a thousand proxies without being copied). A malformed stream is ended with a gRPC status and logged; nothing here throws into the server.
//
// What gRPC clients (grpc-js, grpc-go in Envoy's and gRPC's xDS clients) need and nothing more: POST
// to a known path with content-type application/grpc, uncompressed messages (no grpc-accept-encoding
// is advertised), a 200 response with content-type application/grpc, grpc-status and grpc-message
// (percent-encoded) in trailers, or headers and trailers at once when a stream fails before any message.

import http2 from 'node:http2';
import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from '../../common/log.ts';
import { DELTA_METHOD, SOTW_METHOD, adsServiceDefinition, type DeltaDiscoveryRequest, type DiscoveryRequest } from '../../xds/ads-service.ts';

/** gRPC status codes used here. */
export const GRPC_STATUS = { OK: 0, INVALID_ARGUMENT: 3, RESOURCE_EXHAUSTED: 8, UNIMPLEMENTED: 12, INTERNAL: 13, UNAVAILABLE: 14 } as const;

/** Requests larger than this end the stream with RESOURCE_EXHAUSTED (grpc's default receive limit). */
const MAX_REQUEST_BYTES = 4 * 2 ** 20;

export type AdsMethod = 'sotw' | 'delta';

/** One ADS stream as the server sees it. */
export interface AdsStream {
  readonly method: AdsMethod;
  /** `ip:port` of the client. */
  readonly peer: string;
  /** True once the stream ended or went away: nothing more is written. */
  readonly closed: boolean;
  /** Called with each request, decoded. */
  onMessage?: (msg: DiscoveryRequest | DeltaDiscoveryRequest) => void;
  /** Called once when the stream is gone, whoever ended it, with why. */
  onClose?: (reason: string) => void;
  /**
   * Writes one message made of `chunks` (the gRPC prefix is added). The chunks must not change until
   * `done`, which runs once the socket took them, or when the stream goes away first.
   */
  write(chunks: readonly Uint8Array[], done: () => void): void;
  /** Ends the stream with a status; resolves once the trailers are written or the stream is gone. */
  end(code?: number, message?: string): Promise<void>;
}

/** grpc-message: printable ASCII except '%' as is, everything else percent-encoded (UTF-8). */
export function encodeGrpcMessage(message: string): string {
  return message.replace(/[^\x20-\x24\x26-\x7e]/gu, (c) => encodeURIComponent(c));
}

const requestDecoders = (() => {
  let decoders: Record<AdsMethod, (b: Buffer) => DiscoveryRequest | DeltaDiscoveryRequest> | undefined;
  return () => {
    if (!decoders) {
      const def = adsServiceDefinition();
      const sotw = def.StreamAggregatedResources;
      const delta = def.DeltaAggregatedResources;
      if (!sotw || !delta) throw new Error('the ADS service definition lacks its methods');
      decoders = { sotw: (b) => sotw.requestDeserialize(b) as DiscoveryRequest, delta: (b) => delta.requestDeserialize(b) as DeltaDiscoveryRequest };
    }
    return decoders;
  };
})();

class Http2AdsStream implements AdsStream {
  readonly method: AdsMethod;
  readonly peer: string;
  onMessage?: (msg: DiscoveryRequest | DeltaDiscoveryRequest) => void;
  onClose?: (reason: string) => void;
  readonly #stream: http2.ServerHttp2Stream;
  readonly #log: Logger;
  readonly #pending = new Set<() => void>();
  #headersSent = false;
  #ending = false;
  #closed = false;
  #status: { code: number; message: string } = { code: GRPC_STATUS.OK, message: '' };
  #buffered: Buffer[] = [];
  #bufferedBytes = 0;

  constructor(stream: http2.ServerHttp2Stream, method: AdsMethod, peer: string, log: Logger) {
    this.#stream = stream;
    this.method = method;
    this.peer = peer;
    this.#log = log;
    stream.on('data', (chunk: Buffer) => this.#onData(chunk));
    // the client half-closed: as the ADS handler always did, the server ends with OK
    stream.on('end', () => void this.end(GRPC_STATUS.OK, ''));
    stream.on('wantTrailers', () => {
      try {
        stream.sendTrailers(this.#trailers());
      } catch {
        // the stream went away meanwhile
      }
    });
    stream.on('error', (err: Error) => this.#gone(`stream error: ${err.message}`));
    stream.on('aborted', () => this.#gone('stream cancelled'));
    stream.on('close', () => this.#gone(this.#ending ? 'stream closed' : 'stream cancelled'));
  }

  get closed(): boolean {
    return this.#closed || this.#ending;
  }

  #trailers(): http2.OutgoingHttpHeaders {
    const t: http2.OutgoingHttpHeaders = { 'grpc-status': String(this.#status.code) };
    if (this.#status.message) t['grpc-message'] = encodeGrpcMessage(this.#status.message);
    return t;
  }

  #onData(chunk: Buffer): void {
    if (this.closed) return;
    this.#buffered.push(chunk);
    this.#bufferedBytes += chunk.length;
    while (this.#bufferedBytes >= 5) {
      const head = this.#take(5, false);
      const length = head.readUInt32BE(1);
      if (head[0] !== 0) {
        void this.end(GRPC_STATUS.INTERNAL, 'compressed messages are not supported');
        return;
      }
      if (length > MAX_REQUEST_BYTES) {
        void this.end(GRPC_STATUS.RESOURCE_EXHAUSTED, `request of ${length} bytes exceeds ${MAX_REQUEST_BYTES}`);
        return;
      }
      if (this.#bufferedBytes < 5 + length) return;
      this.#take(5, true);
      const body = this.#take(length, true);
      let msg: DiscoveryRequest | DeltaDiscoveryRequest;
      try {
        msg = requestDecoders()[this.method](body);
      } catch (err) {
        void this.end(GRPC_STATUS.INTERNAL, `cannot decode the request: ${(err as Error).message}`);
        return;
      }
      try {
        this.onMessage?.(msg);
      } catch (err) {
        this.#log.error('ADS request handler failed', { peer: this.peer, error: (err as Error).message });
      }
      if (this.closed) return;
    }
  }

  /** The first `n` buffered bytes; consumed when `consume`, else only looked at. */
  #take(n: number, consume: boolean): Buffer {
    const first = this.#buffered[0];
    let out: Buffer;
    if (first && first.length >= n) {
      out = first.subarray(0, n);
      if (consume) {
        if (first.length === n) this.#buffered.shift();
        else this.#buffered[0] = first.subarray(n);
      }
    } else {
      const all = Buffer.concat(this.#buffered);
      out = all.subarray(0, n);
      this.#buffered = consume ? (all.length > n ? [all.subarray(n)] : []) : [all];
    }
    if (consume) this.#bufferedBytes -= n;
    return out;
  }

  #respond(): void {
    if (this.#headersSent) return;
    this.#headersSent = true;
    this.#stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
  }

  write(chunks: readonly Uint8Array[], done: () => void): void {
    if (this.closed || this.#stream.destroyed) {
      done();
      return;
    }
    let length = 0;
    for (const c of chunks) length += c.length;
    const prefix = Buffer.allocUnsafe(5);
    prefix[0] = 0;
    prefix.writeUInt32BE(length, 1);
    let finished = false;
    const complete = (): void => {
      if (finished) return;
      finished = true;
      this.#pending.delete(complete);
      done();
    };
    this.#pending.add(complete);
    try {
      this.#respond();
      const s = this.#stream;
      s.cork();
      s.write(prefix);
      chunks.forEach((c, i) => (i === chunks.length - 1 ? s.write(c, complete) : s.write(c)));
      if (chunks.length === 0) s.write(Buffer.alloc(0), complete);
      s.uncork();
    } catch (err) {
      complete();
      this.#gone(`write failed: ${(err as Error).message}`);
    }
  }

  end(code: number = GRPC_STATUS.OK, message = ''): Promise<void> {
    const s = this.#stream;
    if (this.#ending || this.#closed || s.destroyed) return Promise.resolve();
    this.#ending = true;
    this.#status = { code, message };
    const finished = new Promise<void>((resolve) => {
      s.once('close', () => resolve());
      s.once('finish', () => resolve());
    });
    try {
      if (!this.#headersSent) {
        // trailers-only: the status travels with the response headers
        this.#headersSent = true;
        s.respond({ ':status': 200, 'content-type': 'application/grpc', ...this.#trailers() }, { endStream: true });
      } else {
        s.end();
      }
    } catch (err) {
      this.#log.debug('ADS stream end failed', { peer: this.peer, error: (err as Error).message });
      s.destroy();
    }
    return finished;
  }

  /** Destroys the stream at once (its pending writes are given up). */
  destroy(): void {
    this.#stream.destroy();
    this.#gone('stream destroyed');
  }

  #gone(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const complete of [...this.#pending]) complete();
    this.#buffered = [];
    this.onClose?.(reason);
  }
}

/** Serves the ADS methods; `onStream` is called with every new stream before its first message. */
export class GrpcAdsTransport {
  readonly #onStream: (s: AdsStream) => void;
  readonly #log: Logger;
  readonly #sockets = new Set<Socket>();
  readonly #streams = new Set<Http2AdsStream>();
  readonly #h2: http2.Http2Server;
  #listener: Server | undefined;

  constructor(onStream: (s: AdsStream) => void, log: Logger) {
    this.#onStream = onStream;
    this.#log = log;
    // no limit on session memory: a push of megabytes to a stream is flow-controlled, not refused
    this.#h2 = http2.createServer({ maxSessionMemory: Number.MAX_SAFE_INTEGER, maxSendHeaderBlockLength: 1 << 20 });
    this.#h2.on('stream', (stream, headers) => this.#accept(stream, headers));
    this.#h2.on('sessionError', (err) => this.#log.debug('ADS HTTP/2 session error', { error: err.message }));
    this.#h2.on('session', (session) => session.on('error', (err) => this.#log.debug('ADS HTTP/2 session error', { error: err.message })));
  }

  #accept(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
    stream.on('error', () => undefined);
    const socket = stream.session?.socket;
    const host = socket?.remoteAddress ?? '';
    const peer = `${host.includes(':') ? `[${host}]` : host}:${socket?.remotePort ?? 0}`;
    const path = headers[':path'];
    const contentType = String(headers['content-type'] ?? '');
    const fail = (status: number, message: string, httpStatus = 200): void => {
      try {
        stream.respond({ ':status': httpStatus, 'content-type': 'application/grpc', 'grpc-status': String(status), 'grpc-message': encodeGrpcMessage(message) }, { endStream: true });
      } catch {
        stream.destroy();
      }
    };
    if (!contentType.startsWith('application/grpc')) {
      fail(GRPC_STATUS.UNIMPLEMENTED, `unsupported content-type ${JSON.stringify(contentType)}`, 415);
      return;
    }
    if (headers[':method'] !== 'POST' || (path !== SOTW_METHOD && path !== DELTA_METHOD)) {
      fail(GRPC_STATUS.UNIMPLEMENTED, `unknown method ${String(headers[':method'])} ${String(path)}`);
      return;
    }
    const enc = headers['grpc-encoding'];
    if (enc !== undefined && enc !== 'identity') {
      fail(GRPC_STATUS.UNIMPLEMENTED, `grpc-encoding ${String(enc)} is not supported`);
      return;
    }
    const s = new Http2AdsStream(stream, path === SOTW_METHOD ? 'sotw' : 'delta', peer, this.#log);
    this.#streams.add(s);
    const onClose = (): void => {
      this.#streams.delete(s);
    };
    stream.once('close', onClose);
    this.#onStream(s);
  }

  /** Listens on host:port; resolves to the bound port. */
  listen(host: string, port: number): Promise<number> {
    const listener = createServer((socket) => {
      this.#sockets.add(socket);
      socket.once('close', () => this.#sockets.delete(socket));
      this.#h2.emit('connection', socket);
    });
    this.#listener = listener;
    return new Promise<number>((resolve, reject) => {
      listener.once('error', reject);
      listener.listen(port, host, () => {
        listener.off('error', reject);
        listener.on('error', (err) => this.#log.error('ADS listener error', { error: err.message }));
        const a = listener.address();
        resolve(typeof a === 'object' && a ? a.port : port);
      });
    });
  }

  /**
   * Stops listening, ends every stream with OK (waiting up to graceMs for the trailers to go out),
   * then destroys every stream, session and socket: none is left to keep the process alive, even
   * one whose peer stopped reading or vanished without a FIN.
   */
  async close(graceMs: number): Promise<void> {
    this.#listener?.close();
    this.#listener = undefined;
    const streams = [...this.#streams];
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      Promise.all(streams.map((s) => s.end(GRPC_STATUS.OK, ''))),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, graceMs);
        timer.unref();
      }),
    ]);
    clearTimeout(timer);
    for (const s of streams) s.destroy();
    this.#streams.clear();
    this.#h2.close();
    for (const socket of [...this.#sockets]) socket.destroy();
    this.#sockets.clear();
  }
}
