// Test fixture run inside a pod namespace: GETs argv[2] argv[3] times, each on a new connection (timeout argv[4] ms),
// and prints one JSON line { counts: { <body>: n }, errors: [{ code, ms }] }. Exits 0.

import { get } from 'node:http';

const [url = '', countText = '1', timeoutText = '3000'] = process.argv.slice(2);

function once(): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = get(url, { agent: false, timeout: Number(timeoutText) }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve(body));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })));
    req.on('error', reject);
  });
}

const counts: Record<string, number> = {};
const errors: Array<{ code: string; ms: number }> = [];
for (let i = 0; i < Number(countText); i++) {
  const started = Date.now();
  try {
    const body = await once();
    counts[body] = (counts[body] ?? 0) + 1;
  } catch (err) {
    errors.push({ code: (err as NodeJS.ErrnoException).code ?? (err as Error).message, ms: Date.now() - started });
  }
}
process.stdout.write(`${JSON.stringify({ counts, errors })}\n`);
