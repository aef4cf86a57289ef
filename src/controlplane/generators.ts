// The xDS generators of the control plane: CDS, EDS, LDS and RDS for sidecars, computed from the push
// context through the pure translators, one bundle per proxy per push (the Sidecar scope is computed
// once and shared by the four types). Each generator declares the config kinds that cannot affect it.

import type { PushContext } from './model/push-context.ts';
import { computeSidecarScope, type ProxyInfo, type SidecarScope } from './model/sidecar-scope.ts';
import { buildClusters, type EnvoyCluster } from './translate/clusters.ts';
import { buildEndpoints, type ClusterLoadAssignment } from './translate/endpoints.ts';
import { buildListeners } from './translate/listeners.ts';
import { buildRoutes } from './translate/routes.ts';
import type { ConnectedProxy, GeneratedResource, Generator } from './xds/ads-server.ts';
import type { PushRequest } from './xds/push-request.ts';
import { TYPE_URLS } from '../xds/protos.ts';
import { grpcGenerators } from './translate/grpc.ts';

type Named = Record<string, unknown> & { name?: string };

/** What one proxy gets from one push context, computed lazily and at most once per type. */
export class ProxyBundle {
  readonly proxy: ProxyInfo;
  readonly push: PushContext;
  #scope?: SidecarScope;
  #clusters?: EnvoyCluster[];
  #endpoints?: ClusterLoadAssignment[];
  #listeners?: Named[];
  #routes?: Named[];

  constructor(proxy: ProxyInfo, push: PushContext) {
    this.proxy = proxy;
    this.push = push;
  }
  get scope(): SidecarScope {
    return (this.#scope ??= computeSidecarScope(this.proxy, this.push));
  }
  get clusters(): EnvoyCluster[] {
    return (this.#clusters ??= buildClusters(this.proxy, this.push, this.scope));
  }
  get endpoints(): ClusterLoadAssignment[] {
    return (this.#endpoints ??= buildEndpoints(this.clusters, this.push, this.scope));
  }
  get listeners(): Named[] {
    return (this.#listeners ??= buildListeners(this.proxy, this.push, this.scope) as Named[]);
  }
  get routes(): Named[] {
    return (this.#routes ??= buildRoutes(this.proxy, this.push, this.scope) as Named[]);
  }
}

const bundles = new WeakMap<PushContext, Map<string, ProxyBundle>>();

/** The proxy as the translators see it: identity from the node, labels from the registry when the node sent none. */
export function proxyInfoOf(p: Pick<ConnectedProxy, 'podName' | 'namespace' | 'labels' | 'ip' | 'type'>, push: PushContext): ProxyInfo {
  let labels: Record<string, string> = { ...p.labels };
  if (Object.keys(labels).length === 0) labels = { ...(push.registry.workload(p.podName, p.namespace)?.labels ?? {}) };
  return { name: p.podName, namespace: p.namespace, labels, ip: p.ip, type: p.type === 'router' ? 'router' : 'sidecar' };
}

export function bundleFor(p: Pick<ConnectedProxy, 'podName' | 'namespace' | 'labels' | 'ip' | 'type' | 'id'>, push: PushContext): ProxyBundle {
  let perPush = bundles.get(push);
  if (!perPush) bundles.set(push, (perPush = new Map()));
  let b = perPush.get(p.id);
  if (!b) perPush.set(p.id, (b = new ProxyBundle(proxyInfoOf(p, push), push)));
  return b;
}

/** An affectedBy that is false only when every changed kind is one of `kinds`. */
export function unaffectedBy(kinds: readonly string[]): (req: PushRequest) => boolean {
  const set = new Set(kinds);
  return (req) => req.full && (req.kinds === undefined || [...req.kinds].some((k) => !set.has(k)));
}

const SECURITY_AND_TELEMETRY = ['PeerAuthentication', 'AuthorizationPolicy', 'RequestAuthentication', 'Telemetry', 'EnvoyFilter', 'WasmPlugin', 'ProxyConfig'];
const WORKLOAD_KINDS = ['Pod', 'Endpoints', 'EndpointSlice', 'WorkloadEntry'];

function pick(resources: readonly Named[], names: readonly string[], key: 'name' | 'cluster_name' = 'name'): GeneratedResource[] {
  const wanted = names.length === 0 || names.includes('*') ? undefined : new Set(names);
  const out: GeneratedResource[] = [];
  for (const r of resources) {
    const name = String(r[key] ?? '');
    if (!wanted || wanted.has(name)) out.push({ name, resource: r });
  }
  return out;
}

function sidecarGenerators(): Generator<PushContext>[] {
  return [
    {
      typeUrl: TYPE_URLS.CLUSTER,
      generate: (proxy, push, names) => pick(bundleFor(proxy, push).clusters, names),
      affectedBy: unaffectedBy(['VirtualService', 'Gateway', ...SECURITY_AND_TELEMETRY]),
    },
    {
      typeUrl: TYPE_URLS.ENDPOINT,
      generate: (proxy, push, names) => pick(bundleFor(proxy, push).endpoints, names, 'cluster_name'),
      affectedBy: (req) => !req.full || unaffectedBy(['VirtualService', 'Gateway', ...SECURITY_AND_TELEMETRY])(req),
    },
    // Listeners and routes are built per request, not kept in the bundle: a sidecar asks for each once
    // per push, and keeping every proxy's (megabytes at 1000 services) until the next push context
    // is what took 1000 proxies past 8 GB. Clusters and endpoints are shared objects, cheap to keep.
    {
      typeUrl: TYPE_URLS.LISTENER,
      generate: (proxy, push, names) => {
        const b = bundleFor(proxy, push);
        return pick(buildListeners(b.proxy, push, b.scope), names);
      },
      affectedBy: unaffectedBy(['RequestAuthentication', 'EnvoyFilter', 'WasmPlugin', 'ProxyConfig']),
    },
    {
      typeUrl: TYPE_URLS.ROUTE,
      generate: (proxy, push, names) => {
        const b = bundleFor(proxy, push);
        return pick(buildRoutes(b.proxy, push, b.scope), names);
      },
      affectedBy: unaffectedBy([...WORKLOAD_KINDS, ...SECURITY_AND_TELEMETRY]),
    },
  ];
}

/** Every generator, dispatching on the proxy type: Envoy-style sidecars, or proxyless gRPC clients. */
export function meshGenerators(): Generator<PushContext>[] {
  const sidecar = new Map(sidecarGenerators().map((g) => [g.typeUrl, g]));
  const grpc = new Map(grpcGenerators().map((g) => [g.typeUrl, g]));
  return [...sidecar.keys()].map((typeUrl) => {
    const s = sidecar.get(typeUrl);
    const g = grpc.get(typeUrl);
    const gen: Generator<PushContext> = {
      typeUrl,
      generate: (proxy, push, names) => ((proxy.type === 'grpc' ? g : s)?.generate(proxy, push, names) ?? []),
    };
    if (s?.affectedBy) gen.affectedBy = s.affectedBy.bind(s);
    return gen;
  });
}
