// The Sidecar scope of one proxy: which Sidecar applies and what it may see (work in progress).

import type { Resource } from '../../config/resource.ts';
import type {
  CaptureMode, ConnectionPoolSettings, Destination, DestinationRuleSpec, IstioIngressListener, ServicePort, SidecarSpec, VirtualServiceSpec,
} from '../../config/types.ts';
import type { MeshService } from '../../registry/types.ts';
import type { PushContext } from './push-context.ts';

export interface ProxyInfo { namespace: string; labels: Record<string, string>; name?: string; ip?: string; type?: 'sidecar' | 'router' }
/** namespace: '*', '~', or a namespace ('.' resolved); host: a dnsName, may be '*' or '*.x'. */
export interface EgressHostRule { namespace: string; host: string; raw: string }
export interface ScopedEgressListener { port?: ServicePort; bind?: string; captureMode: CaptureMode; hosts: EgressHostRule[]; services: MeshService[]; virtualServices: Resource<VirtualServiceSpec>[] }
export interface SidecarScope {
  proxy: ProxyInfo;
  sidecar?: Resource<SidecarSpec>;
  appliedFrom: 'workloadSelector' | 'namespace' | 'root' | 'none';
  outboundTrafficPolicy: { mode: 'ALLOW_ANY' | 'REGISTRY_ONLY'; egressProxy?: Destination; from: 'sidecar' | 'mesh' | 'default' };
  egress: ScopedEgressListener[];
  ingress: IstioIngressListener[];
  inboundConnectionPool?: ConnectionPoolSettings;
  services: MeshService[];
  virtualServices: Resource<VirtualServiceSpec>[];
  destinationRules: Map<string, Resource<DestinationRuleSpec>>;
  isVisible(hostname: string): boolean;
}

export function computeSidecarScope(proxy: ProxyInfo, push: PushContext): SidecarScope {
  void proxy;
  void push;
  throw new Error('computeSidecarScope: not implemented yet');
}
