// Bookinfo details: GET /details/<id> answers the book's facts (fixed, or from an external book service when ENABLE_EXTERNAL_BOOK_SERVICE=true); a non-numeric id is 400, an unreachable external service 503.

import type { IncomingMessage } from 'node:http';
import { httpGet, listenPort, propagatedHeaders, sendJson, serve } from '../common/app.ts';

const external = process.env.ENABLE_EXTERNAL_BOOK_SERVICE === 'true';
/** Like the real details-v2: DO_NOT_ENCRYPT=true calls the book service over plain HTTP (port 80) so the mesh can originate TLS. */
const plainHttp = process.env.DO_NOT_ENCRYPT === 'true';
/** Ours (the real app has none): where the external book service is, for tests. */
const bookServiceUrl = process.env.BOOK_SERVICE_URL ?? (plainHttp ? 'http://www.googleapis.com:80' : 'https://www.googleapis.com:443');
const EXTERNAL_ISBN = '0486424618';

interface Details {
  id: number;
  author: string;
  year: number | string;
  type: string;
  pages: number;
  publisher: string;
  language: string;
  'ISBN-10': string;
  'ISBN-13': string;
}

function fixedDetails(id: number): Details {
  return {
    id,
    author: 'William Shakespeare',
    year: 1595,
    type: 'paperback',
    pages: 200,
    publisher: 'PublisherA',
    language: 'English',
    'ISBN-10': '1234567890',
    'ISBN-13': '123-1234567890',
  };
}

interface VolumeInfo {
  authors?: string[];
  publishedDate?: string;
  printType?: string;
  pageCount?: number;
  publisher?: string;
  language?: string;
  industryIdentifiers?: { type: string; identifier: string }[];
}

async function externalDetails(id: number, req: IncomingMessage): Promise<Details> {
  const url = `${bookServiceUrl}/books/v1/volumes?q=isbn:${EXTERNAL_ISBN}`;
  const answer = await httpGet(url, propagatedHeaders(req), 5000);
  if (answer.status !== 200) throw new Error(`book service answered ${answer.status}`);
  const parsed = JSON.parse(answer.body) as { items?: { volumeInfo?: VolumeInfo }[] };
  const book = parsed.items?.[0]?.volumeInfo;
  if (!book) throw new Error('book service returned no volume');
  const isbn = (kind: string): string => book.industryIdentifiers?.find((i) => i.type === kind)?.identifier ?? '';
  return {
    id,
    author: book.authors?.[0] ?? 'unknown',
    year: book.publishedDate ?? 'unknown',
    type: book.printType === 'BOOK' ? 'paperback' : 'unknown',
    pages: book.pageCount ?? 0,
    publisher: book.publisher ?? 'unknown',
    language: book.language === 'en' ? 'English' : 'unknown',
    'ISBN-10': isbn('ISBN_10'),
    'ISBN-13': isbn('ISBN_13'),
  };
}

serve('details', listenPort(9080), async (req, res, url) => {
  if (url.pathname === '/health') return sendJson(res, 200, { status: 'Details is healthy' });
  const m = /^\/details\/([^/]*)$/.exec(url.pathname);
  if (!m || req.method !== 'GET') return sendJson(res, 404, { error: 'not found: use GET /details/<product id>' });
  const raw = decodeURIComponent(m[1] ?? '');
  if (!/^-?\d+$/.test(raw)) return sendJson(res, 400, { error: 'please provide numeric product id' });
  const id = Number(raw);
  if (!external) return sendJson(res, 200, fixedDetails(id));
  try {
    return sendJson(res, 200, await externalDetails(id, req));
  } catch (err) {
    console.error(`details: external book service: ${(err as Error).message}`);
    return sendJson(res, 503, { error: `could not fetch the book details: ${(err as Error).message}` });
  }
});
