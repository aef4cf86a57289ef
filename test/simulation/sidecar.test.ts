// Simulation of the Sidecar experiments of seeds 002 and 000 (M11-M14): what a scoped sidecar can still reach, and where unmatched traffic goes under ALLOW_ANY and REGISTRY_ONLY.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BOOKINFO, encodeFailures, load, mesh, proxyFor, type ProxyConfig } from './harness.ts';
import { istioPath } from '../helpers/shared.ts';

const REVIEWS = 'reviews.bookinfo.svc.cluster.local';
const ISTIO_SYSTEM = `apiVersion: v1
kind: Service
metadata: {name: istiod, namespace: istio-system}
spec:
  selector: {app: istiod}
  ports:
  - {name: grpc-xds, port: 15010}
  - {name: https-dns, port: 15012}
  - {name: http-monitoring, port: 15014}
---
apiVersion: v1
kind: Pod
metadata: {name: istiod-1, namespace: istio-system, labels: {app: istiod}}
spec:
  containers: [{name: discovery, image: pilot, ports: [{containerPort: 15010}, {containerPort: 15012}, {containerPort: 15014}]}]
`;
const MY_SHELL = `apiVersion: v1
kind: Pod
metadata: {name: my-shell, namespace: default, labels: {app: my-shell}}
spec:
  containers: [{name: shell, image: nicolaka/netshoot}]
`;
const SEED_002_SIDECAR = `apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {namespace: default, name: default}
spec:
  egress:
  - hosts: ["./*", "istio-system/*"]
`;

async function myShell(withSidecar: boolean, mode: 'ALLOW_ANY' | 'REGISTRY_ONLY' = 'ALLOW_ANY'): Promise<ProxyConfig> {
  const resources = await load([BOOKINFO], 'bookinfo', [ISTIO_SYSTEM, MY_SHELL, ...(withSidecar ? [SEED_002_SIDECAR] : [])]);
  const p = proxyFor(resources, 'my-shell', 'default', mesh({ outboundTrafficPolicy: { mode } }));
  assert.deepEqual(encodeFailures(p), []);
  return p;
}

describe('seed 002: Sidecar egress ./* and istio-system/* in default', () => {
  it('before the Sidecar: curl 10.96.x.x:9080 (reviews ClusterIP) is routed by the mesh to outbound|9080||reviews.bookinfo', async () => {
    const p = await myShell(false);
    const ip = p.vip(REVIEWS);
    const r = p.call({ port: 9080, destinationIp: ip, path: '/reviews/1' });
    assert.equal(r.listener, '0.0.0.0_9080');
    assert.equal(r.virtualHost, `${REVIEWS}:9080`, 'the ClusterIP is one of the virtual host domains');
    assert.deepEqual(r.clusters, [{ name: `outbound|9080||${REVIEWS}`, weight: 100 }]);
    assert.deepEqual(r.missingClusters, []);
  });

  it('after the Sidecar: the same call is unmatched and passes through to its original destination (the ClusterIP)', async () => {
    const p = await myShell(true);
    const ip = p.vip(REVIEWS);
    const r = p.call({ port: 9080, destinationIp: ip, path: '/reviews/1' });
    assert.equal(r.listener, 'virtualOutbound', 'no 9080 listener: nothing visible listens on 9080');
    assert.deepEqual(r.clusters, [{ name: 'PassthroughCluster', weight: 100 }]);
    assert.ok(!p.listeners.some((l) => l.name.endsWith('_9080')));
    assert.ok(!p.routes.some((rc) => rc.virtual_hosts.some((v) => String(v.name).includes('bookinfo'))), 'no bookinfo host in any route');
    assert.ok(!p.clusters.some((c) => c.name.includes('bookinfo')), 'no bookinfo cluster (M13)');
    assert.ok(p.clusters.some((c) => c.name === 'outbound|15010||istiod.istio-system.svc.cluster.local'), 'istio-system stays visible');
  });

  it('after the Sidecar under REGISTRY_ONLY: the call is dropped (BlackHoleCluster)', async () => {
    const p = await myShell(true, 'REGISTRY_ONLY');
    assert.deepEqual(p.call({ port: 9080, destinationIp: p.vip(REVIEWS) }).clusters, [{ name: 'BlackHoleCluster', weight: 100 }]);
  });

  it('a visible HTTP port still routes: istiod monitoring by name; unknown hosts on it pass through', async () => {
    const p = await myShell(true);
    const r = p.call({ port: 15014, host: 'istiod.istio-system:15014' });
    assert.deepEqual(r.clusters, [{ name: 'outbound|15014||istiod.istio-system.svc.cluster.local', weight: 100 }]);
    assert.equal(p.call({ port: 15014, host: 'reviews.bookinfo:15014' }).virtualHost, 'allow_any');
  });
});

