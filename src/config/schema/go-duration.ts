// Parses durations the way Go's time.ParseDuration does ("1h2m3.5s", "300ms", "-1.5h", "0"), which
// is what Kubernetes' CEL duration() accepts. Fails by returning an error string, never by throwing.

const NS_PER_UNIT: Readonly<Record<string, bigint>> = {
  ns: 1n,
  us: 1_000n,
  'µs': 1_000n, // U+00B5 micro sign
  'μs': 1_000n, // U+03BC Greek small letter mu
  ms: 1_000_000n,
  s: 1_000_000_000n,
  m: 60_000_000_000n,
  h: 3_600_000_000_000n,
};

const MAX_NS = (1n << 63n) - 1n;

export type GoDurationResult = { ok: true; nanos: bigint } | { ok: false; error: string };

/** Nanoseconds of a Go duration string, or why it is not one. */
export function parseGoDuration(text: string): GoDurationResult {
  const bad = (why: string): GoDurationResult => ({ ok: false, error: `invalid duration ${JSON.stringify(text)}: ${why}` });
  let s = text;
  let negative = false;
  if (s.startsWith('-') || s.startsWith('+')) {
    negative = s.startsWith('-');
    s = s.slice(1);
  }
  if (s === '0') return { ok: true, nanos: 0n };
  if (s === '') return bad('empty');
  let total = 0n;
  while (s !== '') {
    const num = /^(\d*)(?:\.(\d*))?/.exec(s);
    const whole = num?.[1] ?? '';
    const frac = num?.[2] ?? '';
    if (whole === '' && frac === '') return bad('expected a number such as 1, 1.5 or .5');
    s = s.slice(num?.[0].length ?? 0);
    const unitMatch = /^[^\d.]*/.exec(s);
    const unit = unitMatch?.[0] ?? '';
    if (unit === '') return bad('missing unit; units are ns, us, ms, s, m, h');
    const perUnit = NS_PER_UNIT[unit];
    if (perUnit === undefined) return bad(`unknown unit ${JSON.stringify(unit)}; units are ns, us, ms, s, m, h`);
    s = s.slice(unit.length);
    let value = BigInt(whole === '' ? '0' : whole) * perUnit;
    if (frac !== '') {
      // Go truncates the fraction to whole nanoseconds.
      const scale = 10n ** BigInt(frac.length);
      value += (BigInt(frac) * perUnit) / scale;
    }
    total += value;
    if (total > MAX_NS) return bad('out of range');
  }
  return { ok: true, nanos: negative ? -total : total };
}
