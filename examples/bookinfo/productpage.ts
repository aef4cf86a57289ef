// Bookinfo productpage: the HTML page and JSON API built from details then reviews (3 s each, reviews tried twice), passing on tracing headers and `end-user` from the login session; a failed service shows its "Sorry, ... currently unavailable" text, never a failed page.

import { createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { escapeHtml, httpGet, listenPort, propagatedHeaders, readBody, sendJson, sendText, serve, serviceBase } from '../common/app.ts';

const detailsBase = serviceBase('details', 'DETAILS_HOSTNAME', 'DETAILS_SERVICE_PORT');
const reviewsBase = serviceBase('reviews', 'REVIEWS_HOSTNAME', 'REVIEWS_SERVICE_PORT');
const ratingsBase = serviceBase('ratings', 'RATINGS_HOSTNAME', 'RATINGS_SERVICE_PORT');
/** Every call to another service gets 3 s; reviews is tried twice. */
const CALL_TIMEOUT_MS = 3000;
const REVIEWS_TRIES = 2;
const SESSION_SECRET = process.env.SESSION_SECRET || 'tsmesh-bookinfo-session';

const DETAILS_ERROR = 'Sorry, product details are currently unavailable for this book.';
const REVIEWS_ERROR = 'Sorry, product reviews are currently unavailable for this book.';
const RATINGS_ERROR = 'Sorry, product ratings are currently unavailable for this book.';

interface Product {
  id: number;
  title: string;
  descriptionHtml: string;
}

const PRODUCTS: readonly Product[] = [
  {
    id: 0,
    title: 'The Comedy of Errors',
    descriptionHtml:
      '<a href="https://en.wikipedia.org/wiki/The_Comedy_of_Errors">Wikipedia Summary</a>: ' +
      "The Comedy of Errors is one of <b>William Shakespeare's</b> earliest comedies and his shortest play. " +
      'Two pairs of identical twins, parted in a shipwreck, end up in Ephesus on the same day, and what follows is ' +
      'a farce of mistaken identity, wrongful arrests, slapstick and word play.',
  },
];

// ---------------------------------------------------------------------------------------------
// Session: a cookie holding the user name, signed so that it cannot be edited by hand.

const sign = (value: string): string => createHmac('sha256', SESSION_SECRET).update(value).digest('base64url');

function sessionCookie(user: string): string {
  const value = Buffer.from(user, 'utf8').toString('base64url');
  return `session=${value}.${sign(value)}; Path=/; HttpOnly; SameSite=Lax`;
}

function sessionUser(req: IncomingMessage): string | undefined {
  const cookies = req.headers.cookie ?? '';
  for (const part of cookies.split(';')) {
    const [name, ...rest] = part.trim().split('=');
    if (name !== 'session') continue;
    const [value, mac] = rest.join('=').split('.');
    if (!value || !mac) return undefined;
    const want = Buffer.from(sign(value));
    const got = Buffer.from(mac);
    if (want.length !== got.length || !timingSafeEqual(want, got)) return undefined;
    const user = Buffer.from(value, 'base64url').toString('utf8');
    return user === '' ? undefined : user;
  }
  return undefined;
}

/** Headers for the services productpage calls: the propagated ones, with `end-user` only from the session. */
function outgoingHeaders(req: IncomingMessage): Record<string, string> {
  const headers = propagatedHeaders(req);
  delete headers['end-user'];
  const user = sessionUser(req);
  if (user !== undefined) headers['end-user'] = user;
  return headers;
}

// ---------------------------------------------------------------------------------------------
// Calls to the other services.

interface CallResult {
  status: number;
  body: Record<string, unknown>;
}

const calls = new Map<string, number>();
const count = (service: string, outcome: string): void => {
  const key = `service="${service}",outcome="${outcome}"`;
  calls.set(key, (calls.get(key) ?? 0) + 1);
};

async function callJson(service: string, url: string, headers: Record<string, string>): Promise<CallResult | { status: number; error: string }> {
  try {
    const answer = await httpGet(url, headers, CALL_TIMEOUT_MS);
    if (answer.status !== 200) {
      count(service, String(answer.status));
      return { status: answer.status, error: `${service} answered ${answer.status}` };
    }
    const body = JSON.parse(answer.body) as unknown;
    if (typeof body !== 'object' || body === null) throw new Error('not a JSON object');
    count(service, '200');
    return { status: 200, body: body as Record<string, unknown> };
  } catch (err) {
    count(service, 'error');
    return { status: 503, error: `${service}: ${(err as Error).message}` };
  }
}

async function getDetails(id: number, headers: Record<string, string>): Promise<CallResult> {
  const r = await callJson('details', `${detailsBase}/details/${id}`, headers);
  if ('body' in r) return r;
  console.error(`productpage: ${r.error}`);
  return { status: r.status, body: { error: DETAILS_ERROR } };
}

async function getReviews(id: number, headers: Record<string, string>): Promise<CallResult> {
  let last: { status: number; error: string } = { status: 503, error: 'not called' };
  for (let attempt = 1; attempt <= REVIEWS_TRIES; attempt++) {
    const r = await callJson('reviews', `${reviewsBase}/reviews/${id}`, headers);
    if ('body' in r) return r;
    console.error(`productpage: ${r.error} (try ${attempt} of ${REVIEWS_TRIES})`);
    last = r;
  }
  return { status: last.status, body: { error: REVIEWS_ERROR } };
}

async function getRatings(id: number, headers: Record<string, string>): Promise<CallResult> {
  const r = await callJson('ratings', `${ratingsBase}/ratings/${id}`, headers);
  if ('body' in r) return r;
  console.error(`productpage: ${r.error}`);
  return { status: r.status, body: { error: RATINGS_ERROR } };
}

// ---------------------------------------------------------------------------------------------
// The HTML page.

const STYLE = `
  :root { --ink: #1d2733; --muted: #5d6b7a; --line: #dde3ea; --accent: #466bb0; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink); background: #f4f6f9; }
  nav { display: flex; align-items: center; justify-content: space-between; gap: 1rem; padding: .6rem 1.5rem; background: #28313d; color: #fff; }
  nav a { color: #fff; text-decoration: none; }
  .brand { font-weight: 600; font-size: 1.15rem; }
  .user { display: flex; align-items: center; gap: .6rem; }
  .user form { display: flex; gap: .4rem; margin: 0; }
  .user input { padding: .3rem .5rem; border: 1px solid #55606d; border-radius: 4px; background: #fff; width: 9rem; }
  button, .button { padding: .3rem .9rem; border: 0; border-radius: 4px; background: var(--accent); color: #fff; font: inherit; cursor: pointer; }
  main { max-width: 1100px; margin: 0 auto; padding: 1.5rem; }
  h1 { margin: .2rem 0 .6rem; font-size: 2rem; }
  .summary { color: var(--muted); max-width: 60rem; }
  .panels { display: grid; grid-template-columns: repeat(auto-fit, minmax(300px, 1fr)); gap: 1.5rem; margin-top: 1.5rem; }
  .panel { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 1rem 1.4rem; }
  .panel h2 { margin: 0 0 .8rem; font-size: 1.3rem; }
  dl { display: grid; grid-template-columns: max-content 1fr; gap: .25rem 1rem; margin: 0; }
  dt { font-weight: 600; }
  dd { margin: 0; }
  .review { margin: 0 0 1rem; padding: .6rem 1rem; border-left: 4px solid var(--line); }
  .review p { margin: 0 0 .3rem; }
  .review footer { color: var(--muted); font-size: .9rem; }
  .stars { font-size: 1.3rem; letter-spacing: .1rem; }
  .error { color: #a12a2a; background: #fbecec; border-radius: 4px; padding: .5rem .8rem; }
  .served { color: var(--muted); font-size: .85rem; border-top: 1px solid var(--line); padding-top: .5rem; margin-bottom: 0; }
`;

const str = (v: unknown): string => escapeHtml(v === undefined || v === null ? '' : String(v));

function userBar(user: string | undefined): string {
  if (user !== undefined) {
    return `<div class="user"><span>Signed in as <b>${escapeHtml(user)}</b></span><a class="button" href="/logout">Sign out</a></div>`;
  }
  return (
    '<div class="user"><form method="post" action="/login">' +
    '<input name="username" placeholder="User name" aria-label="User name" required>' +
    '<input name="passwd" type="password" placeholder="Password" aria-label="Password">' +
    '<button type="submit">Sign in</button></form></div>'
  );
}

function detailsPanel(details: Record<string, unknown>): string {
  if (typeof details.error === 'string') return `<p class="error">${escapeHtml(details.error)}</p>`;
  const rows: [string, unknown][] = [
    ['Author', details.author],
    ['Year', details.year],
    ['Type', details.type],
    ['Pages', details.pages],
    ['Publisher', details.publisher],
    ['Language', details.language],
    ['ISBN-10', details['ISBN-10']],
    ['ISBN-13', details['ISBN-13']],
  ];
  return `<dl>${rows.map(([k, v]) => `<dt>${k}</dt><dd>${str(v)}</dd>`).join('')}</dl>`;
}

function ratingHtml(rating: unknown): string {
  if (typeof rating !== 'object' || rating === null) return '';
  const r = rating as { stars?: unknown; color?: unknown; error?: unknown };
  if (typeof r.error === 'string') return `<p class="error rating-error">${escapeHtml(r.error)}</p>`;
  if (typeof r.stars !== 'number') return '';
  const stars = Math.max(0, Math.min(5, Math.round(r.stars)));
  const color = typeof r.color === 'string' && /^[a-z]+$/i.test(r.color) ? r.color : 'black';
  return (
    `<div class="rating"><span class="stars" style="color: ${color}" data-stars="${stars}" title="${stars} of 5 stars">` +
    `${'★'.repeat(stars)}${'☆'.repeat(5 - stars)}</span></div>`
  );
}

function reviewsPanel(reviews: Record<string, unknown>): string {
  if (typeof reviews.error === 'string') return `<p class="error">${escapeHtml(reviews.error)}</p>`;
  const list = Array.isArray(reviews.reviews) ? (reviews.reviews as Record<string, unknown>[]) : [];
  const items = list
    .map((r) => `<blockquote class="review"><p>${str(r.text)}</p><footer>${str(r.reviewer)}</footer>${ratingHtml(r.rating)}</blockquote>`)
    .join('\n');
  const cluster = typeof reviews.clustername === 'string' && reviews.clustername !== 'null' ? ` on cluster <b>${escapeHtml(reviews.clustername)}</b>` : '';
  return `${items}\n<p class="served">Reviews served by: <b>${str(reviews.podname)}</b>${cluster}</p>`;
}

function productPage(product: Product, user: string | undefined, details: Record<string, unknown>, reviews: Record<string, unknown>): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Simple Bookstore App</title>
<style>${STYLE}</style>
</head>
<body>
<nav><a class="brand" href="/productpage">BookInfo Sample</a>${userBar(user)}</nav>
<main>
<section class="product">
<h1>${escapeHtml(product.title)}</h1>
<p class="summary">${product.descriptionHtml}</p>
</section>
<div class="panels">
<section class="panel" id="details"><h2>Book Details</h2>
${detailsPanel(details)}
</section>
<section class="panel" id="reviews"><h2>Book Reviews</h2>
${reviewsPanel(reviews)}
</section>
</div>
</main>
</body>
</html>
`;
}

const INDEX = `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Simple Bookstore App</title><style>${STYLE}</style></head>
<body><nav><a class="brand" href="/productpage">BookInfo Sample</a></nav>
<main><h1>Simple Bookstore App</h1>
<p class="summary">This sample is made of four services: productpage (this page), details, reviews (three versions) and ratings.</p>
<p><a class="button" href="/productpage">Open the product page</a></p>
<p>JSON API: <a href="/api/v1/products">/api/v1/products</a>, <a href="/api/v1/products/0">/api/v1/products/0</a>,
<a href="/api/v1/products/0/reviews">/api/v1/products/0/reviews</a>, <a href="/api/v1/products/0/ratings">/api/v1/products/0/ratings</a></p>
</main></body></html>
`;

// ---------------------------------------------------------------------------------------------
// Routes.

const requests = new Map<string, number>();
const KNOWN_PATHS = /^\/(?:|productpage|login|logout|health|metrics|api\/v1\/products(?:\/\d+(?:\/reviews|\/ratings)?)?)$/;

function metrics(): string {
  const lines = ['# HELP productpage_requests_total Requests served by productpage.', '# TYPE productpage_requests_total counter'];
  for (const [k, v] of requests) lines.push(`productpage_requests_total{${k}} ${v}`);
  lines.push('# HELP productpage_calls_total Calls productpage made to other services, by outcome.', '# TYPE productpage_calls_total counter');
  for (const [k, v] of calls) lines.push(`productpage_calls_total{${k}} ${v}`);
  return lines.join('\n') + '\n';
}

function redirect(res: ServerResponse, location: string, cookie?: string): void {
  res.writeHead(302, { location, 'content-type': 'text/plain; charset=utf-8', ...(cookie !== undefined ? { 'set-cookie': cookie } : {}) });
  res.end(`Redirecting to ${location}\n`);
}

function productId(raw: string): number | undefined {
  return /^\d+$/.test(raw) ? Number(raw) : undefined;
}

serve('productpage', listenPort(9080), async (req, res, url) => {
  const path = url.pathname;
  res.on('finish', () => {
    const key = `path="${KNOWN_PATHS.test(path) ? path.replace(/\/\d+(?=\/|$)/, '/:id') : 'other'}",code="${res.statusCode}"`;
    requests.set(key, (requests.get(key) ?? 0) + 1);
  });

  if (path === '/' || path === '/index.html') return sendText(res, 200, INDEX, 'text/html; charset=utf-8');
  if (path === '/health') return sendJson(res, 200, { status: 'Productpage is healthy' });
  if (path === '/metrics') return sendText(res, 200, metrics(), 'text/plain; version=0.0.4; charset=utf-8');

  if (path === '/login') {
    if (req.method !== 'POST') return sendText(res, 405, 'POST a form with username=<name> to sign in\n');
    const form = new URLSearchParams((await readBody(req, 16 * 1024)).toString('utf8'));
    const user = (form.get('username') ?? form.get('user') ?? '').trim();
    if (user === '') return redirect(res, '/productpage');
    return redirect(res, '/productpage', sessionCookie(user));
  }
  if (path === '/logout') return redirect(res, '/productpage', 'session=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0');

  if (path === '/productpage') {
    const product = PRODUCTS[0] as Product;
    const headers = outgoingHeaders(req);
    const details = await getDetails(product.id, headers);
    const reviews = await getReviews(product.id, headers);
    return sendText(res, 200, productPage(product, sessionUser(req), details.body, reviews.body), 'text/html; charset=utf-8');
  }

  if (path === '/api/v1/products') return sendJson(res, 200, PRODUCTS);
  const api = /^\/api\/v1\/products\/([^/]+)(?:\/(reviews|ratings))?$/.exec(path);
  if (api) {
    const id = productId(api[1] ?? '');
    if (id === undefined) return sendJson(res, 400, { error: 'please provide numeric product id' });
    const headers = outgoingHeaders(req);
    const r = api[2] === 'reviews' ? await getReviews(id, headers) : api[2] === 'ratings' ? await getRatings(id, headers) : await getDetails(id, headers);
    return sendJson(res, r.status, r.body);
  }
  return sendText(res, 404, 'Not Found\n');
});
