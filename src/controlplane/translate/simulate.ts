// Replays one call through generated xDS the way Envoy would (original-destination listener hand-off, filter chain match, virtual host by domain, first matching route) and reports what it reached. Pure; config it cannot follow is reported in `error`, never thrown.

import { compileRouteTable, compileStringMatcher, type RouteRequest } from '../../xds/route-table.ts';
import { fromProtoDuration } from '../../common/duration.ts';

type Json = Record<string, unknown>;

export interface SimulatedCall {
  /** Destination port the application dialled. */
  port: number;
  /** Host header (:authority); defaults to `destinationIp:port`. */
  host?: string;
  /** Path with optional query string; default '/'. */
  path?: string;
  /** Default GET. */
  method?: string;
  headers?: Record<string, string>;
  /** Original destination IP (a ClusterIP, an external address); absent means "any address on the port". */
  destinationIp?: string;
  /** TLS server name (for protocol 'tls'). */
  sni?: string;
  /** ALPN offered in a TLS ClientHello. */
  alpn?: string[];
  /** Default 'http'. */
  protocol?: 'http' | 'tcp' | 'tls';
  /** 'outbound' (default): the application's connection captured to 15001, or dialled straight to a bound
   *  egress listener; 'inbound': a connection to the workload captured to 15006. */
  direction?: 'outbound' | 'inbound';
}

export interface SimulatedFault {
  delayMs?: number;
  /** 0-100. */
  delayPercent?: number;
  abortStatus?: number;
  abortGrpcStatus?: number;
  /** 0-100. */
  abortPercent?: number;
}

export interface SimulatedRetries {
  attempts: number;
  retryOn: string;
  perTryTimeoutMs?: number;
  retriableStatusCodes?: number[];
}

export interface SimulationResult {
  listener: string;
  filterChain?: string;
  routeConfig?: string;
  virtualHost?: string;
  route?: string;
  /** Where the call goes; weights as configured (100 for a single cluster). Empty for redirects, direct responses, errors. */
  clusters: Array<{ name: string; weight: number }>;
  redirect?: { scheme?: string; host?: string; port?: number; path?: string; code: number };
  directResponse?: number;
  directResponseBody?: string;
  fault?: SimulatedFault;
  /** 0 means no timeout. */
  timeoutMs?: number;
  retries?: SimulatedRetries;
  mirrors?: Array<{ cluster: string; percent: number }>;
  rewrite?: { prefix?: string; regex?: { pattern: string; substitution: string }; host?: string };
  hashPolicy?: Json[];
  /** x-envoy-decorator-operation. */
  operation?: string;
  requestHeadersToAdd?: Record<string, string>;
  requestHeadersToRemove?: string[];
  responseHeadersToAdd?: Record<string, string>;
  corsPolicy?: Json;
  /** Clusters the config names that are not among the given clusters (Envoy answers 503 NC). */
  missingClusters: string[];
  /** Why the walk stopped early: no filter chain, no route config, no virtual host, no route. */
  error?: string;
}

const DENOMINATORS: Record<string, number> = { HUNDRED: 100, TEN_THOUSAND: 10_000, MILLION: 1_000_000 };

/** A FractionalPercent as 0-100. */
export function percentOf(fp: unknown): number {
  const f = (fp ?? {}) as { numerator?: number; denominator?: string | number };
  const den = typeof f.denominator === 'number' ? [100, 10_000, 1_000_000][f.denominator] ?? 100 : DENOMINATORS[f.denominator ?? 'HUNDRED'] ?? 100;
  return ((f.numerator ?? 0) / den) * 100;
}

function arr(v: unknown): Json[] {
  return Array.isArray(v) ? (v as Json[]) : [];
}

function obj(v: unknown): Json | undefined {
  return v && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : undefined;
}

function socketOf(l: Json): { ip: string; port: number } {
  const sa = obj(obj(l.address)?.socket_address) ?? {};
  return { ip: String(sa.address ?? ''), port: Number(sa.port_value ?? 0) };
}

function ms(d: unknown): number | undefined {
  return typeof d === 'string' ? fromProtoDuration(d) : undefined;
}

