// The service registry built from Istio's samples and small inline YAML: services, pods named as
// Kubernetes names them, endpoints, ServiceEntries, exportTo, and build speed.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { loadPaths, loadString } from '../config/loader.ts';
import { syntheticSource, type Resource } from '../config/resource.ts';
import { istioPath } from '../../test/helpers/shared.ts';
import { buildRegistry } from './registry.ts';
import { cidrContains, parseCidr, parseIpv4 } from './ipam.ts';
import type { Registry } from './types.ts';

const K = '[bcdfghjklmnpqrstvwxz2456789]';

async function bookinfo(): Promise<Resource[]> {
  const r = await loadPaths([istioPath('samples', 'bookinfo', 'platform', 'kube', 'bookinfo.yaml')], { defaultNamespace: 'bookinfo' });
  return r.resources;
}

function yaml(text: string, ns = 'default'): Resource[] {
  const r = loadString(text, 'inline.yaml', { defaultNamespace: ns });
  assert.deepEqual(r.diagnostics.filter((d) => d.severity === 'error'), []);
  return r.resources;
}

function only<T>(xs: readonly T[], what: string): T {
  assert.equal(xs.length, 1, `expected exactly one ${what}, got ${xs.length}`);
  return xs[0] as T;
}

describe('registry from bookinfo.yaml', () => {
  it('has the 4 services with port 9080 http', async () => {
    const reg = buildRegistry(await bookinfo());
    assert.deepEqual(reg.services.map((s) => s.name).sort(), ['details', 'productpage', 'ratings', 'reviews']);
    for (const s of reg.services) {
      assert.equal(s.hostname, `${s.name}.bookinfo.svc.cluster.local`);
      assert.equal(s.origin, 'Kubernetes');
      assert.deepEqual(s.ports.map((p) => [p.name, p.port, p.targetPort, p.protocol]), [['http', 9080, 9080, 'HTTP']]);
      assert.equal(only(s.addresses, 'address').startsWith('10.96.'), true);
      assert.deepEqual(s.exportTo, ['*']);
    }
    assert.equal(new Set(reg.services.map((s) => s.addresses[0])).size, 4, 'cluster IPs are distinct');
  });

  it('has 6 pods named <deployment>-<hash>-<suffix> with template labels and service accounts', async () => {
    const reg = buildRegistry(await bookinfo());
    assert.equal(reg.workloads.length, 6);
    const deployments = ['details-v1', 'ratings-v1', 'reviews-v1', 'reviews-v2', 'reviews-v3', 'productpage-v1'];
    for (const d of deployments) {
      const pods = reg.workloads.filter((w) => w.owner?.name === d);
      const p = only(pods, `pod of ${d}`);
      const m = new RegExp(`^${d}-(${K}{8,10})-${K}{5}$`).exec(p.name);
      assert.ok(m, `${p.name} is not Kubernetes-style`);
      assert.equal(p.labels['pod-template-hash'], m[1]);
      assert.equal(p.owner?.kind, 'Deployment');
      assert.equal(p.namespace, 'bookinfo');
      assert.equal(p.kind, 'Pod');
    }
    const r1 = reg.workloads.find((w) => w.owner?.name === 'reviews-v1');
    assert.deepEqual([r1?.labels.app, r1?.labels.version, r1?.serviceAccount], ['reviews', 'v1', 'bookinfo-reviews']);
    // Different templates give different hashes.
    assert.equal(new Set(reg.workloads.map((w) => w.labels['pod-template-hash'])).size, 6);
  });

  it('gives reviews 3 endpoints (v1, v2, v3) on distinct pod IPs in 10.244.0.0/16', async () => {
    const reg = buildRegistry(await bookinfo());
    const reviews = only(reg.service('reviews.bookinfo.svc.cluster.local'), 'reviews service');
    const eps = reg.endpoints(reviews, 9080);
    assert.deepEqual(eps.map((e) => e.labels.version).sort(), ['v1', 'v2', 'v3']);
    assert.equal(new Set(eps.map((e) => e.address)).size, 3);
    const cidr = parseCidr('10.244.0.0/16');
    for (const e of eps) {
      assert.ok(cidrContains(cidr, e.address), e.address);
      assert.equal(e.port, 9080);
      assert.equal(e.healthy, true);
      assert.equal(e.serviceAccount, 'bookinfo-reviews');
      assert.equal(e.workload?.ip, e.address);
      const last = Number(e.address.split('.')[3]);
      assert.ok(last !== 0 && last !== 1 && last !== 255, `${e.address} is a reserved address`);
    }
    assert.deepEqual(reg.endpoints(reviews, 9999), []);
  });

  it('is deterministic: same names and IPs on every build and in any input order', async () => {
    const rs = await bookinfo();
    const a = buildRegistry(rs);
    const b = buildRegistry([...rs].reverse());
    const key = (reg: Registry): string[] => reg.workloads.map((w) => `${w.name} ${w.ip}`).sort();
    assert.deepEqual(key(a), key(b));
    assert.deepEqual(a.services.map((s) => s.addresses[0]), b.services.map((s) => s.addresses[0]));
  });

  it('resolves short names from a namespace (Istio rule) and DNS names (Kubernetes search path)', async () => {
    const reg = buildRegistry(await bookinfo());
    assert.equal(only(reg.lookupHost('reviews', 'bookinfo'), 'reviews').name, 'reviews');
    assert.deepEqual(reg.lookupHost('reviews', 'default'), []);
    assert.equal(only(reg.lookupHost('reviews.bookinfo.svc.cluster.local', 'default'), 'fqdn').name, 'reviews');
    // Istio does not expand dotted names in config...
    assert.deepEqual(reg.lookupHost('reviews.bookinfo', 'default'), []);
    // ...but a pod's resolver does.
    for (const n of ['reviews.bookinfo', 'reviews.bookinfo.svc', 'reviews.bookinfo.svc.cluster.local']) {
      assert.equal(only(reg.resolveDnsName(n, 'default'), n).hostname, 'reviews.bookinfo.svc.cluster.local');
    }
    assert.equal(only(reg.resolveDnsName('reviews', 'bookinfo'), 'reviews').name, 'reviews');
    assert.deepEqual(reg.resolveDnsName('reviews', 'default'), []);
  });

  it('knows every namespace used, with Namespace labels', async () => {
    const reg = buildRegistry([...(await bookinfo()), ...yaml('apiVersion: v1\nkind: Namespace\nmetadata:\n  name: bookinfo\n  labels: {istio-injection: enabled}\n')]);
    assert.deepEqual(reg.namespaces.get('bookinfo')?.labels, { 'istio-injection': 'enabled' });
    assert.deepEqual([...reg.namespaces.keys()], ['bookinfo']);
  });

  it('maps workloads to the services selecting them', async () => {
    const reg = buildRegistry(await bookinfo());
    const pp = reg.workloads.find((w) => w.labels.app === 'productpage');
    assert.ok(pp);
    assert.deepEqual(reg.servicesForWorkload(pp).map((s) => s.name), ['productpage']);
    assert.equal(reg.workload(pp.name, 'bookinfo'), pp);
    assert.equal(reg.workloadsMatching('bookinfo', { app: 'reviews' }).length, 3);
    assert.equal(reg.workloadsMatching('bookinfo', { app: 'reviews', version: 'v2' }).length, 1);
    assert.equal(reg.workloadsMatching('default', { app: 'reviews' }).length, 0);
  });
});

