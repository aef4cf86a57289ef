// RDS: the RouteConfigurations one sidecar gets, Istio's way: one per outbound HTTP port (`9080`), a virtual host per visible service with all its names, VirtualService http routes or the default route, and the allow_any/block_all catch-all. Pure function of (proxy, push, scope); never throws.

import type { Resource } from '../../config/resource.ts';
import type { DestinationRuleSpec, HTTPMatchRequest, HTTPRoute, VirtualServiceSpec } from '../../config/types.ts';
import { hostMatches, isWildcardHost } from '../../registry/host.ts';
import type { MeshService } from '../../registry/types.ts';
import type { PushContext } from '../model/push-context.ts';
import type { ProxyInfo, SidecarScope } from '../model/sidecar-scope.ts';
import { PASSTHROUGH_CLUSTER, clusterName, parseClusterName } from './names.ts';
import { appliesToMesh, planOutbound, virtualServiceFor, vsHosts, type PlannedRouteConfig } from './outbound-plan.ts';
import {
  CORS_FILTER, FAULT_FILTER, applyHeaders, corsConfig, defaultRetryPolicy, faultConfig, hashPolicyFor, redirectAction, routeAction, routeTimeout, type ActionContext,
} from './route-action.ts';
import { isCatchAllMatch, matchApplies, operationPath, translateRouteMatch, type MatchContext } from './route-match.ts';

export const ROUTE_TYPE = 'type.googleapis.com/envoy.config.route.v3.RouteConfiguration';
export const ALLOW_ANY_VHOST = 'allow_any';
export const BLOCK_ALL_VHOST = 'block_all';

type Json = Record<string, unknown>;
export type EnvoyRouteConfiguration = Json & { '@type': string; name: string; virtual_hosts: Json[] };

/**
 * Every outbound RouteConfiguration of this proxy, in the order the listeners name them. With a memo,
 * service virtual hosts are shared with the route configurations built before in the same push
 * whenever everything they were built from is the same (see VirtualHostMemo): same output, less work.
 */
export function buildRoutes(proxy: ProxyInfo, push: PushContext, scope: SidecarScope, memo?: VirtualHostMemo): EnvoyRouteConfiguration[] {
  const plan = planOutbound(scope);
  const services = indexServices(scope.services);
  return plan.routes.map((r) => buildRouteConfiguration(r, proxy, push, scope, services, memo));
}

function indexServices(list: readonly MeshService[]): Map<string, MeshService> {
  const m = new Map<string, MeshService>();
  for (const s of list) if (!m.has(s.hostname)) m.set(s.hostname, s);
  return m;
}

/** A lookup a virtual host was built with: the visible service or DestinationRule of a host name. */
interface Dependency {
  dr: boolean;
  host: string;
  value: unknown;
}

interface MemoEntry {
  port: number;
  sameNamespace: boolean;
  vs: Resource<VirtualServiceSpec> | undefined;
  source: string;
  deps: Dependency[];
  vhost: Json;
}

/**
 * Service virtual hosts of one push context, shared by the route configurations of different Sidecar
 * scopes (e.g. every namespace sees the same virtual host for a service of another namespace). An
 * entry is reused only when the service, port, VirtualService, the caller's namespace relation, the
 * labels its sourceLabels/sourceNamespace matches read, and every service and DestinationRule lookup
 * made while building it give the same answers for the new scope. Only valid for one push context.
 */
export class VirtualHostMemo {
  readonly #entries = new Map<MeshService, MemoEntry[]>();
  readonly #share: ((vh: Json) => Json) | undefined;
  hits = 0;
  misses = 0;

  /** `share` may replace a new virtual host by an equal one made before (so that its encoding is reused). */
  constructor(share?: (vh: Json) => Json) {
    this.#share = share;
  }

  find(svc: MeshService, port: number, sameNamespace: boolean, vs: Resource<VirtualServiceSpec> | undefined, source: string, view: ScopeView): Json | undefined {
    for (const e of this.#entries.get(svc) ?? []) {
      if (e.port !== port || e.sameNamespace !== sameNamespace || e.vs !== vs || e.source !== source) continue;
      if (e.deps.every((d) => view.lookup(d.dr, d.host) === d.value)) {
        this.hits++;
        return e.vhost;
      }
    }
    this.misses++;
    return undefined;
  }

