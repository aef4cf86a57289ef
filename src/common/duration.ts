// Durations as Istio writes them ("1h2m3.5s", "500ms", "10us") and as Envoy's proto3 JSON wants them
// ("3723.500s"). parseDuration returns undefined for text that is not a Go-style duration.

const UNIT_MS: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1, us: 0.001, 'µs': 0.001, ns: 0.000001 };
const PART = /(\d+(?:\.\d+)?|\.\d+)(h|ms|m|s|us|µs|ns)/y;

/** Milliseconds in a Go-style duration ("1h2m", "1.5s", "100ms"); undefined when malformed. "0" is 0. */
export function parseDuration(text: string): number | undefined {
  if (text === '0') return 0;
  if (text === '') return undefined;
  let i = 0;
  let neg = false;
  if (text[0] === '-' || text[0] === '+') {
    neg = text[0] === '-';
    i = 1;
  }
  let total = 0;
  let parts = 0;
  while (i < text.length) {
    PART.lastIndex = i;
    const m = PART.exec(text);
    if (!m || m.index !== i) return undefined;
    total += Number(m[1]) * (UNIT_MS[m[2] ?? ''] ?? NaN);
    i = PART.lastIndex;
    parts++;
  }
  if (parts === 0 || !Number.isFinite(total)) return undefined;
  return neg ? -total : total;
}

/** Envoy's JSON Duration ("3s", "0.250s") for a number of milliseconds. */
export function protoDuration(ms: number): string {
  const s = Math.round(ms) / 1000;
  return `${Number.isInteger(s) ? s.toString() : s.toFixed(3).replace(/0+$/, '')}s`;
}

/** Milliseconds of Envoy's JSON Duration ("3s", "0.250s"); undefined when malformed. */
export function fromProtoDuration(text: string): number | undefined {
  const m = /^(-?\d+(?:\.\d+)?)s$/.exec(text);
  return m ? Number(m[1]) * 1000 : undefined;
}
