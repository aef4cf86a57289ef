// LDS: the Listeners one sidecar gets, Istio's way: virtualOutbound (15001, original destination), `0.0.0.0_port` HTTP and `VIP_port` TCP/TLS outbound listeners, virtualInbound (15006) with a chain per inbound port, and the Sidecar's bound ingress/egress listeners. Pure function of (proxy, push, scope); never throws.

import { ISTIO_JSON_FORMAT, ISTIO_TEXT_FORMAT } from '../../xds/access-log-formats.ts';
import type { MeshConfig } from '../../config/mesh-config.ts';
import type { Resource } from '../../config/resource.ts';
import type { IstioIngressListener, L4MatchAttributes, RouteDestination, VirtualServiceSpec } from '../../config/types.ts';
import { isHttpProtocol, parseProtocol, protocolForPort, type Protocol } from '../../registry/protocol.ts';
import type { MeshService } from '../../registry/types.ts';
import type { PushContext } from '../model/push-context.ts';
import type { ProxyInfo, SidecarScope } from '../model/sidecar-scope.ts';
import { resolveTargetPort } from './clusters.ts';
import {
  BLACKHOLE_CLUSTER, INBOUND_PASSTHROUGH_CLUSTER, PASSTHROUGH_CLUSTER, VIRTUAL_INBOUND_LISTENER, VIRTUAL_OUTBOUND_LISTENER, clusterName,
} from './names.ts';
import { WILDCARD_ADDRESS, appliesToMesh, planOutbound, virtualServiceFor, type PlannedListener } from './outbound-plan.ts';
import { CORS_FILTER, FAULT_FILTER, ROUTER_FILTER, resolveDestination, type ActionContext } from './route-action.ts';
import { inboundRouteConfig } from './routes.ts';

type Json = Record<string, unknown>;
export type EnvoyListener = Json & { '@type': string; name: string };

export const LISTENER_TYPE = 'type.googleapis.com/envoy.config.listener.v3.Listener';
export const HCM_FILTER = 'envoy.filters.network.http_connection_manager';
export const TCP_PROXY_FILTER = 'envoy.filters.network.tcp_proxy';
const HCM_TYPE = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const TCP_PROXY_TYPE = 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy';
const FILE_ACCESS_LOG_TYPE = 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog';
const UUID_REQUEST_ID_TYPE = 'type.googleapis.com/envoy.extensions.request_id.uuid.v3.UuidRequestIdConfig';

export const VIRTUAL_OUTBOUND_PORT = 15001;
export const VIRTUAL_INBOUND_PORT = 15006;
export const PASSTHROUGH_FILTER_CHAIN = 'PassthroughFilterChain';
/** ALPN values http_inspector reports for plaintext HTTP (what sniffed HTTP chains match). */
export const PLAINTEXT_HTTP_ALPN = ['http/1.1', 'h2c', 'http/1.0'];

/** Istio's default access log formats (shared with the sidecar through src/xds). */
export const ISTIO_TEXT_ACCESS_LOG_FORMAT = ISTIO_TEXT_FORMAT;
export const ISTIO_JSON_ACCESS_LOG_FORMAT: Readonly<Record<string, string>> = ISTIO_JSON_FORMAT;

/** Every listener of this proxy: virtualOutbound, the outbound listeners, virtualInbound, then bound ingress listeners. */
export function buildListeners(proxy: ProxyInfo, push: PushContext, scope: SidecarScope): EnvoyListener[] {
  return [...buildOutboundListeners(proxy, push, scope), ...buildInboundListeners(proxy, push, scope)];
}

/** Visible services by hostname (first wins), once per scope. */
const servicesByHost = new WeakMap<SidecarScope, Map<string, MeshService>>();

