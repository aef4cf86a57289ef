// RING_HASH (Ketama-style consistent hashing): each host owns points on a 32-bit ring in proportion to
// its weight, sized as Envoy does (the lightest host gets its share of minimum_ring_size, at most
// maximum_ring_size in all); a request goes to the first point at or after its hash (binary search,
// O(log n)). No hash → a random point. Retries walk clockwise past hosts already tried.
//
// Like Envoy's, the ring is re-sized when hosts come or go (1024 points over 4 hosts is 256 each, over
// 3 it is 342), so removing one of n hosts moves its 1/n of the keys plus a few percent of the others.

import { hashString } from '../hash.ts';
import type { HostImpl } from '../host.ts';
import type { LbContext } from '../types.ts';
import type { HostPicker, PickerFactory, PickerOptions } from './types.ts';

const HOST_BITS = 2 ** 21;

export class RingHashPicker implements HostPicker {
  readonly points: Uint32Array;
  private readonly owners: Int32Array;

  private readonly random: PickerOptions['random'];

  constructor(private readonly hosts: readonly HostImpl[], opts: Pick<PickerOptions, 'random' | 'minRingSize' | 'maxRingSize'>) {
    this.random = opts.random;
    let total = 0;
    for (const h of hosts) total += h.weight;
    let minNorm = 1;
    for (const h of hosts) minNorm = Math.min(minNorm, h.weight / total);
    const scale = Math.min(Math.ceil(minNorm * opts.minRingSize) / minNorm, opts.maxRingSize);
    const counts: number[] = [];
    let target = 0;
    let made = 0;
    for (const h of hosts) {
      target += (scale * h.weight) / total;
      const n = Math.max(0, Math.ceil(target - 1e-9) - made);
      counts.push(n);
      made += n;
    }
    // Pack (hash, host index) into one float so one numeric sort orders the ring.
    const packed = new Float64Array(made);
    let k = 0;
    hosts.forEach((h, idx) => {
      const n = counts[idx] ?? 0;
      for (let i = 0; i < n; i++) packed[k++] = hashString(`${h.key}_${i}`) * HOST_BITS + idx;
    });
    packed.sort();
    this.points = new Uint32Array(made);
    this.owners = new Int32Array(made);
    for (let i = 0; i < made; i++) {
      const v = packed[i] ?? 0;
      const idx = v % HOST_BITS;
      this.points[i] = (v - idx) / HOST_BITS;
      this.owners[i] = idx;
    }
  }

  /** Index of the first point >= h (wrapping to 0). */
  private find(h: number): number {
    let lo = 0;
    let hi = this.points.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.points[mid] ?? 0) < h) lo = mid + 1;
      else hi = mid;
    }
    return lo === this.points.length ? 0 : lo;
  }

  pick(ctx: LbContext, hash: number | undefined): HostImpl | undefined {
    const n = this.points.length;
    if (n === 0) return this.hosts[0];
    const h = hash ?? Math.floor(this.random.next() * 4294967296);
    let i = this.find(h);
    const first = this.hosts[this.owners[i] ?? 0];
    const prev = ctx.previousHosts;
    if (!prev || prev.size === 0 || !first || !prev.has(first.key)) return first;
    for (let step = 1; step < n; step++) {
      i = i + 1 === n ? 0 : i + 1;
      const cand = this.hosts[this.owners[i] ?? 0];
      if (cand && !prev.has(cand.key)) return cand;
    }
    return first;
  }
}

export const ringHash: PickerFactory = (hosts, opts) => new RingHashPicker(hosts, opts);
