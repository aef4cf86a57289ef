// LDS translation: which listener, filter chain and cluster a connection reaches (outbound HTTP/TCP/TLS/sniffed, virtualOutbound and virtualInbound, Sidecar ingress and egress listeners).

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { app, encodeFailures, mesh, parse, proxyFor, type ProxyConfig } from '../../../test/simulation/harness.ts';
import { ISTIO_TEXT_ACCESS_LOG_FORMAT } from './listeners.ts';

const BASE = [
  app('frontend', 'web', [{ name: 'http', port: 8000, targetPort: 8001 }]),
  app('backend', 'web', [{ name: 'http', port: 8080 }], ['v1', 'v2']),
  app('mysql', 'db', [{ name: 'tcp-mysql', port: 3306 }], ['v1', 'v2']),
  app('sniffed', 'web', [{ name: 'web', port: 7000 }]),
].join('---\n');

type Json = Record<string, unknown>;

function config(extra = '', client = 'frontend', meshOverrides = {}): ProxyConfig {
  const p = proxyFor(parse(extra ? `${BASE}---\n${extra}` : BASE, 'web'), client, 'web', mesh(meshOverrides));
  assert.deepEqual(encodeFailures(p), [], 'every listener and route fits Envoy protos');
  return p;
}

function listener(p: ProxyConfig, name: string): Json {
  const l = p.listeners.find((x) => x.name === name);
  assert.ok(l, `listener ${name} exists (have ${p.listeners.map((x) => x.name).join(', ')})`);
  return l;
}

function hcmOf(chain: Json): Json {
  const f = (chain.filters as Json[]).find((x) => x.name === 'envoy.filters.network.http_connection_manager');
  assert.ok(f, 'chain has an http_connection_manager');
  return f.typed_config as Json;
}