/** The listener a connection lands on. */
function pickListener(listeners: readonly Json[], call: SimulatedCall): Json | undefined {
  const byName = (n: string): Json | undefined => listeners.find((l) => l.name === n);
  const ip = call.destinationIp;
  const inbound = call.direction === 'inbound';
  // A listener the proxy binds itself (captureMode NONE) receives connections dialled to it directly:
  // outbound, an egress listener on a local address; inbound, an ingress listener on the pod's port.
  const bound = listeners.filter((l) => l.bind_to_port !== false && l.name !== 'virtualOutbound' && l.name !== 'virtualInbound' && (l.traffic_direction === 'INBOUND') === inbound);
  for (const l of bound) {
    const s = socketOf(l);
    const local = ip === undefined || inbound || ip === '127.0.0.1';
    if (s.port === call.port && (s.ip === ip || (s.ip === '0.0.0.0' && local))) return l;
  }
  if (inbound) return byName('virtualInbound');
  const virtual = listeners.filter((l) => l.bind_to_port === false);
  if (ip !== undefined) {
    const exact = virtual.find((l) => {
      const s = socketOf(l);
      return s.ip === ip && s.port === call.port;
    });
    if (exact) return exact;
  }
  const wildcard = virtual.find((l) => {
    const s = socketOf(l);
    return s.ip === '0.0.0.0' && s.port === call.port;
  });
  return wildcard ?? byName('virtualOutbound');
}

function ipToInt(ip: string): number | undefined {
  const parts = ip.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) return undefined;
  return parts.reduce((a, p) => a * 256 + p, 0);
}

function inRange(ip: string | undefined, range: Json): number {
  if (ip === undefined) return -1;
  const a = ipToInt(ip);
  const b = ipToInt(String(range.address_prefix ?? ''));
  const len = Number(range.prefix_len ?? 32);
  if (a === undefined || b === undefined) return -1;
  const size = 2 ** (32 - len);
  return Math.floor(a / size) === Math.floor(b / size) ? len + 1 : -1;
}

function serverNameScore(names: string[], sni: string | undefined): number {
  if (!sni) return -1;
  const s = sni.toLowerCase();
  let best = -1;
  for (const n of names.map((x) => x.toLowerCase())) {
    if (n === s) best = Math.max(best, 10_000);
    else if (n.startsWith('*.') && s.endsWith(n.slice(1)) && s.length > n.length - 1) best = Math.max(best, n.length);
  }
  return best;
}

/** Envoy's filter chain selection: each criterion in order keeps the most specific chains, chains without it only when none matched. */
function pickChain(l: Json, call: SimulatedCall): Json | undefined {
  const listenerFilters = arr(l.listener_filters).map((f) => String(f.name));
  const tlsInspector = listenerFilters.includes('envoy.filters.listener.tls_inspector');
  const httpInspector = listenerFilters.includes('envoy.filters.listener.http_inspector');
  const protocol = call.protocol ?? 'http';
  const transport = protocol === 'tls' && tlsInspector ? 'tls' : 'raw_buffer';
  const sni = protocol === 'tls' && tlsInspector ? call.sni : undefined;
  const alpn = protocol === 'tls' ? (tlsInspector ? (call.alpn ?? []) : []) : protocol === 'http' && httpInspector ? ['http/1.1'] : [];
  const criteria: Array<(m: Json) => number | undefined> = [
    (m) => (m.destination_port === undefined ? undefined : Number(m.destination_port) === call.port ? 1 : -1),
    (m) => (arr(m.prefix_ranges).length === 0 ? undefined : Math.max(...arr(m.prefix_ranges).map((r) => inRange(call.destinationIp, r)))),
    (m) => (arr(m.server_names).length === 0 ? undefined : serverNameScore(m.server_names as string[], sni)),
    (m) => (m.transport_protocol === undefined ? undefined : m.transport_protocol === transport ? 1 : -1),
    (m) => (arr(m.application_protocols).length === 0 ? undefined : (m.application_protocols as string[]).some((p) => alpn.includes(p)) ? 1 : -1),
  ];
  let cands = arr(l.filter_chains);
  for (const score of criteria) {
    const scored = cands.map((c) => ({ c, s: score(obj(c.filter_chain_match) ?? {}) }));
    const best = Math.max(-1, ...scored.map((x) => x.s ?? -1));
    cands = best > 0 ? scored.filter((x) => x.s === best).map((x) => x.c) : scored.filter((x) => x.s === undefined).map((x) => x.c);
    if (cands.length === 0) break;
  }
  return cands[0] ?? obj(l.default_filter_chain);
}

/** Envoy's virtual host selection (the shared route table's): exact domain, then the longest suffix
 *  wildcard, then the longest prefix wildcard, then '*'. */
export function pickVirtualHost(vhosts: readonly Json[], host: string): Json | undefined {
  return compileRouteTable({ name: '', virtual_hosts: vhosts }).virtualHost(host)?.config;
}

/** Envoy StringMatcher semantics (the shared route table's). */
export function stringMatches(m: Json, value: string): boolean {
  return compileStringMatcher(m)(value);
}

