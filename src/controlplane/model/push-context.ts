// The push context: one immutable snapshot of the config and registry for a push, with Istio's
// lookups (DestinationRule for a host, VirtualServices for a gateway). Never throws on config content;
// mesh-config problems are kept in `meshDiagnostics`.

import type { Diagnostic } from '../../config/diagnostics.ts';
import { meshConfigFromResources, type MeshConfig } from '../../config/mesh-config.ts';
import type { Resource } from '../../config/resource.ts';
import type {
  AuthorizationPolicySpec, DestinationRuleSpec, GatewaySpec, PeerAuthenticationSpec, ServiceEntrySpec, SidecarSpec, TelemetrySpec, VirtualServiceSpec,
} from '../../config/types.ts';
import { hostMatches, toFqdn } from '../../registry/host.ts';
import { buildRegistry, exportedTo, selectorMatches } from '../../registry/registry.ts';
import type { Registry, RegistryOptions } from '../../registry/types.ts';

export interface PushContext {
  /** Changes with every build. */
  readonly version: string;
  readonly mesh: MeshConfig;
  readonly registry: Registry;
  readonly resources: readonly Resource[];
  readonly virtualServices: readonly Resource<VirtualServiceSpec>[];
  readonly destinationRules: readonly Resource<DestinationRuleSpec>[];
  readonly sidecars: readonly Resource<SidecarSpec>[];
  readonly serviceEntries: readonly Resource<ServiceEntrySpec>[];
  readonly gateways: readonly Resource<GatewaySpec>[];
  readonly peerAuthentications: readonly Resource<PeerAuthenticationSpec>[];
  readonly authorizationPolicies: readonly Resource<AuthorizationPolicySpec>[];
  readonly telemetries: readonly Resource<TelemetrySpec>[];
  /** Problems found reading the mesh config from the `istio` ConfigMap (empty when `mesh` was given). */
  readonly meshDiagnostics: readonly Diagnostic[];
  /**
   * The DestinationRule for `hostname` as seen from a proxy in `proxyNamespace`. Istio's order: the
   * proxy's namespace (all its rules, whatever their exportTo), then the service's namespace, then the
   * root namespace (rules exported to the proxy's namespace). Within a namespace the most specific host
   * wins, then the oldest rule. Rules with a workloadSelector count only when `proxyLabels` match them.
   */
  destinationRuleFor(proxyNamespace: string, hostname: string, proxyLabels?: Record<string, string>): Resource<DestinationRuleSpec> | undefined;
  /** VirtualServices bound to `gatewayName` (default 'mesh'; otherwise 'ns/name', or a bare name matching
   *  any namespace) and exported to `proxyNamespace`, oldest first. */
  virtualServicesFor(proxyNamespace: string, gatewayName?: string): Resource<VirtualServiceSpec>[];
  /** The VirtualService's hosts, short names expanded in its namespace. */
  virtualServiceHosts(vs: Resource<VirtualServiceSpec>): string[];
  /** The VirtualService's gateways as 'mesh' or 'ns/name' ('mesh' when none are listed). */
  virtualServiceGateways(vs: Resource<VirtualServiceSpec>): string[];
}

const NET = 'networking.istio.io';
const SEC = 'security.istio.io';
const TEL = 'telemetry.istio.io';

let buildCounter = 0;
const processTag = Date.now().toString(36);

/** Oldest first (creationTimestamp; missing = oldest), then namespace/name: Istio's tie-break order. */
export function byAge(a: Resource<unknown>, b: Resource<unknown>): number {
  const ta = a.metadata.creationTimestamp ?? '';
  const tb = b.metadata.creationTimestamp ?? '';
  if (ta !== tb) return ta < tb ? -1 : 1;
  const ka = `${a.metadata.namespace}/${a.metadata.name}`;
  const kb = `${b.metadata.namespace}/${b.metadata.name}`;
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}

