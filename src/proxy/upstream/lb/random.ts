// RANDOM: a uniform draw over equal weights, else an alias-table draw in proportion to weight; O(1) per
// pick; undefined only for an empty list.

import type { HostImpl } from '../host.ts';
import type { Random } from '../clock.ts';
import { AliasTable } from './weighted.ts';
import { allWeightsEqual } from './types.ts';
import type { HostPicker, PickerFactory } from './types.ts';

/** A weighted random draw over a fixed host list (also the candidate draw of LEAST_REQUEST). */
export class WeightedDraw {
  private readonly alias: AliasTable | undefined;
  constructor(private readonly hosts: readonly HostImpl[], private readonly random: Random) {
    this.alias = allWeightsEqual(hosts) ? undefined : new AliasTable(hosts.map((h) => h.weight));
  }
  draw(): HostImpl | undefined {
    const u = this.random.next();
    if (this.alias) return this.hosts[this.alias.sample(u)];
    return this.hosts[Math.floor(u * this.hosts.length)];
  }
}

class RandomPicker implements HostPicker {
  constructor(private readonly d: WeightedDraw) {}
  pick(): HostImpl | undefined {
    return this.d.draw();
  }
}

export const random: PickerFactory = (hosts, opts) => new RandomPicker(new WeightedDraw(hosts, opts.random));
