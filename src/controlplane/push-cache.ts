// Per push context, xDS generated once per group of proxies that get identical output (the idea of istiod's XDS cache): a scope key made of the proxy type, its namespace, the Sidecar that applies and the outcome of every label selector that can read its labels; per key one Sidecar scope, one list of outbound clusters, endpoints and outbound listeners, and route configurations encoded once. Lazy; never throws on config content (a translator's error reaches the generator, which the ADS server isolates).

import { resourceKey } from '../config/resource.ts';
import { selectorMatches } from '../registry/registry.ts';
import type { PushContext } from './model/push-context.ts';
import { computeSidecarScope, findSidecar, type ProxyInfo, type SidecarScope } from './model/sidecar-scope.ts';
import { buildOutboundClusters, staticClusters, type EnvoyCluster } from './translate/clusters.ts';
import { buildEndpoints, type ClusterLoadAssignment } from './translate/endpoints.ts';
import { buildOutboundListeners, type EnvoyListener } from './translate/listeners.ts';
import { buildRoutes, ROUTE_TYPE, VirtualHostMemo, type EnvoyRouteConfiguration } from './translate/routes.ts';
import { PartEncoder } from './xds/part-encoder.ts';
import type { AnyWire } from '../xds/protos.ts';

/** A route configuration on the wire, with its content version. */
export interface EncodedRoute {
  name: string;
  resource: AnyWire;
  version: string;
}

let routeEncoder: PartEncoder | undefined;

/** Encodes route configurations, each virtual host once however many configurations share it. */
export function encodeRouteConfiguration(rc: EnvoyRouteConfiguration): { any: AnyWire; version: string } {
  routeEncoder ??= new PartEncoder(ROUTE_TYPE, 'virtual_hosts');
  return routeEncoder.encode(rc);
}

function hasSelector(labels: Record<string, string> | undefined): labels is Record<string, string> {
  return labels !== undefined && Object.keys(labels).length > 0;
}

/** What is generated for every proxy of one scope key. The scope's `proxy` is the first proxy of the key, without name or IP. */
export class ScopeEntry {
  readonly key: string;
  readonly proxy: ProxyInfo;
  readonly #cache: PushCache;
  #scope?: SidecarScope;
  #clusters?: EnvoyCluster[];
  #endpoints?: ClusterLoadAssignment[];
  #listeners?: EnvoyListener[];
  #routes?: EnvoyRouteConfiguration[];
  #encodedRoutes?: EncodedRoute[];

  constructor(key: string, proxy: ProxyInfo, cache: PushCache) {
    this.key = key;
    this.proxy = proxy;
    this.#cache = cache;
  }

