// Bookinfo ratings: GET /ratings/<id> answers {"id":N,"ratings":{"Reviewer1":5,"Reviewer2":4}}, POST replaces a product's ratings in memory; a bad id or body is 400, SERVICE_VERSION v-faulty/v-delayed/v-unavailable/v-unhealthy inject failures on purpose.

import { listenPort, readBody, sendJson, serve } from '../common/app.ts';

const version = process.env.SERVICE_VERSION ?? 'v1';
const DEFAULT_RATINGS: Readonly<Record<string, number>> = { Reviewer1: 5, Reviewer2: 4 };
/** Ratings posted by users, per product; everything else gets the defaults. */
const posted = new Map<number, Record<string, number>>();
const started = Date.now();

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** v-unhealthy: healthy for 15 minutes, then unhealthy for 15, and so on. */
const healthy = (): boolean => version !== 'v-unhealthy' || Math.floor((Date.now() - started) / (15 * 60_000)) % 2 === 0;

serve('ratings', listenPort(9080), async (req, res, url) => {
  if (url.pathname === '/health') {
    return healthy() ? sendJson(res, 200, { status: 'Ratings is healthy' }) : sendJson(res, 500, { status: 'Ratings is not healthy' });
  }
  const m = /^\/ratings\/([^/]*)$/.exec(url.pathname);
  if (!m) return sendJson(res, 404, { error: 'not found: use /ratings/<product id>' });
  const raw = decodeURIComponent(m[1] ?? '');
  if (!/^-?\d+$/.test(raw)) return sendJson(res, 400, { error: 'please provide numeric product ID' });
  const id = Number(raw);

  if (req.method === 'POST') {
    let body: unknown;
    try {
      body = JSON.parse((await readBody(req, 64 * 1024)).toString('utf8'));
    } catch {
      return sendJson(res, 400, { error: 'please provide valid ratings JSON' });
    }
    if (typeof body !== 'object' || body === null || Array.isArray(body) || !Object.values(body).every((v) => typeof v === 'number')) {
      return sendJson(res, 400, { error: 'please provide valid ratings JSON: {"Reviewer1": 5, ...}' });
    }
    posted.set(id, body as Record<string, number>);
    return sendJson(res, 200, { id, ratings: body });
  }
  if (req.method !== 'GET') return sendJson(res, 405, { error: 'use GET or POST' });

  if (version === 'v-unavailable' || version === 'v-unhealthy' && !healthy()) return sendJson(res, 503, { error: 'Service unavailable' });
  if (version === 'v-faulty' && Math.random() < 0.5) return sendJson(res, 503, { error: 'Service unavailable' });
  if (version === 'v-delayed' && Math.random() < 0.5) await sleep(7000);
  return sendJson(res, 200, { id, ratings: posted.get(id) ?? DEFAULT_RATINGS });
});