function ofKind<S>(resources: readonly Resource[], group: string, kind: string): Resource<S>[] {
  return (resources.filter((r) => r.group === group && r.kind === kind) as unknown as Resource<S>[]).sort(byAge);
}

/** Specificity of a host pattern: exact names beat wildcards, longer wildcards beat shorter. */
function specificity(host: string): number {
  return host.startsWith('*') ? host.length : 1_000_000 + host.length;
}

class PushContextImpl implements PushContext {
  readonly version: string;
  readonly virtualServices: Resource<VirtualServiceSpec>[];
  readonly destinationRules: Resource<DestinationRuleSpec>[];
  readonly sidecars: Resource<SidecarSpec>[];
  readonly serviceEntries: Resource<ServiceEntrySpec>[];
  readonly gateways: Resource<GatewaySpec>[];
  readonly peerAuthentications: Resource<PeerAuthenticationSpec>[];
  readonly authorizationPolicies: Resource<AuthorizationPolicySpec>[];
  readonly telemetries: Resource<TelemetrySpec>[];
  private readonly drByNs = new Map<string, Resource<DestinationRuleSpec>[]>();
  private readonly vsHosts = new Map<Resource<VirtualServiceSpec>, string[]>();
  private readonly vsGateways = new Map<Resource<VirtualServiceSpec>, string[]>();
  private readonly drHosts = new Map<Resource<DestinationRuleSpec>, string>();
  /** destinationRuleFor beyond the proxy's own namespace, by proxy namespace and hostname: it reads no labels. */
  private readonly remoteDr = new Map<string, Map<string, Resource<DestinationRuleSpec> | null>>();

  constructor(
    readonly resources: readonly Resource[],
    readonly mesh: MeshConfig,
    readonly registry: Registry,
    readonly meshDiagnostics: readonly Diagnostic[],
  ) {
    this.version = `${processTag}-${++buildCounter}`;
    this.virtualServices = ofKind(resources, NET, 'VirtualService');
    this.destinationRules = ofKind(resources, NET, 'DestinationRule');
    this.sidecars = ofKind(resources, NET, 'Sidecar');
    this.serviceEntries = ofKind(resources, NET, 'ServiceEntry');
    this.gateways = ofKind(resources, NET, 'Gateway');
    this.peerAuthentications = ofKind(resources, SEC, 'PeerAuthentication');
    this.authorizationPolicies = ofKind(resources, SEC, 'AuthorizationPolicy');
    this.telemetries = ofKind(resources, TEL, 'Telemetry');
    for (const dr of this.destinationRules) {
      const l = this.drByNs.get(dr.metadata.namespace);
      if (l) l.push(dr);
      else this.drByNs.set(dr.metadata.namespace, [dr]);
    }
    for (const vs of this.virtualServices) {
      const ns = vs.metadata.namespace;
      const hosts = (Array.isArray(vs.spec.hosts) ? vs.spec.hosts : []).filter((h) => typeof h === 'string').map((h) => toFqdn(h, ns, registry.domain));
      this.vsHosts.set(vs, hosts);
      const gws = Array.isArray(vs.spec.gateways) && vs.spec.gateways.length > 0 ? vs.spec.gateways : ['mesh'];
      this.vsGateways.set(vs, gws.filter((g) => typeof g === 'string').map((g) => (g === 'mesh' || g.includes('/') ? g : `${ns}/${g}`)));
    }
  }

  virtualServiceHosts(vs: Resource<VirtualServiceSpec>): string[] {
    return this.vsHosts.get(vs) ?? [];
  }

  virtualServiceGateways(vs: Resource<VirtualServiceSpec>): string[] {
    return this.vsGateways.get(vs) ?? ['mesh'];
  }

  private drHost(dr: Resource<DestinationRuleSpec>): string {
    let h = this.drHosts.get(dr);
    if (h === undefined) this.drHosts.set(dr, (h = toFqdn(dr.spec.host ?? '', dr.metadata.namespace, this.registry.domain)));
    return h;
  }

