// An httpbin-compatible echo service (the endpoints the Istio tasks use: /ip, /headers, /get, /anything, /status/N, /delay/N...); bad parameters answer 400, unknown paths 404.

import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { listenPort, readBody, sendJson, sendText, serve } from '../common/app.ts';

/** /delay/N waits at most this long, as httpbin does. */
const MAX_DELAY_S = 10;

/** Go's canonical header name: X-B3-Traceid, Content-Type. */
const canonical = (name: string): string => name.toLowerCase().replace(/(^|-)([a-z])/g, (_m, sep: string, c: string) => sep + c.toUpperCase());

/** Every header with all its values, Host included, in the shape go-httpbin prints: {"Name": ["v1", "v2"]}. */
function headerMap(req: IncomingMessage): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
    const name = canonical(req.rawHeaders[i] as string);
    (out[name] ??= []).push(req.rawHeaders[i + 1] as string);
  }
  return out;
}

/** The caller as httpbin sees it: the first X-Forwarded-For entry, else the peer address. */
function origin(req: IncomingMessage): string {
  const xff = req.headers['x-forwarded-for'];
  const first = (Array.isArray(xff) ? xff[0] : xff)?.split(',')[0]?.trim();
  if (first) return first;
  const addr = req.socket.remoteAddress ?? '';
  return addr.startsWith('::ffff:') ? addr.slice(7) : addr;
}

function args(url: URL): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [k, v] of url.searchParams) (out[k] ??= []).push(v);
  return out;
}

function fullUrl(req: IncomingMessage): string {
  const proto = (req.headers['x-forwarded-proto'] as string | undefined)?.split(',')[0]?.trim() || 'http';
  return `${proto}://${req.headers.host ?? 'localhost'}${req.url ?? '/'}`;
}

function requestInfo(req: IncomingMessage, url: URL): Record<string, unknown> {
  return { args: args(url), headers: headerMap(req), method: req.method, origin: origin(req), url: fullUrl(req) };
}

/** Request info plus the body: data (raw text), form (urlencoded fields), json (parsed JSON or null), files. */
async function requestWithBody(req: IncomingMessage, url: URL): Promise<Record<string, unknown>> {
  const body = (await readBody(req, 10 << 20)).toString('utf8');
  const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
  const form: Record<string, string[]> = {};
  let json: unknown = null;
  let data = body;
  if (type === 'application/x-www-form-urlencoded') {
    for (const [k, v] of new URLSearchParams(body)) (form[k] ??= []).push(v);
    data = '';
  } else if (type === 'application/json' || type?.endsWith('+json')) {
    try {
      json = JSON.parse(body);
    } catch {
      json = null;
    }
  }
  return { ...requestInfo(req, url), data, files: {}, form, json };
}

/** "503" or a weighted choice "200:0.9,503:0.1"; undefined when malformed. */
function pickStatus(spec: string): number | undefined {
  const choices: { code: number; weight: number }[] = [];
  for (const part of spec.split(',')) {
    const [c, w] = part.split(':');
    const code = Number(c);
    const weight = w === undefined ? 1 : Number(w);
    if (!Number.isInteger(code) || code < 100 || code > 599 || !Number.isFinite(weight) || weight < 0) return undefined;
    choices.push({ code, weight });
  }
  if (choices.length === 1) return choices[0]?.code;
  const total = choices.reduce((s, c) => s + c.weight, 0);
  if (total <= 0) return undefined;
  let r = Math.random() * total;
  for (const c of choices) {
    r -= c.weight;
    if (r < 0) return c.code;
  }
  return choices[choices.length - 1]?.code;
}

function sendStatus(res: ServerResponse, code: number): void {
  if (code >= 300 && code < 400 && code !== 304) res.setHeader('location', '/redirect/1');
  if (code === 401) res.setHeader('www-authenticate', 'Basic realm="Fake Realm"');
  if (code === 418) return sendText(res, 418, "I'm a teapot!");
  res.writeHead(code);
  res.end();
}

/** Seconds ("3", "1.5") or a Go duration ("500ms", "2s"); undefined when malformed or negative. */
function parseDelay(raw: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(raw);
  if (!m) return undefined;
  const n = Number(m[1]);
  const unit = m[2] ?? 's';
  return unit === 'ms' ? n / 1000 : unit === 'm' ? n * 60 : n;
}

const INDEX = `httpbin (tsmesh sample): HTTP request and response service.
  GET /ip               the caller's address           {"origin": "..."}
  GET /headers          the request headers            {"headers": {...}}
  GET /user-agent       the User-Agent header
  GET /get              args, headers, origin, url
  ANY /anything[/...]   everything about the request, body included
  POST /post, PUT /put, PATCH /patch, DELETE /delete
  ANY /status/N         answers status N ("200:0.9,503:0.1" picks by weight)
  ANY /delay/N          answers after N seconds (at most ${MAX_DELAY_S})
  GET /response-headers?Name=value   sets response headers from the query
  GET /uuid             a random UUID
`;

const METHOD_ROUTES: Readonly<Record<string, string>> = { '/get': 'GET', '/post': 'POST', '/put': 'PUT', '/patch': 'PATCH', '/delete': 'DELETE' };

serve('httpbin', listenPort(8080), async (req, res, url) => {
  const path = url.pathname;
  if (path === '/') return sendText(res, 200, INDEX);
  if (path === '/ip') return sendJson(res, 200, { origin: origin(req) }, true);
  if (path === '/headers') return sendJson(res, 200, { headers: headerMap(req) }, true);
  if (path === '/user-agent') return sendJson(res, 200, { 'user-agent': req.headers['user-agent'] ?? '' }, true);
  if (path === '/uuid') return sendJson(res, 200, { uuid: randomUUID() }, true);
  const method = METHOD_ROUTES[path];
  if (method !== undefined) {
    if (req.method !== method && !(method === 'GET' && req.method === 'HEAD')) return sendText(res, 405, 'Method Not Allowed\n');
    return sendJson(res, 200, method === 'GET' ? requestInfo(req, url) : await requestWithBody(req, url), true);
  }
  if (path === '/anything' || path.startsWith('/anything/')) return sendJson(res, 200, await requestWithBody(req, url), true);
  if (path === '/response-headers') {
    for (const [k, v] of url.searchParams) res.appendHeader(k, v);
    return sendJson(res, 200, args(url), true);
  }
  const status = /^\/status\/([^/]+)$/.exec(path);
  if (status) {
    const code = pickStatus(decodeURIComponent(status[1] ?? ''));
    if (code === undefined) return sendJson(res, 400, { error: 'invalid status code: use /status/N or /status/N:weight,M:weight with N in 100..599' }, true);
    return sendStatus(res, code);
  }
  const delay = /^\/delay\/([^/]+)$/.exec(path);
  if (delay) {
    const seconds = parseDelay(decodeURIComponent(delay[1] ?? ''));
    if (seconds === undefined) return sendJson(res, 400, { error: 'invalid delay: use /delay/N with N seconds (at most 10)' }, true);
    const waitMs = Math.min(seconds, MAX_DELAY_S) * 1000;
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, waitMs);
      res.once('close', () => {
        clearTimeout(t);
        resolve();
      });
    });
    if (res.destroyed) return;
    return sendJson(res, 200, await requestWithBody(req, url), true);
  }
  return sendText(res, 404, '404 page not found\n');
});
