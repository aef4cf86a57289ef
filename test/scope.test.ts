// Seeds 002 and 000 reproduced on the Sidecar scope: what a pod's sidecar would be given, computed
// offline from Istio's own sample YAML. Fails when scoping or precedence differs from Istio's.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { loadPaths, loadString } from '../src/config/loader.ts';
import type { Resource } from '../src/config/resource.ts';
import { applyMeshOverrides, defaultMeshConfig } from '../src/config/mesh-config.ts';
import { buildPushContext, type PushContext } from '../src/controlplane/model/push-context.ts';
import { computeSidecarScope, type SidecarScope } from '../src/controlplane/model/sidecar-scope.ts';
import type { Workload } from '../src/registry/types.ts';
import { istioPath } from './helpers/shared.ts';

const fixture = (name: string): string => fileURLToPath(new URL(`./fixtures/scope/${name}`, import.meta.url));

async function seed002World(extra: string[] = []): Promise<Resource[]> {
  const bookinfo = await loadPaths([istioPath('samples', 'bookinfo', 'platform', 'kube', 'bookinfo.yaml')], { defaultNamespace: 'bookinfo' });
  const curl = await loadPaths([istioPath('samples', 'curl', 'curl.yaml')], { defaultNamespace: 'default' });
  const system = await loadPaths([fixture('istio-system.yaml'), ...extra.map(fixture)]);
  for (const r of [bookinfo, curl, system]) assert.deepEqual(r.diagnostics.filter((d) => d.severity === 'error'), []);
  return [...bookinfo.resources, ...curl.resources, ...system.resources];
}

function pod(push: PushContext, namespace: string, pred: (w: Workload) => boolean): Workload {
  const w = push.registry.workloads.find((x) => x.namespace === namespace && pred(x));
  assert.ok(w, `no pod in ${namespace}`);
  return w;
}

/** `istioctl proxy-config endpoint` rows for a scope: `ip:port cluster`. */
function endpointRows(push: PushContext, scope: SidecarScope): string[] {
  const rows: string[] = [];
  for (const svc of scope.services) {
    for (const p of svc.ports) {
      for (const ep of push.registry.endpoints(svc, p.port)) rows.push(`${ep.address}:${ep.port} outbound|${p.port}||${svc.hostname}`);
    }
  }
  return rows.sort();
}

const namespacesOf = (scope: SidecarScope): string[] => [...new Set(scope.services.map((s) => s.namespace))].sort();