  /** Records a virtual host; returns the object to use (an equal one made before, when shared). */
  add(svc: MeshService, entry: MemoEntry): Json {
    if (this.#share) entry.vhost = this.#share(entry.vhost);
    const list = this.#entries.get(svc);
    if (list) list.push(entry);
    else this.#entries.set(svc, [entry]);
    return entry.vhost;
  }
}

/** What of the proxy a VirtualService's http matches read: '' when none has sourceLabels or sourceNamespace. */
function sourceDependence(vs: Resource<VirtualServiceSpec>, proxy: ProxyInfo): string {
  const keys = new Set<string>();
  let ns = false;
  for (const hr of vs.spec.http ?? []) {
    for (const m of hr.match ?? []) {
      if (m.sourceNamespace) ns = true;
      for (const k of Object.keys(m.sourceLabels ?? {})) keys.add(k);
    }
  }
  if (!ns && keys.size === 0) return '';
  const labels = [...keys].sort().map((k) => [k, proxy.labels[k] ?? null]);
  return JSON.stringify([ns ? proxy.namespace : null, labels]);
}

/** The lookups a virtual host is built with: the scope's services and DestinationRules by host name. */
class ScopeView {
  readonly #scope: SidecarScope;
  readonly #services: Map<string, MeshService>;
  readonly service: (h: string) => MeshService | undefined;
  readonly destinationRule: (h: string) => Resource<DestinationRuleSpec> | undefined;

  constructor(scope: SidecarScope, services: Map<string, MeshService>) {
    this.#scope = scope;
    this.#services = services;
    this.service = (h) => services.get(h);
    this.destinationRule = (h) => scope.destinationRules.get(h);
  }

  lookup(dr: boolean, host: string): unknown {
    return dr ? this.#scope.destinationRules.get(host) : this.#services.get(host);
  }

