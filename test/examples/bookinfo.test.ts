// The Bookinfo sample apps as real processes wired together on 127.0.0.1: what a user sees on productpage
// for reviews v1/v2/v3, login as jason, header propagation, and the failures of Istio's fault-injection
// tasks (slow or failing reviews and ratings) with the real timeouts (3 s x 2, 10 s / 2.5 s).

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { json, later, peer, request, startApp, stopAll, stub, type AppProcess, type Stub } from './helpers.ts';

const REVIEWS_ERROR = 'Sorry, product reviews are currently unavailable for this book.';
const DETAILS_ERROR = 'Sorry, product details are currently unavailable for this book.';
const RATINGS_UNAVAILABLE = 'Ratings service is currently unavailable';

interface ReviewView {
  reviewer: string;
  text: string;
  stars: number;
  color: string | undefined;
  error: string | undefined;
}

/** The reviews as a reader sees them on the page: text, reviewer, the ★ count and their colour, or the rating error. */
function reviewsOnPage(html: string): ReviewView[] {
  return [...html.matchAll(/<blockquote class="review">([\s\S]*?)<\/blockquote>/g)].map((m) => {
    const block = m[1] ?? '';
    return {
      text: /<p>([\s\S]*?)<\/p>/.exec(block)?.[1] ?? '',
      reviewer: /<footer>([\s\S]*?)<\/footer>/.exec(block)?.[1] ?? '',
      stars: (block.match(/★/g) ?? []).length,
      color: /class="stars" style="color: (\w+)"/.exec(block)?.[1],
      error: /class="error rating-error">([^<]*)</.exec(block)?.[1],
    };
  });
}

function sessionCookie(setCookie: string[] | undefined): string {
  const c = setCookie?.find((s) => s.startsWith('session='));
  assert.ok(c, `no session cookie in ${JSON.stringify(setCookie)}`);
  return c.split(';')[0] as string;
}

