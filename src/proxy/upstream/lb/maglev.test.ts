// MAGLEV: every host owns its share of the 65537-entry table (±1 entry), a key sticks to its host,
// removing one of five hosts moves its keys and barely any others, weights scale the table share.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { HostImpl } from '../host.ts';
import { makeHosts, pickerOptions } from '../test-support.ts';
import { MaglevPicker, maglev } from './maglev.ts';
import { PriorityLoadBalancer } from './priority.ts';

function lb(hosts: HostImpl[], seed = 1): PriorityLoadBalancer {
  return new PriorityLoadBalancer(hosts, maglev, { ...pickerOptions(seed), panicThreshold: 50, overprovisioningFactor: 140, localityWeighted: false, localityWeights: new Map(), hashing: true });
}

const KEYS = Array.from({ length: 10_000 }, (_, i) => `10.1.${i >> 8}.${i & 255}`);

function tableShares(p: MaglevPicker, n: number): number[] {
  const counts = new Array<number>(n).fill(0);
  for (const i of p.table) counts[i] = (counts[i] ?? 0) + 1;
  return counts;
}

describe('maglev', () => {
  it('fills the table evenly: each of 7 hosts owns 65537/7 entries ± 1', () => {
    const p = new MaglevPicker(makeHosts(7), pickerOptions(1));
    const counts = tableShares(p, 7);
    assert.equal(counts.reduce((a, b) => a + b, 0), 65537);
    for (const c of counts) assert.ok(Math.abs(c - 65537 / 7) <= 1, `entries ${c}`);
  });

  it('gives weights 1:3 a quarter and three quarters of the table', () => {
    const p = new MaglevPicker(makeHosts(2, [1, 3]), pickerOptions(1));
    const [a, b] = tableShares(p, 2);
    assert.ok(Math.abs(a! / 65537 - 0.25) < 0.001 && Math.abs(b! / 65537 - 0.75) < 0.001);
  });

  it('sends a key to the same host every time and after a rebuild', () => {
    const hosts = makeHosts(5);
    const a = lb(hosts, 1);
    const b = lb(hosts, 2);
    for (const k of KEYS) assert.equal(a.chooseHost({ hashKey: k }), b.chooseHost({ hashKey: k }));
  });

  it('when one of 5 hosts goes, its keys move and at most 3% of the others do', () => {
    const hosts = makeHosts(5);
    const full = lb(hosts);
    const before = KEYS.map((k) => full.chooseHost({ hashKey: k })!.key);
    const gone = hosts[1]!.key;
    const after = lb(hosts.filter((h) => h.key !== gone));
    let others = 0;
    let othersMoved = 0;
    KEYS.forEach((k, i) => {
      const now = after.chooseHost({ hashKey: k })!.key;
      assert.notEqual(now, gone);
      if (before[i] === gone) return;
      others++;
      if (now !== before[i]) othersMoved++;
    });
    assert.ok(othersMoved / others < 0.03, `${othersMoved}/${others} keys of remaining hosts moved`);
  });
});
