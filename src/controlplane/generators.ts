// The xDS generators of the control plane: CDS, EDS, LDS and RDS for sidecars, computed from the push
// context through the pure translators. What does not depend on the proxy's own workload is generated
// once per scope key (push-cache.ts) and shared, route configurations already encoded; each proxy adds
// only its inbound clusters and listeners. Each generator declares the config kinds that cannot affect it.

import type { PushContext } from './model/push-context.ts';
import type { ProxyInfo, SidecarScope } from './model/sidecar-scope.ts';
import { internResources, pushCacheFor, type ScopeEntry } from './push-cache.ts';
import { buildInboundClusters, type EnvoyCluster } from './translate/clusters.ts';
import type { ClusterLoadAssignment } from './translate/endpoints.ts';
import { buildInboundListeners, type EnvoyListener } from './translate/listeners.ts';
import type { EnvoyRouteConfiguration } from './translate/routes.ts';
import { subscribedNames, type ConnectedProxy, type GeneratedResource, type Generator } from './xds/ads-server.ts';
import type { PushRequest } from './xds/push-request.ts';
import { TYPE_URLS } from '../xds/protos.ts';
import { grpcGenerators } from './translate/grpc.ts';

type Named = Record<string, unknown> & { name?: string };

/** What one proxy gets from one push context: the shared part of its scope key, plus its own inbound side. */
export class ProxyBundle {
  readonly proxy: ProxyInfo;
  readonly push: PushContext;
  readonly entry: ScopeEntry;
  #inboundClusters?: EnvoyCluster[];
  #inboundListeners?: EnvoyListener[];

  constructor(proxy: ProxyInfo, push: PushContext) {
    this.proxy = proxy;
    this.push = push;
    this.entry = pushCacheFor(push).entryFor(proxy);
  }
  get scope(): SidecarScope {
    return this.entry.scope;
  }
  get inboundClusters(): EnvoyCluster[] {
    return (this.#inboundClusters ??= internResources(this.push, buildInboundClusters(this.proxy, this.push, this.scope)));
  }
  get inboundListeners(): EnvoyListener[] {
    return (this.#inboundListeners ??= internResources(this.push, buildInboundListeners(this.proxy, this.push, this.scope)));
  }
  /** Outbound, inbound, then the static clusters (as buildClusters orders them). */
  get clusters(): EnvoyCluster[] {
    return [...this.entry.outboundClusters, ...this.inboundClusters, ...pushCacheFor(this.push).staticClusters];
  }
  get endpoints(): ClusterLoadAssignment[] {
    return this.entry.endpoints;
  }
  /** Outbound, then inbound listeners (as buildListeners orders them). */
  get listeners(): EnvoyListener[] {
    return [...this.entry.outboundListeners, ...this.inboundListeners];
  }
  get routes(): EnvoyRouteConfiguration[] {
    return this.entry.routes;
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
  const wanted = subscribedNames(names);
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
    {
      typeUrl: TYPE_URLS.LISTENER,
      generate: (proxy, push, names) => pick(bundleFor(proxy, push).listeners, names),
      affectedBy: unaffectedBy(['RequestAuthentication', 'EnvoyFilter', 'WasmPlugin', 'ProxyConfig']),
    },
    {
      typeUrl: TYPE_URLS.ROUTE,
      // encoded once per scope key: every proxy of the key gets the same bytes
      generate: (proxy, push, names) => {
        const routes = bundleFor(proxy, push).entry.encodedRoutes;
        const wanted = subscribedNames(names);
        return routes.filter((r) => !wanted || wanted.has(r.name));
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
