// The Sidecar scope of one proxy: which Sidecar applies (workloadSelector, else namespace, else root),
// which services, VirtualServices and DestinationRules it may see, its outbound traffic policy and
// listeners. Pure; never throws (malformed egress hosts simply match nothing).

import type { Resource } from '../../config/resource.ts';
import type {
  CaptureMode, ConnectionPoolSettings, Destination, DestinationRuleSpec, IstioEgressListener, IstioIngressListener, ServicePort, SidecarSpec, VirtualServiceSpec,
} from '../../config/types.ts';
import { hostMatches, hostsOverlap, isWildcardHost } from '../../registry/host.ts';
import { selectorMatches } from '../../registry/registry.ts';
import type { MeshService } from '../../registry/types.ts';
import { byAge, type PushContext } from './push-context.ts';

export interface ProxyInfo { namespace: string; labels: Record<string, string>; name?: string; ip?: string; type?: 'sidecar' | 'router' }

/** One `namespace/dnsName` entry of a Sidecar egress listener. */
export interface EgressHostRule {
  /** '*' (any namespace), '~' (none), or a namespace ('.' resolved: to the Sidecar's namespace, or to
   *  the proxy's namespace when a root-namespace Sidecar is inherited). */
  namespace: string;
  /** A dnsName; may be '*' or '*.x'. */
  host: string;
  /** As written. */
  raw: string;
}

export interface ScopedEgressListener {
  port?: ServicePort;
  bind?: string;
  captureMode: CaptureMode;
  hosts: EgressHostRule[];
  /** Services this listener imports (exportTo applied), sorted by hostname. */
  services: MeshService[];
  /** 'mesh' VirtualServices this listener imports (exportTo applied), oldest first. */
  virtualServices: Resource<VirtualServiceSpec>[];
}

export interface SidecarScope {
  proxy: ProxyInfo;
  /** The Sidecar that applies, if any. */
  sidecar?: Resource<SidecarSpec>;
  appliedFrom: 'workloadSelector' | 'namespace' | 'root' | 'none';
  outboundTrafficPolicy: { mode: 'ALLOW_ANY' | 'REGISTRY_ONLY'; egressProxy?: Destination; from: 'sidecar' | 'mesh' | 'default' };
  /** Without a Sidecar: one catch-all listener with hosts '*\/*'. */
  egress: ScopedEgressListener[];
  ingress: IstioIngressListener[];
  inboundConnectionPool?: ConnectionPoolSettings;
  /** Union of what every egress listener can see (exportTo applied), sorted by hostname. */
  services: MeshService[];
  virtualServices: Resource<VirtualServiceSpec>[];
  /** By service hostname, for visible services that have one. */
  destinationRules: Map<string, Resource<DestinationRuleSpec>>;
  /** True when the FQDN is a visible service's host, or is covered by a visible wildcard ServiceEntry host. */
  isVisible(hostname: string): boolean;
}

/**
 * Parses a Sidecar egress host. `.` becomes `configNamespace`; a host without '/' is taken as
 * '*\/host' (the legacy form). Returns undefined for an empty entry.
 */
export function parseEgressHost(raw: string, configNamespace: string): EgressHostRule | undefined {
  const s = raw.trim();
  if (!s) return undefined;
  const slash = s.indexOf('/');
  if (slash < 0) return { namespace: '*', host: s, raw };
  let ns = s.slice(0, slash);
  const host = s.slice(slash + 1);
  if (ns === '.') ns = configNamespace;
  return { namespace: ns, host, raw };
}

function hasSelector(sc: Resource<SidecarSpec>): boolean {
  const labels = sc.spec.workloadSelector?.labels;
  return labels !== undefined && Object.keys(labels).length > 0;
}

/**
 * The Sidecar that applies to a proxy, Istio's way: in the proxy's namespace, the oldest one whose
 * workloadSelector matches; else the namespace's oldest one without selector; else the root namespace's
 * oldest one without selector. Gateways (type 'router') get none.
 */
export function findSidecar(proxy: ProxyInfo, push: PushContext): { sidecar?: Resource<SidecarSpec>; appliedFrom: SidecarScope['appliedFrom'] } {
  if (proxy.type === 'router') return { appliedFrom: 'none' };
  const inNs = push.sidecars.filter((s) => s.metadata.namespace === proxy.namespace).sort(byAge);
  const selected = inNs.find((s) => hasSelector(s) && selectorMatches(s.spec.workloadSelector?.labels ?? {}, proxy.labels));
  if (selected) return { sidecar: selected, appliedFrom: 'workloadSelector' };
  const nsWide = inNs.find((s) => !hasSelector(s));
  if (nsWide) return { sidecar: nsWide, appliedFrom: 'namespace' };
  const root = push.mesh.rootNamespace;
  if (root !== proxy.namespace) {
    const rootWide = push.sidecars.filter((s) => s.metadata.namespace === root && !hasSelector(s)).sort(byAge)[0];
    if (rootWide) return { sidecar: rootWide, appliedFrom: 'root' };
  }
  return { appliedFrom: 'none' };
}