describe('registry: controllers, ports and explicit endpoints', () => {
  it('names StatefulSet, ReplicaSet, DaemonSet and Job pods as Kubernetes does', () => {
    const reg = buildRegistry(yaml(`
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec: {replicas: 3, serviceName: db, template: {metadata: {labels: {app: db}}, spec: {containers: [{name: db}]}}}
---
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: rs}
spec: {replicas: 2, template: {metadata: {labels: {app: rs}}, spec: {containers: [{name: c}]}}}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: ds}
spec: {template: {metadata: {labels: {app: ds}}, spec: {serviceAccountName: node-agent, containers: [{name: c}]}}}
---
apiVersion: batch/v1
kind: Job
metadata: {name: job}
spec: {parallelism: 2, template: {metadata: {labels: {app: job}}, spec: {containers: [{name: c}]}}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: scaled-down}
spec: {replicas: 0, template: {metadata: {labels: {app: none}}, spec: {containers: [{name: c}]}}}
`));
    const names = (app: string): string[] => reg.workloads.filter((w) => w.labels.app === app).map((w) => w.name).sort();
    assert.deepEqual(names('db'), ['db-0', 'db-1', 'db-2']);
    assert.equal(names('rs').length, 2);
    for (const n of names('rs')) assert.match(n, new RegExp(`^rs-${K}{5}$`));
    assert.equal(new Set(names('rs')).size, 2);
    assert.equal(only(names('ds'), 'ds pod').length, 'ds-'.length + 5);
    assert.equal(names('job').length, 2);
    assert.deepEqual(names('none'), []);
    assert.equal(reg.workloads.find((w) => w.labels.app === 'ds')?.serviceAccount, 'node-agent');
    assert.equal(reg.workloads.find((w) => w.labels.app === 'db')?.serviceAccount, 'default');
    assert.equal(reg.workloads.find((w) => w.labels.app === 'job')?.labels['job-name'], 'job');
    assert.equal(new Set(reg.workloads.map((w) => w.ip)).size, reg.workloads.length);
  });

  it('resolves a named targetPort to the container port, and keeps explicit clusterIP and podIP', () => {
    const reg = buildRegistry(yaml(`
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  clusterIP: 10.96.0.50
  selector: {app: web}
  ports: [{name: http-web, port: 80, targetPort: web-port}, {name: grpc, port: 9000, targetPort: 9001}]
---
apiVersion: v1
kind: Pod
metadata: {name: web-a, labels: {app: web}}
spec: {containers: [{name: c, ports: [{name: web-port, containerPort: 8080}]}]}
status: {podIP: 10.244.9.9}
---
apiVersion: v1
kind: Pod
metadata: {name: web-b, labels: {app: web}}
spec: {containers: [{name: c, ports: [{name: other, containerPort: 7070}]}]}
status: {conditions: [{type: Ready, status: "False"}]}
`));
    const web = only(reg.service('web.default.svc.cluster.local'), 'web');
    assert.deepEqual(web.addresses, ['10.96.0.50']);
    assert.deepEqual(web.ports.map((p) => p.protocol), ['HTTP', 'GRPC']);
    // web-b has no container port named web-port: no endpoint for port 80 (as Kubernetes does).
    assert.deepEqual(reg.endpoints(web, 80).map((e) => `${e.address}:${e.port}`), ['10.244.9.9:8080']);
    const grpc = reg.endpoints(web, 9000).map((e) => [e.workload?.name, e.port, e.healthy]).sort();
    assert.deepEqual(grpc, [['web-a', 9001, true], ['web-b', 9001, false]]);
  });

  it('headless and selector-less Services: Passthrough, and endpoints from Endpoints / EndpointSlice', () => {
    const reg = buildRegistry(yaml(`
apiVersion: v1
kind: Service
metadata: {name: hl}
spec: {clusterIP: None, selector: {app: hl}, ports: [{name: tcp, port: 5432}]}
---
apiVersion: v1
kind: Service
metadata: {name: legacy}
spec: {ports: [{name: http, port: 80}]}
---
apiVersion: v1
kind: Endpoints
metadata: {name: legacy}
subsets: [{addresses: [{ip: 192.168.1.10}, {ip: 192.168.1.11}], ports: [{name: http, port: 8080}]}]
---
apiVersion: v1
kind: Service
metadata: {name: sliced}
spec: {ports: [{name: http, port: 80}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: sliced-abc, labels: {kubernetes.io/service-name: sliced}}
addressType: IPv4
ports: [{name: http, port: 9090}]
endpoints: [{addresses: [192.168.2.1], conditions: {ready: false}}]
`));
    const hl = only(reg.service('hl.default.svc.cluster.local'), 'hl');
    assert.deepEqual([hl.addresses, hl.resolution, hl.headless], [[], 'Passthrough', true]);
    const legacy = only(reg.service('legacy.default.svc.cluster.local'), 'legacy');
    assert.deepEqual(reg.endpoints(legacy, 80).map((e) => `${e.address}:${e.port}`).sort(), ['192.168.1.10:8080', '192.168.1.11:8080']);
    const sliced = only(reg.service('sliced.default.svc.cluster.local'), 'sliced');
    assert.deepEqual(reg.endpoints(sliced, 80).map((e) => [e.address, e.port, e.healthy]), [['192.168.2.1', 9090, false]]);
  });
});

