// xDS for proxyless gRPC clients (node metadata GENERATOR: grpc), Istio's grpcgen shapes: listeners
// named `host:port` with an api_listener, one RouteConfiguration per such name, clusters and
// endpoints by name; trimmed to what gRPC's xDS client accepts (ROUND_ROBIN or RING_HASH, the fault
// and router filters only, timeouts as max_stream_duration). A name that resolves to no visible
// service yields nothing (the client reports the resource as missing).

import type { Generator, ConnectedProxy, GeneratedResource } from '../xds/ads-server.ts';
import type { PushContext } from '../model/push-context.ts';
import { TYPE_URLS } from '../../xds/protos.ts';
import { bundleFor } from '../generators.ts';
import { toFqdn } from '../../registry/host.ts';

type Json = Record<string, unknown>;

const HCM_TYPE = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const FAULT_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault';
const ROUTER_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router';
const FAULT_FILTER = 'envoy.filters.http.fault';

/** `reviews.bookinfo.svc.cluster.local:9080` (or a short name) → the visible service FQDN and port. */
function resolveTarget(name: string, proxy: ConnectedProxy, push: PushContext): { host: string; port: number } | undefined {
  const idx = name.lastIndexOf(':');
  if (idx <= 0) return undefined;
  const port = Number(name.slice(idx + 1));
  if (!Number.isInteger(port)) return undefined;
  const raw = name.slice(0, idx);
  const scope = bundleFor(proxy, push).scope;
  const candidates = [toFqdn(raw, proxy.namespace, push.registry.domain), ...push.registry.resolveDnsName(raw, proxy.namespace).map((s) => s.hostname)];
  const svc = scope.services.find((s) => candidates.includes(s.hostname) && s.ports.some((p) => p.port === port));
  return svc ? { host: svc.hostname, port } : undefined;
}

function listenerFor(name: string): Json {
  return {
    '@type': TYPE_URLS.LISTENER,
    name,
    api_listener: {
      api_listener: {
        '@type': HCM_TYPE,
        rds: { route_config_name: name, config_source: { ads: {}, resource_api_version: 'V3' } },
        http_filters: [
          { name: FAULT_FILTER, typed_config: { '@type': FAULT_TYPE } },
          { name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER_TYPE } },
        ],
      },
    },
  };
}

/** A sidecar route, reduced to what gRPC supports; the route timeout becomes max_stream_duration. */
function grpcRoute(route: Json): Json {
  const out: Json = { match: route.match };
  if (route.name) out.name = route.name;
  const tpfc = route.typed_per_filter_config as Json | undefined;
  if (tpfc?.[FAULT_FILTER]) out.typed_per_filter_config = { [FAULT_FILTER]: tpfc[FAULT_FILTER] };
  if (route.direct_response) out.direct_response = route.direct_response;
  const action = route.route as Json | undefined;
  if (action) {
    const a: Json = {};
    for (const k of ['cluster', 'weighted_clusters', 'hash_policy', 'retry_policy']) if (action[k] !== undefined) a[k] = action[k];
    const wc = a.weighted_clusters as { clusters?: Json[] } | undefined;
    if (wc?.clusters) a.weighted_clusters = { ...wc, clusters: wc.clusters.map((c) => ({ name: c.name, weight: c.weight })) };
    const timeout = typeof action.timeout === 'string' ? action.timeout : undefined;
    if (timeout && timeout !== '0s') a.max_stream_duration = { max_stream_duration: timeout, grpc_timeout_header_max: timeout };
    const rp = a.retry_policy as Json | undefined;
    if (rp) a.retry_policy = { retry_on: rp.retry_on, num_retries: rp.num_retries, ...(rp.retry_back_off ? { retry_back_off: rp.retry_back_off } : {}) };
    out.route = a;
  } else if (!route.direct_response) {
    return { ...out, non_forwarding_action: {} };
  }
  return out;
}

function routeConfigFor(name: string, target: { host: string; port: number }, proxy: ConnectedProxy, push: PushContext): Json | undefined {
  const rc = bundleFor(proxy, push).routes.find((r) => r.name === String(target.port));
  const vhosts = rc?.virtual_hosts ?? [];
  const vh = vhosts.find((v) => ((v.domains as string[] | undefined) ?? []).includes(target.host));
  if (!vh) return undefined;
  const routes = ((vh.routes as Json[] | undefined) ?? []).map(grpcRoute);
  return {
    '@type': TYPE_URLS.ROUTE,
    name,
    virtual_hosts: [{ name: `${target.host}:${target.port}`, domains: [name, `${target.host}:${target.port}`, target.host], routes }],
  };
}

function grpcCluster(c: Json): Json {
  const lb = c.lb_policy === 'RING_HASH' || c.lb_policy === 'MAGLEV' ? 'RING_HASH' : 'ROUND_ROBIN';
  const out: Json = { ...c, lb_policy: lb };
  delete out.maglev_lb_config;
  delete out.typed_extension_protocol_options;
  return out;
}

function byNames(proxy: ConnectedProxy, push: PushContext, names: readonly string[], make: (name: string) => Json | undefined): GeneratedResource[] {
  const out: GeneratedResource[] = [];
  for (const name of names) {
    if (name === '*') continue;
    const r = make(name);
    if (r) out.push({ name, resource: r });
  }
  void proxy;
  void push;
  return out;
}

export function grpcGenerators(): Generator<PushContext>[] {
  return [
    {
      typeUrl: TYPE_URLS.LISTENER,
      generate: (proxy, push, names) => byNames(proxy, push, names, (n) => (resolveTarget(n, proxy, push) ? listenerFor(n) : undefined)),
    },
    {
      typeUrl: TYPE_URLS.ROUTE,
      generate: (proxy, push, names) =>
        byNames(proxy, push, names, (n) => {
          const t = resolveTarget(n, proxy, push);
          return t ? routeConfigFor(n, t, proxy, push) : undefined;
        }),
    },
    {
      typeUrl: TYPE_URLS.CLUSTER,
      generate: (proxy, push, names) => {
        const all = bundleFor(proxy, push).clusters;
        const wanted = new Set(names);
        return all.filter((c) => (wanted.size === 0 || wanted.has(c.name)) && String(c.name).startsWith('outbound|')).map((c) => ({ name: c.name, resource: grpcCluster(c) }));
      },
    },
    {
      typeUrl: TYPE_URLS.ENDPOINT,
      generate: (proxy, push, names) => {
        const wanted = new Set(names);
        return bundleFor(proxy, push).endpoints.filter((e) => wanted.size === 0 || wanted.has(e.cluster_name)).map((e) => ({ name: e.cluster_name, resource: e }));
      },
    },
  ];
}
