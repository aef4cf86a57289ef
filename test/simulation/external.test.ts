// Simulation of external and non-HTTP services (M18, M19): ServiceEntry HTTP/HTTPS/TCP ports, SNI passthrough, TCP listeners per ClusterIP, Istio's googleapis egress sample.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BOOKINFO, bookinfoNet, encodeFailures, load, mesh, proxyFor, type ProxyConfig } from './harness.ts';

const EXTERNAL = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: api-example}
spec:
  hosts: [api.example.com]
  ports: [{number: 443, name: https, protocol: HTTPS}]
  resolution: DNS
  location: MESH_EXTERNAL
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: httpbin-org}
spec:
  hosts: [httpbin.org]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: DNS
  location: MESH_EXTERNAL
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: httpbin-org}
spec:
  hosts: [httpbin.org]
  http:
  - timeout: 3s
    route: [{destination: {host: httpbin.org}}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: legacy-db}
spec:
  hosts: [db.legacy.internal]
  addresses: [240.0.0.10]
  ports: [{number: 5432, name: tcp-postgres, protocol: TCP}]
  resolution: STATIC
  location: MESH_INTERNAL
  endpoints: [{address: 192.168.10.4}]
---
apiVersion: v1
kind: Service
metadata: {name: mysqldb}
spec:
  selector: {app: mysqldb}
  ports: [{name: tcp, port: 3306}]
---
apiVersion: v1
kind: Pod
metadata: {name: mysqldb-v1, labels: {app: mysqldb, version: v1}}
spec:
  containers: [{name: mysql, image: mysql, ports: [{containerPort: 3306}]}]
`;

async function productpage(mode: 'ALLOW_ANY' | 'REGISTRY_ONLY' = 'ALLOW_ANY', files: string[] = []): Promise<ProxyConfig> {
  const resources = await load([BOOKINFO, ...files.map(bookinfoNet)], 'default', [EXTERNAL]);
  const p = proxyFor(resources, 'productpage', 'default', mesh({ outboundTrafficPolicy: { mode } }));
  assert.deepEqual(encodeFailures(p), []);
  return p;
}

describe('external services', () => {
  it('HTTPS ServiceEntry port 443: TLS passed through by SNI to outbound|443||api.example.com', async () => {
    const p = await productpage();
    const r = p.call({ port: 443, destinationIp: '93.184.216.34', protocol: 'tls', sni: 'api.example.com' });
    assert.equal(r.listener, '0.0.0.0_443');
    assert.equal(r.routeConfig, undefined, 'not terminated: no HTTP routing');
    assert.deepEqual(r.clusters, [{ name: 'outbound|443||api.example.com', weight: 100 }]);
    assert.deepEqual(r.missingClusters, []);
    assert.deepEqual(p.call({ port: 443, destinationIp: '93.184.216.34', protocol: 'tls', sni: 'evil.example.net' }).clusters, [{ name: 'PassthroughCluster', weight: 100 }]);
    const closed = await productpage('REGISTRY_ONLY');
    assert.deepEqual(closed.call({ port: 443, destinationIp: '93.184.216.34', protocol: 'tls', sni: 'evil.example.net' }).clusters, [{ name: 'BlackHoleCluster', weight: 100 }]);
    assert.deepEqual(closed.call({ port: 443, destinationIp: '93.184.216.34', protocol: 'tls', sni: 'api.example.com' }).clusters, [{ name: 'outbound|443||api.example.com', weight: 100 }]);
  });

  it('HTTP ServiceEntry with a VirtualService: 3 s timeout, operation httpbin.org:80/* (M17, M19)', async () => {
    const p = await productpage();
    const r = p.call({ port: 80, host: 'httpbin.org', destinationIp: '54.1.2.3', path: '/delay/5' });
    assert.equal(r.listener, '0.0.0.0_80');
    assert.deepEqual(r.clusters, [{ name: 'outbound|80||httpbin.org', weight: 100 }]);
    assert.equal(r.timeoutMs, 3000);
    assert.equal(r.operation, 'httpbin.org:80/*');
  });

  it('TCP Kubernetes service: listener ClusterIP_3306 with tcp_proxy to outbound|3306||mysqldb', async () => {
    const p = await productpage();
    const vip = p.vip('mysqldb.default.svc.cluster.local');
    const r = p.call({ port: 3306, destinationIp: vip, protocol: 'tcp' });
    assert.equal(r.listener, `${vip}_3306`);
    assert.deepEqual(r.clusters, [{ name: 'outbound|3306||mysqldb.default.svc.cluster.local', weight: 100 }]);
  });

  it('TCP ServiceEntry with an address: listener 240.0.0.10_5432', async () => {
    const p = await productpage();
    const r = p.call({ port: 5432, destinationIp: '240.0.0.10', protocol: 'tcp' });
    assert.equal(r.listener, '240.0.0.10_5432');
    assert.deepEqual(r.clusters, [{ name: 'outbound|5432||db.legacy.internal', weight: 100 }]);
    assert.deepEqual(p.call({ port: 5432, destinationIp: '240.0.0.11', protocol: 'tcp' }).clusters, [{ name: 'PassthroughCluster', weight: 100 }]);
  });

  it("Istio's egress-rule-google-apis: port 80 is routed to the 443 cluster (TLS origination), 443 by SNI", async () => {
    const p = await productpage('REGISTRY_ONLY', ['egress-rule-google-apis.yaml']);
    const http = p.call({ port: 80, host: 'www.googleapis.com', path: '/storage/v1/b' });
    assert.deepEqual(http.clusters, [{ name: 'outbound|443||www.googleapis.com', weight: 100 }]);
    assert.deepEqual(http.missingClusters, []);
    assert.equal(http.operation, 'www.googleapis.com:443/*');
    const tls = p.call({ port: 443, destinationIp: '142.250.1.95', protocol: 'tls', sni: 'www.googleapis.com' });
    assert.deepEqual(tls.clusters, [{ name: 'outbound|443||www.googleapis.com', weight: 100 }]);
    assert.equal(p.call({ port: 80, host: 'www.google.com' }).directResponse, 502);
  });
});
