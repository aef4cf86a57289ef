// The HTTP connection manager: one node:http (and http2) server shared by every HTTP filter chain;
// each request is routed with the chain's route table, run through the route's filters (fault, CORS)
// and the router, and its response streamed back; proxy-made failures go through local-reply.ts.
// Every stream ends in exactly one report (access log, metrics). A request can never crash the proxy.

import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import http2 from 'node:http2';
import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import { Transform, type Duplex, type Readable } from 'node:stream';
import type { ProxyContext } from '../context.ts';
import type { CompiledChain, CompiledListener, HttpChain } from '../config/listeners.ts';
import { addFlag, newStreamInfo, type StreamInfo } from '../stream-info.ts';
import { Cancellation } from '../upstream/cancel.ts';
import { UpstreamError, type LbContext, type OutgoingHeaders, type UpstreamHttpResponse } from '../upstream/types.ts';
import { applyHeaderOps, forwardableHeaders, forwardableResponseHeaders, headerValue } from './headers.ts';
import { noteLocalReply, replies, type LocalReply } from './local-reply.ts';
import { PEER_METADATA, PEER_METADATA_ID, decodePeerMetadata, workloadFromEndpoint } from './peer-metadata.ts';
import { pickCluster, routerAction, type RouterAction, type WeightedCluster } from './route-action.ts';
import { callUpstream } from './router.ts';
import type { RouteRequest } from '../../xds/route-table.ts';

/** What the listener knows about a connection handed to the HTTP connection manager. */
export interface HttpConnection {
  listener: CompiledListener;
  chain: CompiledChain & { filter: HttpChain };
  /** Where the client meant to go (original destination), for ORIGINAL_DST clusters. */
  destination: { address: string; port: number };
  serverName?: string;
  /** "ip:port" of the client and of the original destination, made on first use. */
  remoteAddress?: string;
  localAddress?: string;
}

/** Buffer request bodies up to this size so retries can replay them (Envoy's default buffer limit). */
const MAX_BUFFERED_BODY = 1024 * 1024;
const METHODS_WITHOUT_BODY = new Set(['GET', 'HEAD', 'DELETE', 'OPTIONS', 'TRACE']);

type AnyReq = IncomingMessage | http2.Http2ServerRequest;
type AnyRes = ServerResponse | http2.Http2ServerResponse;

export class HttpConnectionManager {
  readonly #ctx: ProxyContext;
  readonly #conns = new WeakMap<object, HttpConnection>();
  readonly #h1: http.Server;
  readonly #h2: http2.Http2Server;

