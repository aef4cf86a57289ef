import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { findSamples, parseExposition } from '../../../test/helpers/prometheus.ts';
import { newStreamInfo, type StreamInfo, type WorkloadMetadata } from '../stream-info.ts';
import { DURATION_BUCKETS_MS, ISTIO_HTTP_LABELS, ISTIO_TCP_LABELS, IstioMetrics, serviceFromClusterName } from './metrics.ts';
import { Histogram, MetricFamily, escapeLabelValue } from './prometheus.ts';
import { StatsRegistry, formatStatsText } from './stats.ts';

const productpage: WorkloadMetadata = {
  workload: 'productpage-v1', namespace: 'default', app: 'productpage', version: 'v1', canonicalService: 'productpage',
  canonicalRevision: 'v1', principal: 'spiffe://cluster.local/ns/default/sa/bookinfo-productpage', cluster: 'Kubernetes',
};
const reviews: WorkloadMetadata = {
  workload: 'reviews-v2', namespace: 'default', app: 'reviews', version: 'v2', canonicalService: 'reviews',
  canonicalRevision: 'v2', principal: 'spiffe://cluster.local/ns/default/sa/bookinfo-reviews', cluster: 'Kubernetes',
};
const T0 = 1_700_000_000_000;

function call(direction: 'inbound' | 'outbound', extra: Partial<StreamInfo> = {}): StreamInfo {
  const info = newStreamInfo(direction, 'http', T0);
  return Object.assign(info, {
    endTime: T0 + 7, method: 'GET', responseCode: 200, bytesReceived: 0, bytesSent: 358, upstreamCluster: 'outbound|9080|v2|reviews.default.svc.cluster.local',
    ...extra,
  });
}

const reviewsLabels = {
  source_workload: 'productpage-v1', source_canonical_service: 'productpage', source_canonical_revision: 'v1', source_workload_namespace: 'default',
  source_principal: 'spiffe://cluster.local/ns/default/sa/bookinfo-productpage', source_app: 'productpage', source_version: 'v1', source_cluster: 'Kubernetes',
  destination_workload: 'reviews-v2', destination_workload_namespace: 'default', destination_principal: 'spiffe://cluster.local/ns/default/sa/bookinfo-reviews',
  destination_app: 'reviews', destination_version: 'v2', destination_service: 'reviews.default.svc.cluster.local', destination_canonical_service: 'reviews',
  destination_canonical_revision: 'v2', destination_service_name: 'reviews', destination_service_namespace: 'default', destination_cluster: 'Kubernetes',
  request_protocol: 'http', response_code: '200', grpc_response_status: '', response_flags: '-',
};