/** The request as route matching sees it: pseudo-headers answered, header names lower case. */
function routeRequest(call: SimulatedCall, host: string): RouteRequest {
  const path = call.path ?? '/';
  const headers = new Map<string, string>();
  for (const [k, v] of Object.entries(call.headers ?? {})) headers.set(k.toLowerCase(), v);
  headers.set(':method', call.method ?? 'GET');
  headers.set(':authority', host);
  headers.set(':path', path);
  headers.set(':scheme', 'http');
  if (!headers.has('host')) headers.set('host', host);
  return { authority: host, path, header: (n) => headers.get(n) };
}

function faultOf(cfg: Json | undefined): SimulatedFault | undefined {
  if (!cfg) return undefined;
  const out: SimulatedFault = {};
  const delay = obj(cfg.delay);
  if (delay) {
    const d = ms(delay.fixed_delay);
    if (d !== undefined) out.delayMs = d;
    out.delayPercent = percentOf(delay.percentage);
  }
  const abort = obj(cfg.abort);
  if (abort) {
    if (abort.http_status !== undefined) out.abortStatus = Number(abort.http_status);
    if (abort.grpc_status !== undefined) out.abortGrpcStatus = Number(abort.grpc_status);
    out.abortPercent = percentOf(abort.percentage);
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

const REDIRECT_CODES: Record<string, number> = { MOVED_PERMANENTLY: 301, FOUND: 302, SEE_OTHER: 303, TEMPORARY_REDIRECT: 307, PERMANENT_REDIRECT: 308 };

function headerMap(list: unknown): Record<string, string> | undefined {
  const out: Record<string, string> = {};
  for (const o of arr(list)) {
    const h = obj(o.header);
    if (h) out[String(h.key)] = String(h.value);
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

function applyRoute(res: SimulationResult, route: Json, vhost: Json): void {
  if (typeof route.name === 'string') res.route = route.name;
  const deco = obj(route.decorator);
  if (deco?.operation !== undefined) res.operation = String(deco.operation);
  const perFilter = { ...(obj(vhost.typed_per_filter_config) ?? {}), ...(obj(route.typed_per_filter_config) ?? {}) };
  const fault = faultOf(obj(perFilter['envoy.filters.http.fault']));
  if (fault) res.fault = fault;
  const cors = obj(perFilter['envoy.filters.http.cors']);
  if (cors) res.corsPolicy = cors;
  const reqAdd = headerMap(route.request_headers_to_add);
  if (reqAdd) res.requestHeadersToAdd = reqAdd;
  if (arr(route.request_headers_to_remove).length > 0) res.requestHeadersToRemove = route.request_headers_to_remove as string[];
  const respAdd = headerMap(route.response_headers_to_add);
  if (respAdd) res.responseHeadersToAdd = respAdd;
  const redirect = obj(route.redirect);
  if (redirect) {
    const r: NonNullable<SimulationResult['redirect']> = { code: REDIRECT_CODES[String(redirect.response_code ?? 'MOVED_PERMANENTLY')] ?? 301 };
    if (redirect.scheme_redirect !== undefined) r.scheme = String(redirect.scheme_redirect);
    else if (redirect.https_redirect === true) r.scheme = 'https';
    if (redirect.host_redirect !== undefined) r.host = String(redirect.host_redirect);
    if (redirect.port_redirect !== undefined) r.port = Number(redirect.port_redirect);
    if (redirect.path_redirect !== undefined) r.path = String(redirect.path_redirect);
    res.redirect = r;
    return;
  }
  const direct = obj(route.direct_response);
  if (direct) {
    res.directResponse = Number(direct.status ?? 200);
    const body = obj(direct.body);
    if (body?.inline_string !== undefined) res.directResponseBody = String(body.inline_string);
    return;
  }
  const action = obj(route.route);
  if (!action) {
    res.error = `route ${String(route.name ?? '')} has no action`;
    return;
  }
  if (typeof action.cluster === 'string') res.clusters = [{ name: action.cluster, weight: 100 }];
  else {
    const wc = obj(action.weighted_clusters);
    res.clusters = arr(wc?.clusters).map((c) => ({ name: String(c.name), weight: Number(c.weight ?? 0) }));
  }
  const t = ms(action.timeout);
  res.timeoutMs = t ?? 15_000; // Envoy's default route timeout when none is set
  const rp = obj(action.retry_policy);
  if (rp) {
    const r: SimulatedRetries = { attempts: Number(rp.num_retries ?? 1), retryOn: String(rp.retry_on ?? '') };
    const pt = ms(rp.per_try_timeout);
    if (pt !== undefined) r.perTryTimeoutMs = pt;
    if (arr(rp.retriable_status_codes).length > 0) r.retriableStatusCodes = (rp.retriable_status_codes as unknown[]).map(Number);
    res.retries = r;
  }
  const mirrors = arr(action.request_mirror_policies).map((m) => ({ cluster: String(m.cluster), percent: percentOf(obj(obj(m.runtime_fraction)?.default_value)) }));
  if (mirrors.length > 0) res.mirrors = mirrors;
  const rewrite: NonNullable<SimulationResult['rewrite']> = {};
  if (action.prefix_rewrite !== undefined) rewrite.prefix = String(action.prefix_rewrite);
  const rr = obj(action.regex_rewrite);
  if (rr) rewrite.regex = { pattern: String(obj(rr.pattern)?.regex ?? ''), substitution: String(rr.substitution ?? '') };
  if (action.host_rewrite_literal !== undefined) rewrite.host = String(action.host_rewrite_literal);
  if (Object.keys(rewrite).length > 0) res.rewrite = rewrite;
  if (arr(action.hash_policy).length > 0) res.hashPolicy = arr(action.hash_policy);
}

function tcpClusters(cfg: Json): Array<{ name: string; weight: number }> {
  if (typeof cfg.cluster === 'string') return [{ name: cfg.cluster, weight: 100 }];
  return arr(obj(cfg.weighted_clusters)?.clusters).map((c) => ({ name: String(c.name), weight: Number(c.weight ?? 0) }));
}

/**
 * Walks `call` through listeners, route configurations and clusters as Envoy would and reports the
 * listener, filter chain, route configuration, virtual host and route it reached, and where it goes.
 */
export function simulate(listeners: readonly Json[], routes: readonly Json[], clusters: readonly Json[], call: SimulatedCall): SimulationResult {
  const res: SimulationResult = { listener: '', clusters: [], missingClusters: [] };
  const finish = (): SimulationResult => {
    const known = new Set(clusters.map((c) => String(c.name)));
    const named = [...res.clusters.map((c) => c.name), ...(res.mirrors ?? []).map((m) => m.cluster)];
    res.missingClusters = [...new Set(named.filter((n) => !known.has(n)))];
    return res;
  };
  const listener = pickListener(listeners, call);
  if (!listener) {
    res.error = 'no listener for the call (no virtualOutbound/virtualInbound listener either)';
    return finish();
  }
  res.listener = String(listener.name);
  const chain = pickChain(listener, call);
  if (!chain) {
    res.error = `listener ${res.listener}: no filter chain matches (connection closed)`;
    return finish();
  }
  if (typeof chain.name === 'string') res.filterChain = chain.name;
  const filters = arr(chain.filters);
  const hcm = filters.find((f) => f.name === 'envoy.filters.network.http_connection_manager');
  const tcp = filters.find((f) => f.name === 'envoy.filters.network.tcp_proxy');
  if (!hcm) {
    if (tcp) res.clusters = tcpClusters(obj(tcp.typed_config) ?? {});
    else res.error = `filter chain ${res.filterChain ?? ''}: neither http_connection_manager nor tcp_proxy`;
    return finish();
  }
  if ((call.protocol ?? 'http') !== 'http') {
    res.error = `filter chain ${res.filterChain ?? ''} expects HTTP but the call is ${call.protocol ?? ''}`;
    return finish();
  }
  const cfg = obj(hcm.typed_config) ?? {};
  let rc = obj(cfg.route_config);
  const rdsName = obj(cfg.rds)?.route_config_name;
  if (!rc && typeof rdsName === 'string') {
    rc = routes.find((r) => r.name === rdsName);
    if (!rc) {
      res.routeConfig = rdsName;
      res.error = `route configuration ${rdsName} not found (Envoy answers 404 NR)`;
      return finish();
    }
  }
  if (!rc) {
    res.error = 'http connection manager without routes';
    return finish();
  }
  res.routeConfig = String(rc.name ?? '');
  const host = call.host ?? (call.destinationIp ? `${call.destinationIp}:${call.port}` : '');
  const sel = compileRouteTable(rc).select(routeRequest(call, host));
  const vhost = sel.vhost?.config;
  if (!vhost) {
    res.error = `no virtual host for ${host} in ${res.routeConfig} (Envoy answers 404 NR)`;
    return finish();
  }
  res.virtualHost = String(vhost.name ?? '');
  const route = sel.route?.config;
  if (!route) {
    res.error = `no route in ${res.virtualHost} matches (Envoy answers 404 NR)`;
    return finish();
  }
  applyRoute(res, route, vhost);
  return finish();
}
