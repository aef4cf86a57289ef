// Sidecar scope: egress host forms, exportTo interplay, VirtualService/DestinationRule visibility,
// selection of the applying Sidecar, and the listeners it passes on.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { loadString } from '../../config/loader.ts';
import type { Resource } from '../../config/resource.ts';
import { buildPushContext } from './push-context.ts';
import { computeSidecarScope, parseEgressHost, type ProxyInfo, type SidecarScope } from './sidecar-scope.ts';

const WORLD = `
apiVersion: v1
kind: Service
metadata: {name: web, namespace: a}
spec: {selector: {app: web}, ports: [{name: http, port: 80}]}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: httpbin, namespace: a}
spec: {hosts: [httpbin.org], ports: [{number: 80, name: http, protocol: HTTP}], resolution: DNS}
---
apiVersion: v1
kind: Service
metadata: {name: api, namespace: b}
spec: {selector: {app: api}, ports: [{name: http, port: 8080}]}
---
apiVersion: v1
kind: Service
metadata: {name: db, namespace: b, annotations: {networking.istio.io/exportTo: "."}}
spec: {selector: {app: db}, ports: [{name: tcp, port: 5432}]}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: wild, namespace: b}
spec: {hosts: ["*.example.com"], ports: [{number: 443, name: tls, protocol: TLS}], resolution: NONE}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: exact, namespace: c}
spec: {hosts: [api.example.com], ports: [{number: 443, name: tls, protocol: TLS}], resolution: DNS}
---
apiVersion: v1
kind: Service
metadata: {name: istiod, namespace: istio-system}
spec: {selector: {app: istiod}, ports: [{name: grpc-xds, port: 15010}]}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: web, namespace: a}
spec: {hosts: [web], http: [{route: [{destination: {host: web}}]}]}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: api-from-a, namespace: a}
spec: {hosts: [api.b.svc.cluster.local], http: [{route: [{destination: {host: api.b.svc.cluster.local}}]}]}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: api, namespace: b}
spec: {hosts: [api], http: [{route: [{destination: {host: api}}]}]}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: db, namespace: b}
spec: {hosts: [db], exportTo: ["."], tcp: [{route: [{destination: {host: db}}]}]}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: api, namespace: b}
spec: {host: api, subsets: [{name: v1, labels: {version: v1}}]}
`;

function sidecar(ns: string, name: string, body: string, created?: string): string {
  return `apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: ${name}, namespace: ${ns}${created ? `, creationTimestamp: "${created}"` : ''}}
spec:
${body}`;
}

function load(...docs: string[]): Resource[] {
  const r = loadString([WORLD, ...docs].join('\n---\n'), 'world.yaml');
  assert.deepEqual(r.diagnostics.filter((d) => d.severity === 'error'), []);
  return r.resources;
}

const egress = (...hosts: string[]): string => `  egress:\n  - hosts: [${hosts.map((h) => JSON.stringify(h)).join(', ')}]\n`;
const proxyA: ProxyInfo = { namespace: 'a', labels: { app: 'client' } };

function scopeFor(proxy: ProxyInfo, ...docs: string[]): SidecarScope {
  return computeSidecarScope(proxy, buildPushContext(load(...docs)));
}
const hostsOf = (s: SidecarScope): string[] => s.services.map((x) => x.hostname);
const vsOf = (s: SidecarScope): string[] => s.virtualServices.map((v) => `${v.metadata.namespace}/${v.metadata.name}`).sort();

describe('egress host forms', () => {
  const cases: Array<[string[], string[]]> = [
    [['./*'], ['httpbin.org', 'web.a.svc.cluster.local']],
    [['~/*'], []],
    [['*/*'], ['*.example.com', 'api.b.svc.cluster.local', 'api.example.com', 'httpbin.org', 'istiod.istio-system.svc.cluster.local', 'web.a.svc.cluster.local']],
    [['b/*'], ['*.example.com', 'api.b.svc.cluster.local']],
    [['b/api.b.svc.cluster.local'], ['api.b.svc.cluster.local']],
    [['*/*.example.com'], ['*.example.com', 'api.example.com']],
    [['c/*.example.com'], ['api.example.com']],
    [['b/foo.example.com'], ['*.example.com']],
    [['istio-system/*', './httpbin.org'], ['httpbin.org', 'istiod.istio-system.svc.cluster.local']],
    [['*/httpbin.org'], ['httpbin.org']],
  ];
  for (const [hosts, want] of cases) {
    it(`${hosts.join(', ')} from namespace a sees ${want.length ? want.join(', ') : 'nothing'}`, () => {
      const s = scopeFor(proxyA, sidecar('a', 'default', egress(...hosts)));
      assert.equal(s.appliedFrom, 'namespace');
      assert.deepEqual(hostsOf(s), want);
    });
  }

  it("exportTo '.' keeps b's private db away from a, even under */* and b/*", () => {
    for (const h of ['*/*', 'b/*', 'b/db.b.svc.cluster.local']) {
      assert.equal(scopeFor(proxyA, sidecar('a', 'default', egress(h))).isVisible('db.b.svc.cluster.local'), false, h);
    }
    const fromB = scopeFor({ namespace: 'b', labels: {} }, sidecar('b', 'default', egress('./*')));
    assert.ok(fromB.isVisible('db.b.svc.cluster.local'));
  });

  it('isVisible covers names under a visible wildcard ServiceEntry', () => {
    const s = scopeFor(proxyA, sidecar('a', 'default', egress('b/*')));
    assert.ok(s.isVisible('foo.example.com'));
    assert.ok(s.isVisible('API.B.svc.cluster.local'));
    assert.equal(s.isVisible('web.a.svc.cluster.local'), false);
  });

  it('without a Sidecar there is one catch-all listener seeing everything exported', () => {
    const s = scopeFor(proxyA);
    assert.equal(s.appliedFrom, 'none');
    assert.equal(s.egress.length, 1);
    assert.deepEqual(s.egress[0]?.hosts.map((h) => h.raw), ['*/*']);
    assert.equal(s.services.length, 6);
  });

  it("parses hosts: '.' is the config namespace; a bare host means any namespace", () => {
    assert.deepEqual(parseEgressHost('./*', 'a'), { namespace: 'a', host: '*', raw: './*' });
    assert.deepEqual(parseEgressHost('httpbin.org', 'a'), { namespace: '*', host: 'httpbin.org', raw: 'httpbin.org' });
    assert.equal(parseEgressHost('  ', 'a'), undefined);
  });
});

