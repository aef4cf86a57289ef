// Envoy's host selection above the picker: hosts grouped by priority; each priority's share of traffic
// follows its health (healthy/total × overprovisioning factor, spilling to the next priority); a
// priority whose healthy share is below healthy_panic_threshold balances over all its hosts (panic);
// optionally a locality by effective weight first. Built per host-set/health change; O(1) per pick
// plus the picker's cost. Returns undefined when no host can be used.

import type { HostImpl } from '../host.ts';
import type { LbContext } from '../types.ts';
import { hashString } from '../hash.ts';
import { EdfScheduler } from './weighted.ts';
import type { HostPicker, LoadBalancer, PickerFactory, PickerOptions } from './types.ts';

export interface PriorityLbOptions extends PickerOptions {
  /** Percent; 0 disables panic mode (no host when none is healthy). */
  readonly panicThreshold: number;
  /** Percent (Envoy's default 140). */
  readonly overprovisioningFactor: number;
  /** Choose a locality by load_balancing_weight × availability before choosing a host. */
  readonly localityWeighted: boolean;
  readonly localityWeights: ReadonlyMap<string, number>;
  /** The picker uses the request's hash (RING_HASH, MAGLEV): the hash also chooses the priority. */
  readonly hashing: boolean;
}

interface Level {
  readonly priority: number;
  readonly hosts: HostImpl[];
  readonly healthy: HostImpl[];
  panic: boolean;
  healthyPicker: HostPicker | undefined;
  allPicker: HostPicker | undefined;
  localities: EdfScheduler<{ picker: HostPicker; hosts: HostImpl[] }> | undefined;
}

/** A host-set snapshot's balancer; rebuild it (cheap) whenever hosts, weights or health change. */
export class PriorityLoadBalancer implements LoadBalancer {
  private readonly levels: Level[] = [];
  /** Cumulative percent of traffic per level (last is 100 unless there is no usable host). */
  private readonly cumLoad: number[] = [];
  private usable = true;
  private lastSource: readonly HostImpl[] = [];

  constructor(hosts: readonly HostImpl[], private readonly factory: PickerFactory, private readonly opts: PriorityLbOptions) {
    const byPriority = new Map<number, Level>();
    for (const h of hosts) {
      let l = byPriority.get(h.priority);
      if (!l) byPriority.set(h.priority, (l = { priority: h.priority, hosts: [], healthy: [], panic: false, healthyPicker: undefined, allPicker: undefined, localities: undefined }));
      l.hosts.push(h);
      if (h.healthy()) l.healthy.push(h);
    }
    this.levels = [...byPriority.values()].sort((a, b) => a.priority - b.priority);
    this.computeLoad();
    for (const l of this.levels) {
      if (!l.panic && l.healthy.length > 0) {
        l.healthyPicker = factory(l.healthy, opts);
        if (opts.localityWeighted && !opts.hashing) l.localities = this.localityScheduler(l);
      }
    }
  }

  /** Per level: its share of traffic (percent) and whether it is in panic; for describe() and tests. */
  get load(): Array<{ priority: number; percent: number; panic: boolean; healthy: number; total: number }> {
    return this.levels.map((l, i) => ({ priority: l.priority, percent: (this.cumLoad[i] ?? 0) - (this.cumLoad[i - 1] ?? 0), panic: l.panic, healthy: l.healthy.length, total: l.hosts.length }));
  }

