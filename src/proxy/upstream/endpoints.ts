// Parses a ClusterLoadAssignment (EDS, or a cluster's load_assignment) into endpoint specs grouped by
// priority and locality; throws ClusterConfigError naming the field for shapes it cannot use.

import { isIP } from 'node:net';
import type { EndpointSpec, HealthStatus } from './host.ts';
import { localityKey } from './host.ts';
import { ClusterConfigError, arr, enumName, num, obj, str } from './json.ts';
import type { Locality } from './types.ts';

const HEALTH: readonly HealthStatus[] = ['UNKNOWN', 'HEALTHY', 'UNHEALTHY', 'DRAINING', 'TIMEOUT', 'DEGRADED'];

export interface LoadAssignment {
  endpoints: EndpointSpec[];
  /** load_balancing_weight of each locality (by localityKey), where given. */
  localityWeights: Map<string, number>;
  /** policy.overprovisioning_factor, percent (Envoy's default 140). */
  overprovisioningFactor: number;
}

export const EMPTY_ASSIGNMENT: LoadAssignment = { endpoints: [], localityWeights: new Map(), overprovisioningFactor: 140 };

/**
 * `hostnames`: whether socket addresses may be DNS names (STRICT_DNS/LOGICAL_DNS); otherwise they must
 * be IP literals, as Envoy requires for STATIC and EDS.
 */
export function parseLoadAssignment(cla: Record<string, unknown>, path: string, hostnames: boolean): LoadAssignment {
  const endpoints: EndpointSpec[] = [];
  const localityWeights = new Map<string, number>();
  if (cla.named_endpoints !== undefined && Object.keys(obj(cla.named_endpoints, `${path}.named_endpoints`) ?? {}).length > 0) {
    throw new ClusterConfigError(`${path}.named_endpoints: named endpoints are not supported`);
  }
  arr(cla.endpoints, `${path}.endpoints`).forEach((raw, i) => {
    const lp = `${path}.endpoints[${i}]`;
    const group = obj(raw, lp) ?? {};
    const loc = obj(group.locality, `${lp}.locality`) ?? {};
    const locality: Locality = {};
    const region = str(loc.region, `${lp}.locality.region`);
    const zone = str(loc.zone, `${lp}.locality.zone`);
    const subZone = str(loc.sub_zone, `${lp}.locality.sub_zone`);
    if (region) locality.region = region;
    if (zone) locality.zone = zone;
    if (subZone) locality.sub_zone = subZone;
    const priority = num(group.priority, `${lp}.priority`) ?? 0;
    if (!Number.isInteger(priority) || priority < 0) throw new ClusterConfigError(`${lp}.priority: must be a non-negative integer`);
    const lw = num(group.load_balancing_weight, `${lp}.load_balancing_weight`);
    if (lw !== undefined) {
      if (lw < 1) throw new ClusterConfigError(`${lp}.load_balancing_weight: must be at least 1`);
      const key = localityKey(locality);
      localityWeights.set(key, (localityWeights.get(key) ?? 0) + lw);
    }
    if (group.leds_cluster_locality_config !== undefined) throw new ClusterConfigError(`${lp}.leds_cluster_locality_config: LEDS is not supported`);
    arr(group.lb_endpoints, `${lp}.lb_endpoints`).forEach((rawEp, j) => {
      const ep = `${lp}.lb_endpoints[${j}]`;
      endpoints.push(parseLbEndpoint(obj(rawEp, ep) ?? {}, ep, locality, priority, hostnames));
    });
  });
  const policy = obj(cla.policy, `${path}.policy`);
  const op = num(policy?.overprovisioning_factor, `${path}.policy.overprovisioning_factor`) ?? 140;
  return { endpoints, localityWeights, overprovisioningFactor: op > 0 ? op : 140 };
}

function parseLbEndpoint(e: Record<string, unknown>, path: string, locality: Locality, priority: number, hostnames: boolean): EndpointSpec {
  if (e.endpoint_name !== undefined) throw new ClusterConfigError(`${path}.endpoint_name: named endpoints are not supported`);
  const endpoint = obj(e.endpoint, `${path}.endpoint`);
  if (!endpoint) throw new ClusterConfigError(`${path}.endpoint: missing`);
  const address = obj(endpoint.address, `${path}.endpoint.address`);
  if (!address) throw new ClusterConfigError(`${path}.endpoint.address: missing`);
  const weight = num(e.load_balancing_weight, `${path}.load_balancing_weight`) ?? 1;
  if (!Number.isInteger(weight) || weight < 1) throw new ClusterConfigError(`${path}.load_balancing_weight: must be an integer of at least 1`);
  const healthStatus = enumName(e.health_status, HEALTH, `${path}.health_status`) ?? 'UNKNOWN';
  const istio = obj(obj(obj(e.metadata, `${path}.metadata`)?.filter_metadata, `${path}.metadata.filter_metadata`)?.istio, `${path}.metadata.filter_metadata.istio`);
  const workload = str(istio?.workload, `${path}.metadata.filter_metadata.istio.workload`);
  const hostname = str(endpoint.hostname, `${path}.endpoint.hostname`);
  const spec: EndpointSpec = { address: '', port: 0, weight, locality, priority, healthStatus };
  if (workload) spec.workload = workload;
  if (hostname) spec.hostname = hostname;
  const pipe = obj(address.pipe, `${path}.endpoint.address.pipe`);
  if (pipe) {
    const p = str(pipe.path, `${path}.endpoint.address.pipe.path`);
    if (!p) throw new ClusterConfigError(`${path}.endpoint.address.pipe.path: missing`);
    spec.address = p;
    spec.pipe = p;
    return spec;
  }
  if (address.envoy_internal_address !== undefined) throw new ClusterConfigError(`${path}.endpoint.address: internal addresses are not supported`);
  const sa = obj(address.socket_address, `${path}.endpoint.address.socket_address`);
  if (!sa) throw new ClusterConfigError(`${path}.endpoint.address: needs socket_address or pipe`);
  const host = str(sa.address, `${path}.endpoint.address.socket_address.address`);
  if (!host) throw new ClusterConfigError(`${path}.endpoint.address.socket_address.address: missing`);
  if (sa.protocol !== undefined && sa.protocol !== 'TCP' && sa.protocol !== 0) throw new ClusterConfigError(`${path}.endpoint.address.socket_address.protocol: only TCP is supported`);
  if (sa.named_port !== undefined) throw new ClusterConfigError(`${path}.endpoint.address.socket_address.named_port: not supported`);
  const port = num(sa.port_value, `${path}.endpoint.address.socket_address.port_value`) ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ClusterConfigError(`${path}.endpoint.address.socket_address.port_value: ${port} is not a port`);
  if (!hostnames && isIP(host) === 0) throw new ClusterConfigError(`${path}.endpoint.address.socket_address.address: '${host}' is not an IP address (only DNS clusters resolve names)`);
  spec.address = host;
  spec.port = port;
  return spec;
}
