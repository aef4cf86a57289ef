// A log-linear latency histogram in microseconds (HdrHistogram's layout: 2048 exact buckets, then 1024 linear sub-buckets per power of two, so under 0.1% error up to 35 minutes); pure, never throws (values out of range are clamped).

const SUB = 1024;
const EXACT = 2 * SUB;
/** 2^31 µs (35.8 min): larger values are counted here. */
const MAX_US = 2 ** 31 - 1;
const BUCKETS = EXACT + (31 - 11) * SUB;

function indexOf(us: number): number {
  const v = Math.min(MAX_US, Math.max(0, Math.round(us)));
  if (v < EXACT) return v;
  // v >> shift lands in [SUB, 2*SUB): shift = bit length - 11
  const shift = 31 - Math.clz32(v) - 10;
  return EXACT + (shift - 1) * SUB + ((v >>> shift) - SUB);
}

/** The middle of bucket `i`, in µs. */
function valueOf(i: number): number {
  if (i < EXACT) return i;
  const shift = Math.floor((i - EXACT) / SUB) + 1;
  const low = (SUB + ((i - EXACT) % SUB)) * 2 ** shift;
  return low + 2 ** shift / 2;
}

export interface Summary {
  count: number;
  /** Milliseconds. */
  min: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
}

export class Histogram {
  readonly counts = new Float64Array(BUCKETS);
  count = 0;
  #sum = 0;
  #min = Infinity;
  #max = 0;

  record(us: number): void {
    this.counts[indexOf(us)]! += 1;
    this.count++;
    this.#sum += us;
    if (us < this.#min) this.#min = us;
    if (us > this.#max) this.#max = us;
  }

  reset(): void {
    this.counts.fill(0);
    this.count = 0;
    this.#sum = 0;
    this.#min = Infinity;
    this.#max = 0;
  }

  add(other: Histogram): void {
    for (let i = 0; i < BUCKETS; i++) this.counts[i]! += other.counts[i]!;
    this.count += other.count;
    this.#sum += other.#sum;
    this.#min = Math.min(this.#min, other.#min);
    this.#max = Math.max(this.#max, other.#max);
  }

  /** The value at percentile p (0-100), µs: the bucket holding the ceil(p% x count)-th value (nearest rank). */
  percentile(p: number): number {
    if (this.count === 0) return NaN;
    const rank = Math.max(1, Math.ceil((p / 100) * this.count));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) return Math.min(Math.max(valueOf(i), this.#min), this.#max);
    }
    return this.#max;
  }

  summary(): Summary {
    const ms = (us: number): number => us / 1000;
    return {
      count: this.count,
      min: this.count ? ms(this.#min) : NaN,
      mean: this.count ? ms(this.#sum / this.count) : NaN,
      p50: ms(this.percentile(50)),
      p90: ms(this.percentile(90)),
      p99: ms(this.percentile(99)),
      p999: ms(this.percentile(99.9)),
      max: this.count ? ms(this.#max) : NaN,
    };
  }
}