describe('registry: ServiceEntries', () => {
  it('a DNS ServiceEntry: one service per host, external, endpoints are the host itself', () => {
    const reg = buildRegistry(yaml(`
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: external}
spec:
  hosts: [httpbin.org, www.google.com]
  ports: [{number: 80, name: http, protocol: HTTP}, {number: 443, name: https, protocol: HTTPS}]
  resolution: DNS
`));
    assert.deepEqual(reg.services.map((s) => s.hostname), ['httpbin.org', 'www.google.com']);
    const hb = only(reg.service('httpbin.org'), 'httpbin.org');
    assert.deepEqual([hb.origin, hb.resolution, hb.location, hb.name, hb.namespace], ['ServiceEntry', 'DNS', 'MESH_EXTERNAL', 'external', 'default']);
    assert.deepEqual(hb.ports.map((p) => p.protocol), ['HTTP', 'HTTPS']);
    assert.deepEqual(reg.endpoints(hb, 443).map((e) => `${e.address}:${e.port}`), ['httpbin.org:443']);
    assert.equal(only(reg.lookupHost('httpbin.org', 'anywhere'), 'lookup').hostname, 'httpbin.org');
  });

  it('a STATIC ServiceEntry with endpoints: ports by port name, labels, short host expanded', () => {
    const reg = buildRegistry(yaml(`
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: vms, namespace: legacy}
spec:
  hosts: [mysqldb]
  addresses: [240.0.0.10]
  location: MESH_INTERNAL
  ports: [{number: 3306, name: mysql, protocol: TCP}]
  resolution: STATIC
  endpoints:
  - {address: 10.0.0.1, ports: {mysql: 13306}, labels: {version: v1}, locality: us-east1/a}
  - {address: 10.0.0.2}
`));
    const db = only(reg.service('mysqldb.legacy.svc.cluster.local'), 'mysqldb');
    assert.deepEqual([db.resolution, db.location, db.addresses], ['ClientSideLB', 'MESH_INTERNAL', ['240.0.0.10']]);
    const eps = reg.endpoints(db, 3306).map((e) => [e.address, e.port, e.labels.version, e.locality]);
    assert.deepEqual(eps, [['10.0.0.1', 13306, 'v1', 'us-east1/a'], ['10.0.0.2', 3306, undefined, undefined]]);
    assert.equal(only(reg.lookupHost('mysqldb', 'legacy'), 'short').name, 'vms');
  });

  it('workloadSelector picks pods and WorkloadEntries in the entry namespace; wildcard hosts match by lookup', () => {
    const reg = buildRegistry(yaml(`
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: app}
spec:
  hosts: [app.internal]
  location: MESH_INTERNAL
  ports: [{number: 80, name: http, protocol: HTTP, targetPort: 8080}]
  resolution: STATIC
  workloadSelector: {labels: {app: vm}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: vm-1}
spec: {address: 172.16.0.5, labels: {app: vm}, serviceAccount: vm-sa, ports: {http: 9999}}
---
apiVersion: v1
kind: Pod
metadata: {name: vm-pod, labels: {app: vm}}
spec: {containers: [{name: c}]}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: wild}
spec: {hosts: ["*.example.com"], ports: [{number: 443, name: tls, protocol: TLS}], resolution: NONE}
`));
    const app = only(reg.service('app.internal'), 'app.internal');
    const eps = reg.endpoints(app, 80).map((e) => [e.workload?.kind, e.port, e.serviceAccount]).sort();
    assert.deepEqual(eps, [['Pod', 8080, 'default'], ['WorkloadEntry', 9999, 'vm-sa']]);
    assert.equal(reg.workload('vm-1', 'default')?.ip, '172.16.0.5');
    assert.equal(only(reg.lookupHost('api.example.com', 'default'), 'wildcard').hostname, '*.example.com');
    assert.equal(only(reg.service('*.example.com'), 'wild').resolution, 'Passthrough');
  });

  it("exportTo '.' hides a service from other namespaces (ServiceEntry field and Service annotation)", () => {
    const reg = buildRegistry(yaml(`
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: private, namespace: team}
spec: {hosts: [private.example.com], exportTo: ["."], ports: [{number: 80, name: http, protocol: HTTP}], resolution: DNS}
---
apiVersion: v1
kind: Service
metadata: {name: internal, namespace: team, annotations: {networking.istio.io/exportTo: "., ops"}}
spec: {selector: {app: internal}, ports: [{name: http, port: 80}]}
`));
    const se = only(reg.service('private.example.com'), 'se');
    assert.equal(reg.isExportedTo(se, 'team'), true);
    assert.equal(reg.isExportedTo(se, 'default'), false);
    const svc = only(reg.service('internal.team.svc.cluster.local'), 'svc');
    assert.deepEqual(svc.exportTo, ['.', 'ops']);
    assert.deepEqual(['team', 'ops', 'default'].map((ns) => reg.isExportedTo(svc, ns)), [true, true, false]);
  });
});

