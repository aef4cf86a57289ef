// EDS: a ClusterLoadAssignment for every EDS cluster of a proxy: the service's endpoints, filtered by
// subset labels, grouped by locality, with Istio's workload metadata. Pure; never throws.

import { resourceKey } from '../../config/resource.ts';
import { canonicalName, canonicalRevision, workloadName } from '../../registry/canonical.ts';
import type { MeshService, ServiceEndpoint } from '../../registry/types.ts';
import type { DestinationRuleSpec } from '../../config/types.ts';
import type { PushContext } from '../model/push-context.ts';
import type { SidecarScope } from '../model/sidecar-scope.ts';
import type { EnvoyCluster } from './clusters.ts';
import { parseClusterName } from './names.ts';

export const ENDPOINT_TYPE = 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment';
export type ClusterLoadAssignment = Record<string, unknown> & { cluster_name: string; '@type': string };

/** Istio's cluster id for workloads of the local registry. */
const CLUSTER_ID = 'Kubernetes';

/** Load assignments for the EDS clusters among `clusters` (the proxy's CDS output). */
export function buildEndpoints(clusters: readonly EnvoyCluster[], push: PushContext, scope: SidecarScope): ClusterLoadAssignment[] {
  const byHost = new Map<string, MeshService>();
  for (const s of scope.services) if (!byHost.has(s.hostname)) byHost.set(s.hostname, s);
  const out: ClusterLoadAssignment[] = [];
  for (const c of clusters) {
    if (c.type !== 'EDS') continue;
    const cla = loadAssignment(c.name, push, scope, byHost);
    if (cla) out.push(cla);
  }
  return out;
}

/**
 * A load assignment depends on the service, the port and (for a subset) the DestinationRule, not on
 * the proxy: built once per push context and shared by every proxy that sees it (encoded once too).
 */
const sharedAssignments = new WeakMap<PushContext, Map<MeshService, Map<string, ClusterLoadAssignment>>>();

/**
 * The ClusterLoadAssignment of one `outbound|port|subset|host` cluster; undefined for other names.
 * `services` indexes the scope's services by hostname (first wins), when the caller has it.
 */
export function loadAssignment(name: string, push: PushContext, scope: SidecarScope, services?: ReadonlyMap<string, MeshService>): ClusterLoadAssignment | undefined {
  const parsed = parseClusterName(name);
  if (!parsed || parsed.direction !== 'outbound') return undefined;
  const svc = services ? services.get(parsed.host) : scope.services.find((s) => s.hostname === parsed.host);
  if (!svc) return undefined;
  const dr = parsed.subset ? scope.destinationRules.get(svc.hostname) : undefined;
  let perPush = sharedAssignments.get(push);
  if (!perPush) sharedAssignments.set(push, (perPush = new Map()));
  let perSvc = perPush.get(svc);
  if (!perSvc) perPush.set(svc, (perSvc = new Map()));
  const key = `${name}|${dr ? resourceKey(dr) : ''}`;
  let cla = perSvc.get(key);
  if (!cla) perSvc.set(key, (cla = buildAssignment(name, parsed, svc, dr?.spec.subsets, push)));
  return cla;
}

function buildAssignment(name: string, parsed: { port: number; subset: string }, svc: MeshService, subsets: DestinationRuleSpec['subsets'], push: PushContext): ClusterLoadAssignment {
  let eps = push.registry.endpoints(svc, parsed.port);
  if (parsed.subset) {
    const subset = subsets?.find((s) => s.name === parsed.subset);
    const labels = subset?.labels ?? {};
    eps = subset ? eps.filter((e) => Object.entries(labels).every(([k, v]) => e.labels[k] === v)) : [];
  }
  const byLocality = new Map<string, ServiceEndpoint[]>();
  for (const e of eps) {
    const key = e.locality ?? e.workload?.locality ?? '';
    let list = byLocality.get(key);
    if (!list) byLocality.set(key, (list = []));
    list.push(e);
  }
  const endpoints = [...byLocality.entries()].map(([loc, list]) => {
    const lbEndpoints = list.map((e) => {
      const w = e.workload;
      const wl = w ? `${workloadName(w)};${w.namespace};${canonicalName(w.labels, workloadName(w))};${canonicalRevision(w.labels)};${CLUSTER_ID}` : '';
      return {
        endpoint: { address: { socket_address: { address: e.address, port_value: e.port } } },
        health_status: e.healthy ? 'HEALTHY' : 'UNHEALTHY',
        metadata: { filter_metadata: { istio: { workload: wl } } },
        load_balancing_weight: e.weight ?? 1,
      };
    });
    return { locality: localityFromString(loc), lb_endpoints: lbEndpoints, load_balancing_weight: lbEndpoints.reduce((n, x) => n + x.load_balancing_weight, 0) };
  });
  return { '@type': ENDPOINT_TYPE, cluster_name: name, endpoints };
}

/** `region/zone/subzone` to Envoy's Locality ({} when empty). */
export function localityFromString(loc: string): Record<string, string> {
  if (!loc) return {};
  const [region, zone, subZone] = loc.split('/');
  const out: Record<string, string> = {};
  if (region) out.region = region;
  if (zone) out.zone = zone;
  if (subZone) out.sub_zone = subZone;
  return out;
}