async function loginAs(productpage: AppProcess, user: string): Promise<string> {
  const r = await request(`${productpage.url}/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: `username=${encodeURIComponent(user)}&passwd=whatever`,
  });
  assert.equal(r.status, 302);
  assert.equal(r.headers.location, '/productpage');
  return sessionCookie(r.headers['set-cookie']);
}

const TRACE_HEADERS: Record<string, string> = {
  'x-request-id': '2f6c1a0e-5b1d-4c1e-9a57-0d5b1a2c3d4e',
  traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
  tracestate: 'congo=t61rcWkgMzE',
  'x-b3-traceid': '80f198ee56343ba864fe8b2a57d3eff7',
  'x-b3-spanid': 'e457b5a2e4d86bd1',
  'x-b3-parentspanid': '05e3ac9a4f6e3b90',
  'x-b3-sampled': '1',
};

describe('bookinfo', () => {
  let details: AppProcess;
  let ratings: AppProcess;
  const reviews: Record<'v1' | 'v2' | 'v3', AppProcess> = {} as Record<'v1' | 'v2' | 'v3', AppProcess>;
  const productpage: Record<'v1' | 'v2' | 'v3', AppProcess> = {} as Record<'v1' | 'v2' | 'v3', AppProcess>;

  before(async () => {
    [details, ratings] = await Promise.all([startApp('bookinfo/details.ts'), startApp('bookinfo/ratings.ts')]);
    const env = {
      v1: { SERVICE_VERSION: 'v1', ENABLE_RATINGS: 'false' },
      v2: { SERVICE_VERSION: 'v2', ENABLE_RATINGS: 'true', STAR_COLOR: 'black' },
      v3: { SERVICE_VERSION: 'v3', ENABLE_RATINGS: 'true', STAR_COLOR: 'red' },
    };
    await Promise.all(
      (['v1', 'v2', 'v3'] as const).map(async (v) => {
        reviews[v] = await startApp('bookinfo/reviews.ts', { ...env[v], HOSTNAME: `reviews-${v}-7f9d8c6b5-abcde`, ...peer('ratings', ratings.port) });
        productpage[v] = await startApp('bookinfo/productpage.ts', { ...peer('details', details.port), ...peer('reviews', reviews[v].port), ...peer('ratings', ratings.port) });
      }),
    );
  });
  after(stopAll);

  it('details answers the fixed book, health, and 400 for a non-numeric id', async () => {
    const r = await request(`${details.url}/details/0`);
    assert.equal(r.status, 200);
    assert.deepEqual(JSON.parse(r.body), {
      id: 0,
      author: 'William Shakespeare',
      year: 1595,
      type: 'paperback',
      pages: 200,
      publisher: 'PublisherA',
      language: 'English',
      'ISBN-10': '1234567890',
      'ISBN-13': '123-1234567890',
    });
    assert.equal(JSON.parse((await request(`${details.url}/details/7`)).body).id, 7);
    assert.equal((await request(`${details.url}/details/abc`)).status, 400);
    assert.deepEqual(JSON.parse((await request(`${details.url}/health`)).body), { status: 'Details is healthy' });
  });

  it('ratings answers {"id":N,"ratings":{...}}, takes new ratings by POST, 400 for a bad id', async () => {
    const r = await request(`${ratings.url}/ratings/0`);
    assert.equal(r.status, 200);
    assert.deepEqual(JSON.parse(r.body), { id: 0, ratings: { Reviewer1: 5, Reviewer2: 4 } });
    const posted = await request(`${ratings.url}/ratings/9`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"Reviewer1":1,"Reviewer2":2}' });
    assert.equal(posted.status, 200);
    assert.deepEqual(JSON.parse((await request(`${ratings.url}/ratings/9`)).body), { id: 9, ratings: { Reviewer1: 1, Reviewer2: 2 } });
    assert.equal((await request(`${ratings.url}/ratings/x`)).status, 400);
    assert.equal((await request(`${ratings.url}/ratings/9`, { method: 'POST', body: '[1]' })).status, 400);
    assert.deepEqual(JSON.parse((await request(`${ratings.url}/health`)).body), { status: 'Ratings is healthy' });
  });

  it('reviews: v1 has no rating, v2 black stars, v3 red stars, in the documented JSON shape', async () => {
    const v1 = JSON.parse((await request(`${reviews.v1.url}/reviews/0`)).body);
    assert.equal(v1.id, '0');
    assert.equal(v1.podname, 'reviews-v1-7f9d8c6b5-abcde');
    assert.equal(v1.clustername, 'null');
    assert.deepEqual(v1.reviews.map((r: { reviewer: string }) => r.reviewer), ['Reviewer1', 'Reviewer2']);
    assert.ok(v1.reviews.every((r: { text: string; rating?: unknown }) => r.text.length > 20 && r.rating === undefined));
    const v2 = JSON.parse((await request(`${reviews.v2.url}/reviews/0`)).body);
    assert.deepEqual(v2.reviews.map((r: { rating: unknown }) => r.rating), [{ stars: 5, color: 'black' }, { stars: 4, color: 'black' }]);
    const v3 = JSON.parse((await request(`${reviews.v3.url}/reviews/0`)).body);
    assert.deepEqual(v3.reviews.map((r: { rating: unknown }) => r.rating), [{ stars: 5, color: 'red' }, { stars: 4, color: 'red' }]);
    assert.deepEqual(JSON.parse((await request(`${reviews.v1.url}/health`)).body), { status: 'Reviews is healthy' });
  });

  it('productpage shows the book, its details and the two reviews, with stars as each reviews version gives them', async () => {
    const reviewTexts = (JSON.parse((await request(`${reviews.v1.url}/reviews/0`)).body).reviews as { text: string }[]).map((r) => r.text);
    for (const [v, stars, color] of [['v1', [0, 0], undefined], ['v2', [5, 4], 'black'], ['v3', [5, 4], 'red']] as const) {
      const r = await request(`${productpage[v].url}/productpage`);
      assert.equal(r.status, 200);
      assert.match(String(r.headers['content-type']), /^text\/html/);
      const html = r.body;
      assert.match(html, /<h1>The Comedy of Errors<\/h1>/);
      assert.match(html, /one of <b>William Shakespeare's<\/b> earliest comedies/);
      for (const [k, val] of [['Author', 'William Shakespeare'], ['Year', '1595'], ['Type', 'paperback'], ['Pages', '200'], ['Publisher', 'PublisherA'], ['Language', 'English'], ['ISBN-10', '1234567890'], ['ISBN-13', '123-1234567890']]) {
        assert.ok(html.includes(`<dt>${k}</dt><dd>${val}</dd>`), `${v}: details ${k} ${val}`);
      }
      const seen = reviewsOnPage(html);
      assert.deepEqual(seen.map((x) => x.reviewer), ['Reviewer1', 'Reviewer2'], v);
      assert.deepEqual(seen.map((x) => x.text), reviewTexts.map((t) => t.replace(/'/g, '&#39;')), v);
      assert.deepEqual(seen.map((x) => x.stars), [...stars], v);
      assert.ok(seen.every((x) => x.color === color && x.error === undefined), `${v}: star colour ${color}`);
      assert.ok(html.includes(`Reviews served by: <b>reviews-${v}-7f9d8c6b5-abcde</b>`), v);
      assert.ok(!html.includes('Sorry'), v);
    }
    assert.match(productpage.v2.output(), /productpage 127\.0\.0\.1 "GET \/productpage" 200 \d+ms/);
    assert.match(reviews.v2.output(), /reviews 127\.0\.0\.1 "GET \/reviews\/0" 200 \d+ms/);
  });

  it('login as jason sets a session; the page greets jason and every call carries end-user: jason; logout ends it', async () => {
    const cookie = await loginAs(productpage.v2, 'jason');
    const page = await request(`${productpage.v2.url}/productpage`, { headers: { cookie } });
    assert.match(page.body, /Signed in as <b>jason<\/b>/);
    assert.doesNotMatch(page.body, /name="username"/);
    // through productpage -> reviews v2 -> ratings: ratings' log shows the user of the call
    assert.match(ratings.output(), /"GET \/ratings\/0" 200 \d+ms end-user=jason/);

    const anonymous = await request(`${productpage.v2.url}/productpage`);
    assert.match(anonymous.body, /<form method="post" action="\/login">/);
    assert.doesNotMatch(anonymous.body, /Signed in as/);

    const out = await request(`${productpage.v2.url}/logout`, { headers: { cookie } });
    assert.equal(out.status, 302);
    assert.match(String(out.headers['set-cookie']), /session=;.*Max-Age=0/);
    // a forged cookie is no session
    const forged = await request(`${productpage.v2.url}/productpage`, { headers: { cookie: `session=${Buffer.from('jason').toString('base64url')}.AAAA` } });
    assert.doesNotMatch(forged.body, /Signed in as/);
  });

  it('productpage passes x-request-id, tracing headers and end-user (from the session only) to details and reviews', async () => {
    const details2 = await stub((_req, res) => json(res, 200, { id: 0, author: 'William Shakespeare', year: 1595 }));
    const reviews2 = await stub((_req, res) => json(res, 200, { id: '0', podname: 'p', clustername: 'null', reviews: [] }));
    try {
      const pp = await startApp('bookinfo/productpage.ts', { ...peer('details', details2.port), ...peer('reviews', reviews2.port) });
      const cookie = await loginAs(pp, 'jason');
      await request(`${pp.url}/productpage`, { headers: { ...TRACE_HEADERS, cookie } });
      for (const s of [details2, reviews2]) {
        const h = s.seen.at(-1);
        assert.ok(h);
        for (const [k, v] of Object.entries(TRACE_HEADERS)) assert.equal(h[k], v, k);
        assert.equal(h['end-user'], 'jason');
      }
      assert.match(String(details2.seen.at(-1)?.host), /^127\.0\.0\.1:\d+$/);
      // without a session an end-user header from the caller is not passed on
      await request(`${pp.url}/productpage`, { headers: { 'end-user': 'mallory' } });
      assert.equal(reviews2.seen.at(-1)?.['end-user'], undefined);
      assert.equal(await pp.stop(), 0, 'exits 0 on SIGTERM');
    } finally {
      await Promise.all([details2.close(), reviews2.close()]);
    }
  });

  it('reviews v2 passes the request headers, end-user included, on to ratings', async () => {
    const ratings2 = await stub((_req, res) => json(res, 200, { id: 0, ratings: { Reviewer1: 3, Reviewer2: 1 } }));
    try {
      const rv = await startApp('bookinfo/reviews.ts', { SERVICE_VERSION: 'v2', ENABLE_RATINGS: 'true', STAR_COLOR: 'black', ...peer('ratings', ratings2.port) });
      const r = await request(`${rv.url}/reviews/0`, { headers: { ...TRACE_HEADERS, 'end-user': 'jason' } });
      assert.deepEqual(JSON.parse(r.body).reviews.map((x: { rating: unknown }) => x.rating), [{ stars: 3, color: 'black' }, { stars: 1, color: 'black' }]);
      const h = ratings2.seen[0];
      assert.ok(h);
      for (const [k, v] of Object.entries(TRACE_HEADERS)) assert.equal(h[k], v, k);
      assert.equal(h['end-user'], 'jason');
      await rv.stop();
    } finally {
      await ratings2.close();
    }
  });

  it('the JSON API: products, details, reviews, ratings, health', async () => {
    const pp = productpage.v3;
    const products = JSON.parse((await request(`${pp.url}/api/v1/products`)).body);
    assert.equal(products[0].id, 0);
    assert.equal(products[0].title, 'The Comedy of Errors');
    assert.equal(JSON.parse((await request(`${pp.url}/api/v1/products/0`)).body).author, 'William Shakespeare');
    assert.equal(JSON.parse((await request(`${pp.url}/api/v1/products/0/reviews`)).body).reviews[0].rating.color, 'red');
    assert.deepEqual(JSON.parse((await request(`${pp.url}/api/v1/products/0/ratings`)).body), { id: 0, ratings: { Reviewer1: 5, Reviewer2: 4 } });
    assert.equal((await request(`${pp.url}/api/v1/products/zero`)).status, 400);
    assert.deepEqual(JSON.parse((await request(`${pp.url}/health`)).body), { status: 'Productpage is healthy' });
    assert.match((await request(`${pp.url}/metrics`)).body, /productpage_requests_total\{path="\/api\/v1\/products\/:id",code="200"\} 1/);
  });

  describe('failures', { concurrency: true }, () => {
    it('reviews answering 503: productpage tries twice, then shows the reviews error (and the details)', async () => {
      const failing = await stub((_req, res) => json(res, 503, { error: 'no healthy upstream' }));
      try {
        const pp = await startApp('bookinfo/productpage.ts', { ...peer('details', details.port), ...peer('reviews', failing.port) });
        const page = await request(`${pp.url}/productpage`);
        assert.equal(page.status, 200);
        assert.ok(page.body.includes(REVIEWS_ERROR));
        assert.ok(page.body.includes('<dd>PublisherA</dd>'));
        assert.equal(failing.seen.length, 2);
        const api = await request(`${pp.url}/api/v1/products/0/reviews`);
        assert.equal(api.status, 503);
        assert.deepEqual(JSON.parse(api.body), { error: REVIEWS_ERROR });
      } finally {
        await failing.close();
      }
    });

    it('reviews failing once: the retry gets the reviews', async () => {
      const flaky = await stub((_req, res, n) =>
        n === 1 ? json(res, 500, {}) : json(res, 200, { id: '0', podname: 'reviews-v1-x', clustername: 'null', reviews: [{ reviewer: 'Reviewer1', text: 'Fine.' }] }),
      );
      try {
        const pp = await startApp('bookinfo/productpage.ts', { ...peer('details', details.port), ...peer('reviews', flaky.port) });
        const page = await request(`${pp.url}/productpage`);
        assert.deepEqual(reviewsOnPage(page.body).map((r) => r.text), ['Fine.']);
        assert.ok(!page.body.includes(REVIEWS_ERROR));
        assert.equal(flaky.seen.length, 2);
      } finally {
        await flaky.close();
      }
    });

    it('reviews slower than 3 s: two tries of 3 s, then the reviews error after about 6 s', async () => {
      const slow = await stub((_req, res) => later(res, 20_000, () => json(res, 200, {})));
      try {
        const pp = await startApp('bookinfo/productpage.ts', { ...peer('details', details.port), ...peer('reviews', slow.port) });
        const page = await request(`${pp.url}/productpage`);
        assert.ok(page.body.includes(REVIEWS_ERROR));
        assert.equal(slow.seen.length, 2);
        assert.ok(page.ms >= 5900 && page.ms < 8000, `took ${page.ms} ms`);
      } finally {
        await slow.close();
      }
    });

    it('details down: the details error, the reviews still shown', async () => {
      const gone = await stub(() => undefined);
      await gone.close();
      const pp = await startApp('bookinfo/productpage.ts', { ...peer('details', gone.port), ...peer('reviews', reviews.v3.port) });
      const page = await request(`${pp.url}/productpage`);
      assert.ok(page.body.includes(DETAILS_ERROR));
      assert.deepEqual(reviewsOnPage(page.body).map((r) => r.color), ['red', 'red']);
      assert.equal((await request(`${pp.url}/api/v1/products/0`)).status, 503);
    });

    it('seed 004 delay: ratings 7 s late for jason -> reviews v2 waits, productpage gives up: jason sees the reviews error, others see stars', async () => {
      const delayed = await stub((req, res) => {
        const answer = (): void => json(res, 200, { id: 0, ratings: { Reviewer1: 5, Reviewer2: 4 } });
        if (req.headers['end-user'] === 'jason') later(res, 7000, answer);
        else answer();
      });
      try {
        const rv = await startApp('bookinfo/reviews.ts', { SERVICE_VERSION: 'v2', ENABLE_RATINGS: 'true', STAR_COLOR: 'black', ...peer('ratings', delayed.port) });
        const pp = await startApp('bookinfo/productpage.ts', { ...peer('details', details.port), ...peer('reviews', rv.port) });
        const cookie = await loginAs(pp, 'jason');
        const [jason, other] = await Promise.all([request(`${pp.url}/productpage`, { headers: { cookie } }), request(`${pp.url}/productpage`)]);
        assert.ok(jason.body.includes(REVIEWS_ERROR));
        assert.ok(jason.ms >= 5900 && jason.ms < 8000, `took ${jason.ms} ms`);
        assert.deepEqual(reviewsOnPage(other.body).map((r) => [r.stars, r.color]), [[5, 'black'], [4, 'black']]);
      } finally {
        await delayed.close();
      }
    });

    it('seed 004 abort: ratings 500 for jason -> "Ratings service is currently unavailable" under each review', async () => {
      const aborting = await stub((req, res) => (req.headers['end-user'] === 'jason' ? json(res, 500, {}) : json(res, 200, { id: 0, ratings: { Reviewer1: 5, Reviewer2: 4 } })));
      try {
        const rv = await startApp('bookinfo/reviews.ts', { SERVICE_VERSION: 'v2', ENABLE_RATINGS: 'true', STAR_COLOR: 'black', ...peer('ratings', aborting.port) });
        const pp = await startApp('bookinfo/productpage.ts', { ...peer('details', details.port), ...peer('reviews', rv.port) });
        const cookie = await loginAs(pp, 'jason');
        const page = await request(`${pp.url}/productpage`, { headers: { cookie } });
        assert.deepEqual(reviewsOnPage(page.body).map((r) => [r.stars, r.error]), [[0, RATINGS_UNAVAILABLE], [0, RATINGS_UNAVAILABLE]]);
        assert.ok(!page.body.includes(REVIEWS_ERROR));
        const api = JSON.parse((await request(`${rv.url}/reviews/0`, { headers: { 'end-user': 'jason' } })).body);
        assert.deepEqual(api.reviews[0].rating, { error: RATINGS_UNAVAILABLE });
      } finally {
        await aborting.close();
      }
    });

    it('reviews waits 10 s for ratings with black stars, 2.5 s with red', async () => {
      let delayMs = 0;
      const slowRatings: Stub = await stub((_req, res) => later(res, delayMs, () => json(res, 200, { id: 0, ratings: { Reviewer1: 5, Reviewer2: 4 } })));
      try {
        const [black, red] = await Promise.all([
          startApp('bookinfo/reviews.ts', { SERVICE_VERSION: 'v2', ENABLE_RATINGS: 'true', STAR_COLOR: 'black', ...peer('ratings', slowRatings.port) }),
          startApp('bookinfo/reviews.ts', { SERVICE_VERSION: 'v3', ENABLE_RATINGS: 'true', STAR_COLOR: 'red', ...peer('ratings', slowRatings.port) }),
        ]);
        delayMs = 4000;
        const [b4, r4] = await Promise.all([request(`${black.url}/reviews/0`), request(`${red.url}/reviews/0`)]);
        assert.deepEqual(JSON.parse(b4.body).reviews[0].rating, { stars: 5, color: 'black' }, 'black waits out a 4 s ratings');
        assert.deepEqual(JSON.parse(r4.body).reviews[0].rating, { error: RATINGS_UNAVAILABLE }, 'red gives up on a 4 s ratings');
        assert.ok(r4.ms >= 2400 && r4.ms < 3500, `red gave up after ${r4.ms} ms`);
        delayMs = 12_000;
        const b12 = await request(`${black.url}/reviews/0`);
        assert.deepEqual(JSON.parse(b12.body).reviews[1].rating, { error: RATINGS_UNAVAILABLE });
        assert.ok(b12.ms >= 9900 && b12.ms < 11_500, `black gave up after ${b12.ms} ms`);
      } finally {
        await slowRatings.close();
      }
    });
  });
});
