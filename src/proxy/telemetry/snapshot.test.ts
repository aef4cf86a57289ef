import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mergeSnapshots, snapshotFamilies } from './snapshot.ts';
import { StatsRegistry, statLines } from './stats.ts';
import { MetricFamily, renderFamilies } from './prometheus.ts';

const REQUESTS = { name: 'istio_requests_total', type: 'counter', help: 'Requests', labels: ['reporter', 'response_code'] } as const;
const DURATION = { name: 'istio_request_duration_milliseconds', type: 'histogram', help: 'Duration', labels: ['reporter'], buckets: [1, 10] } as const;

function worker(requests: number, durations: number[], activeConnections: number, clusters: number): { stats: StatsRegistry; metrics: MetricFamily[] } {
  const stats = new StatsRegistry();
  stats.gauge('envoy_cluster_upstream_cx_active', { cluster_name: 'c' }).set(activeConnections);
  stats.gauge('envoy_cluster_manager_active_clusters').set(clusters);
  const r = new MetricFamily(REQUESTS);
  r.get(['destination', '200']).inc(requests);
  const d = new MetricFamily(DURATION);
  for (const v of durations) d.get(['destination']).observe(v);
  return { stats, metrics: [r, d] };
}

describe('merging the workers\' stats', () => {
  const a = worker(3, [0.5, 5], 2, 7);
  const b = worker(4, [50], 1, 7);

  it('adds up counters and histograms, whichever worker counted them', () => {
    const overIpc = JSON.parse(JSON.stringify(snapshotFamilies(b.metrics))) as ReturnType<typeof snapshotFamilies>;
    const merged = mergeSnapshots([snapshotFamilies(a.metrics), overIpc]);
    const text = renderFamilies(merged);
    assert.match(text, /^istio_requests_total\{reporter="destination",response_code="200"\} 7$/m);
    assert.match(text, /^istio_request_duration_milliseconds_bucket\{reporter="destination",le="1"\} 1$/m);
    assert.match(text, /^istio_request_duration_milliseconds_bucket\{reporter="destination",le="10"\} 2$/m);
    assert.match(text, /^istio_request_duration_milliseconds_bucket\{reporter="destination",le="\+Inf"\} 3$/m);
    assert.match(text, /^istio_request_duration_milliseconds_sum\{reporter="destination"\} 55.5$/m);
  });

  it('adds up gauges of what each worker holds, takes the largest of config every worker has', () => {
    const merged = mergeSnapshots([snapshotFamilies(a.stats.families()), snapshotFamilies(b.stats.families())]);
    const lines = new Map(statLines(merged).map((l) => [l.name, l.value]));
    assert.equal(lines.get('cluster.c.upstream_cx_active'), 3);
    assert.equal(lines.get('cluster_manager.active_clusters'), 7);
  });

  it('drops the gauges of a worker that died, keeps its counters', () => {
    const wire = JSON.parse(JSON.stringify(snapshotFamilies(a.stats.families()))) as ReturnType<typeof snapshotFamilies>;
    const kept = mergeSnapshots([wire], { keepGauges: false });
    assert.equal(kept.some((f) => f.def.type === 'gauge'), false);
    assert.ok(kept.some((f) => f.def.name === 'envoy_cluster_manager_cds_update_success'), 'counters stay');
  });

  it('a registry takes the merged families in place of its own (the primary\'s scrape)', () => {
    const primary = new StatsRegistry();
    primary.gauge('envoy_server_concurrency').set(2);
    primary.replace(mergeSnapshots([snapshotFamilies(a.stats.families()), snapshotFamilies(b.stats.families())]).filter((f) => f.def.name !== 'envoy_server_concurrency'));
    assert.match(primary.render(), /^envoy_server_concurrency 2$/m);
    assert.match(primary.render(), /^envoy_cluster_upstream_cx_active\{cluster_name="c"\} 3$/m);
  });
});
