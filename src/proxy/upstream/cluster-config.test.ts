// parseCluster: the shapes tsmesh's control plane emits parse into the settings they mean, Envoy's
// defaults apply when fields are absent, and what the sidecar cannot honour is refused with a message
// naming the cluster and the field (the xDS client NACKs with it).

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseCluster } from './cluster-config.ts';
import { ClusterConfigError } from './json.ts';

const MAX = 4294967295;

/** An outbound cluster as controlplane/translate/clusters.ts builds it for a DestinationRule. */
const outbound = {
  '@type': 'type.googleapis.com/envoy.config.cluster.v3.Cluster',
  name: 'outbound|9080|v2|reviews.bookinfo.svc.cluster.local',
  connect_timeout: '0.250s',
  type: 'EDS',
  eds_cluster_config: { eds_config: { ads: {}, initial_fetch_timeout: '0s', resource_api_version: 'V3' }, service_name: 'outbound|9080|v2|reviews.bookinfo.svc.cluster.local' },
  lb_policy: 'RING_HASH',
  ring_hash_lb_config: { minimum_ring_size: 2048 },
  circuit_breakers: { thresholds: [{ max_connections: 1, max_pending_requests: 1, max_requests: 10, max_retries: 2, track_remaining: true }] },
  outlier_detection: { enforcing_success_rate: 0, consecutive_5xx: 3, enforcing_consecutive_5xx: 100, interval: '1s', base_ejection_time: '180s', max_ejection_percent: 100 },
  common_lb_config: { healthy_panic_threshold: { value: 30 } },
  typed_extension_protocol_options: {
    'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
      '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
      explicit_http_config: { http2_protocol_options: {} },
      common_http_protocol_options: { idle_timeout: '30s', max_requests_per_connection: 5 },
    },
  },
  upstream_connection_options: { tcp_keepalive: { keepalive_time: 300 } },
  metadata: { filter_metadata: { istio: { services: [{ host: 'reviews.bookinfo.svc.cluster.local', name: 'reviews', namespace: 'bookinfo' }], subset: 'v2' } } },
};

function rejects(c: Record<string, unknown>, message: RegExp): void {
  assert.throws(() => parseCluster(c), (e: unknown) => e instanceof ClusterConfigError && message.test(e.message));
}

describe('parseCluster', () => {
  it('reads an outbound EDS cluster with a DestinationRule traffic policy', () => {
    const c = parseCluster(outbound);
    assert.equal(c.type, 'EDS');
    assert.equal(c.edsServiceName, outbound.name);
    assert.equal(c.lbPolicy, 'RING_HASH');
    assert.equal(c.minRingSize, 2048);
    assert.equal(c.connectTimeoutMs, 250);
    assert.equal(c.protocol, 'http2');
    assert.equal(c.idleTimeoutMs, 30_000);
    assert.equal(c.maxRequestsPerConnection, 5);
    assert.deepEqual(c.circuitBreakers, { maxConnections: 1, maxPendingRequests: 1, maxRequests: 10, maxRetries: 2 });
    assert.equal(c.panicThreshold, 30);
    assert.equal(c.outlier?.consecutive5xx, 3);
    assert.equal(c.outlier?.baseEjectionTimeMs, 180_000);
    assert.equal(c.outlier?.maxEjectionPercent, 100);
    assert.equal(c.outlier?.enforcingConsecutiveGatewayFailure, 0);
    assert.equal(c.tcpKeepaliveSec, 300);
    assert.deepEqual(c.service, { host: 'reviews.bookinfo.svc.cluster.local', name: 'reviews', namespace: 'bookinfo' });
  });

  it('applies Envoy’s defaults to a bare cluster, and Istio’s unlimited thresholds as given', () => {
    const c = parseCluster({ name: 'bare' });
    assert.equal(c.type, 'STATIC');
    assert.equal(c.lbPolicy, 'ROUND_ROBIN');
    assert.equal(c.connectTimeoutMs, 5000);
    assert.equal(c.protocol, 'http1');
    assert.equal(c.idleTimeoutMs, 3_600_000);
    assert.deepEqual(c.circuitBreakers, { maxConnections: 1024, maxPendingRequests: 1024, maxRequests: 1024, maxRetries: 3 });
    assert.equal(c.panicThreshold, 50);
    assert.equal(c.maglevTableSize, 65537);
    assert.equal(c.outlier, undefined);
    const istio = parseCluster({ name: 'x', circuit_breakers: { thresholds: [{ max_connections: MAX, max_pending_requests: String(MAX), max_requests: MAX, max_retries: MAX }] } });
    assert.equal(istio.circuitBreakers.maxPendingRequests, MAX);
  });

  it('reads ORIGINAL_DST inbound clusters with their 127.0.0.6 bind, and DNS clusters', () => {
    const inbound = parseCluster({ name: 'inbound|8080||', type: 'ORIGINAL_DST', lb_policy: 'CLUSTER_PROVIDED', connect_timeout: '10s', upstream_bind_config: { source_address: { address: '127.0.0.6', port_value: 0 } } });
    assert.equal(inbound.bindAddress, '127.0.0.6');
    const dns = parseCluster({
      name: 'outbound|443||api.example.com',
      type: 'STRICT_DNS',
      dns_lookup_family: 'V4_ONLY',
      dns_refresh_rate: '2s',
      lb_policy: 'LEAST_REQUEST',
      load_assignment: { cluster_name: 'x', endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: 'api.example.com', port_value: 443 } } }, load_balancing_weight: 1 }] }] },
    });
    assert.equal(dns.dnsFamily, 4);
    assert.equal(dns.dnsRefreshMs, 2000);
    assert.equal(dns.loadAssignment?.endpoints[0]?.address, 'api.example.com');
  });

  it('refuses what it cannot honour, naming the cluster and the field', () => {
    rejects({ name: 'a', type: 'ORIGINAL_DST', lb_policy: 'ROUND_ROBIN' }, /^cluster 'a': lb_policy ROUND_ROBIN is not valid for an ORIGINAL_DST cluster/);
    rejects({ name: 'b', lb_policy: 'CLUSTER_PROVIDED' }, /CLUSTER_PROVIDED is only valid for ORIGINAL_DST/);
    rejects({ name: 'c', type: 'EDS', lb_policy: 'MAGLEV', maglev_lb_config: { table_size: 1000 } }, /cluster 'c': maglev_lb_config.table_size: 1000 must be a prime/);
    rejects({ name: 'd', transport_socket: { name: 'envoy.transport_sockets.tls', typed_config: {} } }, /transport_socket 'envoy.transport_sockets.tls' is not supported/);
    rejects({ name: 'e', cluster_type: { name: 'envoy.clusters.aggregate' } }, /aggregate/);
    rejects({ name: 'f', type: 'LOGICAL_DNS' }, /exactly one endpoint/);
    rejects({ name: 'g', type: 'STATIC', load_assignment: { endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: 'db.local', port_value: 5432 } } } }] }] } }, /'db.local' is not an IP address/);
    rejects({ name: 'h', connect_timeout: '5 seconds' }, /cluster 'h': connect_timeout: malformed duration/);
    rejects({ name: 'i', type: 'FANCY' }, /cluster 'i': type: unknown value "FANCY"/);
    rejects({ name: 'j', circuit_breakers: { thresholds: [{ max_connections: 'many' }] } }, /max_connections: expected a number/);
    rejects({ name: 'k', typed_extension_protocol_options: { 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': { use_downstream_protocol_config: {} } } }, /use_downstream_protocol_config is not supported/);
  });
});