function envOf(proxy: ProxyInfo, push: PushContext, scope: SidecarScope): Env {
  const accessLog = accessLogConfig(push.mesh);
  const policyCluster = scope.outboundTrafficPolicy.mode === 'REGISTRY_ONLY' ? BLACKHOLE_CLUSTER : PASSTHROUGH_CLUSTER;
  return {
    proxy, push, scope, accessLog, policyCluster,
    get services(): Map<string, MeshService> {
      let m = servicesByHost.get(scope);
      if (!m) {
        m = new Map();
        for (const s of scope.services) if (!m.has(s.hostname)) m.set(s.hostname, s);
        servicesByHost.set(scope, m);
      }
      return m;
    },
  };
}

/**
 * virtualOutbound and the outbound listeners. They depend on the proxy only through its namespace and
 * the labels its Sidecar scope and VirtualService sourceLabels look at, never on its own workload.
 */
export function buildOutboundListeners(proxy: ProxyInfo, push: PushContext, scope: SidecarScope): EnvoyListener[] {
  const env = envOf(proxy, push, scope);
  // A listener the Sidecar's ingress binds itself wins over an outbound one of the same name
  // (ports with captureMode NONE exist only as Sidecar ingress listeners: scope-wide, not per workload).
  const ingress = scope.ingress.length > 0 ? inboundPorts(proxy, push, scope) : [];
  const boundNames = new Set(ingress.filter((p) => p.captureMode === 'NONE').map((p) => boundListenerName(p)));
  const out: EnvoyListener[] = [virtualOutbound(env)];
  for (const pl of planOutbound(scope).listeners) {
    if (boundNames.has(pl.name)) continue;
    out.push(outboundListener(pl, env));
  }
  return out;
}

/** virtualInbound with a chain per port of the proxy's workload, then the Sidecar's bound ingress listeners. */
export function buildInboundListeners(proxy: ProxyInfo, push: PushContext, scope: SidecarScope): EnvoyListener[] {
  const env = envOf(proxy, push, scope);
  const inbound = inboundPorts(proxy, push, scope);
  const bound = inbound.filter((p) => p.captureMode === 'NONE').map((p) => boundIngressListener(p, env));
  return [virtualInbound(inbound.filter((p) => p.captureMode !== 'NONE'), env), ...bound];
}

interface Env {
  proxy: ProxyInfo;
  push: PushContext;
  scope: SidecarScope;
  accessLog: Json[] | undefined;
  /** Where unmatched outbound traffic goes: PassthroughCluster (ALLOW_ANY) or BlackHoleCluster (REGISTRY_ONLY). */
  policyCluster: string;
  /** Visible services by hostname (built on first use). */
  readonly services: Map<string, MeshService>;
}

/** The access_log entries for meshConfig.accessLogFile (TEXT or JSON, Istio's default formats); undefined when off. */
export function accessLogConfig(mesh: MeshConfig): Json[] | undefined {
  if (!mesh.accessLogFile) return undefined;
  let logFormat: Json;
  if (mesh.accessLogEncoding === 'JSON') {
    let fields: unknown = ISTIO_JSON_ACCESS_LOG_FORMAT;
    if (mesh.accessLogFormat) {
      try {
        fields = JSON.parse(mesh.accessLogFormat);
      } catch {
        fields = ISTIO_JSON_ACCESS_LOG_FORMAT;
      }
    }
    logFormat = { json_format: fields };
  } else {
    const text = mesh.accessLogFormat ? (mesh.accessLogFormat.endsWith('\n') ? mesh.accessLogFormat : `${mesh.accessLogFormat}\n`) : ISTIO_TEXT_ACCESS_LOG_FORMAT;
    logFormat = { text_format_source: { inline_string: text } };
  }
  return [{ name: 'envoy.access_loggers.file', typed_config: { '@type': FILE_ACCESS_LOG_TYPE, path: mesh.accessLogFile, log_format: logFormat } }];
}

function address(ip: string, port: number): Json {
  return { socket_address: { address: ip, port_value: port } };
}

