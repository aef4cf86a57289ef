import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { loadPaths, loadString } from '../config/loader.ts';
import type { Resource } from '../config/resource.ts';
import { formatNodeId, parseNode } from '../xds/node.ts';
import { encodeAny, TYPE_URLS, type XdsObject } from '../xds/protos.ts';
import { istioPath } from '../../test/helpers/shared.ts';
import { meshGenerators } from './generators.ts';
import { buildPushContext, type PushContext } from './model/push-context.ts';
import { computeSidecarScope, type ProxyInfo } from './model/sidecar-scope.ts';
import { pushCacheFor } from './push-cache.ts';
import { buildClusters } from './translate/clusters.ts';
import { buildEndpoints } from './translate/endpoints.ts';
import { buildListeners } from './translate/listeners.ts';
import { buildRoutes } from './translate/routes.ts';
import type { ConnectedProxy, GeneratedResource } from './xds/ads-server.ts';

// A mesh that exercises what a scope key must tell apart: several namespaces (short names, same-namespace
// domains), Sidecars by namespace and by workloadSelector, DestinationRules with a workloadSelector,
// VirtualService matches on sourceLabels and sourceNamespace (HTTP and TCP), exportTo, a ServiceEntry,
// TCP, TLS and sniffed ports, and Bookinfo's own routing.
const EXTRA = `
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: v1
kind: Service
metadata: {name: frontend, namespace: shop, labels: {app: frontend}}
spec:
  selector: {app: frontend}
  ports: [{name: http, port: 8000, targetPort: 8080}, {name: web, port: 8443}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: frontend-v1, namespace: shop}
spec:
  replicas: 2
  selector: {matchLabels: {app: frontend, version: v1}}
  template:
    metadata: {labels: {app: frontend, version: v1, tier: edge}}
    spec: {containers: [{name: app, image: frontend, ports: [{containerPort: 8080}, {containerPort: 8443}]}]}
---
apiVersion: v1
kind: Service
metadata: {name: cart, namespace: shop, labels: {app: cart}}
spec:
  selector: {app: cart}
  ports: [{name: http, port: 9080}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: cart-v1, namespace: shop}
spec:
  replicas: 1
  selector: {matchLabels: {app: cart, version: v1}}
  template:
    metadata: {labels: {app: cart, version: v1}}
    spec: {containers: [{name: app, image: cart, ports: [{containerPort: 9080}]}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: cart-v2, namespace: shop}
spec:
  replicas: 1
  selector: {matchLabels: {app: cart, version: v2}}
  template:
    metadata: {labels: {app: cart, version: v2}}
    spec: {containers: [{name: app, image: cart, ports: [{containerPort: 9080}]}]}
---
apiVersion: v1
kind: Service
metadata: {name: mongo, namespace: shop, labels: {app: mongo}}
spec:
  selector: {app: mongo}
  ports: [{name: tcp-mongo, port: 27017}, {name: tls-admin, port: 8443}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: mongo, namespace: shop}
spec:
  replicas: 1
  selector: {matchLabels: {app: mongo}}
  template:
    metadata: {labels: {app: mongo}}
    spec: {containers: [{name: app, image: mongo, ports: [{containerPort: 27017}]}]}
---
apiVersion: v1
kind: Service
metadata: {name: internal, namespace: shop, annotations: {networking.istio.io/exportTo: "."}}
spec:
  selector: {app: cart}
  ports: [{name: http, port: 9080}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: cart, namespace: shop}
spec:
  host: cart
  trafficPolicy: {loadBalancer: {simple: LEAST_REQUEST}}
  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: cart-edge, namespace: shop}
spec:
  host: cart
  workloadSelector: {matchLabels: {tier: edge}}
  trafficPolicy: {loadBalancer: {consistentHash: {httpHeaderName: x-user}}}
  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: cart, namespace: shop}
spec:
  hosts: [cart]
  http:
  - name: from-edge
    match: [{sourceLabels: {tier: edge}}]
    route: [{destination: {host: cart, subset: v2}}]
  - name: from-bookinfo
    match: [{sourceNamespace: default}]
    route: [{destination: {host: cart, subset: v1}}]
    timeout: 3s
  - route:
    - {destination: {host: cart, subset: v1}, weight: 70}
    - {destination: {host: cart, subset: v2}, weight: 30}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: mongo, namespace: shop}
spec:
  hosts: [mongo]
  tcp:
  - match: [{sourceLabels: {app: frontend}, port: 27017}]
    route: [{destination: {host: mongo, port: {number: 27017}}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: local-only, namespace: shop}
spec:
  hosts: [internal]
  exportTo: ["."]
  http:
  - route: [{destination: {host: internal}}]
    retries: {attempts: 0}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: payments, namespace: shop}
spec:
  hosts: [api.payments.example]
  ports: [{number: 443, name: tls, protocol: TLS}, {number: 80, name: http, protocol: HTTP}]
  resolution: DNS
  location: MESH_EXTERNAL
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: payments, namespace: shop}
spec:
  hosts: [api.payments.example, "*.payments.example"]
  http:
  - timeout: 5s
    route: [{destination: {host: api.payments.example}}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: checkout, namespace: shop}
spec:
  replicas: 1
  selector: {matchLabels: {app: checkout}}
  template:
    metadata: {labels: {app: checkout}}
    spec: {containers: [{name: app, image: checkout}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: frontend-canary, namespace: sample}
spec:
  replicas: 1
  selector: {matchLabels: {app: frontend, version: canary}}
  template:
    metadata: {labels: {app: frontend, version: canary}}
    spec: {containers: [{name: app, image: frontend}]}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: details-sticky, namespace: sample}
spec:
  host: details.default.svc.cluster.local
  trafficPolicy: {loadBalancer: {consistentHash: {httpHeaderName: x-session}}}
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: cart-narrow, namespace: shop}
spec:
  workloadSelector: {labels: {app: cart}}
  outboundTrafficPolicy: {mode: REGISTRY_ONLY}
  egress:
  - hosts: ["./*"]
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: mongo-ingress, namespace: shop}
spec:
  workloadSelector: {labels: {app: mongo}}
  ingress:
  - port: {number: 27017, protocol: TCP, name: tcp}
    defaultEndpoint: 127.0.0.1:27017
  egress:
  - hosts: ["shop/*", "istio-system/*"]
`;

