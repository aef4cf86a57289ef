// `proxy-config cluster`: the clusters of a config dump as istioctl prints them (SERVICE FQDN, PORT,
// SUBSET, DIRECTION, TYPE, DESTINATION RULE; or JSON/YAML), with --fqdn/--port/--subset/--direction.

import { compareClusterNames, dumpClusters, type ConfigDump, type Json } from './dump.ts';
import { istioctlJson, istioctlYaml } from './proto-json.ts';
import { tabulate } from './tabwriter.ts';

export interface ClusterFilter {
  fqdn?: string;
  port?: number;
  subset?: string;
  direction?: string;
}

function matches(f: ClusterFilter, name: string): boolean {
  if (f.fqdn && !name.includes(f.fqdn)) return false;
  if (f.direction && !name.includes(f.direction)) return false;
  if (f.subset && !name.includes(f.subset)) return false;
  if (f.port && !name.includes(`|${f.port}|`)) return false;
  return true;
}

export function filteredClusters(dump: ConfigDump, filter: ClusterFilter = {}): Json[] {
  return dumpClusters(dump)
    .filter((c) => matches(filter, String(c.name)))
    .sort((a, b) => compareClusterNames(String(a.name), String(b.name)))
    .map(({ '@type': _t, ...rest }) => rest);
}

/** `name.namespace` of the DestinationRule recorded in the cluster's istio metadata, else '-'. */
function destinationRuleOf(c: Json): string {
  const cfg = (((c.metadata as Json | undefined)?.filter_metadata as Json | undefined)?.istio as Json | undefined)?.config;
  if (typeof cfg !== 'string') return '-';
  const m = /\/namespaces\/([^/]+)\/destination-rule\/([^/]+)$/.exec(cfg);
  return m ? `${m[2]}.${m[1]}` : '-';
}

export function clusterSummary(dump: ConfigDump, filter: ClusterFilter = {}): string {
  const rows: string[][] = [['SERVICE FQDN', 'PORT', 'SUBSET', 'DIRECTION', 'TYPE', 'DESTINATION RULE']];
  for (const c of filteredClusters(dump, filter)) {
    const name = String(c.name);
    const parts = name.split('|');
    const type = String(c.type ?? (c.cluster_type ? 'CLUSTER_TYPE' : 'EDS'));
    if (parts.length > 3) rows.push([parts[3] ?? '', parts[1] ?? '', parts[2] || '-', parts[0] ?? '', type, destinationRuleOf(c)]);
    else rows.push([name, '-', '-', '-', type, destinationRuleOf(c)]);
  }
  return tabulate(rows);
}

export function clustersJson(dump: ConfigDump, filter: ClusterFilter = {}): string {
  return istioctlJson(filteredClusters(dump, filter));
}

export function clustersYaml(dump: ConfigDump, filter: ClusterFilter = {}): string {
  return istioctlYaml(filteredClusters(dump, filter));
}
