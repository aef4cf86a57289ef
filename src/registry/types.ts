// The service registry's data model: services (Kubernetes Services and ServiceEntries), workloads
// (pods, WorkloadEntries) and the endpoints joining them. Plain data; nothing here fails.

import type { MeshConfig } from '../config/mesh-config.ts';
import type { Resource } from '../config/resource.ts';
import type { PodSpec } from '../config/types.ts';
import type { Protocol } from './protocol.ts';

export type { Protocol } from './protocol.ts';

export interface ServicePortInfo {
  name: string;
  port: number;
  /** Kubernetes: targetPort as written (a number, or a container port name); defaults to `port`.
   *  ServiceEntry: spec.ports[].targetPort, else `port`. */
  targetPort: number | string;
  protocol: Protocol;
}

export interface MeshService {
  /** FQDN: reviews.bookinfo.svc.cluster.local, or the ServiceEntry host (may be a wildcard). */
  hostname: string;
  /** The Service's (or ServiceEntry's) name and namespace. */
  name: string;
  namespace: string;
  origin: 'Kubernetes' | 'ServiceEntry';
  /** ClusterIP(s) / ServiceEntry addresses; [] for headless or none. */
  addresses: string[];
  ports: ServicePortInfo[];
  selector?: Record<string, string>;
  /** Kubernetes ClusterIP & SE STATIC -> ClientSideLB, SE DNS -> DNS, SE DNS_ROUND_ROBIN -> DNSRoundRobin,
   *  SE NONE / headless -> Passthrough. */
  resolution: 'ClientSideLB' | 'DNS' | 'DNSRoundRobin' | 'Passthrough';
  location: 'MESH_INTERNAL' | 'MESH_EXTERNAL';
  /** ['*'] by default (meshConfig.defaultServiceExportTo); '.' means own namespace only. */
  exportTo: string[];
  labels: Record<string, string>;
  /** The Service or ServiceEntry it came from. */
  source?: Resource;
  /** Kubernetes headless Service (clusterIP: None). */
  headless?: boolean;
  /** Kubernetes ExternalName Services: the external name. */
  externalName?: string;
}

export interface Workload {
  kind: 'Pod' | 'WorkloadEntry';
  /** Pod name, e.g. reviews-v1-5c4d6d447c-qwmbv. */
  name: string;
  namespace: string;
  ip: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  /** 'default' when unset. */
  serviceAccount: string;
  /** Deployment/StatefulSet/... that made it. */
  owner?: { kind: string; name: string };
  /** For pods. */
  podSpec?: PodSpec;
  locality?: string;
  network?: string;
  weight?: number;
  /** WorkloadEntry: port name -> port number overrides. */
  ports?: Record<string, number>;
  source?: Resource;
}

export interface ServiceEndpoint {
  service: MeshService;
  servicePort: ServicePortInfo;
  /** Where traffic goes: pod IP + resolved targetPort. */
  address: string;
  port: number;
  workload?: Workload;
  labels: Record<string, string>;
  serviceAccount?: string;
  locality?: string;
  weight?: number;
  healthy: boolean;
}

export interface RegistryOptions {
  /** Default 10.244.0.0/16. */
  podCIDR?: string;
  /** Default 10.96.0.0/16. */
  serviceCIDR?: string;
  /** Default cluster.local. */
  domain?: string;
  meshConfig?: MeshConfig;
}

export interface NamespaceInfo {
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

export interface Registry {
  readonly services: readonly MeshService[];
  readonly workloads: readonly Workload[];
  /** From Namespace resources plus every namespace used. */
  readonly namespaces: ReadonlyMap<string, NamespaceInfo>;
  /** The cluster domain used for names (cluster.local). */
  readonly domain: string;
  /** By exact FQDN (can be several: a Service and a ServiceEntry). */
  service(hostname: string): MeshService[];
  /** Resolves short names via toFqdn, then exact, then wildcard ServiceEntry hosts. */
  lookupHost(name: string, fromNamespace: string): MeshService[];
  /** What a pod in `fromNamespace` reaches by DNS name, following Kubernetes' search path (M8):
   *  'reviews', 'reviews.bookinfo', 'reviews.bookinfo.svc' and the FQDN all find the reviews Service.
   *  (lookupHost, by contrast, follows Istio's config rule and does not expand dotted names.) */
  resolveDnsName(name: string, fromNamespace: string): MeshService[];
  /** Services (Kubernetes and ServiceEntry) declared in a namespace. */
  servicesInNamespace(namespace: string): MeshService[];
  /** Endpoints of a service port; `port` = service port number. [] for unknown ports. */
  endpoints(service: MeshService, port: number): ServiceEndpoint[];
  workloadsMatching(namespace: string, selector: Record<string, string>): Workload[];
  servicesForWorkload(w: Workload): MeshService[];
  workload(name: string, namespace: string): Workload | undefined;
  /** True when `service` may be seen from `namespace` under its exportTo. */
  isExportedTo(service: MeshService, namespace: string): boolean;
}