  get scope(): SidecarScope {
    return (this.#scope ??= computeSidecarScope(this.proxy, this.#cache.push));
  }
  get outboundClusters(): EnvoyCluster[] {
    return (this.#clusters ??= buildOutboundClusters(this.#cache.push, this.scope));
  }
  /** Load assignments of the EDS clusters among the outbound ones (inbound and static clusters are never EDS). */
  get endpoints(): ClusterLoadAssignment[] {
    return (this.#endpoints ??= buildEndpoints(this.outboundClusters, this.#cache.push, this.scope));
  }
  get outboundListeners(): EnvoyListener[] {
    return (this.#listeners ??= internResources(this.#cache.push, buildOutboundListeners(this.proxy, this.#cache.push, this.scope)));
  }
  get routes(): EnvoyRouteConfiguration[] {
    return (this.#routes ??= buildRoutes(this.proxy, this.#cache.push, this.scope, this.#cache.virtualHosts));
  }
  get encodedRoutes(): EncodedRoute[] {
    return (this.#encodedRoutes ??= this.routes.map((rc) => {
      const { any, version } = encodeRouteConfiguration(rc);
      return { name: rc.name, resource: any, version };
    }));
  }
}

/** The shared generation state of one push context (see pushCacheFor). */
export class PushCache {
  readonly push: PushContext;
  /** Service virtual hosts shared by the route configurations of different keys (and, by content, with the push before). */
  readonly virtualHosts: VirtualHostMemo;
  readonly #entries = new Map<string, ScopeEntry>();
  readonly #drSelectors = new Map<string, Array<Record<string, string>>>();
  readonly #sourceSelectors: Array<Record<string, string>>;
  #static?: EnvoyCluster[];

  constructor(push: PushContext) {
    this.push = push;
    this.virtualHosts = new VirtualHostMemo((vh) => interner.intern(push, vh));
    for (const dr of push.destinationRules) {
      const sel = (dr).spec.workloadSelector?.labels;
      if (!hasSelector(sel)) continue;
      const list = this.#drSelectors.get(dr.metadata.namespace);
      if (list) list.push(sel);
      else this.#drSelectors.set(dr.metadata.namespace, [sel]);
    }
    const seen = new Map<string, Record<string, string>>();
    for (const vs of push.virtualServices) {
      const matches = [...(vs.spec.http ?? []), ...(vs.spec.tcp ?? []), ...(vs.spec.tls ?? [])].flatMap((r) => r.match ?? []);
      for (const m of matches) {
        const sel = m.sourceLabels;
        if (!hasSelector(sel)) continue;
        seen.set(JSON.stringify(Object.entries(sel).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))), sel);
      }
    }
    this.#sourceSelectors = [...seen.values()];
  }

  /** Proxies with the same key get the same outbound clusters, endpoints, outbound listeners and routes. */
  keyOf(proxy: ProxyInfo): string {
    const type = proxy.type === 'router' ? 'router' : 'sidecar';
    const { sidecar } = findSidecar(proxy, this.push);
    let bits = '';
    // DestinationRules with a workloadSelector apply only in the proxy's own namespace
    for (const sel of this.#drSelectors.get(proxy.namespace) ?? []) bits += selectorMatches(sel, proxy.labels) ? '1' : '0';
    bits += '|';
    for (const sel of this.#sourceSelectors) bits += Object.entries(sel).every(([k, v]) => proxy.labels[k] === v) ? '1' : '0';
    return `${type}|${proxy.namespace}|${sidecar ? resourceKey(sidecar) : '-'}|${bits}`;
  }

  entryFor(proxy: ProxyInfo): ScopeEntry {
    const key = this.keyOf(proxy);
    let e = this.#entries.get(key);
    if (!e) {
      const shared: ProxyInfo = { namespace: proxy.namespace, labels: { ...proxy.labels } };
      if (proxy.type) shared.type = proxy.type;
      this.#entries.set(key, (e = new ScopeEntry(key, shared, this)));
    }
    return e;
  }

  /** How many distinct keys the proxies seen so far fall into. */
  get keys(): number {
    return this.#entries.size;
  }

  get staticClusters(): EnvoyCluster[] {
    return (this.#static ??= staticClusters(this.push));
  }
}

/**
 * Per-proxy resources (inbound clusters and listeners) interned by content: proxies with the same
 * inbound side, in this push or the one before, share one object, so the ADS server encodes it once
 * and sees it unchanged from one push to the next. Entries not used during a whole push context go.
 */
class ContentInterner {
  #current = new Map<string, object>();
  #previous = new Map<string, object>();
  #push: PushContext | undefined;

  intern<T extends object>(push: PushContext, obj: T): T {
    if (push !== this.#push) {
      this.#push = push;
      this.#previous = this.#current;
      this.#current = new Map();
    }
    const key = JSON.stringify(obj);
    let known = this.#current.get(key);
    if (!known) {
      known = this.#previous.get(key) ?? obj;
      this.#current.set(key, known);
    }
    return known as T;
  }
}

const interner = new ContentInterner();

/** `list` with each resource replaced by an equal one already generated, when there is one. */
export function internResources<T extends object>(push: PushContext, list: readonly T[]): T[] {
  return list.map((r) => interner.intern(push, r));
}

const caches = new WeakMap<PushContext, PushCache>();

/** The cache of a push context, created on first use and dropped with it. */
export function pushCacheFor(push: PushContext): PushCache {
  let c = caches.get(push);
  if (!c) caches.set(push, (c = new PushCache(push)));
  return c;
}