describe('Istio metrics', () => {
  it('source reporter (outbound, mTLS): every label, in Istio\'s order, with the peer from StreamInfo.destination', () => {
    const m = new IstioMetrics(productpage);
    m.recordHttp(call('outbound', { destination: reviews }));
    m.recordHttp(call('outbound', { destination: reviews, endTime: T0 + 30 }));
    const text = m.render();
    const exp = parseExposition(text);
    const [s] = findSamples(exp, 'istio_requests_total');
    assert.deepEqual(s, { name: 'istio_requests_total', labels: { reporter: 'source', ...reviewsLabels, connection_security_policy: 'unknown' }, value: 2 });
    assert.deepEqual(Object.keys(s.labels), [...ISTIO_HTTP_LABELS], 'label order');
    assert.equal(exp.families.get('istio_requests_total')?.type, 'counter');
    assert.equal(exp.families.get('istio_request_duration_milliseconds')?.type, 'histogram');
    const buckets = findSamples(exp, 'istio_request_duration_milliseconds_bucket');
    assert.deepEqual(buckets.map((b) => b.labels.le), [...DURATION_BUCKETS_MS.map(String), '+Inf']);
    assert.deepEqual(buckets.map((b) => b.value).slice(0, 6), [0, 0, 0, 1, 1, 2], '7 ms in le=10, 30 ms in le=50');
    assert.equal(findSamples(exp, 'istio_request_duration_milliseconds_sum')[0]?.value, 37);
    assert.equal(findSamples(exp, 'istio_response_bytes_bucket', { le: '1000' })[0]?.value, 2);
    assert.equal(findSamples(exp, 'istio_request_bytes_bucket', { le: '1' })[0]?.value, 2, '0 bytes fall in the first bucket');
    assert.ok(text.includes('istio_requests_total{reporter="source",source_workload="productpage-v1",'));
  });

  it('destination reporter (inbound): peer from StreamInfo.source, mutual_tls, gRPC status and message counts', () => {
    const m = new IstioMetrics(reviews);
    m.recordHttp(call('inbound', {
      source: productpage, connectionSecurityPolicy: 'mutual_tls', upstreamCluster: 'inbound|9080||', responseFlags: [],
      destinationService: { host: 'reviews.default.svc.cluster.local', name: 'reviews', namespace: 'default' },
      requestHeader: (n) => (n === 'content-type' ? 'application/grpc' : undefined), responseTrailer: (n) => (n === 'grpc-status' ? '14' : undefined),
      grpcRequestMessages: 1, grpcResponseMessages: 3,
    }));
    const exp = parseExposition(m.render());
    const labels = { reporter: 'destination', ...reviewsLabels, request_protocol: 'grpc', grpc_response_status: '14', connection_security_policy: 'mutual_tls' };
    assert.deepEqual(findSamples(exp, 'istio_requests_total'), [{ name: 'istio_requests_total', labels, value: 1 }]);
    assert.deepEqual(findSamples(exp, 'istio_request_messages_total').map((s) => s.value), [1]);
    assert.deepEqual(findSamples(exp, 'istio_response_messages_total').map((s) => s.value), [3]);
  });

  it('unknown peers, no mTLS, flags and the Passthrough/BlackHole naming', () => {
    const m = new IstioMetrics(productpage);
    const info = call('outbound', { upstreamCluster: 'PassthroughCluster', authority: 'httpbin.org:80', responseCode: 503, endTime: T0 + 1 });
    info.responseFlags.push('UF', 'URX');
    m.recordHttp(info);
    m.recordHttp(call('inbound', { upstreamCluster: 'inbound|9080||', authority: 'productpage:9080', endTime: T0 + 1 }));
    const exp = parseExposition(m.render());
    const [out] = findSamples(exp, 'istio_requests_total', { reporter: 'source' });
    assert.deepEqual(out?.labels, {
      reporter: 'source', source_workload: 'productpage-v1', source_canonical_service: 'productpage', source_canonical_revision: 'v1', source_workload_namespace: 'default',
      source_principal: 'unknown', source_app: 'productpage', source_version: 'v1', source_cluster: 'Kubernetes', destination_workload: 'unknown',
      destination_workload_namespace: 'unknown', destination_principal: 'unknown', destination_app: 'unknown', destination_version: 'unknown',
      destination_service: 'httpbin.org', destination_canonical_service: 'unknown', destination_canonical_revision: 'unknown',
      destination_service_name: 'PassthroughCluster', destination_service_namespace: 'unknown', destination_cluster: 'unknown',
      request_protocol: 'http', response_code: '503', grpc_response_status: '', response_flags: 'UF,URX', connection_security_policy: 'unknown',
    });
    const [inb] = findSamples(exp, 'istio_requests_total', { reporter: 'destination' });
    assert.equal(inb?.labels.source_workload, 'unknown');
    assert.equal(inb?.labels.destination_principal, 'unknown', 'no mTLS: our own identity is not claimed');
    assert.equal(inb?.labels.connection_security_policy, 'none');
    assert.equal(inb?.labels.destination_service, 'productpage');
    assert.deepEqual(serviceFromClusterName('outbound|443||httpbin.org'), ['httpbin.org', 'httpbin.org', 'unknown']);
    assert.equal(serviceFromClusterName('inbound|9080||'), null);
  });

  it('TCP: opened, byte deltas reported periodically, closed with the final flags; no response_code label', () => {
    const m = new IstioMetrics(productpage);
    const info = newStreamInfo('outbound', 'tcp', T0);
    Object.assign(info, { upstreamCluster: 'outbound|3306||mysql.db.svc.cluster.local', destination: { workload: 'mysql-v1', namespace: 'db' } });
    m.recordTcpOpen(info);
    info.bytesReceived = 100;
    info.bytesSent = 40;
    m.recordTcpBytes(info);
    info.bytesReceived = 150;
    info.bytesSent = 1040;
    info.responseFlags.push('UC');
    m.recordTcpClose(info);
    const exp = parseExposition(m.render());
    const opened = findSamples(exp, 'istio_tcp_connections_opened_total');
    assert.deepEqual(Object.keys(opened[0]?.labels ?? {}), [...ISTIO_TCP_LABELS]);
    assert.equal(opened[0]?.labels.request_protocol, 'tcp');
    assert.equal(opened[0]?.labels.destination_service_name, 'mysql');
    assert.equal(opened[0]?.labels.destination_service_namespace, 'db');
    assert.equal(opened[0]?.value, 1);
    // Bytes before the flag appeared are on the '-' series, the rest on 'UC'; both add up.
    const sum = (name: string): number => findSamples(exp, name).reduce((a, s) => a + s.value, 0);
    assert.equal(sum('istio_tcp_received_bytes_total'), 150);
    assert.equal(sum('istio_tcp_sent_bytes_total'), 1040);
    assert.deepEqual(findSamples(exp, 'istio_tcp_connections_closed_total').map((s) => [s.labels.response_flags, s.value]), [['UC', 1]]);
  });

  it('streams through a cluster (labels cached per cluster, peer and code) count in the same series as labels computed in full', () => {
    const grpcHeader = (n: string): string | undefined => (n === 'content-type' ? 'application/grpc' : undefined);
    const grpcStatus = (n: string): string | undefined => (n === 'grpc-status' ? '14' : undefined);
    const streams: Array<Partial<StreamInfo>> = [
      { destination: reviews },
      { destination: reviews, endTime: T0 + 40 },
      { destination: reviews, responseCode: 503, responseFlags: ['UF', 'URX'] },
      { destination: productpage, responseCode: 404 },
      { destination: reviews, requestHeader: grpcHeader, responseHeader: grpcStatus },
      { destination: reviews, destinationService: { host: 'reviews.default.svc.cluster.local', name: 'reviews', namespace: 'default' } },
      { destination: reviews, upstreamCluster: 'outbound|9080|v1|reviews.default.svc.cluster.local' },
    ];
    const inbound: Array<Partial<StreamInfo>> = [{ source: productpage, upstreamCluster: 'inbound|9080||', connectionSecurityPolicy: 'mutual_tls' }, { source: productpage, upstreamCluster: 'inbound|9080||' }, { upstreamCluster: 'inbound|9080||', responseCode: 500 }];
    const cached = new IstioMetrics(reviews);
    const full = new IstioMetrics(reviews);
    for (const [direction, list] of [['outbound', streams], ['inbound', inbound]] as const) {
      for (const extra of list) {
        const protocol = extra.requestHeader === grpcHeader ? 'grpc' : 'http';
        for (let i = 0; i < 2; i++) cached.recordHttp(call(direction, { ...extra, requestProtocolLabel: protocol }));
        for (let i = 0; i < 2; i++) full.recordHttp(call(direction, extra)); // no requestProtocolLabel: every label computed
      }
    }
    assert.equal(cached.render(), full.render());
    assert.equal(findSamples(parseExposition(cached.render()), 'istio_requests_total', { response_code: '503', response_flags: 'UF,URX' })[0]?.value, 2);
  });

  it('a StreamInfo whose lookups throw is not counted and does not throw', () => {
    const m = new IstioMetrics(productpage);
    m.recordHttp(call('outbound', { requestHeader: () => { throw new Error('x'); } }));
    assert.equal(m.render(), '');
  });
});