describe('seed 002: a Sidecar with egress ./* and istio-system/* shrinks what a pod in default sees', () => {
  it('before any Sidecar, the curl pod in default sees bookinfo services and endpoints', async () => {
    const push = buildPushContext(await seed002World());
    const curl = pod(push, 'default', (w) => w.labels.app === 'curl');
    assert.match(curl.name, /^curl-[bcdfghjklmnpqrstvwxz2456789]{8,10}-[bcdfghjklmnpqrstvwxz2456789]{5}$/);
    const scope = computeSidecarScope({ namespace: 'default', labels: curl.labels, name: curl.name }, push);
    assert.equal(scope.appliedFrom, 'none');
    assert.deepEqual(namespacesOf(scope), ['bookinfo', 'default', 'istio-system']);
    assert.ok(scope.isVisible('reviews.bookinfo.svc.cluster.local'));
    const rows = endpointRows(push, scope);
    const reviews = rows.filter((r) => r.endsWith('outbound|9080||reviews.bookinfo.svc.cluster.local'));
    assert.equal(reviews.length, 3, rows.join('\n'));
    for (const h of ['details', 'ratings', 'productpage']) assert.ok(rows.some((r) => r.endsWith(`||${h}.bookinfo.svc.cluster.local`)), h);
    // istiod's 443 goes to the pod's 15017, as in the seed's listing.
    assert.ok(rows.some((r) => /:15017 outbound\|443\|\|istiod\.istio-system\.svc\.cluster\.local$/.test(r)), rows.join('\n'));
  });

  it('after Sidecar default/default, only default and istio-system remain', async () => {
    const push = buildPushContext(await seed002World(['sidecar-default.yaml']));
    const curl = pod(push, 'default', (w) => w.labels.app === 'curl');
    const scope = computeSidecarScope({ namespace: 'default', labels: curl.labels }, push);
    assert.equal(scope.appliedFrom, 'namespace');
    assert.equal(scope.sidecar?.metadata.name, 'default');
    assert.deepEqual(namespacesOf(scope), ['default', 'istio-system']);
    assert.equal(scope.isVisible('reviews.bookinfo.svc.cluster.local'), false);
    const rows = endpointRows(push, scope);
    assert.equal(rows.filter((r) => r.includes('.bookinfo.')).length, 0, rows.join('\n'));
    const expectedClusters = [
      'outbound|15010||istiod.istio-system.svc.cluster.local',
      'outbound|15012||istiod.istio-system.svc.cluster.local',
      'outbound|15014||istiod.istio-system.svc.cluster.local',
      'outbound|443||istiod.istio-system.svc.cluster.local',
      'outbound|80||istio-ingressgateway.istio-system.svc.cluster.local',
      'outbound|443||istio-ingressgateway.istio-system.svc.cluster.local',
      'outbound|15021||istio-ingressgateway.istio-system.svc.cluster.local',
      'outbound|15443||istio-ingressgateway.istio-system.svc.cluster.local',
      'outbound|31400||istio-ingressgateway.istio-system.svc.cluster.local',
      'outbound|80||curl.default.svc.cluster.local',
    ];
    assert.deepEqual(rows.map((r) => r.split(' ')[1]).sort(), expectedClusters.sort());
    // The bookinfo pods are unaffected: no Sidecar in their namespace, so they still see everything.
    const reviews = pod(push, 'bookinfo', (w) => w.labels.app === 'reviews');
    assert.deepEqual(namespacesOf(computeSidecarScope({ namespace: 'bookinfo', labels: reviews.labels }, push)), ['bookinfo', 'default', 'istio-system']);
  });

  it('with a workloadSelector app: reviews, the Sidecar no longer applies to the curl pod', async () => {
    const world = await seed002World(['sidecar-default-reviews-only.yaml']);
    const extra = loadString('apiVersion: v1\nkind: Pod\nmetadata:\n  name: reviews-shell\n  namespace: default\n  labels: {app: reviews}\nspec:\n  containers: [{name: sh, image: busybox}]\n', 'inline.yaml');
    const push = buildPushContext([...world, ...extra.resources]);
    const curl = pod(push, 'default', (w) => w.labels.app === 'curl');
    const scope = computeSidecarScope({ namespace: 'default', labels: curl.labels }, push);
    assert.equal(scope.appliedFrom, 'none');
    assert.deepEqual(namespacesOf(scope), ['bookinfo', 'default', 'istio-system']);
    assert.equal(endpointRows(push, scope).filter((r) => r.endsWith('||reviews.bookinfo.svc.cluster.local')).length, 3);
    const shell = pod(push, 'default', (w) => w.name === 'reviews-shell');
    const shellScope = computeSidecarScope({ namespace: 'default', labels: shell.labels }, push);
    assert.equal(shellScope.appliedFrom, 'workloadSelector');
    assert.deepEqual(namespacesOf(shellScope), ['default', 'istio-system']);
  });
});

const SEED000_APPS = `
apiVersion: v1
kind: Namespace
metadata: {name: a}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: sleep, namespace: a}
spec:
  selector: {matchLabels: {app: sleep}}
  template:
    metadata: {labels: {app: sleep}}
    spec: {containers: [{name: sleep, image: curl}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: webapp, namespace: a}
spec:
  selector: {matchLabels: {app: webapp}}
  template:
    metadata: {labels: {app: webapp}}
    spec: {containers: [{name: webapp, image: webapp}]}
`;

const sidecarYaml = (ns: string, name: string, mode: string, selector?: string): string => `
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: ${name}, namespace: ${ns}}
spec:
${selector ? `  workloadSelector: {labels: {app: ${selector}}}\n` : ''}  outboundTrafficPolicy: {mode: ${mode}}
`;

function world(...docs: string[]): Resource[] {
  const out: Resource[] = [];
  docs.forEach((d, i) => {
    const r = loadString(d, `doc${i}.yaml`);
    assert.deepEqual(r.diagnostics, []);
    out.push(...r.resources);
  });
  return out;
}

