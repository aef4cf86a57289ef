// `proxy-config endpoint`: the endpoints of a config dump as istioctl prints them (table, JSON, YAML),
// with its filters (--address, --port, --cluster, --status). Pure; never throws.

import { compareClusterNames, dumpEndpoints, type ConfigDump, type Json } from './dump.ts';
import { istioctlJson, istioctlYaml } from './proto-json.ts';
import { tabulate } from './tabwriter.ts';

export interface EndpointFilter {
  address?: string;
  port?: number;
  cluster?: string;
  status?: string;
}

/** Live outlier-detection state by `cluster|address`; absent entries print OK. */
export type OutlierState = ReadonlyMap<string, 'OK' | 'FAILED'>;

export function endpointAddress(lb: Json): string {
  const addr = ((lb.endpoint as Json | undefined)?.address ?? {}) as Json;
  const sock = addr.socket_address as Json | undefined;
  if (sock) return `${String(sock.address)}:${Number(sock.port_value ?? 0)}`;
  const pipe = addr.pipe as Json | undefined;
  if (pipe) return String(pipe.path);
  const internal = addr.envoy_internal_address as Json | undefined;
  if (internal) return `envoy://${String(internal.server_listener_name)}/${String(internal.endpoint_id ?? '')}`;
  return 'unknown';
}

function endpointPort(lb: Json): number {
  const sock = (((lb.endpoint as Json | undefined)?.address ?? {}) as Json).socket_address as Json | undefined;
  return Number(sock?.port_value ?? 0);
}

const healthOf = (lb: Json): string => String(lb.health_status ?? 'UNKNOWN');

function matches(f: EndpointFilter, lb: Json, cluster: string): boolean {
  if (f.address && endpointAddress(lb).toLowerCase() !== f.address.toLowerCase()) return false;
  if (f.port && endpointPort(lb) !== f.port) return false;
  if (f.cluster && cluster.toLowerCase() !== f.cluster.toLowerCase()) return false;
  if (f.status && healthOf(lb).toLowerCase() !== f.status.toLowerCase()) return false;
  return true;
}

/** The load assignments after filtering (assignments left with no endpoint dropped), sorted as istioctl. */
export function filteredAssignments(dump: ConfigDump, filter: EndpointFilter = {}): Json[] {
  const out: Json[] = [];
  for (const cla of dumpEndpoints(dump)) {
    const name = String(cla.cluster_name ?? '');
    let count = 0;
    const endpoints = ((cla.endpoints as Json[] | undefined) ?? []).map((loc) => {
      const lbs = ((loc.lb_endpoints as Json[] | undefined) ?? []).filter((lb) => matches(filter, lb, name));
      count += lbs.length;
      return { ...loc, lb_endpoints: lbs };
    });
    if (count > 0) {
      const { '@type': _t, ...rest } = cla;
      out.push({ ...rest, endpoints });
    }
  }
  return out.sort((a, b) => compareClusterNames(String(a.cluster_name), String(b.cluster_name)));
}

function localityString(loc: Json | undefined): string {
  if (!loc) return '';
  const parts = [loc.region, loc.zone, loc.sub_zone].map((x) => (typeof x === 'string' ? x : ''));
  while (parts.length > 0 && parts[parts.length - 1] === '') parts.pop();
  return parts.join('/');
}

/** Today's istioctl table: NAME, STATUS, LOCALITY, CLUSTER. */
export function endpointSummary(dump: ConfigDump, filter: EndpointFilter = {}): string {
  const rows: string[][] = [['NAME', 'STATUS', 'LOCALITY', 'CLUSTER']];
  for (const cla of filteredAssignments(dump, filter)) {
    for (const loc of (cla.endpoints as Json[]) ?? []) {
      for (const lb of (loc.lb_endpoints as Json[]) ?? []) rows.push([endpointAddress(lb), healthOf(lb), localityString(loc.locality as Json | undefined), String(cla.cluster_name)]);
    }
  }
  return tabulate(rows);
}

/** The classic istioctl table (seed 002): ENDPOINT, STATUS, OUTLIER CHECK, CLUSTER. */
export function endpointStatusTable(dump: ConfigDump, filter: EndpointFilter = {}, outlier: OutlierState = new Map()): string {
  const rows: string[][] = [['ENDPOINT', 'STATUS', 'OUTLIER CHECK', 'CLUSTER']];
  for (const cla of filteredAssignments(dump, filter)) {
    const name = String(cla.cluster_name);
    for (const loc of (cla.endpoints as Json[]) ?? []) {
      for (const lb of (loc.lb_endpoints as Json[]) ?? []) {
        const addr = endpointAddress(lb);
        rows.push([addr, healthOf(lb), outlier.get(`${name}|${addr}`) ?? 'OK', name]);
      }
    }
  }
  return tabulate(rows);
}

export function endpointsJson(dump: ConfigDump, filter: EndpointFilter = {}): string {
  return istioctlJson(filteredAssignments(dump, filter));
}

export function endpointsYaml(dump: ConfigDump, filter: EndpointFilter = {}): string {
  return istioctlYaml(filteredAssignments(dump, filter));
}
