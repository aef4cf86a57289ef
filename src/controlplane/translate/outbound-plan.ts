// Decides, once per proxy, which outbound listeners and route configurations exist (names, addresses, which services and VirtualServices each serves), so LDS and RDS agree. Pure; conflicting listeners are dropped, never thrown.

import type { Resource } from '../../config/resource.ts';
import type { CaptureMode, VirtualServiceSpec } from '../../config/types.ts';
import { hostMatches, isWildcardHost, toFqdn } from '../../registry/host.ts';
import { isHttpProtocol, parseProtocol, type Protocol } from '../../registry/protocol.ts';
import type { MeshService } from '../../registry/types.ts';
import type { SidecarScope } from '../model/sidecar-scope.ts';

export const WILDCARD_ADDRESS = '0.0.0.0';

/** How a listener treats its bytes: HTTP connection manager, TCP proxy, SNI-routed TCP proxy, or sniffed (HTTP or TCP). */
export type ListenerKind = 'http' | 'tcp' | 'tls' | 'auto';

export interface PlannedListener {
  /** `0.0.0.0_9080`, `10.96.12.3_3306`, `127.0.0.1_9080`. */
  name: string;
  address: string;
  port: number;
  /** True only for Sidecar egress listeners with captureMode NONE (the proxy binds the socket itself). */
  bindToPort: boolean;
  kind: ListenerKind;
  /** RDS name for 'http' and 'auto' listeners. */
  routeName?: string;
  /** The services this listener carries (for 'tcp' with a VIP: exactly one). */
  services: MeshService[];
  virtualServices: Resource<VirtualServiceSpec>[];
}

export interface PlannedRouteConfig {
  /** `9080`, or `host:port` for a sniffed (auto-protocol) service port with a VIP. */
  name: string;
  port: number;
  services: MeshService[];
  virtualServices: Resource<VirtualServiceSpec>[];
  /** VirtualService hosts that name no visible service (`foo.com`, unmatched wildcards) get virtual hosts here. */
  nonServiceHosts: boolean;
}

export interface OutboundPlan {
  listeners: PlannedListener[];
  routes: PlannedRouteConfig[];
}

interface EgressView {
  port?: number;
  protocol?: Protocol;
  bind?: string;
  captureMode: CaptureMode;
  services: MeshService[];
  virtualServices: Resource<VirtualServiceSpec>[];
}

/** The scope's egress listeners; a scope without any behaves as one catch-all listener over everything visible. */
function egressViews(scope: SidecarScope): EgressView[] {
  if (scope.egress.length === 0) return [{ captureMode: 'DEFAULT', services: scope.services, virtualServices: scope.virtualServices }];
  return scope.egress.map((e) => {
    const n = e.port?.number;
    const view: EgressView = { captureMode: e.captureMode, services: e.services, virtualServices: e.virtualServices };
    if (n) {
      view.port = n;
      view.protocol = e.port?.protocol ? parseProtocol(e.port.protocol) : 'UNSUPPORTED';
    }
    if (e.bind) view.bind = e.bind;
    return view;
  });
}

/** IPv4 VIPs of a service usable as a listener address (CIDR ServiceEntry addresses are not). */
export function serviceVips(svc: MeshService): string[] {
  return svc.addresses.filter((a) => /^\d{1,3}(\.\d{1,3}){3}$/.test(a));
}

/** Istio's classes of a port protocol for outbound listeners. */
function classify(p: Protocol): ListenerKind | undefined {
  if (isHttpProtocol(p)) return 'http';
  if (p === 'HTTPS' || p === 'TLS') return 'tls';
  if (p === 'UNSUPPORTED') return 'auto';
  if (p === 'UDP') return undefined;
  return 'tcp';
}

