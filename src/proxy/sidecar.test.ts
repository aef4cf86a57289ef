import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isMeshError } from '../common/errors.ts';
import { parseConcurrency } from './sidecar.ts';
import { mergeClusterViews } from './workers/primary.ts';
import type { ClusterDescription } from './upstream/cluster-manager.ts';

describe('--concurrency', () => {
  it('unset is one process; 0 is one worker per CPU, as Envoy\'s; N is N', () => {
    assert.equal(parseConcurrency(undefined), 1);
    assert.equal(parseConcurrency('0', () => 6), 6);
    assert.equal(parseConcurrency(0, () => 1), 1);
    assert.equal(parseConcurrency('2'), 2);
    assert.equal(parseConcurrency(' 3 '), 3);
  });

  it('refuses what is not a whole number with MESH_ERR_PROXY_WORKERS', () => {
    for (const bad of ['-1', '1.5', 'two', '4096']) {
      assert.throws(() => parseConcurrency(bad), (e: unknown) => isMeshError(e) && e.code === 'MESH_ERR_PROXY_WORKERS' && /concurrency/.test(e.message), bad);
    }
  });
});

describe('/clusters of several workers', () => {
  const host = (key: string, active: number, ejected: boolean): ClusterDescription['hosts'][number] => ({
    key, healthy: true, ejected, weight: 1, activeRequests: active, locality: {}, priority: 0, healthStatus: 'HEALTHY', outlierCheck: ejected ? 'FAILED' : 'OK', connections: active,
  });
  const view = (a: number, ejected: boolean): ClusterDescription[] => [{
    name: 'outbound|80||echo', type: 'EDS', lbPolicy: 'ROUND_ROBIN', circuitBreakers: { maxConnections: 1, maxPendingRequests: 1, maxRequests: 1, maxRetries: 1 },
    hosts: [host('10.0.0.1:80', a, false), host('10.0.0.2:80', 1, ejected)],
    stats: { upstream_rq_total: a } as ClusterDescription['stats'],
  }];

  it('adds up requests and connections; a host is ejected when any worker ejected it', () => {
    const [c] = mergeClusterViews([view(2, false), view(3, true)]);
    assert.ok(c);
    assert.equal(c.hosts[0]?.activeRequests, 5);
    assert.equal(c.hosts[0]?.connections, 5);
    assert.equal(c.hosts[1]?.ejected, true);
    assert.equal(c.hosts[1]?.outlierCheck, 'FAILED');
    assert.equal(c.stats.upstream_rq_total, 5);
  });
});
