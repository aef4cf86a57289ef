// MAGLEV: a lookup table of table_size (prime, default 65537) entries filled by each host's permutation
// (offset and skip from two hashes of its key), weighted hosts claiming entries in proportion to weight;
// a request goes to table[hash % size] (O(1)). No hash → random; a retry re-hashes to avoid tried hosts.

import { hashString, mix32 } from '../hash.ts';
import type { HostImpl } from '../host.ts';
import type { LbContext } from '../types.ts';
import type { HostPicker, PickerFactory, PickerOptions } from './types.ts';

export class MaglevPicker implements HostPicker {
  readonly table: Int32Array;
  private readonly random: PickerOptions['random'];

  constructor(private readonly hosts: readonly HostImpl[], opts: Pick<PickerOptions, 'random' | 'maglevTableSize'>) {
    this.random = opts.random;
    const m = opts.maglevTableSize;
    const n = hosts.length;
    this.table = new Int32Array(m).fill(-1);
    if (n === 0) return;
    const offset = new Float64Array(n);
    const skip = new Float64Array(n);
    const next = new Float64Array(n);
    const credit = new Float64Array(n);
    const rel = new Float64Array(n);
    let maxW = 0;
    for (const h of hosts) maxW = Math.max(maxW, h.weight);
    hosts.forEach((h, i) => {
      offset[i] = hashString(h.key, 0x4d41474c) % m;
      skip[i] = (hashString(h.key, 0x534b4950) % (m - 1)) + 1;
      next[i] = offset[i] ?? 0;
      rel[i] = h.weight / maxW;
    });
    let filled = 0;
    while (filled < m) {
      for (let i = 0; i < n && filled < m; i++) {
        credit[i] = (credit[i] ?? 0) + (rel[i] ?? 0);
        if ((credit[i] ?? 0) < 1 - 1e-12) continue;
        credit[i] = (credit[i] ?? 0) - 1;
        // The host's next preferred entry that is still free.
        let pos = next[i] ?? 0;
        while ((this.table[pos] ?? 0) >= 0) pos = (pos + (skip[i] ?? 1)) % m;
        this.table[pos] = i;
        next[i] = (pos + (skip[i] ?? 1)) % m;
        filled++;
      }
    }
  }

  pick(ctx: LbContext, hash: number | undefined, attempt: number): HostImpl | undefined {
    const m = this.table.length;
    if (this.hosts.length === 0) return undefined;
    let h = hash ?? Math.floor(this.random.next() * 4294967296);
    if (attempt > 0) h = mix32((h + Math.imul(attempt, 0x9e3779b9)) | 0);
    const first = this.hosts[this.table[h % m] ?? 0];
    const prev = ctx.previousHosts;
    if (!prev || !first || !prev.has(first.key)) return first;
    // Re-hash a few times before settling for a host already tried.
    for (let i = 1; i <= 8; i++) {
      const cand = this.hosts[this.table[mix32((h + Math.imul(i, 0x9e3779b9)) | 0) % m] ?? 0];
      if (cand && !prev.has(cand.key)) return cand;
    }
    return first;
  }
}

export const maglev: PickerFactory = (hosts, opts) => new MaglevPicker(hosts, opts);