/** The outbound listeners and route configurations of one proxy. */
export function planOutbound(scope: SidecarScope): OutboundPlan {
  const listeners = new Map<string, PlannedListener>();
  const routes = new Map<string, PlannedRouteConfig>();
  const views = egressViews(scope);
  const explicitPorts = new Set<number>();
  for (const v of views) if (v.port !== undefined) explicitPorts.add(v.port);

  for (const view of views) {
    const byPort = new Map<number, Array<{ svc: MeshService; protocol: Protocol }>>();
    // services already listed per port (a Set: a linear search made 5000 services O(n^2) per proxy)
    const listed = new Map<number, Set<MeshService>>();
    for (const svc of view.services) {
      for (const sp of svc.ports) {
        if (view.port !== undefined ? sp.port !== view.port : explicitPorts.has(sp.port)) continue;
        const protocol = view.port !== undefined && view.protocol !== 'UNSUPPORTED' && view.protocol !== undefined ? view.protocol : sp.protocol;
        let list = byPort.get(sp.port);
        if (!list) byPort.set(sp.port, (list = []));
        let seen = listed.get(sp.port);
        if (!seen) listed.set(sp.port, (seen = new Set()));
        if (seen.has(svc)) continue;
        seen.add(svc);
        list.push({ svc, protocol });
      }
    }
    // An egress listener with a port and HTTP protocol gets its listener and route even with no service yet.
    if (view.port !== undefined && !byPort.has(view.port) && view.protocol && isHttpProtocol(view.protocol)) byPort.set(view.port, []);
    const bound = view.captureMode === 'NONE';
    const bind = view.bind ?? (bound ? '127.0.0.1' : undefined);
    for (const port of [...byPort.keys()].sort((a, b) => a - b)) {
      const entries = byPort.get(port) ?? [];
      const forcedHttp = view.port !== undefined && view.protocol !== undefined && isHttpProtocol(view.protocol);
      addPort(port, entries, view, bind, bound, forcedHttp);
    }
  }

  function routeFor(name: string, port: number, view: EgressView, nonServiceHosts: boolean): PlannedRouteConfig {
    let r = routes.get(name);
    if (!r) routes.set(name, (r = { name, port, services: [], virtualServices: view.virtualServices, nonServiceHosts }));
    return r;
  }

  function addPort(port: number, entries: Array<{ svc: MeshService; protocol: Protocol }>, view: EgressView, bind: string | undefined, bound: boolean, forcedHttp: boolean): void {
    const http: MeshService[] = [];
    const sniffedNoVip: MeshService[] = [];
    const later: Array<{ svc: MeshService; kind: ListenerKind }> = [];
    for (const { svc, protocol } of entries) {
      const kind = forcedHttp ? 'http' : classify(protocol);
      if (!kind) continue;
      if (kind === 'http') http.push(svc);
      else if (kind === 'auto' && (bind !== undefined || serviceVips(svc).length === 0)) sniffedNoVip.push(svc);
      else later.push({ svc, kind });
    }
    const wildcardName = `${bind ?? WILDCARD_ADDRESS}_${port}`;
    if (http.length > 0 || sniffedNoVip.length > 0 || (forcedHttp && entries.length === 0)) {
      const route = routeFor(String(port), port, view, true);
      route.services.push(...http, ...sniffedNoVip);
      if (!listeners.has(wildcardName)) {
        listeners.set(wildcardName, {
          name: wildcardName,
          address: bind ?? WILDCARD_ADDRESS,
          port,
          bindToPort: bound,
          kind: http.length === 0 && sniffedNoVip.length > 0 ? 'auto' : 'http',
          routeName: route.name,
          services: [...http, ...sniffedNoVip],
          virtualServices: view.virtualServices,
        });
      }
    }
    for (const { svc, kind } of later) {
      const vips = bind !== undefined ? [] : serviceVips(svc);
      if (vips.length === 0) {
        // No VIP: one shared wildcard listener per port; TLS services share it by SNI, TCP takes it whole.
        const existing = listeners.get(wildcardName);
        if (!existing) {
          listeners.set(wildcardName, { name: wildcardName, address: bind ?? WILDCARD_ADDRESS, port, bindToPort: bound, kind, services: [svc], virtualServices: view.virtualServices });
        } else if (existing.kind === 'tls' && kind === 'tls') {
          existing.services.push(svc);
        } // else: a conflict on 0.0.0.0:port, first listener wins as in Istio
        continue;
      }
      for (const vip of vips) {
        const name = `${vip}_${port}`;
        if (listeners.has(name)) continue;
        const l: PlannedListener = { name, address: vip, port, bindToPort: false, kind, services: [svc], virtualServices: view.virtualServices };
        if (kind === 'auto') {
          const route = routeFor(`${svc.hostname}:${port}`, port, view, false);
          if (!route.services.includes(svc)) route.services.push(svc);
          l.routeName = route.name;
        }
        listeners.set(name, l);
      }
    }
  }

  return { listeners: [...listeners.values()], routes: [...routes.values()] };
}

/** VirtualService hosts as FQDNs, expanded in the VirtualService's namespace. */
export function vsHosts(vs: Resource<VirtualServiceSpec>, domain: string): string[] {
  return (vs.spec.hosts ?? []).map((h) => toFqdn(h, vs.metadata.namespace, domain));
}

/** True when a VirtualService may apply to sidecars (no `gateways`, or `mesh` among them). */
export function appliesToMesh(vs: Resource<VirtualServiceSpec>): boolean {
  const gws = vs.spec.gateways;
  return !gws || gws.length === 0 || gws.includes('mesh');
}

interface VsIndex {
  exact: Map<string, Resource<VirtualServiceSpec>>;
  /** Wildcard hosts, longest first; equal lengths keep VirtualService order. */
  wildcards: Array<{ host: string; vs: Resource<VirtualServiceSpec> }>;
}

const vsIndexes = new WeakMap<readonly Resource<VirtualServiceSpec>[], Map<string, VsIndex>>();

/** Host index of a VirtualService list, built once per list and domain (lists come from an immutable scope). */
function vsIndex(vss: readonly Resource<VirtualServiceSpec>[], domain: string): VsIndex {
  let byDomain = vsIndexes.get(vss);
  if (!byDomain) vsIndexes.set(vss, (byDomain = new Map()));
  let idx = byDomain.get(domain);
  if (idx) return idx;
  idx = { exact: new Map(), wildcards: [] };
  for (const vs of vss) {
    if (!appliesToMesh(vs)) continue;
    for (const h of vsHosts(vs, domain)) {
      const key = h.toLowerCase();
      if (!idx.exact.has(key)) idx.exact.set(key, vs);
      if (isWildcardHost(h)) idx.wildcards.push({ host: key, vs });
    }
  }
  idx.wildcards.sort((a, b) => b.host.length - a.host.length);
  byDomain.set(domain, idx);
  return idx;
}

/**
 * The VirtualService that routes `hostname`: an exact host beats a wildcard, a longer wildcard beats a
 * shorter one, and among equals the earlier VirtualService wins (Istio's oldest-first order).
 */
export function virtualServiceFor(hostname: string, vss: readonly Resource<VirtualServiceSpec>[], domain: string): Resource<VirtualServiceSpec> | undefined {
  const idx = vsIndex(vss, domain);
  const h = hostname.toLowerCase();
  const exact = idx.exact.get(h);
  if (exact) return exact;
  return idx.wildcards.find((w) => hostMatches(w.host, h))?.vs;
}