  private computeLoad(): void {
    const op = this.opts.overprovisioningFactor;
    const health = this.levels.map((l) => (l.hosts.length === 0 ? 0 : Math.min(100, Math.floor((op * l.healthy.length) / l.hosts.length))));
    const normalizedTotal = Math.min(100, health.reduce((a, b) => a + b, 0));
    const loads: number[] = [];
    if (normalizedTotal === 0) {
      // Nothing healthy anywhere: total panic spreads traffic by host count (unless panic is disabled).
      if (this.opts.panicThreshold === 0) {
        this.usable = false;
        return;
      }
      const total = this.levels.reduce((a, l) => a + l.hosts.length, 0);
      let left = 100;
      for (const l of this.levels) {
        const share = Math.min(left, Math.floor((100 * l.hosts.length) / Math.max(1, total)));
        loads.push(share);
        left -= share;
        l.panic = true;
      }
      if (loads.length > 0) loads[0] = (loads[0] ?? 0) + left;
    } else {
      let left = 100;
      for (const h of health) {
        const share = Math.min(left, Math.floor((h * 100) / normalizedTotal));
        loads.push(share);
        left -= share;
      }
      const first = loads.findIndex((x) => x > 0);
      if (first >= 0) loads[first] = (loads[first] ?? 0) + left;
      let totalPanic = true;
      for (const l of this.levels) {
        l.panic = normalizedTotal === 100 ? false : l.hosts.length > 0 && (100 * l.healthy.length) / l.hosts.length < this.opts.panicThreshold;
        totalPanic &&= l.panic;
      }
      if (totalPanic) {
        // Every priority in panic: Envoy then also spreads by host count.
        const total = this.levels.reduce((a, l) => a + l.hosts.length, 0);
        let rest = 100;
        loads.length = 0;
        for (const l of this.levels) {
          const share = Math.min(rest, Math.floor((100 * l.hosts.length) / Math.max(1, total)));
          loads.push(share);
          rest -= share;
        }
        if (loads.length > 0) loads[0] = (loads[0] ?? 0) + rest;
      }
    }
    let cum = 0;
    for (const x of loads) this.cumLoad.push((cum += x));
    this.usable = this.levels.length > 0;
  }

  private localityScheduler(l: Level): Level['localities'] {
    const groups = new Map<string, { all: number; healthy: HostImpl[] }>();
    for (const h of l.hosts) {
      let g = groups.get(h.localityKey);
      if (!g) groups.set(h.localityKey, (g = { all: 0, healthy: [] }));
      g.all++;
      if (h.healthy()) g.healthy.push(h);
    }
    const items: Array<{ picker: HostPicker; hosts: HostImpl[] }> = [];
    const weights: number[] = [];
    for (const [key, g] of groups) {
      const w = this.opts.localityWeights.get(key) ?? 0;
      const availability = Math.min(1, (this.opts.overprovisioningFactor * g.healthy.length) / (100 * g.all));
      if (w * availability <= 0 || g.healthy.length === 0) continue;
      items.push({ picker: this.factory(g.healthy, this.opts), hosts: g.healthy });
      weights.push(w * availability);
    }
    if (items.length === 0) return undefined;
    return new EdfScheduler(items, weights, Math.floor(this.opts.random.next() * items.length));
  }

  private pickOnce(ctx: LbContext, hash: number | undefined, attempt: number): HostImpl | undefined {
    let level = this.levels[0];
    if (this.levels.length > 1) {
      const r = hash !== undefined ? (hash + attempt) % 100 : Math.floor(this.opts.random.next() * 100);
      for (let i = 0; i < this.levels.length; i++) {
        if (r < (this.cumLoad[i] ?? 0)) {
          level = this.levels[i];
          break;
        }
      }
    }
    if (!level) return undefined;
    if (level.panic) {
      level.allPicker ??= this.factory(level.hosts, this.opts);
      this.lastSource = level.hosts;
      return level.allPicker.pick(ctx, hash, attempt);
    }
    if (level.localities) {
      const loc = level.localities.pick();
      if (loc) {
        this.lastSource = loc.hosts;
        return loc.picker.pick(ctx, hash, attempt);
      }
    }
    this.lastSource = level.healthy;
    return level.healthyPicker?.pick(ctx, hash, attempt);
  }

  chooseHost(ctx: LbContext): HostImpl | undefined {
    if (!this.usable) return undefined;
    const hash = this.opts.hashing && ctx.hashKey !== undefined ? hashString(ctx.hashKey) : undefined;
    const first = this.pickOnce(ctx, hash, 0);
    const prev = ctx.previousHosts;
    if (!first || !prev || prev.size === 0 || !prev.has(first.key)) return first;
    for (let attempt = 1; attempt <= 3; attempt++) {
      const h = this.pickOnce(ctx, hash, attempt);
      if (h && !prev.has(h.key)) return h;
    }
    // Retry path only: any host of the last list not tried yet, else the first choice.
    for (const h of this.lastSource) if (!prev.has(h.key)) return h;
    return first;
  }
}
