// RANDOM: uniform over equal weights, weight-proportional otherwise, repeatable with a seeded Random.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { makeHosts, pickerOptions, tally } from '../test-support.ts';
import { random } from './random.ts';

describe('random', () => {
  it('spreads 40000 picks evenly over 4 hosts (each 25% ± 1.5)', () => {
    const hosts = makeHosts(4);
    const p = random(hosts, pickerOptions(9));
    const counts = tally(40_000, () => p.pick({}, undefined, 0));
    for (const h of hosts) assert.ok(Math.abs((counts.get(h.key) ?? 0) / 40_000 - 0.25) < 0.015);
  });

  it('follows weights 10:1 (about 91% / 9%)', () => {
    const hosts = makeHosts(2, [10, 1]);
    const p = random(hosts, pickerOptions(2));
    const counts = tally(22_000, () => p.pick({}, undefined, 0));
    assert.ok(Math.abs((counts.get(hosts[0]!.key) ?? 0) / 22_000 - 10 / 11) < 0.01);
  });

  it('repeats its sequence for the same seed', () => {
    const hosts = makeHosts(5);
    const a = random(hosts, pickerOptions(42));
    const b = random(hosts, pickerOptions(42));
    for (let i = 0; i < 100; i++) assert.equal(a.pick({}, undefined, 0), b.pick({}, undefined, 0));
  });
});
