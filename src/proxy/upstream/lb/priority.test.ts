// Priority and health above the picker: ejected/unhealthy hosts get nothing, Istio's failover
// priorities take traffic in proportion to health (70/30 when half of P0 is down), panic mode
// balances over every host below healthy_panic_threshold, locality weights split traffic by locality.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { HostImpl } from '../host.ts';
import { makeHost, makeHosts, pickerOptions, tally } from '../test-support.ts';
import { PriorityLoadBalancer, type PriorityLbOptions } from './priority.ts';
import { random } from './random.ts';
import { roundRobin } from './round-robin.ts';

function lb(hosts: HostImpl[], extra: Partial<PriorityLbOptions> = {}): PriorityLoadBalancer {
  return new PriorityLoadBalancer(hosts, roundRobin, { ...pickerOptions(17), panicThreshold: 50, overprovisioningFactor: 140, localityWeighted: false, localityWeights: new Map(), hashing: false, ...extra });
}

function shares(b: PriorityLoadBalancer, n = 20_000): Map<string, number> {
  const c = tally(n, () => b.chooseHost({}));
  return new Map([...c].map(([k, v]) => [k, v / n]));
}

describe('priority load balancer', () => {
  it('skips an ejected host and an EDS-unhealthy one', () => {
    const hosts = makeHosts(5);
    hosts[0]!.ejected = true;
    hosts[1]!.healthStatus = 'UNHEALTHY';
    const s = shares(lb(hosts));
    assert.equal(s.get(hosts[0]!.key), undefined);
    assert.equal(s.get(hosts[1]!.key), undefined);
    assert.equal(s.size, 3);
  });

  it('keeps all traffic on priority 0 while it is healthy, 70/30 when half of it is down, all on 1 when it is gone', () => {
    const hosts = [makeHost('10.0.0.1', 80), makeHost('10.0.0.2', 80), makeHost('10.0.1.1', 80, { priority: 1 }), makeHost('10.0.1.2', 80, { priority: 1 })];
    const p1 = (s: Map<string, number>): number => (s.get('10.0.1.1:80') ?? 0) + (s.get('10.0.1.2:80') ?? 0);
    assert.equal(p1(shares(lb(hosts))), 0);
    hosts[0]!.ejected = true;
    const half = shares(lb(hosts));
    assert.ok(Math.abs(p1(half) - 0.3) < 0.02, `priority 1 share ${p1(half)}`);
    assert.ok(Math.abs((half.get('10.0.0.2:80') ?? 0) - 0.7) < 0.02);
    hosts[1]!.ejected = true;
    assert.ok(Math.abs(p1(shares(lb(hosts))) - 1) < 1e-9);
  });

  it('enters panic below healthy_panic_threshold: 1 of 3 healthy (33% < 50%) balances over all 3', () => {
    const hosts = makeHosts(3);
    hosts[0]!.ejected = true;
    hosts[1]!.healthStatus = 'UNHEALTHY';
    const b = lb(hosts);
    assert.equal(b.load[0]?.panic, true);
    const s = shares(b, 30_000);
    for (const h of hosts) assert.ok(Math.abs((s.get(h.key) ?? 0) - 1 / 3) < 0.02);
    // 2 of 3 healthy (66%) is not panic: the unhealthy host gets nothing.
    hosts[1]!.healthStatus = 'HEALTHY';
    assert.equal(shares(lb(hosts)).get(hosts[0]!.key), undefined);
  });

  it('with every host down: panic balances over all of them; healthy_panic_threshold 0 gives no host (503 UH)', () => {
    const hosts = makeHosts(2);
    for (const h of hosts) h.ejected = true;
    assert.equal(shares(lb(hosts)).size, 2);
    assert.equal(lb(hosts, { panicThreshold: 0 }).chooseHost({}), undefined);
    // A lower threshold keeps a partly healthy set out of panic.
    const three = makeHosts(3);
    three[0]!.ejected = true;
    three[1]!.ejected = true;
    assert.equal(lb(three, { panicThreshold: 30 }).load[0]?.panic, false);
  });

  it('with locality weights 1 and 3, the lone host of the heavy locality gets 75%', () => {
    const a1 = makeHost('10.0.0.1', 80, { locality: { region: 'r', zone: 'a' } });
    const a2 = makeHost('10.0.0.2', 80, { locality: { region: 'r', zone: 'a' } });
    const b1 = makeHost('10.0.0.3', 80, { locality: { region: 'r', zone: 'b' } });
    const weights = new Map([
      [a1.localityKey, 1],
      [b1.localityKey, 3],
    ]);
    const s = shares(lb([a1, a2, b1], { localityWeighted: true, localityWeights: weights }));
    assert.ok(Math.abs((s.get(b1.key) ?? 0) - 0.75) < 0.01);
    assert.ok(Math.abs((s.get(a1.key) ?? 0) - 0.125) < 0.01);
    // Without locality_weighted_lb_config the locality weights are ignored, as in Envoy.
    assert.ok(Math.abs((shares(lb([a1, a2, b1])).get(b1.key) ?? 0) - 1 / 3) < 0.01);
    // Half of locality a down: its availability is 0.7, so it weighs 0.7 against 3.
    a2.ejected = true;
    const degraded = shares(lb([a1, a2, b1], { localityWeighted: true, localityWeights: weights, factory: random } as Partial<PriorityLbOptions>));
    assert.ok(Math.abs((degraded.get(a1.key) ?? 0) - 0.7 / 3.7) < 0.01, `a1 ${degraded.get(a1.key)}`);
  });
});