  /** The same lookups, each written down in `deps` (what a memo entry is checked against). */
  recording(deps: Dependency[]): Pick<ActionContext, 'service' | 'destinationRule'> {
    const record = (dr: boolean, host: string): unknown => {
      const value = this.lookup(dr, host);
      deps.push({ dr, host, value });
      return value;
    };
    return {
      service: (h) => record(false, h) as MeshService | undefined,
      destinationRule: (h) => record(true, h) as Resource<DestinationRuleSpec> | undefined,
    };
  }
}

/** The virtual host of a visible service on a port, before domains other virtual hosts took are removed. */
function serviceVirtualHost(svc: MeshService, port: number, planned: PlannedRouteConfig, proxy: ProxyInfo, view: ScopeView, domain: string, memo: VirtualHostMemo | undefined): Json {
  const vs = virtualServiceFor(svc.hostname, planned.virtualServices, domain);
  const sameNamespace = svc.namespace === proxy.namespace;
  const source = vs && memo ? sourceDependence(vs, proxy) : '';
  const hit = memo?.find(svc, port, sameNamespace, vs, source, view);
  if (hit) return hit;
  const deps: Dependency[] = [];
  const lookups = memo ? view.recording(deps) : view;
  const matchCtx: MatchContext = { port, proxyLabels: proxy.labels, proxyNamespace: proxy.namespace };
  let routes = vs ? virtualServiceRoutes(vs, matchCtx, { port, domain, namespace: vs.metadata.namespace, service: lookups.service, destinationRule: lookups.destinationRule }) : [];
  // A VirtualService with no rule for this port leaves the service its default route.
  if (routes.length === 0) routes = [defaultRoute(svc, port, lookups)];
  const vhost: Json = { name: `${svc.hostname}:${port}`, domains: serviceDomains(svc, port, proxy.namespace, domain), routes, include_request_attempt_count: true };
  return memo ? memo.add(svc, { port, sameNamespace, vs, source, deps, vhost }) : vhost;
}

/** Services by hostname (a stable sort; the list itself when it already is in that order). */
function byHostname(list: readonly MeshService[]): readonly MeshService[] {
  for (let i = 1; i < list.length; i++) {
    if ((list[i - 1]?.hostname ?? '') > (list[i]?.hostname ?? '')) return [...list].sort((a, b) => (a.hostname < b.hostname ? -1 : a.hostname > b.hostname ? 1 : 0));
  }
  return list;
}

/** Lower-cased domains of a virtual host, computed once per (shared) virtual host object. */
const lowerDomains = new WeakMap<Json, string[]>();

function domainKeys(vh: Json): string[] {
  let keys = lowerDomains.get(vh);
  if (!keys) lowerDomains.set(vh, (keys = (vh.domains as string[]).map((d) => d.toLowerCase())));
  return keys;
}

/** Per push: how many services claim each (lower-cased) name their virtual hosts may carry. */
const domainClaims = new WeakMap<PushContext, Map<string, number>>();

function claimsOf(push: PushContext): Map<string, number> {
  let claims = domainClaims.get(push);
  if (claims) return claims;
  claims = new Map();
  const domain = push.registry.domain;
  for (const svc of push.registry.services) {
    const keys = new Set<string>();
    // from the service's own namespace a virtual host carries the most names (the short one too)
    for (const p of svc.ports) for (const d of serviceDomains(svc, p.port, svc.namespace, domain)) keys.add(d.toLowerCase());
    for (const k of keys) claims.set(k, (claims.get(k) ?? 0) + 1);
  }
  domainClaims.set(push, claims);
  return claims;
}

/** A service virtual host none of whose names another service can carry: it never loses a domain to one. */
const uniqueVhosts = new WeakMap<PushContext, WeakMap<Json, boolean>>();

function ownsItsDomains(vh: Json, push: PushContext): boolean {
  // per push: a shared virtual host object outlives the services that made it unique
  let flags = uniqueVhosts.get(push);
  if (!flags) uniqueVhosts.set(push, (flags = new WeakMap()));
  let unique = flags.get(vh);
  if (unique === undefined) {
    const claims = claimsOf(push);
    unique = domainKeys(vh).every((k) => claims.get(k) === 1);
    flags.set(vh, unique);
  }
  return unique;
}

function buildRouteConfiguration(
  planned: PlannedRouteConfig, proxy: ProxyInfo, push: PushContext, scope: SidecarScope, services: Map<string, MeshService>, memo: VirtualHostMemo | undefined,
): EnvoyRouteConfiguration {
  const domain = push.registry.domain;
  const port = planned.port;
  const vhosts: Json[] = [];
  // A domain goes to the first virtual host that names it. `used` holds the domains taken so far,
  // except those of virtual hosts that own their domains (no other service names them): those are
  // looked through only for a virtual host that is not a service's (a VirtualService host, '*').
  const used = new Set<string>();
  const unchecked: Json[] = [];
  const seen = new Set<MeshService>();
  /** Keeps the domains no earlier virtual host took; the same object when it loses none. */
  const addVhost = (vh: Json, svc: MeshService | undefined): void => {
    const domains = vh.domains as string[];
    const routed = (vh.routes as Json[]).length > 0;
    // a service listed twice meets its own names again: it goes through the full check
    const service = svc !== undefined && !seen.has(svc);
    if (svc) seen.add(svc);
    const taken = (key: string): boolean => used.has(key) || (!service && unchecked.some((u) => domainKeys(u).includes(key)));
    if (service && routed && ownsItsDomains(vh, push)) {
      if (domains.length > 0) {
        vhosts.push(vh);
        unchecked.push(vh);
      }
      return;
    }
    const keys = domainKeys(vh);
    // a virtual host without routes still takes its names (it is left out, not its domains given away)
    const fresh = domains.filter((_d, i) => {
      const key = keys[i] ?? '';
      if (taken(key)) return false;
      used.add(key);
      return true;
    });
    if (fresh.length === 0 || !routed) return;
    vhosts.push(fresh.length === domains.length ? vh : { ...vh, domains: fresh });
  };
  const newVhost = (name: string, domains: string[], routes: Json[]): Json => ({ name, domains, routes, include_request_attempt_count: true });
  const matchCtx: MatchContext = { port, proxyLabels: proxy.labels, proxyNamespace: proxy.namespace };

  const view = new ScopeView(scope, services);
  for (const svc of byHostname(planned.services)) {
    addVhost(serviceVirtualHost(svc, port, planned, proxy, view, domain, memo), svc);
  }

  if (planned.nonServiceHosts) {
    for (const vs of planned.virtualServices) {
      if (!appliesToMesh(vs) || !vsCoversPort(vs, port)) continue;
      for (const host of vsHosts(vs, domain)) {
        if (isWildcardHost(host) ? scope.services.some((s) => hostMatches(host, s.hostname)) : scope.isVisible(host)) continue;
        const routes = virtualServiceRoutes(vs, matchCtx, actionContext(vs.metadata.namespace, port, domain, scope, services));
        addVhost(newVhost(`${host}:${port}`, [host, `${host}:${port}`], routes), undefined);
      }
    }
  }

  if (scope.outboundTrafficPolicy.mode === 'REGISTRY_ONLY') {
    addVhost(newVhost(BLOCK_ALL_VHOST, ['*'], [{ name: BLOCK_ALL_VHOST, match: { prefix: '/' }, direct_response: { status: 502 } }]), undefined);
  } else {
    addVhost(newVhost(ALLOW_ANY_VHOST, ['*'], [{ name: ALLOW_ANY_VHOST, match: { prefix: '/' }, route: { cluster: PASSTHROUGH_CLUSTER, timeout: '0s', max_stream_duration: { max_stream_duration: '0s', grpc_timeout_header_max: '0s' } } }]), undefined);
  }
  return { '@type': ROUTE_TYPE, name: planned.name, virtual_hosts: vhosts, validate_clusters: false };
}

/** A VirtualService without port matches applies on every port; one with them only on those ports. */
function vsCoversPort(vs: Resource<VirtualServiceSpec>, port: number): boolean {
  const ports = new Set<number>();
  let unported = false;
  for (const r of vs.spec.http ?? []) {
    const ms: Array<HTTPMatchRequest | undefined> = r.match?.length ? r.match : [undefined];
    for (const m of ms) {
      if (m?.port) ports.add(m.port);
      else unported = true;
    }
  }
  return unported || ports.has(port);
}

function actionContext(namespace: string, port: number, domain: string, scope: SidecarScope, services: Map<string, MeshService>): ActionContext {
  return { port, domain, namespace, service: (h) => services.get(h), destinationRule: (h) => scope.destinationRules.get(h) };
}

/**
 * Every name a service is called by on a port, with and without `:port`: its FQDN; for Kubernetes
 * services `name.ns.svc`, `name.ns`, and the bare `name` when the caller shares its namespace; its VIPs.
 */
export function serviceDomains(svc: MeshService, port: number, proxyNamespace: string, domain: string): string[] {
  const out: string[] = [];
  const add = (h: string): void => {
    out.push(h, `${h}:${port}`);
  };
  add(svc.hostname);
  if (svc.origin === 'Kubernetes' && svc.hostname === `${svc.name}.${svc.namespace}.svc.${domain}`) {
    if (svc.namespace === proxyNamespace) add(svc.name);
    add(`${svc.name}.${svc.namespace}`);
    add(`${svc.name}.${svc.namespace}.svc`);
  }
  for (const vip of svc.addresses) if (!vip.includes('/')) add(vip);
  return out;
}

/** The route of a service without a VirtualService: everything to `outbound|port||host`, Istio's default retries. */
function defaultRoute(svc: MeshService, port: number, ctx: Pick<ActionContext, 'destinationRule'>): Json {
  const cluster = clusterName('outbound', port, '', svc.hostname);
  const action: Json = { cluster, timeout: '0s', retry_policy: defaultRetryPolicy() };
  const hp = hashPolicyFor({ cluster, host: svc.hostname, port, subset: '' }, ctx);
  if (hp) action.hash_policy = hp;
  action.max_stream_duration = { max_stream_duration: '0s', grpc_timeout_header_max: '0s' };
  return { name: 'default', match: { prefix: '/' }, route: action, decorator: { operation: `${svc.hostname}:${port}/*` } };
}

/** Istio's config path of a VirtualService, as route metadata carries it. */
export function virtualServiceConfigPath(vs: Resource<VirtualServiceSpec>): string {
  return `/apis/networking.istio.io/v1/namespaces/${vs.metadata.namespace}/virtual-service/${vs.metadata.name}`;
}

/**
 * The Envoy routes of a VirtualService on one port, in order: one per applicable match of each http
 * route; reading stops after a catch-all route, as Istio does.
 */
export function virtualServiceRoutes(vs: Resource<VirtualServiceSpec>, matchCtx: MatchContext, ctx: ActionContext): Json[] {
  const out: Json[] = [];
  for (const hr of vs.spec.http ?? []) {
    if (hr.delegate) continue;
    const matches: Array<HTTPMatchRequest | undefined> = hr.match?.length ? hr.match : [undefined];
    let catchAll = false;
    for (const m of matches) {
      if (!matchApplies(m, matchCtx)) continue;
      const r = translateHttpRoute(hr, m, vs, ctx);
      if (!r) continue;
      out.push(r);
      if (isCatchAllMatch(m)) catchAll = true;
    }
    if (catchAll) break;
  }
  return out;
}

function translateHttpRoute(hr: HTTPRoute, m: HTTPMatchRequest | undefined, vs: Resource<VirtualServiceSpec>, ctx: ActionContext): Json | undefined {
  const match = translateRouteMatch(m);
  const route: Json = {};
  const name = hr.name ? (m?.name ? `${hr.name}.${m.name}` : hr.name) : m?.name;
  if (name) route.name = name;
  route.match = match;
  let cluster: string | undefined;
  if (hr.redirect) {
    route.redirect = redirectAction(hr.redirect);
  } else if (hr.directResponse) {
    const dr: Json = { status: hr.directResponse.status ?? 200 };
    if (hr.directResponse.body?.string !== undefined) dr.body = { inline_string: hr.directResponse.body.string };
    else if (hr.directResponse.body?.bytes !== undefined) dr.body = { inline_bytes: hr.directResponse.body.bytes };
    route.direct_response = dr;
  } else {
    const a = routeAction(hr, match, ctx);
    if (!a) return undefined;
    route.route = a.action;
    if (typeof a.action.cluster === 'string') cluster = a.action.cluster;
  }
  route.metadata = { filter_metadata: { istio: { config: virtualServiceConfigPath(vs) } } };
  const parsed = cluster ? parseClusterName(cluster) : undefined;
  const path = operationPath(match);
  route.decorator = { operation: parsed ? `${parsed.host}:${parsed.port}${path}` : `${vs.metadata.name}:${ctx.port}${path}` };
  const perFilter: Json = {};
  const fault = faultConfig(hr.fault);
  if (fault) perFilter[FAULT_FILTER] = fault;
  const cors = corsConfig(hr.corsPolicy);
  if (cors) perFilter[CORS_FILTER] = cors;
  if (Object.keys(perFilter).length > 0) route.typed_per_filter_config = perFilter;
  applyHeaders(hr.headers, route);
  const dests = (hr.route ?? []).filter((d) => d.destination?.host);
  if (route.route && dests.length === 1) applyHeaders(dests[0]?.headers, route);
  return route;
}

/** The inline route configuration of an inbound HTTP port: everything to `inbound|port||`. */
export function inboundRouteConfig(port: number, operationHost: string | undefined): Json {
  const cluster = clusterName('inbound', port, '', '');
  return {
    name: cluster,
    virtual_hosts: [
      {
        name: `inbound|http|${port}`,
        domains: ['*'],
        routes: [
          {
            name: 'default',
            match: { prefix: '/' },
            route: { cluster, timeout: routeTimeout(undefined), max_stream_duration: { max_stream_duration: '0s', grpc_timeout_header_max: '0s' } },
            decorator: { operation: operationHost ? `${operationHost}:${port}/*` : `${cluster}/*` },
          },
        ],
      },
    ],
    validate_clusters: false,
  };
}
