// Compiles xDS Listeners into what the listener manager runs: the bound address, whether it hands
// connections on by original destination, its filter chains with their match criteria, and each
// chain's terminal network filter (HTTP connection manager or TCP proxy). Unsupported shapes throw
// ConfigError with the listener and field, which the xDS client turns into a NACK.

import { parseCidr, type Cidr } from './cidr.ts';
import { ConfigError } from './errors.ts';
import { compileRouteTable, type RouteTable } from '../../xds/route-table.ts';

type Json = Record<string, unknown>;
const obj = (v: unknown): Json | undefined => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : undefined);
const arr = (v: unknown): Json[] => (Array.isArray(v) ? (v as Json[]) : []);

export const HCM_TYPE = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
export const TCP_PROXY_TYPE = 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy';

export type Direction = 'inbound' | 'outbound';

export interface ChainMatch {
  destinationPort?: number;
  prefixRanges?: Cidr[];
  serverNames?: string[];
  transportProtocol?: string;
  applicationProtocols?: string[];
}

export interface HttpFilterConfig {
  name: string;
  config: Json;
}

export interface HttpChain {
  kind: 'http';
  statPrefix: string;
  /** RDS route configuration name; or an inline table. */
  routeConfigName?: string;
  inlineRoutes?: RouteTable;
  httpFilters: HttpFilterConfig[];
  accessLog: Json[];
  generateRequestId: boolean;
  websocket: boolean;
  streamIdleTimeoutMs?: number;
  raw: Json;
}

export interface TcpChain {
  kind: 'tcp';
  statPrefix: string;
  clusters: Array<{ name: string; weight: number }>;
  accessLog: Json[];
  idleTimeoutMs?: number;
  raw: Json;
}

export interface CompiledChain {
  name: string;
  match: ChainMatch;
  filter: HttpChain | TcpChain;
  /** Any RBAC or other network filters before the terminal one, by name (enforced by later features). */
  networkFilters: string[];
}

export interface CompiledListener {
  name: string;
  address: string;
  port: number;
  /** false: does not bind; only receives connections handed over by a use_original_dst listener. */
  bindToPort: boolean;
  useOriginalDst: boolean;
  direction: Direction;
  chains: CompiledChain[];
  defaultChain?: CompiledChain;
  /** Some chain matches on SNI or transport protocol: the TLS ClientHello must be read first. */
  inspectTls: boolean;
  /** Some chain matches on application protocol: the first bytes must be sniffed for HTTP. */
  inspectHttp: boolean;
  /** How long to wait for the first bytes when inspecting (server-first protocols send nothing). */
  inspectTimeoutMs: number;
  raw: Json;
}

export function durationMs(v: unknown): number | undefined {
  if (typeof v !== 'string') return undefined;
  const m = /^(-?\d+(?:\.\d+)?)s$/.exec(v);
  return m ? Number(m[1]) * 1000 : undefined;
}

function socketAddress(l: Json, name: string): { address: string; port: number } {
  const sa = obj(obj(l.address)?.socket_address);
  if (!sa) throw new ConfigError(`listener ${name}: address.socket_address is required (pipes are not supported)`);
  return { address: String(sa.address ?? '0.0.0.0'), port: Number(sa.port_value ?? 0) };
}

function compileChain(c: Json, listener: string, direction: Direction): CompiledChain {
  const name = String(c.name ?? '');
  const fcm = obj(c.filter_chain_match) ?? {};
  const match: ChainMatch = {};
  if (fcm.destination_port !== undefined) match.destinationPort = Number(fcm.destination_port);
  if (Array.isArray(fcm.prefix_ranges)) {
    match.prefixRanges = arr(fcm.prefix_ranges).map((r) => parseCidr(`${String(r.address_prefix)}/${Number(r.prefix_len ?? 32)}`));
  }
  if (Array.isArray(fcm.server_names)) match.serverNames = (fcm.server_names as unknown[]).map((s) => String(s).toLowerCase());
  if (typeof fcm.transport_protocol === 'string') match.transportProtocol = fcm.transport_protocol;
  if (Array.isArray(fcm.application_protocols)) match.applicationProtocols = (fcm.application_protocols as unknown[]).map(String);
  const filters = arr(c.filters);
  const terminal = filters.at(-1);
  if (!terminal) throw new ConfigError(`listener ${listener}: filter chain ${name || '(unnamed)'} has no filters`);
  const tc = obj(terminal.typed_config) ?? {};
  const type = String(tc['@type'] ?? '');
  const networkFilters = filters.slice(0, -1).map((f) => String(f.name ?? ''));
  if (type === HCM_TYPE) return { name, match, filter: compileHcm(tc, listener, name, direction), networkFilters };
  if (type === TCP_PROXY_TYPE) return { name, match, filter: compileTcpProxy(tc, listener, name), networkFilters };
  throw new ConfigError(`listener ${listener}: filter chain ${name || '(unnamed)'}: terminal filter ${String(terminal.name)} (${type}) is not supported; use http_connection_manager or tcp_proxy`);
}