describe('Prometheus exposition', () => {
  it('escapes label values and HELP, prints histograms with cumulative buckets, +Inf, _sum and _count', () => {
    const f = new MetricFamily({ name: 'x_seconds', type: 'histogram', help: 'a\\b\nc', labels: ['path'], buckets: [1, 2.5] });
    const h = f.get(['/a"b\\c\nd']);
    for (const v of [0.5, 1, 2, 9]) h.observe(v);
    assert.equal(f.render(),
      '# HELP x_seconds a\\\\b\\nc\n# TYPE x_seconds histogram\n'
      + 'x_seconds_bucket{path="/a\\"b\\\\c\\nd",le="1"} 2\nx_seconds_bucket{path="/a\\"b\\\\c\\nd",le="2.5"} 3\nx_seconds_bucket{path="/a\\"b\\\\c\\nd",le="+Inf"} 4\n'
      + 'x_seconds_sum{path="/a\\"b\\\\c\\nd"} 12.5\nx_seconds_count{path="/a\\"b\\\\c\\nd"} 4\n');
    assert.deepEqual(parseExposition(f.render()).samples[0]?.labels, { path: '/a"b\\c\nd', le: '1' });
    assert.equal(escapeLabelValue('plain'), 'plain');
    assert.ok(h instanceof Histogram);
  });
});