/** httpbin and sleep in istioinaction, httpbin in default (seed 000's set-up), plus extra YAML; the proxy is sleep. */
async function seed000(...extra: string[]): Promise<ProxyConfig> {
  const httpbin = istioPath('samples', 'httpbin', 'httpbin.yaml');
  const inApp = await load([httpbin, istioPath('samples', 'sleep', 'sleep.yaml')], 'istioinaction');
  const inDefault = await load([httpbin], 'default', extra);
  const p = proxyFor([...inApp, ...inDefault], 'sleep', 'istioinaction');
  assert.deepEqual(encodeFailures(p), []);
  return p;
}

const ROOT_REGISTRY_ONLY = `apiVersion: networking.istio.io/v1alpha3
kind: Sidecar
metadata: {name: default, namespace: istio-system}
spec:
  outboundTrafficPolicy: {mode: REGISTRY_ONLY}
`;
const NS_ALLOW_ANY = `apiVersion: networking.istio.io/v1alpha3
kind: Sidecar
metadata: {name: default, namespace: istioinaction}
spec:
  outboundTrafficPolicy: {mode: ALLOW_ANY}
`;
const WORKLOAD_ONLY_OWN_NS = `apiVersion: networking.istio.io/v1alpha3
kind: Sidecar
metadata: {name: workload, namespace: istioinaction}
spec:
  outboundTrafficPolicy: {mode: REGISTRY_ONLY}
  workloadSelector: {labels: {app: sleep}}
  egress:
  - hosts: ["istioinaction/*"]
`;

describe('seed 000: Sidecar precedence and outboundTrafficPolicy', () => {
  const google = { port: 80, host: 'google.com', destinationIp: '142.250.1.1' };
  const httpbin = (ns: string) => ({ port: 8000, host: `httpbin.${ns}:8000`, path: '/ip' });

  it('no Sidecar: google.com passes through, httpbin is routed', async () => {
    const p = await seed000();
    assert.deepEqual(p.call(google).clusters, [{ name: 'PassthroughCluster', weight: 100 }]);
    assert.deepEqual(p.call(httpbin('istioinaction')).clusters, [{ name: 'outbound|8000||httpbin.istioinaction.svc.cluster.local', weight: 100 }]);
  });

  it('root Sidecar REGISTRY_ONLY: google.com is blocked, httpbin.istioinaction still works', async () => {
    const p = await seed000(ROOT_REGISTRY_ONLY);
    const blocked = p.call(google);
    assert.equal(blocked.virtualHost, 'block_all', 'port 80 is a mesh HTTP port (sleep:80): the unknown host hits block_all');
    assert.equal(blocked.directResponse, 502);
    const tls = p.call({ port: 443, destinationIp: '142.250.1.1', protocol: 'tls', sni: 'google.com' });
    assert.deepEqual(tls.clusters, [{ name: 'BlackHoleCluster', weight: 100 }], 'https to google.com: connection dropped');
    assert.deepEqual(p.call(httpbin('istioinaction')).clusters, [{ name: 'outbound|8000||httpbin.istioinaction.svc.cluster.local', weight: 100 }]);
  });

  it('a namespace Sidecar (ALLOW_ANY) overrides the root one', async () => {
    const p = await seed000(ROOT_REGISTRY_ONLY, NS_ALLOW_ANY);
    assert.deepEqual(p.call(google).clusters, [{ name: 'PassthroughCluster', weight: 100 }]);
  });

  it('a workload Sidecar (REGISTRY_ONLY, egress istioinaction/*): httpbin.default is blocked, httpbin.istioinaction works', async () => {
    const p = await seed000(NS_ALLOW_ANY, WORKLOAD_ONLY_OWN_NS);
    const blocked = p.call(httpbin('default'));
    assert.equal(blocked.virtualHost, 'block_all');
    assert.equal(blocked.directResponse, 502);
    assert.deepEqual(p.call(httpbin('istioinaction')).clusters, [{ name: 'outbound|8000||httpbin.istioinaction.svc.cluster.local', weight: 100 }]);
  });

  it('ingress bind 172.16.1.32:80 with captureMode NONE: a real listener to the default endpoint cluster', async () => {
    const p = await seed000(`apiVersion: networking.istio.io/v1alpha3
kind: Sidecar
metadata: {name: partial-ip-tables, namespace: istioinaction}
spec:
  workloadSelector: {labels: {app: sleep}}
  ingress:
  - bind: 172.16.1.32
    port: {number: 80, protocol: HTTP, name: somename}
    defaultEndpoint: 127.0.0.1:8080
    captureMode: NONE
  egress:
  - captureMode: IPTABLES
    hosts: ["*/*"]
`);
    const l = p.listeners.find((x) => x.name === '172.16.1.32_80');
    assert.ok(l);
    assert.equal(l.bind_to_port, true);
    const r = p.call({ direction: 'inbound', port: 80, destinationIp: '172.16.1.32', host: 'sleep' });
    assert.equal(r.listener, '172.16.1.32_80');
    assert.deepEqual(r.clusters, [{ name: 'inbound|80||', weight: 100 }]);
    assert.deepEqual(r.missingClusters, []);
    assert.deepEqual(p.call(httpbin('default')).clusters, [{ name: 'outbound|8000||httpbin.default.svc.cluster.local', weight: 100 }]);
  });
});
