// Outlier detection with a fake clock: consecutive 5xx eject a host at once and the interval sweep
// returns it after base_ejection_time × times ejected; gateway errors, local-origin failures (split or
// not), max_ejection_percent and the enforcing percentages behave as Envoy's.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FakeClock, seededRandom } from './clock.ts';
import type { ClusterImpl } from './cluster.ts';
import { createClusterManager } from './cluster-manager.ts';
import { staticCluster, tally } from './test-support.ts';

function cluster(hosts: number, od: Record<string, unknown>, extra: Record<string, unknown> = {}): { c: ClusterImpl; clock: FakeClock } {
  const clock = new FakeClock(1_000_000);
  const m = createClusterManager({ clock, random: seededRandom(5) });
  m.setClusters([staticCluster('od', Array.from({ length: hosts }, (_, i) => 9001 + i), { lb_policy: 'ROUND_ROBIN', outlier_detection: od, ...extra })]);
  return { c: m.get('od')!, clock };
}

function picked(c: ClusterImpl): Map<string, number> {
  return tally(400, () => c.chooseHost({}));
}

const A = '127.0.0.1:9001';

describe('outlier detection', () => {
  it('ejects after consecutive_5xx, returns after base_ejection_time, and doubles the time on the second ejection', () => {
    const { c, clock } = cluster(3, { consecutive_5xx: 3, interval: '10s', base_ejection_time: '30s', max_ejection_percent: 100 });
    const a = c.hosts[0]!;
    c.report(a, { kind: 'response', status: 503 });
    c.report(a, { kind: 'response', status: 500 });
    c.report(a, { kind: 'response', status: 200 }); // a success resets the count
    c.report(a, { kind: 'response', status: 503 });
    c.report(a, { kind: 'response', status: 503 });
    assert.equal(a.ejected, false);
    c.report(a, { kind: 'response', status: 502 });
    assert.equal(a.ejected, true);
    assert.equal(picked(c).get(A), undefined, 'an ejected host gets no traffic');
    assert.equal(c.describe().hosts[0]?.outlierCheck, 'FAILED');
    assert.equal(c.describe().outlier?.ejections_enforced_consecutive_5xx, 1);

    clock.advance(20_000);
    assert.equal(a.ejected, true);
    clock.advance(10_000); // the sweep at +30s returns it
    assert.equal(a.ejected, false);
    assert.equal(c.describe().hosts[0]?.outlierCheck, 'OK');
    assert.ok((picked(c).get(A) ?? 0) > 100);

    for (let i = 0; i < 3; i++) c.report(a, { kind: 'response', status: 500 });
    assert.equal(a.ejected, true);
    clock.advance(40_000);
    assert.equal(a.ejected, true, 'second ejection lasts 2 × 30s');
    clock.advance(20_000);
    assert.equal(a.ejected, false);
  });

  it('counts connect failures, resets and timeouts as 5xx when errors are not split', () => {
    const { c } = cluster(2, { consecutive_5xx: 3, max_ejection_percent: 100 });
    const a = c.hosts[0]!;
    c.report(a, { kind: 'connect_failure' });
    c.report(a, { kind: 'reset' });
    c.report(a, { kind: 'timeout' });
    assert.equal(a.ejected, true);
  });

  it('consecutive_gateway_failure counts only 502/503/504 (Istio sets enforcing_consecutive_5xx 0 then)', () => {
    const { c } = cluster(2, { consecutive_gateway_failure: 2, enforcing_consecutive_gateway_failure: 100, enforcing_consecutive_5xx: 0, max_ejection_percent: 100 });
    const [a, b] = [c.hosts[0]!, c.hosts[1]!];
    for (let i = 0; i < 10; i++) c.report(a, { kind: 'response', status: 500 });
    assert.equal(a.ejected, false, '500 is not a gateway error');
    c.report(b, { kind: 'response', status: 503 });
    c.report(b, { kind: 'connect_failure' });
    assert.equal(b.ejected, true);
  });

  it('split_external_local_origin_errors: local failures have their own counter, a response resets it', () => {
    const { c } = cluster(2, { split_external_local_origin_errors: true, consecutive_local_origin_failure: 2, consecutive_5xx: 5, max_ejection_percent: 100 });
    const a = c.hosts[0]!;
    c.report(a, { kind: 'connect_failure' });
    c.report(a, { kind: 'response', status: 503 });
    c.report(a, { kind: 'reset' });
    assert.equal(a.ejected, false);
    c.report(a, { kind: 'timeout' });
    assert.equal(a.ejected, true);
    assert.equal(c.describe().outlier?.ejections_enforced_consecutive_local_origin_failure, 1);
  });

  it('max_ejection_percent 50 of 4 hosts: the third failing host stays in', () => {
    const { c } = cluster(4, { consecutive_5xx: 1, max_ejection_percent: 50 });
    for (const h of c.hosts.slice(0, 3)) c.report(h, { kind: 'response', status: 500 });
    assert.deepEqual(c.hosts.map((h) => h.ejected), [true, true, false, false]);
    assert.equal(c.describe().outlier?.ejections_overflow, 1);
  });

  it('the default 10% ejects nobody among 3 hosts unless always_eject_one_host', () => {
    const plain = cluster(3, { consecutive_5xx: 1 }).c;
    plain.report(plain.hosts[0]!, { kind: 'response', status: 500 });
    assert.equal(plain.hosts[0]!.ejected, false);
    const one = cluster(3, { consecutive_5xx: 1, always_eject_one_host: true }).c;
    one.report(one.hosts[0]!, { kind: 'response', status: 500 });
    one.report(one.hosts[1]!, { kind: 'response', status: 500 });
    assert.deepEqual(one.hosts.map((h) => h.ejected), [true, false, false]);
  });

  it('enforcing_consecutive_5xx 0 detects without ejecting', () => {
    const { c } = cluster(2, { consecutive_5xx: 2, enforcing_consecutive_5xx: 0, max_ejection_percent: 100 });
    c.report(c.hosts[0]!, { kind: 'response', status: 500 });
    c.report(c.hosts[0]!, { kind: 'response', status: 500 });
    assert.equal(c.hosts[0]!.ejected, false);
    assert.equal(c.describe().outlier?.ejections_detected_consecutive_5xx, 1);
  });

  it('with both hosts ejected, panic mode still serves them (healthy_panic_threshold 50)', () => {
    const { c } = cluster(2, { consecutive_5xx: 1, max_ejection_percent: 100 });
    for (const h of c.hosts) c.report(h, { kind: 'response', status: 500 });
    assert.equal(picked(c).size, 2);
    const noPanic = cluster(2, { consecutive_5xx: 1, max_ejection_percent: 100 }, { common_lb_config: { healthy_panic_threshold: { value: 0 } } }).c;
    for (const h of noPanic.hosts) noPanic.report(h, { kind: 'response', status: 500 });
    assert.equal(noPanic.chooseHost({}), undefined);
  });
});