describe('Envoy stats registry', () => {
  it('counters and gauges by labels, cached; Prometheus and /stats text', () => {
    const stats = new StatsRegistry();
    const rq = stats.counter('envoy_cluster_upstream_rq_total', { cluster_name: 'outbound|9080||reviews.default.svc.cluster.local' });
    assert.equal(stats.counter('envoy_cluster_upstream_rq_total', { cluster_name: 'outbound|9080||reviews.default.svc.cluster.local' }), rq, 'same series object');
    rq.inc();
    rq.inc(2);
    stats.gauge('envoy_server_live').set(1);
    stats.counter('envoy_cluster_upstream_rq_xx', { cluster_name: 'c1', envoy_response_code_class: '5' }).inc();
    const exp = parseExposition(stats.render());
    assert.deepEqual(findSamples(exp, 'envoy_cluster_upstream_rq_total'), [{ name: 'envoy_cluster_upstream_rq_total', labels: { cluster_name: 'outbound|9080||reviews.default.svc.cluster.local' }, value: 3 }]);
    assert.deepEqual(findSamples(exp, 'envoy_server_live').map((s) => s.value), [1]);
    assert.deepEqual(findSamples(exp, 'envoy_cluster_upstream_rq_xx')[0]?.labels, { envoy_response_code_class: '5', cluster_name: 'c1' });
    const text = formatStatsText(stats.textLines());
    assert.ok(text.includes('cluster.outbound|9080||reviews.default.svc.cluster.local.upstream_rq_total: 3\n'), text);
    assert.ok(text.includes('server.live: 1\n'));
    assert.ok(text.includes('cluster.c1.upstream_rq_xx{envoy_response_code_class="5"}: 1\n'));
    assert.ok(text.includes('cluster_manager.cds_update_success: 0\n'));
  });

  it('an undeclared stat is declared on first use; a type mismatch gives a detached cell', () => {
    const stats = new StatsRegistry([]);
    stats.counter('envoy_custom_things_total', { kind: 'a' }).inc();
    const g = stats.gauge('envoy_custom_things_total');
    g.set(5);
    const exp = parseExposition(stats.render());
    assert.deepEqual(findSamples(exp, 'envoy_custom_things_total').map((s) => s.value), [1]);
  });
});
