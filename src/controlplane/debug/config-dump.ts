// An Envoy-shaped admin config dump (`/config_dump?include_eds`) computed for one proxy from a push
// context: what the sidecar would hold. Used offline by `proxy-config` and live by the debug API.

import type { PushContext } from '../model/push-context.ts';
import { computeSidecarScope, type ProxyInfo } from '../model/sidecar-scope.ts';
import { buildClusters, CLUSTER_TYPE, type EnvoyCluster } from '../translate/clusters.ts';
import { buildEndpoints, ENDPOINT_TYPE } from '../translate/endpoints.ts';
import { buildListeners } from '../translate/listeners.ts';
import { buildRoutes } from '../translate/routes.ts';
import { DUMP_TYPES, type ConfigDump } from '../../xds/configdump/dump.ts';

/** Ports of the sidecar's own admin (15000) and agent (15020) endpoints, Istio's meanings (M6). */
export const ADMIN_PORT = 15000;
export const AGENT_PORT = 15020;

/** The bootstrap's static clusters every tsmesh sidecar has (Istio's prometheus_stats and agent). */
export function bootstrapStaticClusters(): EnvoyCluster[] {
  const local = (name: string, port: number): EnvoyCluster => ({
    '@type': CLUSTER_TYPE,
    name,
    type: 'STATIC',
    connect_timeout: '0.25s',
    load_assignment: {
      cluster_name: name,
      endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: port } } } }] }],
    },
  });
  return [local('prometheus_stats', ADMIN_PORT), local('agent', AGENT_PORT)];
}

export function buildConfigDump(proxy: ProxyInfo, push: PushContext, now: Date = new Date()): ConfigDump {
  const scope = computeSidecarScope(proxy, push);
  const clusters = buildClusters(proxy, push, scope);
  const assignments = buildEndpoints(clusters, push, scope);
  const statics = bootstrapStaticClusters();
  const lastUpdated = now.toISOString();
  const staticEndpoints = statics.map((c) => ({ endpoint_config: { '@type': ENDPOINT_TYPE, ...(c.load_assignment as object), } }));
  for (const s of staticEndpoints) {
    for (const loc of (s.endpoint_config as { endpoints?: Array<{ lb_endpoints?: Array<Record<string, unknown>> }> }).endpoints ?? []) {
      for (const lb of loc.lb_endpoints ?? []) lb.health_status = 'HEALTHY';
    }
  }
  return {
    configs: [
      {
        '@type': DUMP_TYPES.clusters,
        version_info: push.version,
        static_clusters: statics.map((cluster) => ({ cluster, last_updated: lastUpdated })),
        dynamic_active_clusters: clusters.map((cluster) => ({ version_info: push.version, cluster, last_updated: lastUpdated })),
      },
      {
        '@type': DUMP_TYPES.listeners,
        version_info: push.version,
        dynamic_listeners: buildListeners(proxy, push, scope).map((listener) => ({
          name: listener.name,
          active_state: { version_info: push.version, listener, last_updated: lastUpdated },
        })),
      },
      {
        '@type': DUMP_TYPES.routes,
        dynamic_route_configs: buildRoutes(proxy, push, scope).map((route_config) => ({ version_info: push.version, route_config, last_updated: lastUpdated })),
      },
      {
        '@type': DUMP_TYPES.endpoints,
        static_endpoint_configs: staticEndpoints,
        dynamic_endpoint_configs: assignments.map((endpoint_config) => ({ version_info: push.version, endpoint_config, last_updated: lastUpdated })),
      },
    ],
  };
}