function compileHcm(tc: Json, listener: string, chain: string, _direction: Direction): HttpChain {
  const rds = obj(tc.rds);
  const out: HttpChain = {
    kind: 'http',
    statPrefix: String(tc.stat_prefix ?? ''),
    httpFilters: arr(tc.http_filters).map((f) => ({ name: String(f.name ?? ''), config: obj(f.typed_config) ?? {} })),
    accessLog: arr(tc.access_log),
    generateRequestId: tc.generate_request_id !== false,
    websocket: arr(tc.upgrade_configs).some((u) => String(u.upgrade_type).toLowerCase() === 'websocket'),
    raw: tc,
  };
  const idle = durationMs(tc.stream_idle_timeout);
  if (idle) out.streamIdleTimeoutMs = idle;
  if (rds) out.routeConfigName = String(rds.route_config_name ?? '');
  else if (obj(tc.route_config)) {
    const table = compileRouteTable(obj(tc.route_config) ?? {});
    if (table.problems.length > 0) throw new ConfigError(`listener ${listener}: chain ${chain}: route_config: ${table.problems.join('; ')}`);
    out.inlineRoutes = table;
  } else throw new ConfigError(`listener ${listener}: chain ${chain}: http_connection_manager needs rds or route_config`);
  const last = out.httpFilters.at(-1);
  if (!last || last.name !== 'envoy.filters.http.router') throw new ConfigError(`listener ${listener}: chain ${chain}: the last http filter must be envoy.filters.http.router`);
  return out;
}

function compileTcpProxy(tc: Json, listener: string, chain: string): TcpChain {
  const out: TcpChain = { kind: 'tcp', statPrefix: String(tc.stat_prefix ?? ''), clusters: [], accessLog: arr(tc.access_log), raw: tc };
  if (typeof tc.cluster === 'string') out.clusters = [{ name: tc.cluster, weight: 1 }];
  else if (obj(tc.weighted_clusters)) out.clusters = arr(obj(tc.weighted_clusters)?.clusters).map((c) => ({ name: String(c.name), weight: Number(c.weight ?? 1) }));
  if (out.clusters.length === 0) throw new ConfigError(`listener ${listener}: chain ${chain}: tcp_proxy needs cluster or weighted_clusters`);
  const idle = durationMs(tc.idle_timeout);
  if (idle) out.idleTimeoutMs = idle;
  return out;
}

export function compileListener(l: Json): CompiledListener {
  const name = String(l.name ?? '');
  const { address, port } = socketAddress(l, name);
  const direction: Direction = l.traffic_direction === 'INBOUND' ? 'inbound' : 'outbound';
  const chains = arr(l.filter_chains).map((c) => compileChain(c, name, direction));
  const def = obj(l.default_filter_chain);
  const listenerFilters = arr(l.listener_filters).map((f) => String(f.name ?? ''));
  const all = def ? [...chains, compileChain(def, name, direction)] : chains;
  const inspectTls = chains.some((c) => c.match.serverNames !== undefined || c.match.transportProtocol !== undefined) || listenerFilters.includes('envoy.filters.listener.tls_inspector') && chains.some((c) => c.match.serverNames || c.match.transportProtocol);
  const inspectHttp = chains.some((c) => c.match.applicationProtocols !== undefined);
  const out: CompiledListener = {
    name,
    address,
    port,
    bindToPort: l.bind_to_port !== false,
    useOriginalDst: l.use_original_dst === true,
    direction,
    chains,
    inspectTls,
    inspectHttp,
    inspectTimeoutMs: durationMs(l.listener_filters_timeout) || 100,
    raw: l,
  };
  const d = all.length > chains.length ? all.at(-1) : undefined;
  if (d) out.defaultChain = d;
  return out;
}

/** What the listener knows about a connection when it picks a filter chain. */
export interface ConnectionFacts {
  destinationIp: string;
  destinationPort: number;
  serverName?: string;
  transportProtocol: string; // 'tls' | 'raw_buffer'
  applicationProtocols: string[];
}

/**
 * Envoy's filter chain selection: at each criterion in turn (destination port, destination IP by the
 * longest prefix, server name (exact before wildcard), transport protocol, application protocols)
 * keep the chains that name the connection's value, or, if none does, the chains that leave it unset.
 */
export function selectChain(l: CompiledListener, f: ConnectionFacts): CompiledChain | undefined {
  let cands = l.chains;
  const narrow = (pick: (c: CompiledChain) => number | undefined): void => {
    // pick: undefined = the chain leaves the criterion unset; -1 = names it but does not match; >= 0 = match specificity
    let best = -1;
    for (const c of cands) {
      const s = pick(c);
      if (s !== undefined && s > best) best = s;
    }
    cands = best >= 0 ? cands.filter((c) => pick(c) === best) : cands.filter((c) => pick(c) === undefined);
  };
  narrow((c) => (c.match.destinationPort === undefined ? undefined : c.match.destinationPort === f.destinationPort ? 0 : -1));
  narrow((c) => {
    if (!c.match.prefixRanges) return undefined;
    let best = -1;
    for (const r of c.match.prefixRanges) if (r.contains(f.destinationIp) && r.bits > best) best = r.bits;
    return best;
  });
  narrow((c) => {
    if (!c.match.serverNames) return undefined;
    const sni = f.serverName?.toLowerCase();
    if (!sni) return -1;
    let best = -1;
    for (const n of c.match.serverNames) {
      if (n === sni) return 1000;
      if (n.startsWith('*.') && sni.endsWith(n.slice(1)) && n.length > best) best = n.length;
    }
    return best;
  });
  narrow((c) => (c.match.transportProtocol === undefined ? undefined : c.match.transportProtocol === f.transportProtocol ? 0 : -1));
  narrow((c) => (c.match.applicationProtocols === undefined ? undefined : c.match.applicationProtocols.some((p) => f.applicationProtocols.includes(p)) ? 0 : -1));
  return cands[0] ?? l.defaultChain;
}
