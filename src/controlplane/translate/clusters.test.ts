// buildClusters for a workload's own ports: an HTTP/2 or gRPC port's inbound cluster talks HTTP/2 to the
// application, as Istio's setUpstreamProtocol does (a gRPC server speaks nothing else); HTTP/1 and TCP
// ports keep the default.

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
