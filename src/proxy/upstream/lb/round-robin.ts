// ROUND_ROBIN: equal weights rotate through the list from a random start (O(1)); unequal weights use an
// earliest-deadline-first schedule (O(log n)), so each host gets weight/sum of the picks, interleaved.

import type { HostImpl } from '../host.ts';
import { EdfScheduler } from './weighted.ts';
import { allWeightsEqual } from './types.ts';
import type { HostPicker, PickerFactory } from './types.ts';

class RotatingPicker implements HostPicker {
  private next: number;
  constructor(private readonly hosts: readonly HostImpl[], start: number) {
    this.next = start;
  }
  pick(): HostImpl | undefined {
    const n = this.hosts.length;
    if (n === 0) return undefined;
    const h = this.hosts[this.next % n];
    this.next = (this.next + 1) % n;
    return h;
  }
}

class EdfPicker implements HostPicker {
  constructor(private readonly edf: EdfScheduler<HostImpl>) {}
  pick(): HostImpl | undefined {
    return this.edf.pick();
  }
}

export const roundRobin: PickerFactory = (hosts, opts) => {
  const start = Math.floor(opts.random.next() * hosts.length);
  if (allWeightsEqual(hosts)) return new RotatingPicker(hosts, start);
  return new EdfPicker(new EdfScheduler(hosts, hosts.map((h) => h.weight), start));
};
