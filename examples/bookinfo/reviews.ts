// Bookinfo reviews (v1 no stars, v2 black, v3 red): GET /reviews/<id> answers two reviews, with stars from ratings when ENABLE_RATINGS=true; a failed or slow ratings call (10 s for black stars, 2.5 s otherwise) gives "Ratings service is currently unavailable".

import type { IncomingMessage } from 'node:http';
import { httpGet, listenPort, propagatedHeaders, sendJson, serve, serviceBase } from '../common/app.ts';

const version = process.env.SERVICE_VERSION ?? 'v1';
const ratingsEnabled = process.env.ENABLE_RATINGS === 'true';
const starColor = process.env.STAR_COLOR || 'black';
/** As the real service: black stars (v2) wait 10 s for ratings, any other colour 2.5 s. */
const ratingsTimeoutMs = starColor === 'black' ? 10_000 : 2_500;
const ratingsBase = serviceBase('ratings', 'RATINGS_HOSTNAME', 'RATINGS_SERVICE_PORT');
const podName = process.env.HOSTNAME || 'null';
const clusterName = process.env.CLUSTER_NAME || 'null';

const RATINGS_UNAVAILABLE = 'Ratings service is currently unavailable';

const REVIEWS: readonly { reviewer: string; text: string }[] = [
  { reviewer: 'Reviewer1', text: 'A wonderfully silly evening: the mistaken identities pile up faster than you can count the twins.' },
  { reviewer: 'Reviewer2', text: 'Great fun on stage, though it has less depth than the plays Shakespeare wrote later.' },
];

type Rating = { stars: number; color: string } | { error: string };

/** Stars per reviewer from ratings, or undefined when ratings failed, timed out or answered nonsense. */
async function fetchRatings(id: number, req: IncomingMessage): Promise<Record<string, unknown> | undefined> {
  try {
    const answer = await httpGet(`${ratingsBase}/ratings/${id}`, propagatedHeaders(req), ratingsTimeoutMs);
    if (answer.status !== 200) {
      console.error(`reviews: ratings answered ${answer.status}`);
      return undefined;
    }
    const body = JSON.parse(answer.body) as { ratings?: unknown };
    return typeof body.ratings === 'object' && body.ratings !== null ? (body.ratings as Record<string, unknown>) : undefined;
  } catch (err) {
    console.error(`reviews: ratings: ${(err as Error).message}`);
    return undefined;
  }
}

serve('reviews', listenPort(9080), async (req, res, url) => {
  if (url.pathname === '/health') return sendJson(res, 200, { status: 'Reviews is healthy' });
  const m = /^\/reviews\/([^/]*)$/.exec(url.pathname);
  if (!m || req.method !== 'GET') return sendJson(res, 404, { error: 'not found: use GET /reviews/<product id>' });
  const raw = decodeURIComponent(m[1] ?? '');
  if (!/^-?\d+$/.test(raw)) return sendJson(res, 400, { error: 'please provide numeric product id' });
  const id = Number(raw);

  const ratings = ratingsEnabled ? await fetchRatings(id, req) : undefined;
  const reviews = REVIEWS.map((r) => {
    if (!ratingsEnabled) return { ...r };
    const stars = ratings?.[r.reviewer];
    const rating: Rating = typeof stars === 'number' ? { stars, color: starColor } : { error: RATINGS_UNAVAILABLE };
    return { ...r, rating };
  });
  res.setHeader('x-bookinfo-reviews-version', version);
  return sendJson(res, 200, { id: String(id), podname: podName, clustername: clusterName, reviews });
});
