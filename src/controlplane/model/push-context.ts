// The push context: one immutable snapshot of the config and registry for a push (work in progress).

import type { MeshConfig } from '../../config/mesh-config.ts';
import type { Resource } from '../../config/resource.ts';
import type {
  AuthorizationPolicySpec, DestinationRuleSpec, GatewaySpec, PeerAuthenticationSpec, ServiceEntrySpec, SidecarSpec, TelemetrySpec, VirtualServiceSpec,
} from '../../config/types.ts';
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
  /** Istio's lookup order: proxy's namespace, then the service's namespace, then the root namespace;
   *  most specific host wins; exportTo respected. */
  destinationRuleFor(proxyNamespace: string, hostname: string): Resource<DestinationRuleSpec> | undefined;
  /** VirtualServices bound to `gatewayName` (default 'mesh') visible from proxyNamespace (exportTo respected). */
  virtualServicesFor(proxyNamespace: string, gatewayName?: string): Resource<VirtualServiceSpec>[];
}

export function buildPushContext(resources: readonly Resource[], opts: RegistryOptions & { mesh?: MeshConfig } = {}): PushContext {
  void resources;
  void opts;
  throw new Error('buildPushContext: not implemented yet');
}