describe("seed 000: outboundTrafficPolicy precedence (root, namespace, workload)", () => {
  const scopeOf = (push: PushContext, app: string): SidecarScope => {
    const w = pod(push, 'a', (x) => x.labels.app === app);
    return computeSidecarScope({ namespace: 'a', labels: w.labels, name: w.name }, push);
  };

  it('no Sidecar and default mesh config: ALLOW_ANY by default', () => {
    const push = buildPushContext(world(SEED000_APPS));
    const s = scopeOf(push, 'sleep');
    assert.deepEqual([s.outboundTrafficPolicy.mode, s.outboundTrafficPolicy.from, s.appliedFrom], ['ALLOW_ANY', 'default', 'none']);
  });

  it('a root-namespace Sidecar with REGISTRY_ONLY applies to namespace a', () => {
    const push = buildPushContext(world(SEED000_APPS, sidecarYaml('istio-system', 'default', 'REGISTRY_ONLY')));
    const s = scopeOf(push, 'sleep');
    assert.deepEqual([s.outboundTrafficPolicy.mode, s.outboundTrafficPolicy.from, s.appliedFrom], ['REGISTRY_ONLY', 'sidecar', 'root']);
    assert.equal(s.sidecar?.metadata.namespace, 'istio-system');
  });

  it("namespace a's own Sidecar with ALLOW_ANY overrides the root one", () => {
    const push = buildPushContext(world(SEED000_APPS, sidecarYaml('istio-system', 'default', 'REGISTRY_ONLY'), sidecarYaml('a', 'default', 'ALLOW_ANY')));
    const s = scopeOf(push, 'sleep');
    assert.deepEqual([s.outboundTrafficPolicy.mode, s.outboundTrafficPolicy.from, s.appliedFrom], ['ALLOW_ANY', 'sidecar', 'namespace']);
  });

  it('a workload-selector Sidecar overrides for the matching pod only', () => {
    const push = buildPushContext(world(
      SEED000_APPS,
      sidecarYaml('istio-system', 'default', 'REGISTRY_ONLY'),
      sidecarYaml('a', 'default', 'ALLOW_ANY'),
      sidecarYaml('a', 'sleep-only', 'REGISTRY_ONLY', 'sleep'),
    ));
    const sleep = scopeOf(push, 'sleep');
    assert.deepEqual([sleep.outboundTrafficPolicy.mode, sleep.appliedFrom, sleep.sidecar?.metadata.name], ['REGISTRY_ONLY', 'workloadSelector', 'sleep-only']);
    const webapp = scopeOf(push, 'webapp');
    assert.deepEqual([webapp.outboundTrafficPolicy.mode, webapp.appliedFrom, webapp.sidecar?.metadata.name], ['ALLOW_ANY', 'namespace', 'default']);
  });

  it('a root Sidecar with a workloadSelector does not apply to other namespaces', () => {
    const push = buildPushContext(world(SEED000_APPS, sidecarYaml('istio-system', 'sleepers', 'REGISTRY_ONLY', 'sleep')));
    const s = scopeOf(push, 'sleep');
    assert.deepEqual([s.outboundTrafficPolicy.mode, s.appliedFrom], ['ALLOW_ANY', 'none']);
  });

  it('meshConfig REGISTRY_ONLY without any Sidecar comes from the mesh (ConfigMap or --set)', () => {
    const cm = `
apiVersion: v1
kind: ConfigMap
metadata: {name: istio, namespace: istio-system}
data:
  mesh: |
    outboundTrafficPolicy:
      mode: REGISTRY_ONLY
`;
    const fromCm = scopeOf(buildPushContext(world(SEED000_APPS, cm)), 'sleep');
    assert.deepEqual([fromCm.outboundTrafficPolicy.mode, fromCm.outboundTrafficPolicy.from, fromCm.appliedFrom], ['REGISTRY_ONLY', 'mesh', 'none']);
    const mesh = applyMeshOverrides(defaultMeshConfig(), ['meshConfig.outboundTrafficPolicy.mode=REGISTRY_ONLY']);
    const fromSet = scopeOf(buildPushContext(world(SEED000_APPS), { mesh }), 'sleep');
    assert.deepEqual([fromSet.outboundTrafficPolicy.mode, fromSet.outboundTrafficPolicy.from], ['REGISTRY_ONLY', 'mesh']);
    // A Sidecar's own mode still wins over the mesh's.
    const both = scopeOf(buildPushContext(world(SEED000_APPS, sidecarYaml('a', 'default', 'ALLOW_ANY')), { mesh }), 'sleep');
    assert.deepEqual([both.outboundTrafficPolicy.mode, both.outboundTrafficPolicy.from], ['ALLOW_ANY', 'sidecar']);
  });
});
