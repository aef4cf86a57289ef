// A route's xDS JSON compiled once, at config time, into what the router needs per request: the
// weighted cluster picker, timeouts in ms, the retry policy, rewrites, hash policies, header
// operations, mirrors, redirect/direct response, and the fault and CORS settings of the route.

import type { CompiledRoute, CompiledVirtualHost } from '../../xds/route-table.ts';
import { durationMs } from '../config/listeners.ts';

type Json = Record<string, unknown>;
const obj = (v: unknown): Json | undefined => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : undefined);
const arr = (v: unknown): Json[] => (Array.isArray(v) ? (v as Json[]) : []);

/** Envoy's route timeout when a route names none. */
export const DEFAULT_ROUTE_TIMEOUT_MS = 15_000;

export interface HeaderOps {
  add: Array<{ name: string; value: string; append: boolean }>;
  remove: string[];
}

export interface RetryPolicy {
  retryOn: ReadonlySet<string>;
  numRetries: number;
  perTryTimeoutMs: number;
  retriableStatusCodes: ReadonlySet<number>;
  previousHosts: boolean;
  hostSelectionMaxAttempts: number;
  baseIntervalMs: number;
  maxIntervalMs: number;
}

export interface HashPolicy {
  header?: string;
  cookie?: { name: string; ttlMs?: number; path?: string };
  sourceIp?: boolean;
  queryParameter?: string;
  terminal: boolean;
}

export interface FaultConfig {
  delayMs?: number;
  /** Probability 0..1. */
  delayFraction: number;
  abortStatus?: number;
  abortGrpcStatus?: number;
  abortFraction: number;
}

export interface CorsConfig {
  origins: Array<(origin: string) => boolean>;
  allowMethods?: string;
  allowHeaders?: string;
  exposeHeaders?: string;
  maxAge?: string;
  allowCredentials: boolean;
}

export interface WeightedCluster {
  name: string;
  weight: number;
  headers: { request: HeaderOps; response: HeaderOps };
  hostRewrite?: string;
}

export interface RouterAction {
  kind: 'route' | 'redirect' | 'direct';
  routeName: string;
  operation?: string;
  clusters: WeightedCluster[];
  totalWeight: number;
  timeoutMs: number;
  idleTimeoutMs?: number;
  retry?: RetryPolicy;
  prefixRewrite?: string;
  regexRewrite?: { re: RegExp; substitution: string };
  hostRewrite?: string;
  matchedPrefix?: string;
  hashPolicies: HashPolicy[];
  mirrors: Array<{ cluster: string; fraction: number }>;
  request: HeaderOps;
  response: HeaderOps;
  redirect?: { scheme?: string; host?: string; port?: number; path?: string; prefixRewrite?: string; code: number; stripQuery: boolean };
  direct?: { status: number; body?: string };
  fault?: FaultConfig;
  cors?: CorsConfig;
  attemptCountHeader: boolean;
}

/** FractionalPercent → probability 0..1 (HUNDRED default denominator); absent → `absent`. */
export function fraction(fp: unknown, absent = 1): number {
  const f = obj(fp);
  if (!f) return absent;
  const n = Number(f.numerator ?? 0);
  const d = f.denominator === 'MILLION' ? 1_000_000 : f.denominator === 'TEN_THOUSAND' ? 10_000 : 100;
  return Math.max(0, Math.min(1, n / d));
}

export function headerOps(add: unknown, remove: unknown): HeaderOps {
  return {
    add: arr(add).map((h) => {
      const hv = obj(h.header) ?? {};
      const action = String(h.append_action ?? '');
      const append = action ? action === 'APPEND_IF_EXISTS_OR_ADD' : h.append !== false && h.append !== undefined ? Boolean(h.append) : false;
      return { name: String(hv.key ?? '').toLowerCase(), value: String(hv.value ?? ''), append };
    }),
    remove: (Array.isArray(remove) ? (remove as unknown[]) : []).map((x) => String(x).toLowerCase()),
  };
}

function mergeOps(...ops: HeaderOps[]): HeaderOps {
  return { add: ops.flatMap((o) => o.add), remove: ops.flatMap((o) => o.remove) };
}