describe('listeners: outbound', () => {
  it('virtualOutbound: original destination; unmatched traffic passes through (ALLOW_ANY) or is dropped (REGISTRY_ONLY)', () => {
    const p = config();
    const vo = listener(p, 'virtualOutbound');
    assert.deepEqual(vo.address, { socket_address: { address: '0.0.0.0', port_value: 15001 } });
    assert.equal(vo.use_original_dst, true);
    const r = p.call({ port: 5555, destinationIp: '203.0.113.9', protocol: 'tcp' });
    assert.equal(r.listener, 'virtualOutbound');
    assert.deepEqual(r.clusters, [{ name: 'PassthroughCluster', weight: 100 }]);
    const closed = config('', 'frontend', { outboundTrafficPolicy: { mode: 'REGISTRY_ONLY' } });
    assert.deepEqual(closed.call({ port: 5555, destinationIp: '203.0.113.9', protocol: 'tcp' }).clusters, [{ name: 'BlackHoleCluster', weight: 100 }]);
    assert.deepEqual(p.call({ port: 15001, destinationIp: '10.0.0.1', protocol: 'tcp' }).clusters, [{ name: 'BlackHoleCluster', weight: 100 }], 'no loop through 15001');
  });

  it('HTTP port: 0.0.0.0_8080, not bound, HCM with RDS 8080 and fault, cors, router', () => {
    const p = config();
    const l = listener(p, '0.0.0.0_8080');
    assert.equal(l.bind_to_port, false);
    assert.equal(l.traffic_direction, 'OUTBOUND');
    const hcm = hcmOf((l.filter_chains as Json[])[0] ?? {});
    assert.equal(hcm.stat_prefix, 'outbound_0.0.0.0_8080');
    assert.deepEqual(hcm.rds, { config_source: { ads: {}, initial_fetch_timeout: '0s', resource_api_version: 'V3' }, route_config_name: '8080' });
    assert.deepEqual((hcm.http_filters as Json[]).map((f) => f.name), ['envoy.filters.http.fault', 'envoy.filters.http.cors', 'envoy.filters.http.router']);
    assert.equal(hcm.use_remote_address, false);
    assert.equal(hcm.normalize_path, true);
    assert.equal(hcm.generate_request_id, true);
    assert.deepEqual(hcm.upgrade_configs, [{ upgrade_type: 'websocket' }]);
    assert.equal(hcm.access_log, undefined, 'access logs are off by default (M20)');
    const r = p.call({ port: 8080, destinationIp: p.vip('backend.web.svc.cluster.local'), host: 'backend:8080' });
    assert.equal(r.listener, '0.0.0.0_8080');
    assert.deepEqual(r.clusters, [{ name: 'outbound|8080||backend.web.svc.cluster.local', weight: 100 }]);
  });

  it('access log with Istio\'s TEXT format when meshConfig.accessLogFile is set; JSON encoding', () => {
    const p = config('', 'frontend', { accessLogFile: '/dev/stdout' });
    const hcm = hcmOf(((listener(p, '0.0.0.0_8080').filter_chains as Json[])[0]) ?? {});
    assert.deepEqual(hcm.access_log, [
      {
        name: 'envoy.access_loggers.file',
        typed_config: {
          '@type': 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog',
          path: '/dev/stdout',
          log_format: { text_format_source: { inline_string: ISTIO_TEXT_ACCESS_LOG_FORMAT } },
        },
      },
    ]);
    assert.ok(ISTIO_TEXT_ACCESS_LOG_FORMAT.startsWith('[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%"'));
    assert.ok(ISTIO_TEXT_ACCESS_LOG_FORMAT.endsWith('%REQUESTED_SERVER_NAME% %ROUTE_NAME%\n'));
    const json = config('', 'frontend', { accessLogFile: '/dev/stdout', accessLogEncoding: 'JSON' });
    const jhcm = hcmOf(((listener(json, '0.0.0.0_8080').filter_chains as Json[])[0]) ?? {});
    const fmt = ((jhcm.access_log as Json[])[0]?.typed_config as { log_format: { json_format: Record<string, string> } }).log_format.json_format;
    assert.equal(fmt.response_code, '%RESPONSE_CODE%');
    assert.equal(fmt.upstream_cluster, '%UPSTREAM_CLUSTER_RAW%');
  });

  it('TCP port: VIP_port listener with tcp_proxy; VirtualService tcp route with weights', () => {
    const p = config();
    const vip = p.vip('mysql.db.svc.cluster.local');
    const l = listener(p, `${vip}_3306`);
    assert.equal(l.bind_to_port, false);
    const r = p.call({ port: 3306, destinationIp: vip, protocol: 'tcp' });
    assert.equal(r.listener, `${vip}_3306`);
    assert.deepEqual(r.clusters, [{ name: 'outbound|3306||mysql.db.svc.cluster.local', weight: 100 }]);
    assert.equal(p.call({ port: 3306, destinationIp: '10.1.2.3', protocol: 'tcp' }).listener, 'virtualOutbound', 'another address on 3306 is not mysql');
    const w = config(`apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: mysql, namespace: db}
spec:
  host: mysql.db.svc.cluster.local
  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: mysql, namespace: db}
spec:
  hosts: [mysql]
  tcp:
  - match: [{port: 3306}]
    route:
    - {destination: {host: mysql, subset: v1}, weight: 80}
    - {destination: {host: mysql, subset: v2}, weight: 20}
`);
    assert.deepEqual(w.call({ port: 3306, destinationIp: vip, protocol: 'tcp' }).clusters, [
      { name: 'outbound|3306|v1|mysql.db.svc.cluster.local', weight: 80 },
      { name: 'outbound|3306|v2|mysql.db.svc.cluster.local', weight: 20 },
    ]);
    assert.deepEqual(w.call({ port: 3306, destinationIp: vip, protocol: 'tcp' }).missingClusters, []);
  });

  it('auto-detected port: VIP_port listener sniffing HTTP (route host:port) or TCP', () => {
    const p = config();
    const vip = p.vip('sniffed.web.svc.cluster.local');
    const http = p.call({ port: 7000, destinationIp: vip, host: 'sniffed:7000' });
    assert.equal(http.listener, `${vip}_7000`);
    assert.equal(http.routeConfig, 'sniffed.web.svc.cluster.local:7000');
    assert.deepEqual(http.clusters, [{ name: 'outbound|7000||sniffed.web.svc.cluster.local', weight: 100 }]);
    const tcp = p.call({ port: 7000, destinationIp: vip, protocol: 'tcp' });
    assert.equal(tcp.routeConfig, undefined);
    assert.deepEqual(tcp.clusters, [{ name: 'outbound|7000||sniffed.web.svc.cluster.local', weight: 100 }]);
  });

  it('HTTPS ServiceEntry: SNI chains on 0.0.0.0_443 with tls_inspector, tls routes by sniHosts, policy default chain', () => {
    const se = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ext, namespace: web}
spec:
  hosts: [api.example.com, pay.example.com]
  ports: [{number: 443, name: https, protocol: HTTPS}]
  resolution: DNS
  location: MESH_EXTERNAL
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: pay, namespace: web}
spec:
  hosts: [pay.example.com]
  tls:
  - match: [{port: 443, sniHosts: [pay.example.com]}]
    route: [{destination: {host: api.example.com, port: {number: 443}}}]
`;
    const p = config(se);
    const l = listener(p, '0.0.0.0_443');
    assert.deepEqual((l.listener_filters as Json[]).map((f) => f.name), ['envoy.filters.listener.tls_inspector']);
    const api = p.call({ port: 443, destinationIp: '93.184.216.34', protocol: 'tls', sni: 'api.example.com' });
    assert.deepEqual(api.clusters, [{ name: 'outbound|443||api.example.com', weight: 100 }]);
    const pay = p.call({ port: 443, destinationIp: '93.184.216.35', protocol: 'tls', sni: 'pay.example.com' });
    assert.deepEqual(pay.clusters, [{ name: 'outbound|443||api.example.com', weight: 100 }], 'the tls route wins over the host chain');
    const other = p.call({ port: 443, destinationIp: '93.184.216.36', protocol: 'tls', sni: 'other.org' });
    assert.equal(other.filterChain, 'PassthroughFilterChain');
    assert.deepEqual(other.clusters, [{ name: 'PassthroughCluster', weight: 100 }]);
    const closed = config(se, 'frontend', { outboundTrafficPolicy: { mode: 'REGISTRY_ONLY' } });
    assert.deepEqual(closed.call({ port: 443, destinationIp: '93.184.216.36', protocol: 'tls', sni: 'other.org' }).clusters, [{ name: 'BlackHoleCluster', weight: 100 }]);
  });
});

describe('listeners: inbound', () => {
  it('virtualInbound: a chain per inbound port with an inline route to inbound|port||; the rest passes through', () => {
    const p = config('', 'frontend');
    const vi = listener(p, 'virtualInbound');
    assert.deepEqual(vi.address, { socket_address: { address: '0.0.0.0', port_value: 15006 } });
    assert.deepEqual((vi.listener_filters as Json[]).map((f) => f.name), [
      'envoy.filters.listener.original_dst',
      'envoy.filters.listener.tls_inspector',
      'envoy.filters.listener.http_inspector',
    ]);
    const r = p.call({ direction: 'inbound', port: 8001, host: 'frontend:8000' });
    assert.equal(r.filterChain, '0.0.0.0_8001');
    assert.equal(r.routeConfig, 'inbound|8001||');
    assert.deepEqual(r.clusters, [{ name: 'inbound|8001||', weight: 100 }]);
    assert.equal(r.operation, 'frontend.web.svc.cluster.local:8001/*');
    assert.ok(p.clusters.some((c) => c.name === 'inbound|8001||'), 'the cluster exists in CDS');
    assert.deepEqual(p.call({ direction: 'inbound', port: 9999, protocol: 'tcp' }).clusters, [{ name: 'InboundPassthroughCluster', weight: 100 }]);
  });

  it('Sidecar ingress: captureMode NONE binds a real listener; DEFAULT becomes a virtualInbound chain', () => {
    const p = config(`apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: frontend, namespace: web}
spec:
  workloadSelector: {labels: {app: frontend}}
  ingress:
  - port: {number: 9090, protocol: HTTP, name: http-admin}
    defaultEndpoint: 127.0.0.1:8090
    captureMode: NONE
  - port: {number: 9443, protocol: TCP, name: tcp-data}
    defaultEndpoint: 127.0.0.1:8443
`);
    const bound = listener(p, '0.0.0.0_9090');
    assert.equal(bound.bind_to_port, true);
    assert.equal(bound.traffic_direction, 'INBOUND');
    const r = p.call({ direction: 'inbound', port: 9090, host: 'frontend' });
    assert.equal(r.listener, '0.0.0.0_9090');
    assert.deepEqual(r.clusters, [{ name: 'inbound|9090||', weight: 100 }]);
    assert.deepEqual(r.missingClusters, []);
    const tcp = p.call({ direction: 'inbound', port: 9443, protocol: 'tcp' });
    assert.equal(tcp.listener, 'virtualInbound');
    assert.deepEqual(tcp.clusters, [{ name: 'inbound|9443||', weight: 100 }]);
    assert.equal(p.call({ direction: 'inbound', port: 8001 }).listener, 'virtualInbound');
    assert.deepEqual(p.call({ direction: 'inbound', port: 8001, protocol: 'tcp' }).clusters, [{ name: 'InboundPassthroughCluster', weight: 100 }], 'ingress listeners replace the service ports');
  });
});

describe('listeners: Sidecar egress listeners', () => {
  it('an egress port limits which services get that port; captureMode NONE binds 127.0.0.1', () => {
    const p = config(`apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: frontend, namespace: web}
