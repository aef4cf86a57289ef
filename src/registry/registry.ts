// Builds the service registry from loaded resources: services (Kubernetes Services, ServiceEntries),
// workloads (pods incl. those controllers would create, WorkloadEntries) and their endpoints, indexed
// by hostname and namespace. Never throws on odd input (it is skipped); only a malformed CIDR throws.

import { defaultMeshConfig, type MeshConfig } from '../config/mesh-config.ts';
import type { Resource } from '../config/resource.ts';
import type { KubeServiceSpec, ServiceEntrySpec } from '../config/types.ts';
import { DEFAULT_DOMAIN, dnsSearchCandidates, hostMatches, isWildcardHost, toFqdn } from './host.ts';
import { Allocator, parseCidr } from './ipam.ts';
import { parseProtocol, protocolForPort } from './protocol.ts';
import type { MeshService, NamespaceInfo, Registry, RegistryOptions, ServiceEndpoint, ServicePortInfo, Workload } from './types.ts';
import { expandWorkloads } from './workloads.ts';

export type { Registry } from './types.ts';

/** Kubernetes' annotation for a Service's Istio exportTo (comma-separated). */
export const EXPORT_TO_ANNOTATION = 'networking.istio.io/exportTo';

function isObject<T>(v: T): v is Exclude<T, null | undefined | readonly unknown[]> & Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** True when every selector pair is in labels. An empty selector matches everything. */
export function selectorMatches(selector: Record<string, string>, labels: Record<string, string>): boolean {
  for (const k in selector) if (labels[k] !== selector[k]) return false;
  return true;
}

/** Whether a resource/service with `exportTo` in `ownNamespace` is visible from `namespace`. */
export function exportedTo(exportTo: readonly string[], ownNamespace: string, namespace: string): boolean {
  for (const e of exportTo) {
    if (e === '*' || e === namespace || (e === '.' && ownNamespace === namespace)) return true;
  }
  return false;
}

interface EndpointSource { address: string; port: number | undefined; portName?: string; labels: Record<string, string>; serviceAccount?: string; workload?: Workload; locality?: string; weight?: number; healthy: boolean; ports?: Record<string, number> }

class RegistryImpl implements Registry {
  readonly services: MeshService[] = [];
  readonly workloads: Workload[] = [];
  readonly namespaces = new Map<string, NamespaceInfo>();
  readonly domain: string;
  private readonly byHost = new Map<string, MeshService[]>();
  private readonly wildcardServices: MeshService[] = [];
  private readonly servicesByNs = new Map<string, MeshService[]>();
  private readonly workloadsByNs = new Map<string, Workload[]>();
  /** namespace -> 'key=value' -> workloads carrying that label. */
  private readonly labelIndex = new Map<string, Map<string, Workload[]>>();
  private readonly workloadByKey = new Map<string, Workload>();
  private readonly healthy = new Map<Workload, boolean>();
  /** Explicit endpoints for selector-less Kubernetes Services (Endpoints / EndpointSlice), by ns/name. */
  private readonly explicitEndpoints = new Map<string, Array<{ address: string; port: number; portName: string; healthy: boolean }>>();
  private readonly endpointCache = new Map<MeshService, Map<number, ServiceEndpoint[]>>();

  constructor(domain: string) {
    this.domain = domain;
  }

  addNamespace(name: string, info?: Partial<NamespaceInfo>): void {
    if (!name) return;
    const cur = this.namespaces.get(name);
    if (!cur) this.namespaces.set(name, { labels: { ...(info?.labels ?? {}) }, annotations: { ...(info?.annotations ?? {}) } });
    else if (info) {
      Object.assign(cur.labels, info.labels ?? {});
      Object.assign(cur.annotations, info.annotations ?? {});
    }
  }

  addService(s: MeshService): void {
    this.services.push(s);
    const key = s.hostname.toLowerCase();
    const list = this.byHost.get(key);
    if (list) list.push(s);
    else this.byHost.set(key, [s]);
    if (isWildcardHost(s.hostname)) this.wildcardServices.push(s);
    const nsList = this.servicesByNs.get(s.namespace);
    if (nsList) nsList.push(s);
    else this.servicesByNs.set(s.namespace, [s]);
  }

  addWorkload(w: Workload, healthy: boolean): void {
    this.workloads.push(w);
    this.healthy.set(w, healthy);
    this.workloadByKey.set(`${w.kind}/${w.namespace}/${w.name}`, w);
    const list = this.workloadsByNs.get(w.namespace);
    if (list) list.push(w);
    else this.workloadsByNs.set(w.namespace, [w]);
    let idx = this.labelIndex.get(w.namespace);
    if (!idx) this.labelIndex.set(w.namespace, (idx = new Map()));
    for (const k in w.labels) {
      const key = `${k}=${w.labels[k]}`;
      const l = idx.get(key);
      if (l) l.push(w);
      else idx.set(key, [w]);
    }
  }