describe('VirtualService and DestinationRule visibility follow the egress hosts', () => {
  it("VirtualServices are imported by their own namespace, not their hosts' namespace", () => {
    assert.deepEqual(vsOf(scopeFor(proxyA, sidecar('a', 'default', egress('./*')))), ['a/api-from-a', 'a/web']);
    assert.deepEqual(vsOf(scopeFor(proxyA, sidecar('a', 'default', egress('b/*')))), ['b/api']);
    assert.deepEqual(vsOf(scopeFor(proxyA, sidecar('a', 'default', egress('~/*')))), []);
    // A private VirtualService in b is never visible from a.
    assert.deepEqual(vsOf(scopeFor(proxyA, sidecar('a', 'default', egress('*/*')))), ['a/api-from-a', 'a/web', 'b/api']);
    assert.deepEqual(vsOf(scopeFor({ namespace: 'b', labels: {} }, sidecar('b', 'default', egress('./*')))), ['b/api', 'b/db']);
  });

  it('DestinationRules are given for visible services only', () => {
    const hidden = scopeFor(proxyA, sidecar('a', 'default', egress('./*')));
    assert.equal(hidden.destinationRules.size, 0);
    const shown = scopeFor(proxyA, sidecar('a', 'default', egress('b/*')));
    assert.deepEqual([...shown.destinationRules.entries()].map(([h, dr]) => `${h} ${dr.metadata.namespace}/${dr.metadata.name}`), ['api.b.svc.cluster.local b/api']);
  });
});

describe('which Sidecar applies', () => {
  it("a root Sidecar's ./* means the importing proxy's namespace", () => {
    const root = sidecar('istio-system', 'default', egress('./*'));
    const inA = scopeFor(proxyA, root);
    assert.equal(inA.appliedFrom, 'root');
    assert.deepEqual(hostsOf(inA), ['httpbin.org', 'web.a.svc.cluster.local']);
    const inRoot = scopeFor({ namespace: 'istio-system', labels: {} }, root);
    assert.equal(inRoot.appliedFrom, 'namespace');
    assert.deepEqual(hostsOf(inRoot), ['istiod.istio-system.svc.cluster.local']);
  });

  it('of several matching workload Sidecars the oldest wins; gateways are never scoped', () => {
    const older = sidecar('a', 'older', `  workloadSelector: {labels: {app: client}}\n${egress('b/*')}`, '2024-01-01T00:00:00Z');
    const newer = sidecar('a', 'newer', `  workloadSelector: {labels: {app: client}}\n${egress('./*')}`, '2024-06-01T00:00:00Z');
    const s = scopeFor(proxyA, newer, older);
    assert.equal(s.sidecar?.metadata.name, 'older');
    assert.equal(s.appliedFrom, 'workloadSelector');
    const gw = scopeFor({ namespace: 'a', labels: { app: 'client' }, type: 'router' }, newer, older);
    assert.equal(gw.appliedFrom, 'none');
    assert.equal(gw.services.length, 6);
  });

  it('passes on listeners, capture modes and the inbound connection pool', () => {
    const body = `  ingress:
  - port: {number: 9080, protocol: HTTP, name: somename}
    defaultEndpoint: 127.0.0.1:8080
    captureMode: NONE
  inboundConnectionPool:
    http: {http1MaxPendingRequests: 10}
  egress:
  - port: {number: 8080, protocol: HTTP, name: egresshttp}
    bind: 127.0.0.1
    captureMode: NONE
    hosts: ["b/*"]
  - hosts: ["./*"]
  outboundTrafficPolicy:
    mode: REGISTRY_ONLY
    egressProxy: {host: egress.istio-system.svc.cluster.local, port: {number: 443}}
`;
    const s = scopeFor(proxyA, sidecar('a', 'default', body));
    assert.equal(s.egress.length, 2);
    assert.deepEqual([s.egress[0]?.port?.number, s.egress[0]?.bind, s.egress[0]?.captureMode], [8080, '127.0.0.1', 'NONE']);
    assert.deepEqual(s.egress[0]?.services.map((x) => x.name), ['wild', 'api']);
    assert.equal(s.egress[1]?.captureMode, 'DEFAULT');
    assert.deepEqual(hostsOf(s), ['*.example.com', 'api.b.svc.cluster.local', 'httpbin.org', 'web.a.svc.cluster.local']);
    assert.deepEqual(s.ingress.map((l) => [l.port?.number, l.defaultEndpoint, l.captureMode]), [[9080, '127.0.0.1:8080', 'NONE']]);
    assert.equal(s.inboundConnectionPool?.http?.http1MaxPendingRequests, 10);
    assert.equal(s.outboundTrafficPolicy.egressProxy?.host, 'egress.istio-system.svc.cluster.local');
    assert.equal(s.outboundTrafficPolicy.mode, 'REGISTRY_ONLY');
  });
});
