// RING_HASH through the priority balancer: a key sticks to its host; removing one of four hosts moves all
// of its keys and few others (~1/4 + Envoy's ring re-sizing); adding a fifth moves keys only onto it;
// no key means a random host.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { HostImpl } from '../host.ts';
import { makeHosts, pickerOptions, tally } from '../test-support.ts';
import { PriorityLoadBalancer } from './priority.ts';
import { RingHashPicker, ringHash } from './ring-hash.ts';

function lb(hosts: HostImpl[], seed = 1, minRingSize = 1024): PriorityLoadBalancer {
  return new PriorityLoadBalancer(hosts, ringHash, { ...pickerOptions(seed, { minRingSize }), panicThreshold: 50, overprovisioningFactor: 140, localityWeighted: false, localityWeights: new Map(), hashing: true });
}

const KEYS = Array.from({ length: 10_000 }, (_, i) => `session-${i}`);

function mapping(b: PriorityLoadBalancer): string[] {
  return KEYS.map((k) => b.chooseHost({ hashKey: k })!.key);
}

describe('ring hash', () => {
  it('sends a key to the same host every time, and after a rebuild with the same hosts', () => {
    const hosts = makeHosts(5);
    const a = lb(hosts, 1);
    const first = mapping(a);
    assert.deepEqual(mapping(a), first);
    assert.deepEqual(mapping(lb(hosts, 99)), first, 'the ring depends on the hosts, not on the random seed');
  });

  it('when one of 4 hosts goes, all of its keys move and ~90% of the others stay', () => {
    const hosts = makeHosts(4);
    const before = mapping(lb(hosts));
    const removed = hosts[2]!.key;
    const after = mapping(lb(hosts.filter((h) => h.key !== removed)));
    let moved = 0;
    let othersMoved = 0;
    KEYS.forEach((_, i) => {
      if (before[i] === after[i]) return;
      moved++;
      if (before[i] !== removed) othersMoved++;
    });
    const removedKeys = before.filter((k) => k === removed).length;
    assert.equal(after.filter((k) => k === removed).length, 0);
    assert.ok(Math.abs(removedKeys / KEYS.length - 0.25) < 0.06, `removed host had ${removedKeys / KEYS.length}`);
    assert.ok(othersMoved / (KEYS.length - removedKeys) < 0.15, `${othersMoved} keys of remaining hosts moved`);
    assert.ok(moved / KEYS.length < 0.25 + 0.12, `moved ${moved / KEYS.length}`);
  });

  it('moves about a fifth of the keys (plus re-sizing) when a fifth host joins', () => {
    const hosts = makeHosts(5);
    const before = mapping(lb(hosts.slice(0, 4)));
    const after = mapping(lb(hosts));
    let moved = 0;
    KEYS.forEach((_, i) => {
      if (before[i] !== after[i]) moved++;
    });
    assert.ok(moved / KEYS.length > 0.14 && moved / KEYS.length < 0.2 + 0.12, `moved ${moved / KEYS.length}`);
  });

  it('builds at least minimum_ring_size points, more for uneven weights, and balances within a point at 16384', () => {
    assert.ok(new RingHashPicker(makeHosts(3), pickerOptions(1)).points.length >= 1024);
    // Weights 1:9 → the light host gets ceil(0.1 × 1024) = 103 points, the heavy one 927.
    assert.equal(new RingHashPicker(makeHosts(2, [1, 9]), pickerOptions(1)).points.length, 1030);
    assert.equal(new RingHashPicker(makeHosts(4), pickerOptions(1, { minRingSize: 100_000, maxRingSize: 4096 })).points.length, 4096);
    const hosts = makeHosts(4);
    const big = lb(hosts, 1, 16384);
    const counts = tally(KEYS.length, (i) => big.chooseHost({ hashKey: KEYS[i] }));
    for (const h of hosts) assert.ok(Math.abs((counts.get(h.key) ?? 0) / KEYS.length - 0.25) < 0.02, `${h.key}: ${counts.get(h.key)}`);
  });

  it('without a hash key picks a random host', () => {
    const hosts = makeHosts(4);
    const b = lb(hosts, 3);
    const counts = tally(8000, () => b.chooseHost({}));
    assert.equal(counts.size, 4);
    for (const h of hosts) assert.ok((counts.get(h.key) ?? 0) > 1500);
  });
});
