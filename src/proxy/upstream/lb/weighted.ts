// Weighted choice structures built once per host-set change: Vose's alias table (O(1) weighted random
// draw) and an earliest-deadline-first scheduler (O(log n) smooth weighted round robin); never throw.

/** Draws index i with probability weights[i] / sum(weights) from one uniform number. */
export class AliasTable {
  private readonly prob: Float64Array;
  private readonly alias: Int32Array;
  readonly size: number;

  constructor(weights: readonly number[]) {
    const n = weights.length;
    this.size = n;
    this.prob = new Float64Array(n);
    this.alias = new Int32Array(n);
    let sum = 0;
    for (const w of weights) sum += w;
    const scaled = weights.map((w) => (sum > 0 ? (w * n) / sum : 1));
    const small: number[] = [];
    const large: number[] = [];
    scaled.forEach((p, i) => (p < 1 ? small : large).push(i));
    while (small.length > 0 && large.length > 0) {
      const s = small.pop() as number;
      const l = large.pop() as number;
      this.prob[s] = scaled[s] ?? 0;
      this.alias[s] = l;
      const rest = (scaled[l] ?? 0) + (scaled[s] ?? 0) - 1;
      scaled[l] = rest;
      (rest < 1 ? small : large).push(l);
    }
    for (const i of large) this.prob[i] = 1;
    for (const i of small) this.prob[i] = 1; // rounding leftovers
  }

  /** `u` uniform in [0, 1). */
  sample(u: number): number {
    const x = u * this.size;
    const i = Math.min(this.size - 1, Math.floor(x));
    return x - i < (this.prob[i] ?? 1) ? i : (this.alias[i] ?? i);
  }
}

interface Entry<T> {
  item: T;
  step: number;
  deadline: number;
  seq: number;
}

/**
 * Earliest deadline first: each item is due every 1/weight; the next pick is the item with the earliest
 * deadline (ties by insertion order). Over any window, item i is picked weight_i/sum times, interleaved.
 */
export class EdfScheduler<T> {
  private readonly heap: Array<Entry<T>>;

  /** `skip`: picks made up front so that many proxies started together do not move in lockstep. */
  constructor(items: readonly T[], weights: readonly number[], skip = 0) {
    this.heap = items.map((item, i) => {
      const step = 1 / Math.max(weights[i] ?? 1, 1e-9);
      return { item, step, deadline: step, seq: i };
    });
    for (let i = (this.heap.length >> 1) - 1; i >= 0; i--) this.down(i);
    for (let i = 0; i < skip; i++) this.pick();
  }

  get size(): number {
    return this.heap.length;
  }

  pick(): T | undefined {
    const top = this.heap[0];
    if (!top) return undefined;
    top.deadline += top.step;
    this.down(0);
    return top.item;
  }

  private less(a: Entry<T>, b: Entry<T>): boolean {
    return a.deadline < b.deadline || (a.deadline === b.deadline && a.seq < b.seq);
  }

  private down(i: number): void {
    const h = this.heap;
    const n = h.length;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < n && this.less(h[l] as Entry<T>, h[m] as Entry<T>)) m = l;
      if (r < n && this.less(h[r] as Entry<T>, h[m] as Entry<T>)) m = r;
      if (m === i) return;
      const t = h[i] as Entry<T>;
      h[i] = h[m] as Entry<T>;
      h[m] = t;
      i = m;
    }
  }
}