  private bestIn(ns: string, hostname: string, proxyNamespace: string, proxyLabels: Record<string, string> | undefined, local: boolean): Resource<DestinationRuleSpec> | undefined {
    let best: Resource<DestinationRuleSpec> | undefined;
    let bestScore = -1;
    for (const dr of this.drByNs.get(ns) ?? []) {
      const host = this.drHost(dr);
      if (!host || !hostMatches(host, hostname)) continue;
      if (!local && !exportedTo(dr.spec.exportTo?.length ? dr.spec.exportTo : this.mesh.defaultDestinationRuleExportTo, ns, proxyNamespace)) continue;
      const sel = dr.spec.workloadSelector?.labels;
      const hasSelector = sel !== undefined && Object.keys(sel).length > 0;
      if (hasSelector && (!local || !proxyLabels || !selectorMatches(sel, proxyLabels))) continue;
      // A matching workload-specific rule beats a namespace-wide one for the same host.
      const score = specificity(host) * 2 + (hasSelector ? 1 : 0);
      if (score > bestScore) {
        best = dr;
        bestScore = score;
      }
    }
    return best;
  }

  destinationRuleFor(proxyNamespace: string, hostname: string, proxyLabels?: Record<string, string>): Resource<DestinationRuleSpec> | undefined {
    const local = this.bestIn(proxyNamespace, hostname, proxyNamespace, proxyLabels, true);
    if (local) return local;
    let byHost = this.remoteDr.get(proxyNamespace);
    if (!byHost) this.remoteDr.set(proxyNamespace, (byHost = new Map()));
    const known = byHost.get(hostname);
    if (known !== undefined) return known ?? undefined;
    const found = this.remoteRuleFor(proxyNamespace, hostname);
    byHost.set(hostname, found ?? null);
    return found;
  }

  private remoteRuleFor(proxyNamespace: string, hostname: string): Resource<DestinationRuleSpec> | undefined {
    const services = this.registry.service(hostname);
    for (const svc of services) {
      if (svc.namespace === proxyNamespace) continue;
      const found = this.bestIn(svc.namespace, hostname, proxyNamespace, undefined, false);
      if (found) return found;
    }
    const root = this.mesh.rootNamespace;
    if (root !== proxyNamespace && !services.some((s) => s.namespace === root)) {
      return this.bestIn(root, hostname, proxyNamespace, undefined, false);
    }
    return undefined;
  }

  virtualServicesFor(proxyNamespace: string, gatewayName = 'mesh'): Resource<VirtualServiceSpec>[] {
    return this.virtualServices.filter((vs) => {
      const exportTo = vs.spec.exportTo?.length ? vs.spec.exportTo : this.mesh.defaultVirtualServiceExportTo;
      if (!exportedTo(exportTo, vs.metadata.namespace, proxyNamespace)) return false;
      return this.virtualServiceGateways(vs).some((g) => g === gatewayName || (!gatewayName.includes('/') && g.endsWith(`/${gatewayName}`)));
    });
  }
}

/**
 * Builds the snapshot. The mesh config is `opts.mesh` when given, else the `istio` ConfigMap in the
 * resources merged over `opts.meshConfig` (or Istio's defaults).
 */
export function buildPushContext(resources: readonly Resource[], opts: RegistryOptions & { mesh?: MeshConfig } = {}): PushContext {
  let mesh = opts.mesh;
  let meshDiagnostics: Diagnostic[] = [];
  if (!mesh) {
    const r = meshConfigFromResources(resources, opts.meshConfig);
    mesh = r.mesh;
    meshDiagnostics = r.diagnostics;
  }
  const registry = buildRegistry(resources, { ...opts, meshConfig: mesh });
  return new PushContextImpl(resources, mesh, registry, meshDiagnostics);
}
