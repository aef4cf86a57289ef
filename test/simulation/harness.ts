// Loads Istio YAML, builds a proxy's listeners, routes and clusters through the real push context and
// Sidecar scope, and replays calls through them with the simulator. Throws when a file or pod is missing.

import { loadPaths, loadString } from '../../src/config/loader.ts';
import { defaultMeshConfig, type MeshConfig } from '../../src/config/mesh-config.ts';
import { resourceKey, type Resource } from '../../src/config/resource.ts';
import type { Workload } from '../../src/registry/types.ts';
import { buildPushContext, type PushContext } from '../../src/controlplane/model/push-context.ts';
import { computeSidecarScope, type ProxyInfo, type SidecarScope } from '../../src/controlplane/model/sidecar-scope.ts';
import { proxyInfoFor } from '../../src/controlplane/debug/proxy-ref.ts';
import { buildClusters, type EnvoyCluster } from '../../src/controlplane/translate/clusters.ts';
import { buildListeners, type EnvoyListener } from '../../src/controlplane/translate/listeners.ts';
import { buildRoutes, type EnvoyRouteConfiguration } from '../../src/controlplane/translate/routes.ts';
import { simulate, type SimulatedCall, type SimulationResult } from '../../src/controlplane/translate/simulate.ts';
import { encodeAny } from '../../src/xds/protos.ts';
import { istioPath } from '../helpers/shared.ts';

export const BOOKINFO = istioPath('samples', 'bookinfo', 'platform', 'kube', 'bookinfo.yaml');
export const bookinfoNet = (file: string): string => istioPath('samples', 'bookinfo', 'networking', file);

/**
 * Loads files (namespace `ns` for resources that name none) and inline YAML documents, in order. As with
 * `kubectl apply` of one file after another, a later resource of the same kind, namespace and name
 * replaces the earlier one (virtual-service-reviews-test-v2.yaml after virtual-service-all-v1.yaml).
 */
export async function load(paths: readonly string[], ns = 'default', inline: readonly string[] = []): Promise<Resource[]> {
  const res = await loadPaths(paths, { defaultNamespace: ns });
  const all = [...res.resources];
  inline.forEach((text, i) => all.push(...loadString(text, `inline-${i}.yaml`, { defaultNamespace: ns }).resources));
  const byKey = new Map<string, Resource>();
  for (const r of all) {
    byKey.delete(resourceKey(r));
    byKey.set(resourceKey(r), r);
  }
  return [...byKey.values()];
}

/** Parses inline YAML documents (namespace `ns` for resources that name none). */
export function parse(text: string, ns = 'default'): Resource[] {
  const r = loadString(text, 'inline.yaml', { defaultNamespace: ns });
  if (r.diagnostics.length > 0) throw new Error(`inline YAML: ${r.diagnostics.map((d) => d.message).join('; ')}`);
  return r.resources;
}

/** YAML for a Kubernetes Service `name` in `ns` and one Deployment per version (labels app, version). */
export function app(name: string, ns: string, ports: ReadonlyArray<{ name: string; port: number; targetPort?: number }>, versions: readonly string[] = ['v1']): string {
  const svcPorts = ports.map((p) => `  - name: ${p.name}\n    port: ${p.port}\n    targetPort: ${p.targetPort ?? p.port}`).join('\n');
  const containerPorts = ports.map((p) => `        - containerPort: ${p.targetPort ?? p.port}`).join('\n');
  const svc = `apiVersion: v1\nkind: Service\nmetadata:\n  name: ${name}\n  namespace: ${ns}\n  labels: {app: ${name}}\nspec:\n  selector: {app: ${name}}\n  ports:\n${svcPorts}\n`;
  const deps = versions.map(
    (v) =>
      `apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: ${name}-${v}\n  namespace: ${ns}\nspec:\n  replicas: 1\n  selector:\n    matchLabels: {app: ${name}, version: ${v}}\n  template:\n    metadata:\n      labels: {app: ${name}, version: ${v}}\n    spec:\n      containers:\n      - name: app\n        image: ${name}:${v}\n        ports:\n${containerPorts}\n`,
  );
  return [svc, ...deps].join('---\n');
}

/** Runs every listener and route configuration through Envoy's protos; returns the failures (name: message). */
export function encodeFailures(p: Pick<ProxyConfig, 'listeners' | 'routes'>): string[] {
  const out: string[] = [];
  for (const x of [...p.listeners, ...p.routes]) {
    try {
      encodeAny(x);
    } catch (err) {
      out.push(`${x.name}: ${(err as Error).message}`);
    }
  }
  return out;
}

export function mesh(overrides: Partial<MeshConfig> = {}): MeshConfig {
  return { ...defaultMeshConfig(), ...overrides };
}

export interface ProxyConfig {
  proxy: ProxyInfo;
  push: PushContext;
  scope: SidecarScope;
  listeners: EnvoyListener[];
  routes: EnvoyRouteConfiguration[];
  clusters: EnvoyCluster[];
  call(c: SimulatedCall): SimulationResult;
  /** The ClusterIP of a service by FQDN. */
  vip(hostname: string): string;
}

/** The generated config of the first pod in `namespace` whose `app` label is `select` (or that `select` accepts). */
export function proxyFor(resources: readonly Resource[], select: string | ((w: Workload) => boolean), namespace = 'default', meshConfig: MeshConfig = mesh()): ProxyConfig {
  const push = buildPushContext(resources, { mesh: meshConfig });
  const accept = typeof select === 'string' ? (x: Workload) => x.labels.app === select : select;
  const w = push.registry.workloads.find((x) => x.namespace === namespace && accept(x));
  if (!w) throw new Error(`no pod ${typeof select === 'string' ? `with app=${select} ` : 'selected '}in ${namespace}`);
  const proxy = proxyInfoFor(w);
  const scope = computeSidecarScope(proxy, push);
  const listeners = buildListeners(proxy, push, scope);
  const routes = buildRoutes(proxy, push, scope);
  const clusters = buildClusters(proxy, push, scope);
  for (const [kind, names] of [['listener', listeners.map((l) => l.name)], ['route configuration', routes.map((r) => r.name)]] as const) {
    const dup = names.find((n, i) => names.indexOf(n) !== i);
    if (dup !== undefined) throw new Error(`duplicate ${kind} name ${dup}: Envoy would reject the update`);
  }
  return {
    proxy,
    push,
    scope,
    listeners,
    routes,
    clusters,
    call: (c) => simulate(listeners, routes, clusters, c),
    vip: (h) => {
      const ip = push.registry.service(h)[0]?.addresses[0];
      if (!ip) throw new Error(`no VIP for ${h}`);
      return ip;
    },
  };
}
