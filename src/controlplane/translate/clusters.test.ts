// buildClusters for a workload's own ports: an HTTP/2 or gRPC port's inbound cluster talks HTTP/2 to the
// application, as Istio's setUpstreamProtocol does (a gRPC server speaks nothing else); HTTP/1 and TCP
// ports keep the default. A Sidecar's ingress clusters follow Istio's defaultEndpoint resolution (below).

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadString } from '../../config/loader.ts';
import { proxyInfoFor } from '../debug/proxy-ref.ts';
import { buildPushContext } from '../model/push-context.ts';
import { computeSidecarScope } from '../model/sidecar-scope.ts';
import { buildClusters } from './clusters.ts';

const YAML = `
apiVersion: v1
kind: Service
metadata: {name: api, namespace: demo}
spec:
  selector: {app: api}
  ports:
  - {name: grpc, port: 9090, targetPort: 9090}
  - {name: http2-web, port: 8081, targetPort: 8081}
  - {name: http, port: 80, targetPort: 8080}
  - {name: tcp, port: 5000, targetPort: 5000}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: api, namespace: demo}
spec:
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec: {containers: [{name: api, image: api}]}
`;

const H2 = { 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': { '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions', explicit_http_config: { http2_protocol_options: {} } } };

describe('inbound clusters', () => {
  const push = buildPushContext(loadString(YAML, 'x.yaml').resources, {});
  const w = push.registry.workloads.find((x) => x.labels.app === 'api');
  assert.ok(w);
  const proxy = proxyInfoFor(w);
  const clusters = buildClusters(proxy, push, computeSidecarScope(proxy, push));
  const inbound = (port: number): Record<string, unknown> | undefined => clusters.find((c) => c.name === `inbound|${port}||`);

  it('speak HTTP/2 to the application on gRPC and HTTP/2 ports', () => {
    assert.deepEqual(inbound(9090)?.typed_extension_protocol_options, H2);
    assert.deepEqual(inbound(8081)?.typed_extension_protocol_options, H2);
  });

  it('leave HTTP/1 and TCP ports on the default protocol', () => {
    assert.ok(inbound(8080));
    assert.equal(inbound(8080)?.typed_extension_protocol_options, undefined);
    assert.equal(inbound(5000)?.typed_extension_protocol_options, undefined);
  });
});

// A Sidecar's ingress listeners, as Istio's buildInboundClustersFromSidecar resolves defaultEndpoint:
// 0.0.0.0:P goes to the pod's own IP at P and none is an ordinary ORIGINAL_DST inbound cluster, both from
// 127.0.0.6 (which capture lets through); 127.0.0.1:P stays on loopback with no source address set.
const SIDECAR_YAML = `${YAML}
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: api, namespace: demo}
spec:
  workloadSelector: {labels: {app: api}}
  ingress:
  - port: {number: 9080, protocol: HTTP, name: http-pod}
    defaultEndpoint: 0.0.0.0:8080
  - port: {number: 9081, protocol: HTTP, name: http-lo}
    defaultEndpoint: 127.0.0.1:8081
  - port: {number: 9082, protocol: TCP, name: tcp-none}
`;

const BIND_127_0_0_6 = { source_address: { address: '127.0.0.6', port_value: 0 } };

describe('Sidecar ingress clusters', () => {
  const push = buildPushContext(loadString(SIDECAR_YAML, 'x.yaml').resources, {});
  const w = push.registry.workloads.find((x) => x.labels.app === 'api');
  assert.ok(w);
  const proxy = { ...proxyInfoFor(w), ip: '10.1.2.3' };
  const clusters = buildClusters(proxy, push, computeSidecarScope(proxy, push));
  const inbound = (port: number): Record<string, unknown> | undefined => clusters.find((c) => c.name === `inbound|${port}||`);
  const endpoints = (c: Record<string, unknown> | undefined): unknown => (c?.load_assignment as { endpoints: Array<{ lb_endpoints: Array<{ endpoint: { address: unknown } }> }> } | undefined)?.endpoints.flatMap((e) => e.lb_endpoints.map((l) => l.endpoint.address));

  it('replace the service-derived inbound clusters', () => {
    assert.deepEqual(clusters.filter((c) => c.name.startsWith('inbound|')).map((c) => c.name).sort(), ['inbound|9080||', 'inbound|9081||', 'inbound|9082||']);
  });

  it('0.0.0.0:P: STATIC to the pod IP at P, from 127.0.0.6', () => {
    const c = inbound(9080);
    assert.equal(c?.type, 'STATIC');
    assert.deepEqual(endpoints(c), [{ socket_address: { address: '10.1.2.3', port_value: 8080 } }]);
    assert.deepEqual(c?.upstream_bind_config, BIND_127_0_0_6);
  });

  it('127.0.0.1:P: STATIC to 127.0.0.1:P, no upstream bind', () => {
    const c = inbound(9081);
    assert.equal(c?.type, 'STATIC');
    assert.deepEqual(endpoints(c), [{ socket_address: { address: '127.0.0.1', port_value: 8081 } }]);
    assert.equal(c?.upstream_bind_config, undefined);
  });

  it('no defaultEndpoint: ORIGINAL_DST (the connection original destination), from 127.0.0.6', () => {
    const c = inbound(9082);
    assert.equal(c?.type, 'ORIGINAL_DST');
    assert.equal(c?.lb_policy, 'CLUSTER_PROVIDED');
    assert.equal(c?.load_assignment, undefined);
    assert.deepEqual(c?.upstream_bind_config, BIND_127_0_0_6);
  });

  it('0.0.0.0:P without a known pod IPv4 falls back to 127.0.0.1:P, no upstream bind (as Istio)', () => {
    const noIp = { ...proxyInfoFor(w), ip: undefined };
    const c = buildClusters(noIp, push, computeSidecarScope(noIp, push)).find((x) => x.name === 'inbound|9080||');
    assert.deepEqual(endpoints(c), [{ socket_address: { address: '127.0.0.1', port_value: 8080 } }]);
    assert.equal(c?.upstream_bind_config, undefined);
  });
});