  constructor(ctx: ProxyContext) {
    this.#ctx = ctx;
    this.#h1 = http.createServer({ keepAliveTimeout: 60_000, requestTimeout: 0, headersTimeout: 60_000, noDelay: true }, (req, res) => this.#onRequest(req, res));
    this.#h1.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.#onUpgrade(req, socket, head));
    this.#h1.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
      if (socket.writable && err.code !== 'ECONNRESET') socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
      else socket.destroy();
    });
    this.#h2 = http2.createServer({}, (req, res) => this.#onRequest(req, res));
    this.#h2.on('sessionError', () => undefined);
  }

  /** Takes over a connection (its first bytes, if already read, have been unshifted back). */
  handle(socket: Socket, conn: HttpConnection, h2PriorKnowledge: boolean): void {
    this.#conns.set(socket, conn);
    if (!h2PriorKnowledge) {
      this.#h1.emit('connection', socket);
      return;
    }
    // An HTTP/2 request only shows its session (and a proxy of the socket, not the socket itself):
    // remember the connection by the session, which node:http2 announces synchronously.
    const onSession = (session: http2.ServerHttp2Session): void => {
      this.#conns.set(session, conn);
    };
    this.#h2.once('session', onSession);
    try {
      this.#h2.emit('connection', socket);
    } finally {
      this.#h2.off('session', onSession);
    }
  }

  close(): void {
    this.#h1.closeAllConnections();
  }

  #connOf(req: AnyReq): HttpConnection | undefined {
    const s = req.socket as unknown as object;
    const direct = this.#conns.get(s);
    if (direct) return direct;
    // HTTP/2: the request's socket is a proxy of the session socket; the session is the key
    const session = (req as http2.Http2ServerRequest).stream?.session;
    return session ? this.#conns.get(session) : undefined;
  }

  #onRequest(req: AnyReq, res: AnyRes): void {
    const conn = this.#connOf(req);
    if (!conn) {
      res.statusCode = 500;
      res.end();
      return;
    }
    this.#handle(req, res, conn).catch((err: unknown) => {
      // a bug, not a user error: answer 500 and keep serving
      try {
        if (!res.headersSent) {
          res.statusCode = 500;
          res.setHeader('x-tsmesh-error', `INTERNAL ${(err as Error).message}`);
          res.end();
        } else res.destroy();
      } catch {
        /* the socket is already gone */
      }
    });
  }

  /**
   * The stream info of a new request (both directions, plain and upgrade), with what routing needs of it:
   * method, authority, request id (made here when the chain generates them) and the header lookup.
   */
  #startStream(req: AnyReq, conn: HttpConnection): StreamInfo & { method: string; authority: string; requestHeader: (name: string) => string | undefined } {
    const ctx = this.#ctx;
    const direction = conn.listener.direction;
    const info = newStreamInfo(direction, 'http', ctx.now());
    const h = req.headers;
    const method = req.method ?? 'GET';
    const path = req.url ?? '/';
    const authority = headerValue(h, ':authority') ?? headerValue(h, 'host') ?? '';
    info.method = method;
    info.path = headerValue(h, 'x-envoy-original-path') ?? path;
    const v = req.httpVersion;
    info.protocol = v === '1.1' ? 'HTTP/1.1' : v === '2.0' ? 'HTTP/2' : `HTTP/${v}`;
    info.authority = authority;
    info.routeName = undefined;
    const header = (n: string): string | undefined => (n === ':authority' ? authority : n === ':path' ? path : n === ':method' ? method : headerValue(h, n));
    info.requestHeader = header;
    // both addresses are the connection's: made once per connection
    info.downstreamRemoteAddress = conn.remoteAddress ??= `${req.socket.remoteAddress ?? ''}:${req.socket.remotePort ?? 0}`;
    info.downstreamLocalAddress = conn.localAddress ??= `${conn.destination.address}:${conn.destination.port}`;
    if (conn.serverName) info.requestedServerName = conn.serverName;
    let requestId = headerValue(h, 'x-request-id');
    if (!requestId && conn.chain.filter.generateRequestId) requestId = randomUUID();
    if (requestId) info.requestId = requestId;
    const contentType = headerValue(h, 'content-type') ?? '';
    info.requestProtocolLabel = contentType.startsWith('application/grpc') ? 'grpc' : 'http';
    if (direction === 'inbound') {
      info.destination = ctx.identity.workload;
      const src = decodePeerMetadata(headerValue(h, PEER_METADATA));
      if (src) info.source = src;
    } else {
      info.source = ctx.identity.workload;
    }
    return info as StreamInfo & { method: string; authority: string; requestHeader: (name: string) => string | undefined };
  }

  /** The headers and path sent upstream: forwardable headers, request id, rewrites, Istio's outbound headers, header operations. */
  #upstreamRequest(req: AnyReq, direction: 'inbound' | 'outbound', action: RouterAction, picked: WeightedCluster, path: string, authority: string, requestId: string | undefined): { headers: OutgoingHeaders; path: string } {
    const ctx = this.#ctx;
    const headers = forwardableHeaders(req.headers);
    if (requestId) headers['x-request-id'] = requestId;
    if (!headers['x-forwarded-proto']) headers['x-forwarded-proto'] = 'http';
    let upstreamPath = path;
    if (action.prefixRewrite !== undefined && action.matchedPrefix !== undefined && path.startsWith(action.matchedPrefix)) {
      upstreamPath = action.prefixRewrite + path.slice(action.matchedPrefix.length);
      if (!upstreamPath.startsWith('/')) upstreamPath = `/${upstreamPath}`;
      headers['x-envoy-original-path'] = path;
    } else if (action.regexRewrite) {
      const q = path.indexOf('?');
      const p = q >= 0 ? path.slice(0, q) : path;
      upstreamPath = p.replace(action.regexRewrite.re, action.regexRewrite.substitution) + (q >= 0 ? path.slice(q) : '');
      headers['x-envoy-original-path'] = path;
    }
    const hostRewrite = picked.hostRewrite ?? action.hostRewrite;
    headers.host = hostRewrite ?? authority;
    if (direction === 'outbound') {
      if (action.operation) headers['x-envoy-decorator-operation'] = action.operation;
      headers[PEER_METADATA] = ctx.identity.peerMetadataHeader;
      headers[PEER_METADATA_ID] = ctx.identity.nodeId;
    }
    applyHeaderOps(headers, action.request);
    applyHeaderOps(headers, picked.headers.request);
    return { headers, path: upstreamPath };
  }

  async #handle(req: AnyReq, res: AnyRes, conn: HttpConnection): Promise<void> {
    const ctx = this.#ctx;
    const chain = conn.chain.filter;
    const direction = conn.listener.direction;
    const info = this.#startStream(req, conn);
    const { method, authority, requestId, requestHeader: header } = info;
    const path = req.url ?? '/';
    const h = req.headers;

    // 'close' comes once the response is finished or the client is gone: the one report either way
    const downstream = new Cancellation();
    res.once('close', () => {
      if (!res.writableFinished) {
        addFlag(info, 'DC');
        // Envoy's details for a client that left before its response (kept when one had started)
        info.responseCodeDetails ??= 'downstream_remote_disconnect';
        downstream.abort();
      }
      info.endTime = ctx.now();
      ctx.report(info, chain.accessLog);
    });
    const sendLocal = (reply: LocalReply): void => sendLocalReply(res, info, requestId, reply);

    // ---- route ----
    const table = chain.inlineRoutes ?? (chain.routeConfigName !== undefined ? ctx.routeTable(chain.routeConfigName) : undefined);
    const rreq: RouteRequest = { authority, path, header };
    const sel = table?.select(rreq);
    if (!table || !sel?.route || !sel.vhost) {
      sendLocal(replies.noRoute(authority, chain.routeConfigName ?? 'inline'));
      return;
    }
    const action = routerAction(sel.route, sel.vhost, table.config);
    info.routeName = action.routeName;

    // ---- filters: CORS preflight, fault ----
    const origin = headerValue(h, 'origin');
    if (action.cors && origin && method === 'OPTIONS' && headerValue(h, 'access-control-request-method')) {
      const allowed = action.cors.origins.some((m) => m(origin));
      const headers: Record<string, string> = {};
      if (allowed) {
        headers['access-control-allow-origin'] = origin;
        if (action.cors.allowMethods) headers['access-control-allow-methods'] = action.cors.allowMethods;
        if (action.cors.allowHeaders) headers['access-control-allow-headers'] = action.cors.allowHeaders;
        if (action.cors.maxAge) headers['access-control-max-age'] = action.cors.maxAge;
        if (action.cors.allowCredentials) headers['access-control-allow-credentials'] = 'true';
      }
      info.responseCode = 200;
      info.responseCodeDetails = 'cors_response';
      res.writeHead(200, headers);
      res.end();
      return;
    }
    if (action.fault) {
      const f = action.fault;
      if (f.delayMs !== undefined && f.delayFraction > 0 && ctx.random() < f.delayFraction) {
        addFlag(info, 'DI');
        await new Promise((r) => setTimeout(r, f.delayMs));
        if (downstream.aborted) return;
      }
      if (f.abortStatus !== undefined && f.abortFraction > 0 && ctx.random() < f.abortFraction) {
        sendLocal(replies.faultAbort(f.abortStatus, action.routeName));
        return;
      }
    }

    // ---- redirect / direct response ----
    if (action.kind === 'redirect' && action.redirect) {
      const rd = action.redirect;
      const [hostOnly, portPart] = authority.split(':');
      const host = rd.host ?? hostOnly ?? '';
      const port = rd.port ?? (rd.host ? undefined : portPart ? Number(portPart) : undefined);
      const q = path.indexOf('?');
      let p = rd.path ?? (rd.prefixRewrite !== undefined ? path.replace(/^\/[^?]*/, (m) => rd.prefixRewrite + m.slice(1)) : q >= 0 ? path.slice(0, q) : path);
      if (!rd.stripQuery && rd.path === undefined && q >= 0) p += path.slice(q);
      const location = `${rd.scheme ?? 'http'}://${host}${port ? `:${port}` : ''}${p}`;
      info.responseCode = rd.code;
      info.responseCodeDetails = 'direct_response';
      res.writeHead(rd.code, { location });
      res.end();
      return;
    }
    if (action.kind === 'direct' && action.direct) {
      const d = action.direct;
      if (d.status >= 400) {
        sendLocal(replies.blackhole(d.status, action.routeName));
        return;
      }
      info.responseCode = d.status;
      info.responseCodeDetails = 'direct_response';
      res.writeHead(d.status, d.body ? { 'content-type': 'text/plain' } : {});
      info.bytesSent += d.body ? Buffer.byteLength(d.body) : 0;
      res.end(d.body ?? '');
      return;
    }

    // ---- router ----
    const picked = pickCluster(action, ctx.random());
    if (!picked) {
      sendLocal(replies.noCluster('(none)', action.routeName));
      return;
    }
    info.upstreamCluster = picked.name;
    const upstream = ctx.clusters.get(picked.name);
    if (!upstream) {
      sendLocal(replies.noCluster(picked.name, action.routeName));
      return;
    }
    if (upstream.info.service) info.destinationService = upstream.info.service;

    const { headers, path: upstreamPath } = this.#upstreamRequest(req, direction, action, picked, path, authority, requestId);

    // ---- body: buffered for retries when small, else streamed ----
    let body: Buffer | Readable | null = null;
    const declared = Number(headerValue(h, 'content-length') ?? 'NaN');
    const hasBody = !METHODS_WITHOUT_BODY.has(method) || (Number.isFinite(declared) && declared > 0) || headerValue(h, 'transfer-encoding') !== undefined;
    if (hasBody) {
      if (action.retry && action.retry.numRetries > 0 && (!Number.isFinite(declared) || declared <= MAX_BUFFERED_BODY)) {
        body = await readUpTo(req, MAX_BUFFERED_BODY, info);
        if (!Buffer.isBuffer(body)) delete headers['content-length'];
      } else {
        // stream it, counting bytes on the way (a 'data' listener on req would start the flow too early)
        body = (req as Readable).pipe(new Transform({ transform(chunk: Buffer, _enc, cb) { info.bytesReceived += chunk.length; cb(null, chunk); } }));
      }
    }
    if (Buffer.isBuffer(body)) headers['content-length'] = String(body.length);

    const lb: LbContext = { originalDst: conn.destination };
    const hashKey = computeHashKey(action, req, path);
    if (hashKey !== undefined) lb.hashKey = hashKey;

    // mirrors: fire and forget, only with a replayable body
    for (const m of action.mirrors) {
      if (ctx.random() >= m.fraction || (body !== null && !Buffer.isBuffer(body))) continue;
      const mc = ctx.clusters.get(m.cluster);
      const mh = mc?.chooseHost({});
      if (!mc || !mh) continue;
      const mheaders = { ...headers, host: `${String(headers.host).split(':')[0] ?? ''}-shadow` };
      mc.request(mh, { method, path: upstreamPath, headers: mheaders, body, signal: AbortSignal.timeout(action.timeoutMs || 15_000) }).then((r) => r.body.resume(), () => undefined);
    }

    const outcome = await callUpstream({ ctx, action, clusterName: picked.name, upstream, method, path: upstreamPath, headers, body, lb, info, downstream });
    if (outcome.kind === 'reply') {
      sendLocal(outcome.reply);
      return;
    }
    this.#forwardResponse(req, res, info, action, picked.headers.response, outcome.response, direction);
    if (direction === 'outbound') {
      const dest = decodePeerMetadata(headerValue(outcome.response.headers, PEER_METADATA)) ?? workloadFromEndpoint(outcome.host.workload);
      if (dest) info.destination = dest;
    }
  }

  #forwardResponse(req: AnyReq, res: AnyRes, info: StreamInfo, action: RouterAction, clusterOps: RouterAction['response'], up: UpstreamHttpResponse, direction: 'inbound' | 'outbound'): void {
    const headers = forwardableResponseHeaders(up.headers);
    if (info.upstreamServiceTimeMs !== undefined) headers['x-envoy-upstream-service-time'] = String(Math.round(info.upstreamServiceTimeMs));
    if (direction === 'inbound') {
      headers[PEER_METADATA] = this.#ctx.identity.peerMetadataHeader;
      headers[PEER_METADATA_ID] = this.#ctx.identity.nodeId;
    } else {
      delete headers[PEER_METADATA];
      delete headers[PEER_METADATA_ID];
    }
    applyHeaderOps(headers, clusterOps);
    applyHeaderOps(headers, action.response);
    const origin = headerValue(req.headers, 'origin');
    if (action.cors && origin && action.cors.origins.some((m) => m(origin))) {
      headers['access-control-allow-origin'] = origin;
      if (action.cors.exposeHeaders) headers['access-control-expose-headers'] = action.cors.exposeHeaders;
      if (action.cors.allowCredentials) headers['access-control-allow-credentials'] = 'true';
    }
    info.responseCode = up.statusCode;
    info.responseCodeDetails = 'via_upstream';
    info.responseHeader = (n) => headerValue(up.headers, n);
    const full = up.fullBody;
    if (full !== undefined) {
      // The whole body is here (HTTP/1.1 upstream, no trailers): head and body go out in one write.
      try {
        res.writeHead(up.statusCode, headers as http.OutgoingHttpHeaders);
      } catch (err) {
        noteLocalReply(info, replies.badRequest(`invalid upstream response headers: ${(err as Error).message}`));
        res.destroy();
        return;
      }
      info.bytesSent += full.length;
      res.end(full);
      return;
    }
    let trailers: Record<string, string> = {};
    info.responseTrailer = (n) => trailers[n];
    try {
      if (up.endStream && req.httpVersion === '2.0') {
        // Headers only, as they came: END_STREAM on the HEADERS frame, so that a gRPC trailers-only
        // response (grpc-status in the headers) stays one (clients reject it followed by an empty DATA).
        for (const [k, v] of Object.entries(headers)) if (v !== undefined) res.setHeader(k, v);
        res.statusCode = up.statusCode;
        res.end();
        return;
      }
      res.writeHead(up.statusCode, headers as http.OutgoingHttpHeaders);
    } catch (err) {
      up.body.destroy();
      noteLocalReply(info, replies.badRequest(`invalid upstream response headers: ${(err as Error).message}`));
      res.destroy();
      return;
    }
    up.body.on('data', (c: Buffer) => {
      info.bytesSent += c.length;
      if (!(res as ServerResponse).write(c)) {
        up.body.pause();
        res.once('drain', () => up.body.resume());
      }
    });
    const onEnd = (): void => {
      void up.trailers.then((t) => {
        trailers = t;
        if (Object.keys(t).length > 0 && 'addTrailers' in res && req.httpVersion === '2.0') (res as http2.Http2ServerResponse).addTrailers(t);
        res.end();
      }, () => res.end());
    };
    // A response without a body (HTTP/2 END_STREAM on the headers) may have ended already, before
    // anyone listened: its 'end' will not come again.
    if (up.body.readableEnded) onEnd();
    else up.body.on('end', onEnd);
    up.body.on('error', () => {
      addFlag(info, 'UR');
      info.responseCodeDetails = 'upstream_reset_after_response_started{remote_reset}';
      res.destroy();
    });
    res.on('close', () => {
      if (!up.body.readableEnded) up.body.destroy();
    });
  }

  #onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const conn = this.#conns.get(socket);
    if (!conn || !conn.chain.filter.websocket || (req.headers.upgrade ?? '').toLowerCase() !== 'websocket') {
      socket.end('HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n');
      return;
    }
    void this.#upgrade(req, socket, head, conn).catch(() => socket.destroy());
  }

  async #upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, conn: HttpConnection): Promise<void> {
    const ctx = this.#ctx;
    const chain = conn.chain.filter;
    const direction = conn.listener.direction;
    // the same stream info, routing and upstream headers as any request; then the bytes are piped
    const info = this.#startStream(req, conn);
    const { method, authority, requestId, requestHeader: header } = info;
    const path = req.url ?? '/';
    const table = chain.inlineRoutes ?? (chain.routeConfigName !== undefined ? ctx.routeTable(chain.routeConfigName) : undefined);
    const sel = table?.select({ authority, path, header });
    let reported = false;
    const report = (): void => {
      if (reported) return;
      reported = true;
      info.endTime = ctx.now();
      ctx.report(info, chain.accessLog);
    };
    const fail = (reply: LocalReply): void => {
      const headers = noteLocalReply(info, reply);
      if (requestId) headers['x-request-id'] = requestId;
      const lines = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
      socket.end(`HTTP/1.1 ${reply.status} ${http.STATUS_CODES[reply.status] ?? ''}\r\n${lines}content-length: ${Buffer.byteLength(reply.body)}\r\nconnection: close\r\n\r\n${reply.body}`);
      info.bytesSent += Buffer.byteLength(reply.body);
      report();
    };
    if (!table || !sel?.route || !sel.vhost) return fail(replies.noRoute(authority, chain.routeConfigName ?? 'inline'));
    const action = routerAction(sel.route, sel.vhost, table.config);
    info.routeName = action.routeName;
    if (action.kind !== 'route') return fail(action.direct && action.direct.status >= 400 ? replies.blackhole(action.direct.status, action.routeName) : replies.noRoute(authority, chain.routeConfigName ?? 'inline'));
    const picked = pickCluster(action, ctx.random());
    const upstream = picked ? ctx.clusters.get(picked.name) : undefined;
    if (!picked || !upstream) return fail(replies.noCluster(picked?.name ?? '(none)', action.routeName));
    info.upstreamCluster = picked.name;
    if (upstream.info.service) info.destinationService = upstream.info.service;
    const host = upstream.chooseHost({ originalDst: conn.destination });
    if (!host) return fail(replies.noHealthyUpstream(picked.name, upstream.explainNoHost?.() ?? 'no endpoint'));
    info.upstreamHost = host.key;
    if (direction === 'outbound') {
      const dest = workloadFromEndpoint(host.workload);
      if (dest) info.destination = dest;
    }
    let up: Socket;
    try {
      up = await upstream.connect(host);
    } catch (err: unknown) {
      if (err instanceof UpstreamError && err.kind === 'overflow') return fail(replies.overflow(picked.name, err.detail));
      return fail(replies.connectFailure(picked.name, host.key, err instanceof UpstreamError ? err.detail : String((err as Error).message)));
    }
    if (socket.destroyed) {
      up.destroy();
      addFlag(info, 'DC');
      info.responseCodeDetails = 'downstream_remote_disconnect';
      return report();
    }
    info.upstreamLocalAddress = `${up.localAddress ?? ''}:${up.localPort ?? 0}`;
    const { headers, path: upstreamPath } = this.#upstreamRequest(req, direction, action, picked, path, authority, requestId);
    // the upgrade itself is hop-by-hop: ask the upstream for it again
    headers.connection = 'upgrade';
    headers.upgrade = req.headers.upgrade ?? 'websocket';
    let raw = `${method} ${upstreamPath} HTTP/1.1\r\n`;
    for (const [k, v] of Object.entries(headers)) for (const x of Array.isArray(v) ? v : [v]) raw += `${k}: ${x}\r\n`;
    up.write(`${raw}\r\n`);
    if (head.length > 0) up.write(head);
    info.responseCodeDetails = 'via_upstream';
    let statusLine = '';
    up.on('data', (c: Buffer) => {
      info.bytesSent += c.length;
      if (info.responseCode === 0 && statusLine.length < 64) {
        // the upstream's answer (101, or a refusal such as 403): its status line is the response code
        statusLine += c.toString('latin1', 0, Math.min(c.length, 64));
        const m = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine);
        if (m) info.responseCode = Number(m[1]);
      }
    });
    socket.on('data', (c: Buffer) => (info.bytesReceived += c.length));
    up.pipe(socket);
    socket.pipe(up);
    const end = (): void => {
      up.destroy();
      socket.destroy();
      report();
    };
    up.on('close', end);
    socket.on('close', end);
    up.on('error', end);
    socket.on('error', end);
  }
}

