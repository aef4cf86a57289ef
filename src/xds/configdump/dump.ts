// Reading an Envoy admin config dump (`/config_dump?include_eds`): the clusters and load assignments
// in it, static and dynamic. Tolerates missing sections; never throws on a well-formed JSON object.

export type Json = Record<string, unknown>;

export interface ConfigDump {
  configs: Json[];
}

const TYPES = {
  clusters: 'type.googleapis.com/envoy.admin.v3.ClustersConfigDump',
  endpoints: 'type.googleapis.com/envoy.admin.v3.EndpointsConfigDump',
  listeners: 'type.googleapis.com/envoy.admin.v3.ListenersConfigDump',
  routes: 'type.googleapis.com/envoy.admin.v3.RoutesConfigDump',
  bootstrap: 'type.googleapis.com/envoy.admin.v3.BootstrapConfigDump',
} as const;
export const DUMP_TYPES = TYPES;

function section(dump: ConfigDump, type: string): Json | undefined {
  return dump.configs.find((c) => c['@type'] === type);
}

const arr = (v: unknown): Json[] => (Array.isArray(v) ? (v as Json[]) : []);

/** Every Cluster in the dump: dynamic active first, then static. */
export function dumpClusters(dump: ConfigDump): Json[] {
  const s = section(dump, TYPES.clusters);
  if (!s) return [];
  return [...arr(s.dynamic_active_clusters), ...arr(s.static_clusters)].map((c) => c.cluster as Json).filter(Boolean);
}

/** Every ClusterLoadAssignment in the dump: dynamic first, then static. */
export function dumpEndpoints(dump: ConfigDump): Json[] {
  const s = section(dump, TYPES.endpoints);
  if (!s) return [];
  return [...arr(s.dynamic_endpoint_configs), ...arr(s.static_endpoint_configs)].map((c) => c.endpoint_config as Json).filter(Boolean);
}

/** Key istioctl sorts clusters by: the host part, then subset, then port, then direction. */
export function clusterSortKey(name: string): { host: string; subset: string; port: number; direction: string } {
  const parts = name.split('|');
  if (parts.length > 3) return { direction: parts[0] ?? '', port: Number(parts[1]) || 0, subset: parts[2] ?? '', host: parts[3] ?? '' };
  return { direction: '', port: 0, subset: '', host: name };
}

export function compareClusterNames(a: string, b: string): number {
  const x = clusterSortKey(a);
  const y = clusterSortKey(b);
  if (x.host !== y.host) return x.host < y.host ? -1 : 1;
  if (x.subset !== y.subset) return x.subset < y.subset ? -1 : 1;
  if (x.port !== y.port) return x.port - y.port;
  return x.direction < y.direction ? -1 : x.direction > y.direction ? 1 : 0;
}