spec:
  workloadSelector: {labels: {app: frontend}}
  egress:
  - port: {number: 8080, protocol: HTTP, name: http}
    captureMode: NONE
    hosts: [./backend.web.svc.cluster.local]
  - hosts: ["db/*"]
`);
    assert.deepEqual(p.listeners.map((l) => l.name).sort(), ['127.0.0.1_8080', `${p.vip('mysql.db.svc.cluster.local')}_3306`, 'virtualInbound', 'virtualOutbound'].sort());
    const l = listener(p, '127.0.0.1_8080');
    assert.equal(l.bind_to_port, true);
    const r = p.call({ port: 8080, destinationIp: '127.0.0.1', host: 'backend:8080' });
    assert.equal(r.listener, '127.0.0.1_8080');
    assert.deepEqual(r.clusters, [{ name: 'outbound|8080||backend.web.svc.cluster.local', weight: 100 }]);
    const vh = p.routes.find((x) => x.name === '8080')?.virtual_hosts.map((v) => v.name);
    assert.deepEqual(vh, ['backend.web.svc.cluster.local:8080', 'allow_any']);
    assert.equal(p.call({ port: 7000, destinationIp: '10.96.0.77', host: 'sniffed' }).listener, 'virtualOutbound', 'sniffed is not imported');
  });
});