  addExplicitEndpoints(namespace: string, service: string, eps: Array<{ address: string; port: number; portName: string; healthy: boolean }>): void {
    const key = `${namespace}/${service}`;
    const cur = this.explicitEndpoints.get(key);
    if (cur) cur.push(...eps);
    else this.explicitEndpoints.set(key, [...eps]);
  }

  sortServices(): void {
    const cmp = (a: MeshService, b: MeshService): number =>
      a.hostname < b.hostname ? -1 : a.hostname > b.hostname ? 1 : a.namespace < b.namespace ? -1 : a.namespace > b.namespace ? 1 : a.origin < b.origin ? -1 : a.origin > b.origin ? 1 : 0;
    this.services.sort(cmp);
  }

  service(hostname: string): MeshService[] {
    return [...(this.byHost.get(hostname.toLowerCase()) ?? [])];
  }

  lookupHost(name: string, fromNamespace: string): MeshService[] {
    const fqdn = toFqdn(name, fromNamespace, this.domain);
    const exact = this.byHost.get(fqdn.toLowerCase());
    if (exact && exact.length > 0) return [...exact];
    if (isWildcardHost(fqdn)) return [];
    // Wildcard ServiceEntry hosts, most specific (longest) first.
    return this.wildcardServices
      .filter((s) => hostMatches(s.hostname, fqdn))
      .sort((a, b) => b.hostname.length - a.hostname.length);
  }

  /** What a pod in `fromNamespace` reaches by DNS name (Kubernetes' search path; M8): 'reviews',
   *  'reviews.bookinfo', 'reviews.bookinfo.svc' and the FQDN all find the reviews Service. */
  resolveDnsName(name: string, fromNamespace: string): MeshService[] {
    for (const candidate of dnsSearchCandidates(name, fromNamespace, this.domain)) {
      const found = this.byHost.get(candidate.toLowerCase());
      if (found && found.length > 0) return [...found];
    }
    const plain = name.endsWith('.') ? name.slice(0, -1) : name;
    return this.wildcardServices.filter((s) => hostMatches(s.hostname, plain)).sort((a, b) => b.hostname.length - a.hostname.length);
  }

  servicesInNamespace(namespace: string): MeshService[] {
    return [...(this.servicesByNs.get(namespace) ?? [])];
  }

  isExportedTo(service: MeshService, namespace: string): boolean {
    return exportedTo(service.exportTo, service.namespace, namespace);
  }

  workloadsMatching(namespace: string, selector: Record<string, string>): Workload[] {
    const keys = Object.keys(selector);
    if (keys.length === 0) return [...(this.workloadsByNs.get(namespace) ?? [])];
    const idx = this.labelIndex.get(namespace);
    if (!idx) return [];
    let smallest: Workload[] | undefined;
    for (const k of keys) {
      const l = idx.get(`${k}=${selector[k]}`);
      if (!l) return [];
      if (!smallest || l.length < smallest.length) smallest = l;
    }
    return (smallest ?? []).filter((w) => selectorMatches(selector, w.labels));
  }

  servicesForWorkload(w: Workload): MeshService[] {
    return (this.servicesByNs.get(w.namespace) ?? []).filter((s) => s.selector !== undefined && Object.keys(s.selector).length > 0 && selectorMatches(s.selector, w.labels));
  }

  workload(name: string, namespace: string): Workload | undefined {
    return this.workloadByKey.get(`Pod/${namespace}/${name}`) ?? this.workloadByKey.get(`WorkloadEntry/${namespace}/${name}`);
  }

  endpoints(service: MeshService, port: number): ServiceEndpoint[] {
    let perSvc = this.endpointCache.get(service);
    if (!perSvc) this.endpointCache.set(service, (perSvc = new Map()));
    const cached = perSvc.get(port);
    if (cached) return cached;
    const sp = service.ports.find((p) => p.port === port);
    const eps = sp ? this.computeEndpoints(service, sp) : [];
    perSvc.set(port, eps);
    return eps;
  }