function ruleAdmitsService(rule: EgressHostRule, svc: MeshService): boolean {
  if (rule.namespace === '~') return false;
  if (rule.namespace !== '*' && rule.namespace !== svc.namespace) return false;
  // The egress host covers the service host; or a wildcard ServiceEntry host covers a specific egress host.
  return hostMatches(rule.host, svc.hostname) || (isWildcardHost(svc.hostname) && hostMatches(svc.hostname, rule.host));
}

function byHostname(a: MeshService, b: MeshService): number {
  return a.hostname < b.hostname ? -1 : a.hostname > b.hostname ? 1 : a.namespace < b.namespace ? -1 : a.namespace > b.namespace ? 1 : 0;
}

/** Computes what one proxy may see. */
export function computeSidecarScope(proxy: ProxyInfo, push: PushContext): SidecarScope {
  const { sidecar, appliedFrom } = findSidecar(proxy, push);
  const reg = push.registry;
  // '.' in a Sidecar means its own namespace; an inherited root Sidecar's '.' is the importing proxy's.
  const configNamespace = appliedFrom === 'root' ? proxy.namespace : (sidecar?.metadata.namespace ?? proxy.namespace);

  const exported = reg.services.filter((s) => reg.isExportedTo(s, proxy.namespace));
  const meshVs = push.virtualServicesFor(proxy.namespace, 'mesh');

  const specEgress: IstioEgressListener[] = sidecar && Array.isArray(sidecar.spec.egress) && sidecar.spec.egress.length > 0 ? sidecar.spec.egress : [{ hosts: ['*/*'] }];
  const egress: ScopedEgressListener[] = specEgress.map((l) => {
    const hosts = (Array.isArray(l.hosts) ? l.hosts : [])
      .map((h) => (typeof h === 'string' ? parseEgressHost(h, configNamespace) : undefined))
      .filter((h): h is EgressHostRule => h !== undefined);
    const services = exported.filter((s) => hosts.some((h) => ruleAdmitsService(h, s))).sort(byHostname);
    const virtualServices = meshVs.filter((vs) => {
      const vsNs = vs.metadata.namespace;
      const vsHosts = push.virtualServiceHosts(vs);
      return hosts.some((h) => h.namespace !== '~' && (h.namespace === '*' || h.namespace === vsNs) && vsHosts.some((vh) => hostsOverlap(h.host, vh)));
    });
    const out: ScopedEgressListener = { captureMode: l.captureMode ?? 'DEFAULT', hosts, services, virtualServices };
    if (l.port) out.port = l.port;
    if (l.bind) out.bind = l.bind;
    return out;
  });

  const seen = new Set<MeshService>();
  const services: MeshService[] = [];
  for (const l of egress) {
    for (const s of l.services) {
      if (seen.has(s)) continue;
      seen.add(s);
      services.push(s);
    }
  }
  services.sort(byHostname);
  const seenVs = new Set<Resource<VirtualServiceSpec>>();
  for (const l of egress) for (const v of l.virtualServices) seenVs.add(v);
  const virtualServices = meshVs.filter((v) => seenVs.has(v));

  const destinationRules = new Map<string, Resource<DestinationRuleSpec>>();
  for (const s of services) {
    if (destinationRules.has(s.hostname)) continue;
    const dr = push.destinationRuleFor(proxy.namespace, s.hostname, proxy.labels);
    if (dr) destinationRules.set(s.hostname, dr);
  }

  const sidecarOtp = sidecar?.spec.outboundTrafficPolicy;
  let outboundTrafficPolicy: SidecarScope['outboundTrafficPolicy'];
  if (sidecarOtp?.mode) {
    outboundTrafficPolicy = { mode: sidecarOtp.mode, from: 'sidecar' };
    if (sidecarOtp.egressProxy) outboundTrafficPolicy.egressProxy = sidecarOtp.egressProxy;
  } else if (push.mesh.outboundTrafficPolicy.mode === 'REGISTRY_ONLY') {
    outboundTrafficPolicy = { mode: 'REGISTRY_ONLY', from: 'mesh' };
  } else {
    // ALLOW_ANY is both Istio's default and the only other mesh value; 'default' says nothing overrode it.
    outboundTrafficPolicy = { mode: 'ALLOW_ANY', from: 'default' };
  }

  const exactVisible = new Set(services.map((s) => s.hostname.toLowerCase()));
  const wildcardVisible = services.filter((s) => isWildcardHost(s.hostname)).map((s) => s.hostname);
  const scope: SidecarScope = {
    proxy,
    appliedFrom,
    outboundTrafficPolicy,
    egress,
    ingress: sidecar && Array.isArray(sidecar.spec.ingress) ? sidecar.spec.ingress : [],
    services,
    virtualServices,
    destinationRules,
    isVisible: (hostname: string) => exactVisible.has(hostname.toLowerCase()) || wildcardVisible.some((w) => hostMatches(w, hostname)),
  };
  if (sidecar) scope.sidecar = sidecar;
  if (sidecar?.spec.inboundConnectionPool) scope.inboundConnectionPool = sidecar.spec.inboundConnectionPool;
  return scope;
}
