// The shared suite every host picker runs: it returns only hosts of its list, honours weights over
// many picks (by key for the hash pickers), and steps around hosts already tried when it can.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { makeHosts, pickerOptions, tally } from '../test-support.ts';
import { leastRequest } from './least-request.ts';
import { maglev } from './maglev.ts';
import { PriorityLoadBalancer } from './priority.ts';
import { random } from './random.ts';
import { ringHash } from './ring-hash.ts';
import { roundRobin } from './round-robin.ts';
import type { PickerFactory } from './types.ts';

const pickers: Array<[string, PickerFactory, boolean]> = [
  ['ROUND_ROBIN', roundRobin, false],
  ['LEAST_REQUEST', leastRequest, false],
  ['RANDOM', random, false],
  ['RING_HASH', ringHash, true],
  ['MAGLEV', maglev, true],
];

for (const [name, factory, hashing] of pickers) {
  describe(`${name} picker (shared suite)`, () => {
    it('returns only hosts of its list', () => {
      const hosts = makeHosts(5);
      const p = factory(hosts, pickerOptions());
      for (let i = 0; i < 500; i++) assert.ok(hosts.includes(p.pick({}, hashing ? (i * 2654435761) >>> 0 : undefined, 0)!));
    });

    it('sends each host its weight share (1:2:3 within 2 points, 4 for a 1024-point ring)', () => {
      const hosts = makeHosts(3, [1, 2, 3]);
      const p = factory(hosts, pickerOptions(7));
      const n = 30_000;
      // Hash pickers: distinct keys spread by weight; the others: successive picks.
      const counts = tally(n, (i) => p.pick({}, hashing ? (Math.imul(i + 1, 2654435761) ^ (i >>> 3)) >>> 0 : undefined, 0));
      const shares = hosts.map((h) => (counts.get(h.key) ?? 0) / n);
      const tolerance = hashing ? 0.04 : 0.02;
      [1 / 6, 2 / 6, 3 / 6].forEach((want, i) => assert.ok(Math.abs((shares[i] ?? 0) - want) < tolerance, `${name} host ${i}: share ${shares[i]} want ${want}`));
    });

    it('steps around a host already tried when others exist (through the priority balancer)', () => {
      const hosts = makeHosts(3);
      const lb = new PriorityLoadBalancer(hosts, factory, { ...pickerOptions(3), panicThreshold: 50, overprovisioningFactor: 140, localityWeighted: false, localityWeights: new Map(), hashing });
      for (let i = 0; i < 300; i++) {
        const key = `user-${i}`;
        const first = lb.chooseHost({ hashKey: key })!;
        const again = lb.chooseHost({ hashKey: key, previousHosts: new Set([first.key]) })!;
        assert.notEqual(again.key, first.key);
        const third = lb.chooseHost({ hashKey: key, previousHosts: new Set([first.key, again.key]) })!;
        assert.ok(third.key !== first.key && third.key !== again.key);
        // Everything tried: it still answers rather than failing the retry.
        assert.ok(lb.chooseHost({ hashKey: key, previousHosts: new Set(hosts.map((h) => h.key)) }));
      }
    });
  });
}