  private computeEndpoints(service: MeshService, sp: ServicePortInfo): ServiceEndpoint[] {
    const out: ServiceEndpoint[] = [];
    const push = (src: EndpointSource): void => {
      if (src.port === undefined || !src.address) return;
      const ep: ServiceEndpoint = { service, servicePort: sp, address: src.address, port: src.port, labels: src.labels, healthy: src.healthy };
      if (src.workload) ep.workload = src.workload;
      if (src.serviceAccount) ep.serviceAccount = src.serviceAccount;
      if (src.locality) ep.locality = src.locality;
      if (src.weight !== undefined) ep.weight = src.weight;
      out.push(ep);
    };
    if (service.origin === 'Kubernetes') {
      if (service.externalName) {
        push({ address: service.externalName, port: sp.port, labels: {}, healthy: true });
        return out;
      }
      if (service.selector && Object.keys(service.selector).length > 0) {
        for (const w of this.workloadsMatching(service.namespace, service.selector)) {
          push(this.workloadEndpoint(w, sp, sp.targetPort));
        }
      } else {
        const explicit = this.explicitEndpoints.get(`${service.namespace}/${service.name}`) ?? [];
        const single = service.ports.length === 1;
        for (const e of explicit) {
          if (e.portName === sp.name || (single && e.portName === '')) {
            push({ address: e.address, port: e.port, labels: {}, healthy: e.healthy });
          }
        }
      }
      return out;
    }
    // ServiceEntry
    const se = service.source as Resource<ServiceEntrySpec> | undefined;
    const spec = se?.spec ?? {};
    const defaultTarget = sp.targetPort;
    if (Array.isArray(spec.endpoints) && spec.endpoints.length > 0) {
      for (const e of spec.endpoints) {
        if (!isObject(e) || typeof e.address !== 'string') continue;
        const ports = isObject(e.ports) ? e.ports : {};
        const port = typeof ports[sp.name] === 'number' ? ports[sp.name] : typeof defaultTarget === 'number' ? defaultTarget : sp.port;
        const src: EndpointSource = { address: e.address, port, labels: isObject(e.labels) ? { ...e.labels } : {}, healthy: true };
        if (e.serviceAccount) src.serviceAccount = e.serviceAccount;
        if (e.locality) src.locality = e.locality;
        if (typeof e.weight === 'number') src.weight = e.weight;
        push(src);
      }
    } else if (service.selector && Object.keys(service.selector).length > 0) {
      for (const w of this.workloadsMatching(service.namespace, service.selector)) {
        push(this.workloadEndpoint(w, sp, defaultTarget));
      }
    } else if (service.resolution === 'DNS' || service.resolution === 'DNSRoundRobin') {
      // Istio: a DNS ServiceEntry without endpoints resolves its own host.
      if (!isWildcardHost(service.hostname)) push({ address: service.hostname, port: typeof defaultTarget === 'number' ? defaultTarget : sp.port, labels: {}, healthy: true });
    }
    return out;
  }

  private workloadEndpoint(w: Workload, sp: ServicePortInfo, target: number | string): EndpointSource {
    let port: number | undefined;
    if (w.kind === 'WorkloadEntry' && w.ports && typeof w.ports[sp.name] === 'number') port = w.ports[sp.name];
    else if (typeof target === 'number') port = target;
    else {
      // A named targetPort: the container port with that name (no endpoint when no container has it).
      for (const c of w.podSpec?.containers ?? []) {
        const found = (c.ports ?? []).find((p) => p.name === target);
        if (found && typeof found.containerPort === 'number') {
          port = found.containerPort;
          break;
        }
      }
      if (port === undefined && w.kind === 'WorkloadEntry') port = sp.port;
    }
    const src: EndpointSource = { address: w.ip, port, labels: w.labels, serviceAccount: w.serviceAccount, workload: w, healthy: this.healthy.get(w) ?? true };
    if (w.locality) src.locality = w.locality;
    if (w.weight !== undefined) src.weight = w.weight;
    return src;
  }
}

function kubeServicePorts(spec: KubeServiceSpec): ServicePortInfo[] {
  const out: ServicePortInfo[] = [];
  for (const p of (Array.isArray(spec.ports) ? spec.ports : [])) {
    if (!isObject(p) || typeof p.port !== 'number') continue;
    const tp = p.targetPort;
    const targetPort = typeof tp === 'number' ? tp : typeof tp === 'string' && tp !== '' ? (/^\d+$/.test(tp) ? Number(tp) : tp) : p.port;
    const input: { name?: string; appProtocol?: string; protocol?: string; port: number } = { port: p.port };
    if (p.name !== undefined) input.name = p.name;
    if (p.appProtocol !== undefined) input.appProtocol = p.appProtocol;
    if (p.protocol !== undefined) input.protocol = p.protocol;
    out.push({ name: p.name ?? '', port: p.port, targetPort, protocol: protocolForPort(input) });
  }
  return out;
}