async function mesh(): Promise<Resource[]> {
  const net = (f: string): string => istioPath('samples', 'bookinfo', 'networking', f);
  const files = [
    istioPath('samples', 'bookinfo', 'platform', 'kube', 'bookinfo.yaml'),
    net('destination-rule-all.yaml'),
    net('virtual-service-reviews-80-20.yaml'),
    net('virtual-service-ratings-test-delay.yaml'),
    net('virtual-service-details-v2.yaml'),
  ];
  const loaded = await loadPaths(files, { defaultNamespace: 'default' });
  const samples = await loadPaths([istioPath('samples', 'httpbin', 'httpbin.yaml'), istioPath('samples', 'sleep', 'sleep.yaml')], { defaultNamespace: 'sample' });
  const scope = await loadPaths([new URL('../../test/fixtures/scope/istio-system.yaml', import.meta.url).pathname], { defaultNamespace: 'istio-system' });
  const extra = loadString(EXTRA, 'extra.yaml', { defaultNamespace: 'shop' });
  assert.deepEqual(extra.diagnostics, []);
  const ns = loadString('apiVersion: v1\nkind: Namespace\nmetadata: {name: sample}\n', 'ns.yaml', {});
  return [...loaded.resources, ...samples.resources, ...scope.resources, ...extra.resources, ...ns.resources];
}

function connected(w: { name: string; namespace: string; ip: string; labels: Record<string, string> }, n: number): ConnectedProxy {
  const identity = parseNode({ id: formatNodeId({ ip: w.ip, podName: w.name, namespace: w.namespace }), metadata: { NAMESPACE: w.namespace, LABELS: w.labels, INSTANCE_IPS: w.ip } });
  return { ...identity, connectionId: `${identity.id}-${n}`, connectedAt: 0, peer: 'test', protocol: 'sotw', watches: new Map() };
}

function bytesOf(resource: object): string {
  return Buffer.from(encodeAny(resource as XdsObject).value).toString('base64');
}