/** A tcp_proxy network filter to one cluster, or to weighted clusters. */
export function tcpProxy(clusters: Array<{ name: string; weight: number }>, accessLog: Json[] | undefined): Json {
  const first = clusters[0]?.name ?? BLACKHOLE_CLUSTER;
  const cfg: Json = { '@type': TCP_PROXY_TYPE, stat_prefix: first };
  if (clusters.length > 1) cfg.weighted_clusters = { clusters: clusters.map((c) => ({ name: c.name, weight: c.weight })) };
  else cfg.cluster = first;
  if (accessLog) cfg.access_log = accessLog;
  return { name: TCP_PROXY_FILTER, typed_config: cfg };
}

function httpFilters(): Json[] {
  return [
    { name: FAULT_FILTER, typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault' } },
    { name: CORS_FILTER, typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors' } },
    { name: ROUTER_FILTER, typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } },
  ];
}

/** The HTTP connection manager, with RDS (outbound) or an inline route configuration (inbound). */
export function httpConnectionManager(statPrefix: string, routes: { rds: string } | { inline: Json }, accessLog: Json[] | undefined): Json {
  const cfg: Json = { '@type': HCM_TYPE, stat_prefix: statPrefix };
  if ('rds' in routes) cfg.rds = { config_source: { ads: {}, initial_fetch_timeout: '0s', resource_api_version: 'V3' }, route_config_name: routes.rds };
  else cfg.route_config = routes.inline;
  cfg.http_filters = httpFilters();
  if (accessLog) cfg.access_log = accessLog;
  cfg.use_remote_address = false;
  cfg.generate_request_id = true;
  cfg.request_id_extension = { typed_config: { '@type': UUID_REQUEST_ID_TYPE, use_request_id_for_trace_sampling: true } };
  cfg.upgrade_configs = [{ upgrade_type: 'websocket' }];
  cfg.stream_idle_timeout = '0s';
  cfg.normalize_path = true;
  cfg.path_with_escaped_slashes_action = 'KEEP_UNCHANGED';
  return { name: HCM_FILTER, typed_config: cfg };
}

function virtualOutbound(env: Env): EnvoyListener {
  return {
    '@type': LISTENER_TYPE,
    name: VIRTUAL_OUTBOUND_LISTENER,
    address: address(WILDCARD_ADDRESS, VIRTUAL_OUTBOUND_PORT),
    filter_chains: [
      // Traffic addressed to 15001 itself would loop: drop it.
      { name: 'virtualOutbound-blackhole', filter_chain_match: { destination_port: VIRTUAL_OUTBOUND_PORT }, filters: [tcpProxy([{ name: BLACKHOLE_CLUSTER, weight: 100 }], undefined)] },
    ],
    default_filter_chain: { name: PASSTHROUGH_FILTER_CHAIN, filters: [tcpProxy([{ name: env.policyCluster, weight: 100 }], env.accessLog)] },
    use_original_dst: true,
    traffic_direction: 'OUTBOUND',
  };
}

function listenerFilter(kind: 'tls_inspector' | 'http_inspector' | 'original_dst'): Json {
  const types = {
    tls_inspector: 'type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector',
    http_inspector: 'type.googleapis.com/envoy.extensions.filters.listener.http_inspector.v3.HttpInspector',
    original_dst: 'type.googleapis.com/envoy.extensions.filters.listener.original_dst.v3.OriginalDst',
  } as const;
  return { name: `envoy.filters.listener.${kind}`, typed_config: { '@type': types[kind] } };
}

function actionContext(vs: Resource<VirtualServiceSpec> | undefined, port: number, env: Env): ActionContext {
  return {
    port,
    domain: env.push.registry.domain,
    namespace: vs?.metadata.namespace ?? env.proxy.namespace,
    service: (h) => env.services.get(h),
    destinationRule: (h) => env.scope.destinationRules.get(h),
  };
}

function l4Applies(m: L4MatchAttributes, port: number, env: Env): boolean {
  if (m.port && m.port !== port) return false;
  if (m.sourceLabels) for (const [k, v] of Object.entries(m.sourceLabels)) if (env.proxy.labels[k] !== v) return false;
  if (m.sourceNamespace && m.sourceNamespace !== env.proxy.namespace) return false;
  if (m.gateways && m.gateways.length > 0 && !m.gateways.includes('mesh')) return false;
  return true;
}

function l4Clusters(route: RouteDestination[] | undefined, ctx: ActionContext): Array<{ name: string; weight: number }> {
  const dests = (route ?? []).filter((d) => d.destination?.host);
  const kept = dests.length > 1 ? dests.filter((d) => (d.weight ?? 0) > 0) : dests;
  return kept.map((d) => ({ name: resolveDestination(d.destination, ctx).cluster, weight: kept.length > 1 ? (d.weight ?? 0) : 100 }));
}

function prefixRanges(subnets: string[] | undefined): Json[] | undefined {
  if (!subnets || subnets.length === 0) return undefined;
  return subnets.map((s) => {
    const [ip, len] = s.split('/');
    return { address_prefix: ip ?? s, prefix_len: len !== undefined ? Number(len) : 32 };
  });
}

function outboundListener(pl: PlannedListener, env: Env): EnvoyListener {
  const l: EnvoyListener = { '@type': LISTENER_TYPE, name: pl.name, address: address(pl.address, pl.port) };
  const statPrefix = `outbound_${pl.address}_${pl.port}`;
  switch (pl.kind) {
    case 'http':
      l.filter_chains = [{ name: pl.name, filters: [httpConnectionManager(statPrefix, { rds: pl.routeName ?? String(pl.port) }, env.accessLog)] }];
      break;
    case 'auto': {
      const tcpTarget = pl.services.length === 1 && pl.services[0] ? [{ name: clusterName('outbound', pl.port, '', pl.services[0].hostname), weight: 100 }] : [{ name: env.policyCluster, weight: 100 }];
      l.filter_chains = [
        { name: `${pl.name}-http`, filter_chain_match: { application_protocols: PLAINTEXT_HTTP_ALPN }, filters: [httpConnectionManager(statPrefix, { rds: pl.routeName ?? String(pl.port) }, env.accessLog)] },
        { name: `${pl.name}-tcp`, filters: [tcpProxy(tcpTarget, env.accessLog)] },
      ];
      l.listener_filters = [listenerFilter('tls_inspector'), listenerFilter('http_inspector')];
      break;
    }
    case 'tcp':
      l.filter_chains = tcpChains(pl, env);
      break;
    case 'tls': {
      l.filter_chains = tlsChains(pl, env);
      l.listener_filters = [listenerFilter('tls_inspector')];
      if (pl.address === WILDCARD_ADDRESS) l.default_filter_chain = { name: PASSTHROUGH_FILTER_CHAIN, filters: [tcpProxy([{ name: env.policyCluster, weight: 100 }], env.accessLog)] };
      break;
    }
  }
  l.bind_to_port = pl.bindToPort;
  l.traffic_direction = 'OUTBOUND';
  return l;
}

/** TCP chains: VirtualService tcp routes (destinationSubnets become prefix-range chains), else the service cluster. */
function tcpChains(pl: PlannedListener, env: Env): Json[] {
  const chains: Json[] = [];
  const svc = pl.services[0];
  if (!svc) return chains;
  const vs = virtualServiceFor(svc.hostname, pl.virtualServices, env.push.registry.domain);
  const ctx = actionContext(vs, pl.port, env);
  let main: Array<{ name: string; weight: number }> | undefined;
  for (const tr of vs && appliesToMesh(vs) ? (vs.spec.tcp ?? []) : []) {
    const matches: L4MatchAttributes[] = tr.match?.length ? tr.match : [{}];
    const clusters = l4Clusters(tr.route, ctx);
    if (clusters.length === 0) continue;
    for (const m of matches) {
      if (!l4Applies(m, pl.port, env)) continue;
      const ranges = prefixRanges(m.destinationSubnets);
      if (ranges) chains.push({ name: `${pl.name}-${chains.length}`, filter_chain_match: { prefix_ranges: ranges }, filters: [tcpProxy(clusters, env.accessLog)] });
      else main ??= clusters;
    }
    if (main) break;
  }
  main ??= [{ name: clusterName('outbound', pl.port, '', svc.hostname), weight: 100 }];
  chains.push({ name: pl.name, filters: [tcpProxy(main, env.accessLog)] });
  return chains;
}

/** TLS chains: tls routes by SNI, then each service by its host name (wildcard listeners) or wholesale (VIP listeners). */
function tlsChains(pl: PlannedListener, env: Env): Json[] {
  const chains: Json[] = [];
  const seenSni = new Set<string>();
  const fresh = (names: string[]): string[] =>
    names.filter((n) => {
      const k = n.toLowerCase();
      if (seenSni.has(k)) return false;
      seenSni.add(k);
      return true;
    });
  const domain = env.push.registry.domain;
  const usedVs = new Set<Resource<VirtualServiceSpec>>();
  for (const svc of pl.services) {
    const vs = virtualServiceFor(svc.hostname, pl.virtualServices, domain);
    if (!vs || usedVs.has(vs) || !appliesToMesh(vs)) continue;
    usedVs.add(vs);
    const ctx = actionContext(vs, pl.port, env);
    for (const tr of vs.spec.tls ?? []) {
      const clusters = l4Clusters(tr.route, ctx);
      if (clusters.length === 0) continue;
      for (const m of (tr.match ?? [])) {
        if (!l4Applies(m, pl.port, env)) continue;
        const names = fresh(m.sniHosts ?? []);
        if (names.length === 0) continue;
        const match: Json = { server_names: names };
        const ranges = prefixRanges(m.destinationSubnets);
        if (ranges) match.prefix_ranges = ranges;
        chains.push({ name: `${pl.name}-${names[0] ?? ''}`, filter_chain_match: match, filters: [tcpProxy(clusters, env.accessLog)] });
      }
    }
  }
  for (const svc of pl.services) {
    const cluster = [{ name: clusterName('outbound', pl.port, '', svc.hostname), weight: 100 }];
    if (pl.address !== WILDCARD_ADDRESS) {
      chains.push({ name: pl.name, filters: [tcpProxy(cluster, env.accessLog)] });
      break;
    }
    const names = fresh([svc.hostname]);
    if (names.length > 0) chains.push({ name: `${pl.name}-${svc.hostname}`, filter_chain_match: { server_names: names }, filters: [tcpProxy(cluster, env.accessLog)] });
  }
  return chains;
}

/** One port the proxy's workload receives traffic on. */
interface InboundPort {
  port: number;
  protocol: Protocol;
  captureMode: 'DEFAULT' | 'IPTABLES' | 'NONE';
  bind?: string;
  /** Host named in the route decorator (the service the port belongs to). */
  host?: string;
}

/** Inbound ports: the Sidecar's ingress listeners when it has any, else the target ports of the workload's services. */
function inboundPorts(proxy: ProxyInfo, push: PushContext, scope: SidecarScope): InboundPort[] {
  const out: InboundPort[] = [];
  const seen = new Set<number>();
  if (scope.ingress.length > 0) {
    for (const ing of scope.ingress) {
      const n = ing.port?.number;
      if (!n || seen.has(n)) continue;
      seen.add(n);
      const p: InboundPort = { port: n, protocol: ingressProtocol(ing), captureMode: ing.captureMode ?? 'DEFAULT' };
      if (ing.bind) p.bind = ing.bind;
      out.push(p);
    }
    return out;
  }
  const workload = proxy.name ? push.registry.workload(proxy.name, proxy.namespace) : undefined;
  if (!workload) return out;
  for (const svc of push.registry.servicesForWorkload(workload)) {
    for (const sp of svc.ports) {
      const target = resolveTargetPort(sp, workload.podSpec?.containers);
      if (target === undefined || seen.has(target) || sp.protocol === 'UDP') continue;
      seen.add(target);
      out.push({ port: target, protocol: sp.protocol, captureMode: 'DEFAULT', host: svc.hostname });
    }
  }
  return out;
}

function ingressProtocol(ing: IstioIngressListener): Protocol {
  const p = parseProtocol(ing.port?.protocol);
  if (p !== 'UNSUPPORTED') return p;
  return protocolForPort({ name: ing.port?.name ?? '', port: ing.port?.number ?? 0 });
}

function inboundChains(p: InboundPort, name: string, match: Json, env: Env): Json[] {
  const cluster = clusterName('inbound', p.port, '', '');
  const statPrefix = `inbound_${name}`;
  const hcm = (): Json => httpConnectionManager(statPrefix, { inline: inboundRouteConfig(p.port, p.host) }, env.accessLog);
  const tcp = (): Json => tcpProxy([{ name: cluster, weight: 100 }], env.accessLog);
  if (isHttpProtocol(p.protocol)) return [{ name, filter_chain_match: match, filters: [hcm()] }];
  if (p.protocol === 'UNSUPPORTED') {
    return [
      { name: `${name}-http`, filter_chain_match: { ...match, application_protocols: PLAINTEXT_HTTP_ALPN }, filters: [hcm()] },
      { name, filter_chain_match: match, filters: [tcp()] },
    ];
  }
  return [{ name, filter_chain_match: match, filters: [tcp()] }];
}

function virtualInbound(ports: InboundPort[], env: Env): EnvoyListener {
  const chains: Json[] = [
    { name: 'virtualInbound-blackhole', filter_chain_match: { destination_port: VIRTUAL_INBOUND_PORT }, filters: [tcpProxy([{ name: BLACKHOLE_CLUSTER, weight: 100 }], undefined)] },
  ];
  for (const p of ports) chains.push(...inboundChains(p, `${WILDCARD_ADDRESS}_${p.port}`, { destination_port: p.port }, env));
  return {
    '@type': LISTENER_TYPE,
    name: VIRTUAL_INBOUND_LISTENER,
    address: address(WILDCARD_ADDRESS, VIRTUAL_INBOUND_PORT),
    filter_chains: chains,
    default_filter_chain: { name: 'virtualInbound-catchall-tcp', filters: [tcpProxy([{ name: INBOUND_PASSTHROUGH_CLUSTER, weight: 100 }], env.accessLog)] },
    listener_filters: [listenerFilter('original_dst'), listenerFilter('tls_inspector'), listenerFilter('http_inspector')],
    listener_filters_timeout: '0s',
    continue_on_listener_filters_timeout: true,
    traffic_direction: 'INBOUND',
  };
}

/** A Sidecar ingress listener with captureMode NONE: the proxy binds bind:port itself. */
function boundListenerName(p: InboundPort): string {
  return `${p.bind ?? WILDCARD_ADDRESS}_${p.port}`;
}

function boundIngressListener(p: InboundPort, env: Env): EnvoyListener {
  const bind = p.bind ?? WILDCARD_ADDRESS;
  const name = boundListenerName(p);
  const chains = inboundChains(p, name, {}, env).map((c) => {
    const m = c.filter_chain_match as Json;
    if (Object.keys(m).length === 0) delete c.filter_chain_match;
    return c;
  });
  const l: EnvoyListener = { '@type': LISTENER_TYPE, name, address: address(bind, p.port), filter_chains: chains, bind_to_port: true, traffic_direction: 'INBOUND' };
  if (p.protocol === 'UNSUPPORTED') l.listener_filters = [listenerFilter('http_inspector')];
  return l;
}