describe('registry: scale', () => {
  it('builds 5000 services x 3 pods with unique IPs (its speed is measured by npm run bench)', () => {
    const resources: Resource[] = [];
    const mk = (kind: string, group: string, name: string, ns: string, spec: Record<string, unknown>): Resource => ({
      apiVersion: group ? `${group}/v1` : 'v1', group, version: 'v1', kind,
      metadata: { name, namespace: ns, labels: {}, annotations: {} }, spec, body: { spec }, source: syntheticSource('bench'),
    });
    for (let i = 0; i < 5000; i++) {
      const ns = `ns${i % 50}`;
      resources.push(mk('Service', '', `svc${i}`, ns, { selector: { app: `app${i}` }, ports: [{ name: 'http', port: 80, targetPort: 8080 }] }));
      resources.push(mk('Deployment', 'apps', `app${i}`, ns, { replicas: 3, template: { metadata: { labels: { app: `app${i}`, tier: 'web' } }, spec: { containers: [{ name: 'c' }] } } }));
    }
    const reg: Registry = buildRegistry(resources);
    let total = 0;
    for (const s of reg.services) total += reg.endpoints(s, 80).length;
    assert.ok(reg);
    assert.equal(reg.workloads.length, 15000);
    assert.equal(total, 15000);
    assert.equal(new Set(reg.workloads.map((w) => w.ip)).size, 15000);
    assert.equal(new Set(reg.services.map((s) => s.addresses[0])).size, 5000);
    assert.ok(reg.workloads.every((w) => parseIpv4(w.ip) !== undefined));
  });
});
