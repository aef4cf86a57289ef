// LEAST_REQUEST: with even load it spreads like random; a host with requests in flight gets only what
// two draws both landing on it give (about 1/n² of the traffic).

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { makeHosts, pickerOptions, tally } from '../test-support.ts';
import { leastRequest } from './least-request.ts';

describe('least request (power of two choices)', () => {
  it('spreads evenly when no host is busier', () => {
    const hosts = makeHosts(4);
    const p = leastRequest(hosts, pickerOptions(4));
    const counts = tally(40_000, () => p.pick({}, undefined, 0));
    for (const h of hosts) assert.ok(Math.abs((counts.get(h.key) ?? 0) / 40_000 - 0.25) < 0.015);
  });

  it('steers away from a busy host: it gets about 1/16 with 4 hosts', () => {
    const hosts = makeHosts(4);
    hosts[0]!.activeRequests = 10;
    const p = leastRequest(hosts, pickerOptions(8));
    const busy = (tally(40_000, () => p.pick({}, undefined, 0)).get(hosts[0]!.key) ?? 0) / 40_000;
    assert.ok(Math.abs(busy - 1 / 16) < 0.01, `busy host share ${busy}`);
  });

  it('with the live counters, concurrent requests balance across hosts', () => {
    const hosts = makeHosts(3);
    const p = leastRequest(hosts, pickerOptions(12));
    // Open 300 requests without closing any: the spread stays tight.
    for (let i = 0; i < 300; i++) p.pick({}, undefined, 0)!.activeRequests++;
    const loads = hosts.map((h) => h.activeRequests);
    // Power of two choices keeps the gap to a few requests (random picks would drift by ~15).
    assert.ok(Math.max(...loads) - Math.min(...loads) <= 6, `loads ${loads.join(',')}`);
  });

  it('compares load per unit of weight: a weight-3 host with 2 in flight beats a weight-1 host with 1', () => {
    const hosts = makeHosts(2, [3, 1]);
    hosts[0]!.activeRequests = 2;
    hosts[1]!.activeRequests = 1;
    const p = leastRequest(hosts, pickerOptions(1, { choiceCount: 8 }));
    const counts = tally(1000, () => p.pick({}, undefined, 0));
    assert.ok((counts.get(hosts[0]!.key) ?? 0) > 900);
  });
});