function exportToOf(r: Resource, specExportTo: unknown, mesh: MeshConfig): string[] {
  if (Array.isArray(specExportTo) && specExportTo.length > 0) return specExportTo.map(String);
  const ann = r.metadata.annotations[EXPORT_TO_ANNOTATION];
  if (ann) return ann.split(',').map((s) => s.trim()).filter(Boolean);
  return [...mesh.defaultServiceExportTo];
}

const SE_RESOLUTION: Record<string, MeshService['resolution']> = {
  STATIC: 'ClientSideLB',
  DNS: 'DNS',
  DNS_ROUND_ROBIN: 'DNSRoundRobin',
  DYNAMIC_DNS: 'DNS',
  NONE: 'Passthrough',
};

/**
 * Builds the registry. Pods get deterministic IPs from `podCIDR` (stable per namespace/name, unique
 * within one build; status.podIP when given); Services without spec.clusterIP get one from
 * `serviceCIDR` the same way. ServiceEntry hosts are expanded with toFqdn in the entry's namespace.
 */
export function buildRegistry(resources: readonly Resource[], opts: RegistryOptions = {}): Registry {
  const domain = opts.domain ?? DEFAULT_DOMAIN;
  const mesh = opts.meshConfig ?? defaultMeshConfig();
  const reg = new RegistryImpl(domain);
  const podCidr = parseCidr(opts.podCIDR ?? '10.244.0.0/16');
  const svcCidr = parseCidr(opts.serviceCIDR ?? '10.96.0.0/16');

  for (const r of resources) {
    if (r.kind === 'Namespace' && r.group === '') reg.addNamespace(r.metadata.name, { labels: r.metadata.labels, annotations: r.metadata.annotations });
    else reg.addNamespace(r.metadata.namespace);
  }

  // ---- workloads ----
  const { workloads: drafts, unready } = expandWorkloads(resources);
  const podAlloc = new Allocator(podCidr);
  for (const d of drafts) if (d.ip && d.kind === 'Pod') podAlloc.reserve(d.ip);
  const order = drafts
    .map((d, i) => ({ d, i, key: `${d.namespace}/${d.name}` }))
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : a.i - b.i));
  for (const { d, key } of order) {
    if (!d.ip && d.kind === 'Pod') d.ip = podAlloc.allocate(key);
  }
  for (const d of drafts) reg.addWorkload(d, !unready.has(d));

  // ---- Kubernetes Services ----
  const kubeServices = resources.filter((r) => r.kind === 'Service' && r.group === '') as Resource<KubeServiceSpec>[];
  const svcAlloc = new Allocator(svcCidr, [10]); // .1 (API server) is skipped by the allocator; .10 is kube-dns
  for (const s of kubeServices) {
    const ip = s.spec.clusterIP;
    if (typeof ip === 'string' && ip && ip !== 'None') svcAlloc.reserve(ip);
  }
  const kubeOrder = kubeServices
    .map((r, i) => ({ r, i, key: `${r.metadata.namespace}/${r.metadata.name}` }))
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : a.i - b.i));
  const clusterIps = new Map<Resource<KubeServiceSpec>, string[]>();
  for (const { r, key } of kubeOrder) {
    const spec = r.spec;
    if (spec.type === 'ExternalName') clusterIps.set(r, []);
    else if (spec.clusterIP === 'None') clusterIps.set(r, []);
    else if (Array.isArray(spec.clusterIPs) && spec.clusterIPs.length > 0) clusterIps.set(r, spec.clusterIPs.map(String));
    else if (typeof spec.clusterIP === 'string' && spec.clusterIP) clusterIps.set(r, [spec.clusterIP]);
    else clusterIps.set(r, [svcAlloc.allocate(key)]);
  }
  for (const r of kubeServices) {
    const spec = r.spec;
    const external = spec.type === 'ExternalName' && typeof spec.externalName === 'string' ? spec.externalName : undefined;
    const headless = spec.clusterIP === 'None';
    const svc: MeshService = {
      hostname: `${r.metadata.name}.${r.metadata.namespace}.svc.${domain}`,
      name: r.metadata.name,
      namespace: r.metadata.namespace,
      origin: 'Kubernetes',
      addresses: clusterIps.get(r) ?? [],
      ports: kubeServicePorts(spec),
      resolution: external ? 'DNS' : headless ? 'Passthrough' : 'ClientSideLB',
      location: external ? 'MESH_EXTERNAL' : 'MESH_INTERNAL',
      exportTo: exportToOf(r as Resource, undefined, mesh),
      labels: { ...r.metadata.labels },
      source: r as Resource,
    };
    if (isObject(spec.selector)) {
      const sel: Record<string, string> = {};
      for (const [k, v] of Object.entries(spec.selector)) sel[k] = String(v);
      svc.selector = sel;
    }
    if (headless) svc.headless = true;
    if (external) svc.externalName = external;
    reg.addService(svc);
  }

  // ---- explicit Endpoints / EndpointSlices (for selector-less Services) ----
  for (const r of resources) {
    if (r.kind === 'Endpoints' && r.group === '') {
      const subsets = Array.isArray(r.body.subsets) ? r.body.subsets : [];
      const eps: Array<{ address: string; port: number; portName: string; healthy: boolean }> = [];
      for (const sub of subsets) {
        if (!isObject(sub)) continue;
        const ports = (Array.isArray(sub.ports) ? sub.ports : []).filter(isObject);
        const ready: unknown[] = Array.isArray(sub.addresses) ? sub.addresses : [];
        const notReady: unknown[] = Array.isArray(sub.notReadyAddresses) ? sub.notReadyAddresses : [];
        const addrs: Array<[unknown, boolean]> = [...ready.map((a): [unknown, boolean] => [a, true]), ...notReady.map((a): [unknown, boolean] => [a, false])];
        for (const [a, isReady] of addrs) {
          if (!isObject(a) || typeof a.ip !== 'string') continue;
          for (const p of ports) {
            if (typeof p.port !== 'number') continue;
            eps.push({ address: a.ip, port: p.port, portName: typeof p.name === 'string' ? p.name : '', healthy: isReady });
          }
        }
      }
      reg.addExplicitEndpoints(r.metadata.namespace, r.metadata.name, eps);
    } else if (r.kind === 'EndpointSlice' && r.group === 'discovery.k8s.io') {
      const svcName = r.metadata.labels['kubernetes.io/service-name'];
      if (!svcName) continue;
      const ports = (Array.isArray(r.body.ports) ? r.body.ports : []).filter(isObject);
      const eps: Array<{ address: string; port: number; portName: string; healthy: boolean }> = [];
      for (const e of Array.isArray(r.body.endpoints) ? r.body.endpoints : []) {
        if (!isObject(e) || !Array.isArray(e.addresses)) continue;
        const ready = !(isObject(e.conditions) && e.conditions.ready === false);
        for (const a of e.addresses) {
          if (typeof a !== 'string') continue;
          for (const p of ports) {
            if (typeof p.port !== 'number') continue;
            eps.push({ address: a, port: p.port, portName: typeof p.name === 'string' ? p.name : '', healthy: ready });
          }
        }
      }
      reg.addExplicitEndpoints(r.metadata.namespace, svcName, eps);
    }
  }

  // ---- ServiceEntries: one MeshService per host ----
  for (const r of resources) {
    if (r.kind !== 'ServiceEntry' || r.group !== 'networking.istio.io') continue;
    const spec = r.spec as ServiceEntrySpec;
    const hosts = Array.isArray(spec.hosts) ? spec.hosts.filter((h): h is string => typeof h === 'string' && h !== '') : [];
    const ports: ServicePortInfo[] = (Array.isArray(spec.ports) ? spec.ports : [])
      .filter((p) => isObject(p) && typeof p.number === 'number')
      .map((p) => ({ name: p.name ?? '', port: p.number as number, targetPort: typeof p.targetPort === 'number' && p.targetPort > 0 ? p.targetPort : (p.number as number), protocol: parseProtocol(p.protocol) }));
    const selector = isObject(spec.workloadSelector) && isObject(spec.workloadSelector.labels) ? { ...spec.workloadSelector.labels } : undefined;
    for (const host of hosts) {
      const svc: MeshService = {
        hostname: toFqdn(host, r.metadata.namespace, domain),
        name: r.metadata.name,
        namespace: r.metadata.namespace,
        origin: 'ServiceEntry',
        addresses: Array.isArray(spec.addresses) ? spec.addresses.map(String) : [],
        ports,
        resolution: SE_RESOLUTION[spec.resolution ?? 'NONE'] ?? 'Passthrough',
        location: spec.location === 'MESH_INTERNAL' ? 'MESH_INTERNAL' : 'MESH_EXTERNAL',
        exportTo: exportToOf(r, spec.exportTo, mesh),
        labels: { ...r.metadata.labels },
        source: r,
      };
      if (selector) svc.selector = selector;
      reg.addService(svc);
    }
  }
  reg.sortServices();
  return reg;
}
