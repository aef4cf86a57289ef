// ROUND_ROBIN: exact rotation for equal weights, exact and interleaved shares for unequal weights.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { makeHosts, pickerOptions, tally } from '../test-support.ts';
import { roundRobin } from './round-robin.ts';

describe('round robin', () => {
  it('rotates through equal-weight hosts: every host exactly once per round', () => {
    const hosts = makeHosts(4);
    const p = roundRobin(hosts, pickerOptions(11));
    for (let round = 0; round < 25; round++) {
      const seen = new Set(Array.from({ length: 4 }, () => p.pick({}, undefined, 0)!.key));
      assert.equal(seen.size, 4);
    }
  });

  it('gives weights 1:2:5 exactly their share over 8000 picks, interleaved (no host twice in a row beyond its weight)', () => {
    const hosts = makeHosts(3, [1, 2, 5]);
    const p = roundRobin(hosts, pickerOptions(5));
    const seq = Array.from({ length: 8000 }, () => p.pick({}, undefined, 0)!.key);
    const counts = tally(seq.length, (i) => ({ key: seq[i]! }));
    assert.deepEqual(hosts.map((h) => counts.get(h.key)), [1000, 2000, 5000]);
    // Smooth: in every window of 8 picks each host appears its weight ± 1 times.
    for (let i = 0; i + 8 <= 800; i += 8) {
      const w = tally(8, (j) => ({ key: seq[i + j]! }));
      hosts.forEach((h) => assert.ok(Math.abs((w.get(h.key) ?? 0) - h.weight) <= 1, `window ${i}: ${h.key} ${w.get(h.key)}`));
    }
  });

  it('starts at a random host so that proxies do not move in lockstep', () => {
    const hosts = makeHosts(10);
    const firsts = new Set(Array.from({ length: 20 }, (_, s) => roundRobin(hosts, pickerOptions(s + 1)).pick({}, undefined, 0)!.key));
    assert.ok(firsts.size >= 5, `only ${firsts.size} distinct first picks`);
  });
});
