// %START_TIME(...)% formatting: a strftime-style pattern (absl/Envoy flavour, always UTC) compiled once into
// piece writers, with the seconds part cached per second. Unknown specifiers are copied through; never throws.

const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];

const pad2 = (n: number): string => (n < 10 ? `0${n}` : String(n));
const pad3 = (n: number): string => (n < 10 ? `00${n}` : n < 100 ? `0${n}` : String(n));

/** Fraction of a second with `digits` digits (1..9), from millisecond precision, truncated like absl. */
function fraction(ms: number, digits: number): string {
  const milli = ((ms % 1000) + 1000) % 1000;
  return (pad3(milli) + '000000').slice(0, digits);
}

type Piece = { subSecond: false; write: (d: Date) => string } | { subSecond: true; write: (d: Date, ms: number) => string };

function secondPiece(write: (d: Date) => string): Piece {
  return { subSecond: false, write };
}

function dayOfYear(d: Date): number {
  return Math.floor((d.getTime() - Date.UTC(d.getUTCFullYear(), 0, 1)) / 86_400_000) + 1;
}

/** Envoy's default %START_TIME%: ISO 8601 UTC with milliseconds, e.g. 2024-01-02T03:04:05.678Z. */
export function defaultStartTime(): (ms: number) => string {
  let cachedSecond = Number.NaN;
  let cachedPrefix = '';
  return (ms: number): string => {
    const second = Math.floor(ms / 1000);
    if (second !== cachedSecond) {
      cachedSecond = second;
      cachedPrefix = new Date(second * 1000).toISOString().slice(0, 20); // "YYYY-MM-DDTHH:MM:SS."
    }
    return `${cachedPrefix}${pad3(ms - second * 1000)}Z`;
  };
}

function parsePieces(pattern: string): Piece[] {
  const pieces: Piece[] = [];
  let literal = '';
  const flush = (): void => {
    if (literal) {
      const text = literal;
      pieces.push(secondPiece(() => text));
      literal = '';
    }
  };
  const add = (p: Piece): void => {
    flush();
    pieces.push(p);
  };
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c !== '%' || i + 1 >= pattern.length) {
      literal += c;
      continue;
    }
    const next = pattern[i + 1] ?? '';
    // %Nf: N fractional digits; %E<N>S / %E*S: seconds with N (or 3, our precision) fractional digits.
    if (next >= '1' && next <= '9' && pattern[i + 2] === 'f') {
      const digits = Number(next);
      add({ subSecond: true, write: (_d, ms) => fraction(ms, digits) });
      i += 2;
      continue;
    }
    if (next === 'E') {
      const n = pattern[i + 2] ?? '';
      if (pattern[i + 3] === 'S' && ((n >= '1' && n <= '9') || n === '*')) {
        const digits = n === '*' ? 3 : Number(n);
        add({ subSecond: true, write: (d, ms) => `${pad2(d.getUTCSeconds())}.${fraction(ms, digits)}` });
        i += 3;
        continue;
      }
      if (n === 'z') {
        add(secondPiece(() => '+00:00'));
        i += 2;
        continue;
      }
      literal += '%E';
      i += 1;
      continue;
    }
    i += 1;
    switch (next) {
      case 'Y': add(secondPiece((d) => String(d.getUTCFullYear()))); break;
      case 'y': add(secondPiece((d) => pad2(d.getUTCFullYear() % 100))); break;
      case 'm': add(secondPiece((d) => pad2(d.getUTCMonth() + 1))); break;
      case 'd': add(secondPiece((d) => pad2(d.getUTCDate()))); break;
      case 'e': add(secondPiece((d) => String(d.getUTCDate()).padStart(2, ' '))); break;
      case 'j': add(secondPiece((d) => pad3(dayOfYear(d)))); break;
      case 'H': add(secondPiece((d) => pad2(d.getUTCHours()))); break;
      case 'I': add(secondPiece((d) => pad2(d.getUTCHours() % 12 || 12))); break;
      case 'p': add(secondPiece((d) => (d.getUTCHours() < 12 ? 'AM' : 'PM'))); break;
      case 'M': add(secondPiece((d) => pad2(d.getUTCMinutes()))); break;
      case 'S': add(secondPiece((d) => pad2(d.getUTCSeconds()))); break;
      case 'a': add(secondPiece((d) => (DAYS[d.getUTCDay()] ?? '').slice(0, 3))); break;
      case 'A': add(secondPiece((d) => DAYS[d.getUTCDay()] ?? '')); break;
      case 'b': case 'h': add(secondPiece((d) => (MONTHS[d.getUTCMonth()] ?? '').slice(0, 3))); break;
      case 'B': add(secondPiece((d) => MONTHS[d.getUTCMonth()] ?? '')); break;
      case 'u': add(secondPiece((d) => String(d.getUTCDay() || 7))); break;
      case 'w': add(secondPiece((d) => String(d.getUTCDay()))); break;
      case 'F': add(secondPiece((d) => `${d.getUTCFullYear()}-${pad2(d.getUTCMonth() + 1)}-${pad2(d.getUTCDate())}`)); break;
      case 'T': add(secondPiece((d) => `${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}:${pad2(d.getUTCSeconds())}`)); break;
      case 'R': add(secondPiece((d) => `${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}`)); break;
      case 'D': add(secondPiece((d) => `${pad2(d.getUTCMonth() + 1)}/${pad2(d.getUTCDate())}/${pad2(d.getUTCFullYear() % 100)}`)); break;
      case 'z': add(secondPiece(() => '+0000')); break;
      case 'Z': add(secondPiece(() => 'UTC')); break;
      case 's': add(secondPiece((d) => String(Math.floor(d.getTime() / 1000)))); break;
      case 'f': add({ subSecond: true, write: (_d, ms) => fraction(ms, 9) }); break;
      case 'n': literal += '\n'; break;
      case 't': literal += '\t'; break;
      case '%': literal += '%'; break;
      default: literal += `%${next}`;
    }
  }
  flush();
  return pieces;
}

/**
 * Compiles a START_TIME pattern into a formatter of epoch milliseconds. No pattern (or an empty one)
 * gives Envoy's default, ISO 8601 with milliseconds. Output that does not depend on the sub-second
 * part is computed once per second.
 */
export function compileTimeFormat(pattern: string | undefined): (ms: number) => string {
  if (!pattern) return defaultStartTime();
  const pieces = parsePieces(pattern);
  const parts: string[] = pieces.map(() => '');
  let cachedSecond = Number.NaN;
  let cachedDate = new Date(0);
  let cachedText = '';
  const subSecond = pieces.some((p) => p.subSecond);
  return (ms: number): string => {
    const second = Math.floor(ms / 1000);
    if (second !== cachedSecond) {
      cachedSecond = second;
      cachedDate = new Date(second * 1000);
      pieces.forEach((p, i) => {
        if (!p.subSecond) parts[i] = p.write(cachedDate);
      });
      cachedText = parts.join('');
    }
    if (!subSecond) return cachedText;
    let s = '';
    for (let i = 0; i < pieces.length; i++) {
      const p = pieces[i];
      s += p === undefined ? '' : p.subSecond ? p.write(cachedDate, ms) : (parts[i] ?? '');
    }
    return s;
  };
}
