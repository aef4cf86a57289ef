// Plumbing shared by the sample apps: port from env, a 0.0.0.0 HTTP server logging one line per request and stopping on SIGTERM, header propagation and a bounded HTTP GET; a failed listen exits with status 1, a handler error answers 500.

import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';

export type Handler = (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<void> | void;

/**
 * Headers the Bookinfo services pass on to the services they call, so that the mesh can join the
 * spans of one request into a trace (tracing headers), keep its x-request-id, and route on who the
 * user is (`end-user`, set by productpage from its login session).
 */
export const PROPAGATED_HEADERS: readonly string[] = [
  'x-request-id',
  'traceparent',
  'tracestate',
  'x-b3-traceid',
  'x-b3-spanid',
  'x-b3-parentspanid',
  'x-b3-sampled',
  'x-b3-flags',
  'b3',
  'x-ot-span-context',
  'x-cloud-trace-context',
  'grpc-trace-bin',
  'x-datadog-trace-id',
  'x-datadog-parent-id',
  'x-datadog-sampling-priority',
  'sw8',
  'user-agent',
  'cookie',
  'authorization',
  'jwt',
  'end-user',
];

/** The propagated headers present on an incoming request, one value each. */
export function propagatedHeaders(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of PROPAGATED_HEADERS) {
    const v = req.headers[name];
    if (v === undefined) continue;
    out[name] = Array.isArray(v) ? v.join(', ') : v;
  }
  return out;
}

/** PORT from the environment (or the first argument, as `productpage.py 9080` takes it), else the image's default. */
export function listenPort(defaultPort: number): number {
  const raw = process.env.PORT ?? process.argv.slice(2).find((a) => /^\d+$/.test(a));
  if (raw === undefined || raw === '') return defaultPort;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0 || n > 65535) {
    console.error(`invalid PORT ${JSON.stringify(raw)}: expected 0..65535`);
    process.exit(1);
  }
  return n;
}

/** `http://<HOST_ENV or name><.SERVICES_DOMAIN>:<PORT_ENV or 9080>`, the way the Bookinfo apps name their peers. */
export function serviceBase(name: string, hostEnv: string, portEnv: string, defaultPort = 9080): string {
  const host = process.env[hostEnv] || name;
  const domain = process.env.SERVICES_DOMAIN ? `.${process.env.SERVICES_DOMAIN}` : '';
  const port = process.env[portEnv] || String(defaultPort);
  return `http://${host}${domain}:${port}`;
}

export function sendJson(res: ServerResponse, status: number, body: unknown, pretty = false): void {
  const text = (pretty ? JSON.stringify(body, null, 2) : JSON.stringify(body)) + '\n';
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

export function sendText(res: ServerResponse, status: number, text: string, type = 'text/plain; charset=utf-8'): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** Reads a request body up to `limit` bytes; more is an error (the caller answers 413). */
export async function readBody(req: IncomingMessage, limit = 1 << 20): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const b = chunk as Buffer;
    size += b.length;
    if (size > limit) throw new Error(`request body larger than ${limit} bytes`);
    chunks.push(b);
  }
  return Buffer.concat(chunks);
}

export interface Upstream {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** GET `url`; rejects on a connection error or when the whole exchange takes longer than `timeoutMs`. */
export function httpGet(url: string, headers: Record<string, string>, timeoutMs: number): Promise<Upstream> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const finish = (err: Error | undefined, value?: Upstream): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err) reject(err);
      else resolve(value as Upstream);
    };
    const get = url.startsWith('https:') ? https.get : http.get;
    const req = get(url, { headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => finish(undefined, { status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', (e) => finish(e));
      res.on('aborted', () => finish(new Error('response aborted')));
    });
    const timer = setTimeout(() => {
      finish(new Error(`no answer from ${url} within ${timeoutMs} ms`));
      req.destroy();
    }, timeoutMs);
    req.on('error', (e) => finish(e));
  });
}

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c);
}

export interface App {
  server: http.Server;
  /** Closes the server and its connections. */
  close(): Promise<void>;
}

/**
 * Serves `handler` on 0.0.0.0:`port`, prints `<name> listening on 0.0.0.0:<port>` once bound (with
 * the real port when PORT=0), one line per request, and exits 0 on SIGTERM/SIGINT.
 */
export function serve(name: string, port: number, handler: Handler): App {
  const server = http.createServer((req, res) => {
    const started = process.hrtime.bigint();
    res.on('finish', () => logRequest(name, req, res.statusCode, started));
    res.on('close', () => {
      if (!res.writableFinished) logRequest(name, req, 0, started, 'client went away');
    });
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://localhost');
    } catch {
      sendText(res, 400, 'bad request target\n');
      return;
    }
    Promise.resolve()
      .then(() => handler(req, res, url))
      .catch((err: unknown) => {
        console.error(`${name}: ${req.method} ${req.url}: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
        if (!res.headersSent) sendJson(res, 500, { error: 'internal error' });
        else res.destroy();
      });
  });
  server.on('error', (err) => {
    console.error(`${name}: cannot listen on 0.0.0.0:${port}: ${err.message}`);
    process.exit(1);
  });
  server.listen(port, '0.0.0.0', () => {
    const addr = server.address();
    const bound = addr !== null && typeof addr === 'object' ? addr.port : port;
    console.log(`${name} listening on 0.0.0.0:${bound}`);
  });
  const close = (): Promise<void> =>
    new Promise((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  const stop = (signal: string): void => {
    console.log(`${name}: ${signal}, shutting down`);
    const force = setTimeout(() => process.exit(0), 2000);
    force.unref();
    void close().then(() => process.exit(0));
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  return { server, close };
}

function logRequest(name: string, req: IncomingMessage, status: number, started: bigint, note?: string): void {
  const ms = Number((process.hrtime.bigint() - started) / 1_000_000n);
  const rid = req.headers['x-request-id'];
  const user = req.headers['end-user'];
  const from = req.socket.remoteAddress ?? '-';
  console.log(
    `${new Date().toISOString()} ${name} ${from} "${req.method} ${req.url}" ${status} ${ms}ms` +
      (typeof rid === 'string' ? ` x-request-id=${rid}` : '') +
      (typeof user === 'string' ? ` end-user=${user}` : '') +
      (note ? ` (${note})` : ''),
  );
}