function retryPolicy(rp: Json | undefined): RetryPolicy | undefined {
  if (!rp) return undefined;
  const backoff = obj(rp.retry_back_off);
  const base = durationMs(backoff?.base_interval) ?? 25;
  return {
    retryOn: new Set(String(rp.retry_on ?? '').split(',').map((s) => s.trim()).filter(Boolean)),
    numRetries: rp.num_retries === undefined ? 1 : Number(rp.num_retries),
    perTryTimeoutMs: durationMs(rp.per_try_timeout) ?? 0,
    retriableStatusCodes: new Set((Array.isArray(rp.retriable_status_codes) ? (rp.retriable_status_codes as unknown[]) : []).map(Number)),
    previousHosts: arr(rp.retry_host_predicate).some((p) => String(p.name ?? '').includes('previous_hosts')),
    hostSelectionMaxAttempts: Number(rp.host_selection_retry_max_attempts ?? 1),
    baseIntervalMs: base,
    maxIntervalMs: durationMs(backoff?.max_interval) ?? base * 10,
  };
}

function corsConfig(c: Json | undefined): CorsConfig | undefined {
  if (!c) return undefined;
  const origins = arr(c.allow_origin_string_match).map((m): ((o: string) => boolean) => {
    if (m.exact !== undefined) return (o) => o === String(m.exact);
    if (m.prefix !== undefined) return (o) => o.startsWith(String(m.prefix));
    if (m.suffix !== undefined) return (o) => o.endsWith(String(m.suffix));
    const sr = obj(m.safe_regex);
    if (sr) {
      const re = new RegExp(`^(?:${String(sr.regex)})$`);
      return (o) => re.test(o);
    }
    return () => false;
  });
  const out: CorsConfig = { origins, allowCredentials: c.allow_credentials === true };
  if (c.allow_methods) out.allowMethods = String(c.allow_methods);
  if (c.allow_headers) out.allowHeaders = String(c.allow_headers);
  if (c.expose_headers) out.exposeHeaders = String(c.expose_headers);
  if (c.max_age) out.maxAge = String(c.max_age);
  return out;
}

function faultConfig(f: Json | undefined): FaultConfig | undefined {
  if (!f) return undefined;
  const out: FaultConfig = { delayFraction: 0, abortFraction: 0 };
  const delay = obj(f.delay);
  if (delay) {
    const ms = durationMs(delay.fixed_delay);
    if (ms !== undefined) {
      out.delayMs = ms;
      out.delayFraction = fraction(delay.percentage);
    }
  }
  const abort = obj(f.abort);
  if (abort) {
    if (abort.http_status !== undefined) out.abortStatus = Number(abort.http_status);
    if (abort.grpc_status !== undefined) out.abortGrpcStatus = Number(abort.grpc_status);
    out.abortFraction = fraction(abort.percentage);
  }
  return out;
}

function typedPerFilter(...levels: Array<Json | undefined>): (name: string) => Json | undefined {
  return (name) => {
    for (const l of levels) {
      const c = obj(obj(l?.typed_per_filter_config)?.[name]);
      if (c) return obj(c.config) && String(c['@type']).endsWith('FilterConfig') ? obj(c.config) : c;
    }
    return undefined;
  };
}