/** Every resource as its uncached translators build it, encoded alone. */
function uncached(info: ProxyInfo, push: PushContext): Record<string, Array<[string, string]>> {
  const scope = computeSidecarScope(info, push);
  const clusters = buildClusters(info, push, scope);
  const enc = (list: ReadonlyArray<Record<string, unknown>>, key = 'name'): Array<[string, string]> => list.map((r) => [String(r[key]), bytesOf(r)]);
  return {
    [TYPE_URLS.CLUSTER]: enc(clusters),
    [TYPE_URLS.ENDPOINT]: enc(buildEndpoints(clusters, push, scope), 'cluster_name'),
    [TYPE_URLS.LISTENER]: enc(buildListeners(info, push, scope)),
    [TYPE_URLS.ROUTE]: enc(buildRoutes(info, push, scope)),
  };
}

describe('push cache: shared generation per scope key', () => {
  it('gives every proxy of a varied mesh byte-identical resources to generating it alone', async () => {
    const push = buildPushContext(await mesh());
    const gens = meshGenerators();
    const pods = push.registry.workloads.filter((w) => w.kind === 'Pod');
    assert.ok(pods.length >= 12, `a mesh of many pods (${pods.length})`);
    let n = 0;
    let resources = 0;
    for (const w of pods) {
      const proxy = connected(w, ++n);
      const want = uncached({ name: w.name, namespace: w.namespace, labels: { ...w.labels }, ip: w.ip, type: 'sidecar' }, push);
      for (const g of gens) {
        const got = g.generate(proxy, push, []).map((r: GeneratedResource) => [r.name, bytesOf(r.resource)]);
        assert.deepEqual(got, want[g.typeUrl], `${w.namespace}/${w.name}: ${g.typeUrl}`);
        resources += got.length;
      }
    }
    assert.ok(resources > 1000, `compared ${resources} resources`);
    const cache = pushCacheFor(push);
    assert.ok(cache.keys < pods.length, `${pods.length} proxies in ${cache.keys} scope keys`);
    assert.ok(cache.virtualHosts.hits > 0, 'virtual hosts are shared between scope keys');
  });

  it('tells apart proxies whose labels select a Sidecar, a DestinationRule or a VirtualService match', async () => {
    const push = buildPushContext(await mesh());
    const cache = pushCacheFor(push);
    const key = (namespace: string, labels: Record<string, string>): string => cache.keyOf({ namespace, labels, type: 'sidecar' });
    assert.equal(key('default', { app: 'reviews', version: 'v1' }), key('default', { app: 'ratings', version: 'v1' }), 'nothing selects on these labels in default');
    assert.notEqual(key('default', { app: 'reviews' }), key('shop', { app: 'reviews' }), 'namespaces differ');
    assert.notEqual(key('shop', { app: 'cart' }), key('shop', { app: 'other' }), 'the cart Sidecar selects app=cart');
    assert.notEqual(key('shop', { app: 'x', tier: 'edge' }), key('shop', { app: 'x' }), 'a DestinationRule and a sourceLabels match select tier=edge');
    assert.notEqual(key('sample', { app: 'frontend' }), key('sample', { app: 'sleep' }), 'the mongo tcp route matches sourceLabels app=frontend anywhere');
    assert.notEqual(cache.keyOf({ namespace: 'default', labels: {}, type: 'router' }), key('default', {}), 'gateways are not sidecars');
  });

  it('encodes a route configuration once for every proxy of a key', async () => {
    const push = buildPushContext(await mesh());
    const rds = meshGenerators().find((g) => g.typeUrl === TYPE_URLS.ROUTE)!;
    const [a, b] = push.registry.workloads.filter((w) => w.kind === 'Pod' && w.namespace === 'default' && w.labels.app === 'reviews');
    assert.ok(a && b);
    const ra = rds.generate(connected(a, 1), push, []);
    const rb = rds.generate(connected(b, 2), push, []);
    assert.ok(ra.length > 0);
    ra.forEach((r, i) => assert.equal(r.resource, rb[i]?.resource, `${r.name}: the same encoded object`));
    assert.ok(ra.every((r) => typeof r.version === 'string' && r.version.length > 0));
  });
});