/** Answers with a proxy-made response (or resets the stream: status 0, or headers already sent). */
function sendLocalReply(res: AnyRes, info: StreamInfo, requestId: string | undefined, reply: LocalReply): void {
  const headers = noteLocalReply(info, reply);
  if (reply.status === 0 || res.headersSent) {
    res.destroy();
    return;
  }
  if (requestId) headers['x-request-id'] = requestId;
  res.writeHead(reply.status, headers);
  info.bytesSent += Buffer.byteLength(reply.body);
  res.end(reply.body);
}

/** Reads a body into one Buffer when it is at most `max` bytes; else returns a stream replaying what was read. */
async function readUpTo(req: AnyReq, max: number, info: StreamInfo): Promise<Buffer | Readable> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    chunks.push(c);
    size += c.length;
    info.bytesReceived += c.length;
    if (size > max) {
      const { Readable: R } = await import('node:stream');
      const rest = req as Readable;
      return R.from((async function* () {
        yield* chunks;
        yield* rest as AsyncIterable<Buffer>;
      })());
    }
  }
  return Buffer.concat(chunks, size);
}

function computeHashKey(action: RouterAction, req: AnyReq, path: string): string | undefined {
  let key: string | undefined;
  for (const hp of action.hashPolicies) {
    let part: string | undefined;
    if (hp.header) part = headerValue(req.headers, hp.header);
    else if (hp.cookie) {
      const cookies = headerValue(req.headers, 'cookie') ?? '';
      const m = new RegExp(`(?:^|;\\s*)${hp.cookie.name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}=([^;]*)`).exec(cookies);
      part = m?.[1];
    } else if (hp.sourceIp) part = req.socket.remoteAddress;
    else if (hp.queryParameter) {
      const q = path.indexOf('?');
      part = q >= 0 ? new URLSearchParams(path.slice(q + 1)).get(hp.queryParameter) ?? undefined : undefined;
    }
    if (part !== undefined) {
      key = key === undefined ? part : `${key}|${part}`;
      if (hp.terminal) break;
    }
  }
  return key;
}

export type { OutgoingHeaders };