/** Compiles (and caches on the route) the router's view of a route. */
export function routerAction(route: CompiledRoute, vhost: CompiledVirtualHost, routeConfig: Json): RouterAction {
  if (route.compiled) return route.compiled as RouterAction;
  const r = route.config;
  const vh = vhost.config;
  const action = obj(r.route);
  const perFilter = typedPerFilter(r, vh);
  const out: RouterAction = {
    kind: action ? 'route' : obj(r.redirect) ? 'redirect' : 'direct',
    routeName: route.name,
    clusters: [],
    totalWeight: 0,
    timeoutMs: DEFAULT_ROUTE_TIMEOUT_MS,
    hashPolicies: [],
    mirrors: [],
    request: mergeOps(headerOps(r.request_headers_to_add, r.request_headers_to_remove), headerOps(vh.request_headers_to_add, vh.request_headers_to_remove), headerOps(routeConfig.request_headers_to_add, routeConfig.request_headers_to_remove)),
    response: mergeOps(headerOps(r.response_headers_to_add, r.response_headers_to_remove), headerOps(vh.response_headers_to_add, vh.response_headers_to_remove), headerOps(routeConfig.response_headers_to_add, routeConfig.response_headers_to_remove)),
    attemptCountHeader: vh.include_request_attempt_count === true,
  };
  const op = obj(r.decorator)?.operation;
  if (typeof op === 'string') out.operation = op;
  const fault = faultConfig(perFilter('envoy.filters.http.fault'));
  if (fault) out.fault = fault;
  const cors = corsConfig(perFilter('envoy.filters.http.cors') ?? obj(vh.cors));
  if (cors) out.cors = cors;
  if (action) {
    if (typeof action.cluster === 'string') out.clusters = [{ name: action.cluster, weight: 1, headers: { request: headerOps(undefined, undefined), response: headerOps(undefined, undefined) } }];
    else if (obj(action.weighted_clusters)) {
      out.clusters = arr(obj(action.weighted_clusters)?.clusters).map((c) => {
        const wc: WeightedCluster = {
          name: String(c.name),
          weight: Number(c.weight ?? 0),
          headers: { request: headerOps(c.request_headers_to_add, c.request_headers_to_remove), response: headerOps(c.response_headers_to_add, c.response_headers_to_remove) },
        };
        if (typeof c.host_rewrite_literal === 'string') wc.hostRewrite = c.host_rewrite_literal;
        return wc;
      });
    }
    out.totalWeight = out.clusters.reduce((n, c) => n + c.weight, 0);
    const t = durationMs(action.timeout);
    if (t !== undefined) out.timeoutMs = t;
    const idle = durationMs(action.idle_timeout);
    if (idle) out.idleTimeoutMs = idle;
    const msd = durationMs(obj(action.max_stream_duration)?.max_stream_duration);
    if (msd && (out.timeoutMs === 0 || msd < out.timeoutMs)) out.timeoutMs = msd;
    const rp = retryPolicy(obj(action.retry_policy) ?? obj(vh.retry_policy));
    if (rp) out.retry = rp;
    if (typeof action.prefix_rewrite === 'string') {
      out.prefixRewrite = action.prefix_rewrite;
      const m = obj(r.match);
      out.matchedPrefix = typeof m?.prefix === 'string' ? m.prefix : typeof m?.path === 'string' ? m.path : '/';
    }
    const rr = obj(action.regex_rewrite);
    if (rr) out.regexRewrite = { re: new RegExp(String(obj(rr.pattern)?.regex ?? ''), 'g'), substitution: String(rr.substitution ?? '').replace(/\\(\d)/g, '$$$1') };
    if (typeof action.host_rewrite_literal === 'string') out.hostRewrite = action.host_rewrite_literal;
    out.hashPolicies = arr(action.hash_policy).map((h): HashPolicy => {
      const hp: HashPolicy = { terminal: h.terminal === true };
      if (obj(h.header)) hp.header = String(obj(h.header)?.header_name ?? '').toLowerCase();
      if (obj(h.cookie)) {
        const c = obj(h.cookie) ?? {};
        hp.cookie = { name: String(c.name ?? '') };
        const ttl = durationMs(c.ttl);
        if (ttl !== undefined) hp.cookie.ttlMs = ttl;
        if (typeof c.path === 'string') hp.cookie.path = c.path;
      }
      if (obj(h.connection_properties)?.source_ip) hp.sourceIp = true;
      if (obj(h.query_parameter)) hp.queryParameter = String(obj(h.query_parameter)?.name ?? '');
      return hp;
    });
    out.mirrors = arr(action.request_mirror_policies).map((m) => ({ cluster: String(m.cluster), fraction: fraction(obj(m.runtime_fraction)?.default_value) }));
  } else if (obj(r.redirect)) {
    const rd = obj(r.redirect) ?? {};
    const codes: Record<string, number> = { MOVED_PERMANENTLY: 301, FOUND: 302, SEE_OTHER: 303, TEMPORARY_REDIRECT: 307, PERMANENT_REDIRECT: 308 };
    out.redirect = { code: codes[String(rd.response_code ?? 'MOVED_PERMANENTLY')] ?? 301, stripQuery: rd.strip_query === true };
    if (typeof rd.scheme_redirect === 'string') out.redirect.scheme = rd.scheme_redirect;
    if (rd.https_redirect === true) out.redirect.scheme = 'https';
    if (typeof rd.host_redirect === 'string') out.redirect.host = rd.host_redirect;
    if (rd.port_redirect !== undefined) out.redirect.port = Number(rd.port_redirect);
    if (typeof rd.path_redirect === 'string') out.redirect.path = rd.path_redirect;
    if (typeof rd.prefix_rewrite === 'string') out.redirect.prefixRewrite = rd.prefix_rewrite;
  } else {
    const dr = obj(r.direct_response) ?? {};
    out.direct = { status: Number(dr.status ?? 200) };
    const body = obj(dr.body);
    if (body && typeof body.inline_string === 'string') out.direct.body = body.inline_string;
  }
  route.compiled = out;
  return out;
}

/** Picks a weighted cluster with a random number in [0, 1). */
export function pickCluster(a: RouterAction, rand: number): WeightedCluster | undefined {
  if (a.clusters.length <= 1) return a.clusters[0];
  let x = rand * a.totalWeight;
  for (const c of a.clusters) {
    if (x < c.weight) return c;
    x -= c.weight;
  }
  return a.clusters.at(-1);
}
