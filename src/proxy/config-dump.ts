// Envoy's /config_dump of a sidecar, from what its xDS client holds (the same in every worker). Never throws.

import { TYPE_URLS } from '../xds/protos.ts';
import { DUMP_TYPES } from '../xds/configdump/dump.ts';
import type { XdsClient } from './xds-client/xds-client.ts';

type Json = Record<string, unknown>;

/** The xDS client's view of what it holds, as Envoy's /config_dump shows it. */
export function configDumpOf(xds: XdsClient, includeEds: boolean): Json {
  const ver = (t: string): string => xds.status().find((s) => s.typeUrl === t)?.version ?? '';
  const configs: Json[] = [
    { '@type': DUMP_TYPES.clusters, version_info: ver(TYPE_URLS.CLUSTER), dynamic_active_clusters: xds.resources(TYPE_URLS.CLUSTER).map((cluster) => ({ version_info: ver(TYPE_URLS.CLUSTER), cluster })) },
    { '@type': DUMP_TYPES.listeners, version_info: ver(TYPE_URLS.LISTENER), dynamic_listeners: xds.resources(TYPE_URLS.LISTENER).map((listener) => ({ name: listener.name, active_state: { version_info: ver(TYPE_URLS.LISTENER), listener } })) },
    { '@type': DUMP_TYPES.routes, dynamic_route_configs: xds.resources(TYPE_URLS.ROUTE).map((route_config) => ({ version_info: ver(TYPE_URLS.ROUTE), route_config })) },
  ];
  if (includeEds) configs.push({ '@type': DUMP_TYPES.endpoints, dynamic_endpoint_configs: xds.resources(TYPE_URLS.ENDPOINT).map((endpoint_config) => ({ version_info: ver(TYPE_URLS.ENDPOINT), endpoint_config })) });
  return { configs };
}
