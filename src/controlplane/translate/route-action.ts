// One VirtualService http route -> the parts of Envoy routes it yields: route action (clusters, timeout, retries, rewrite, mirrors, hash policy), redirect, direct response, header operations, fault and CORS filter configs. Pure; fields it cannot express are left out, never thrown.

import { parseDuration, protoDuration } from '../../common/duration.ts';
import type { Resource } from '../../config/resource.ts';
import type {
  CorsPolicy, Destination, DestinationRuleSpec, HTTPFaultInjection, HTTPRedirect, HTTPRetry, HTTPRoute, HeaderOperations, Headers, Percent,
} from '../../config/types.ts';
import { toFqdn } from '../../registry/host.ts';
import type { MeshService } from '../../registry/types.ts';
import { clusterName } from './names.ts';
import { stringMatcher } from './route-match.ts';
import { effectivePolicy } from './traffic-policy.ts';

type Json = Record<string, unknown>;

export const FAULT_FILTER = 'envoy.filters.http.fault';
export const CORS_FILTER = 'envoy.filters.http.cors';
export const ROUTER_FILTER = 'envoy.filters.http.router';
export const FAULT_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault';
export const CORS_POLICY_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy';
const PREVIOUS_HOSTS_TYPE = 'type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate';

/** Istio's retry_on when a route sets none. */
export const DEFAULT_RETRY_ON = 'connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes';

/** What a route is built against: the listener port and the proxy's view of services and DestinationRules. */
export interface ActionContext {
  /** Port of the route configuration (the port the caller dialled). */
  port: number;
  domain: string;
  /** Namespace host names in the VirtualService are relative to. */
  namespace: string;
  service(hostname: string): MeshService | undefined;
  destinationRule(hostname: string): Resource<DestinationRuleSpec> | undefined;
}

export interface ResolvedDestination {
  cluster: string;
  host: string;
  port: number;
  subset: string;
}

/** Cluster of a destination: port from the destination, else the service's only port, else the listener port (Istio's rule). */
export function resolveDestination(dest: Destination | undefined, ctx: ActionContext): ResolvedDestination {
  const host = toFqdn(dest?.host ?? '', ctx.namespace, ctx.domain);
  const svc = ctx.service(host);
  const only = svc && svc.ports.length === 1 ? svc.ports[0]?.port : undefined;
  const port = dest?.port?.number ?? only ?? ctx.port;
  const subset = dest?.subset ?? '';
  return { cluster: clusterName('outbound', port, subset, host), host, port, subset };
}

/** Istio's default retry policy (used when a route sets no `retries`). */
export function defaultRetryPolicy(): Json {
  return {
    retry_on: DEFAULT_RETRY_ON,
    num_retries: 2,
    retry_host_predicate: [previousHostsPredicate()],
    host_selection_retry_max_attempts: 5,
    retriable_status_codes: [503],
  };
}

function previousHostsPredicate(): Json {
  return { name: 'envoy.retry_host_predicates.previous_hosts', typed_config: { '@type': PREVIOUS_HOSTS_TYPE } };
}

/** Envoy retry_policy for Istio `retries`; undefined (no retries) when attempts is 0 or unset. */
export function retryPolicy(r: HTTPRetry | undefined): Json | undefined {
  if (!r) return defaultRetryPolicy();
  if (!r.attempts || r.attempts <= 0) return undefined;
  const out = defaultRetryPolicy();
  out.num_retries = r.attempts;
  if (r.retryOn) {
    const policies: string[] = [];
    const codes: number[] = [];
    for (const part of r.retryOn.split(',')) {
      const p = part.trim();
      if (!p) continue;
      if (/^\d+$/.test(p)) codes.push(Number(p));
      else if (!policies.includes(p)) policies.push(p);
    }
    if (codes.length > 0 && !policies.includes('retriable-status-codes')) policies.push('retriable-status-codes');
    out.retry_on = policies.join(',');
    if (codes.length > 0) out.retriable_status_codes = codes;
    else delete out.retriable_status_codes;
  }
  const perTry = r.perTryTimeout ? parseDuration(r.perTryTimeout) : undefined;
  if (perTry !== undefined) out.per_try_timeout = protoDuration(perTry);
  if (r.retryIgnorePreviousHosts === false) delete out.retry_host_predicate;
  const backoff = r.backoff ? parseDuration(r.backoff) : undefined;
  if (backoff !== undefined) out.retry_back_off = { base_interval: protoDuration(backoff) };
  return out;
}

/** Istio Percent (0-100, fractional) -> Envoy FractionalPercent per million; an absent percentage is 100%. */
export function fractionalPercent(p: Percent | undefined, legacyInteger?: number): Json {
  if (p?.value !== undefined) return { numerator: Math.round(p.value * 10_000), denominator: 'MILLION' };
  if (legacyInteger !== undefined) return { numerator: legacyInteger, denominator: 'HUNDRED' };
  return { numerator: 100, denominator: 'HUNDRED' };
}

/** The route-level HTTPFault config, or undefined when the route injects no fault. */
export function faultConfig(f: HTTPFaultInjection | undefined): Json | undefined {
  if (!f || (!f.delay && !f.abort)) return undefined;
  const out: Json = { '@type': FAULT_TYPE };
  const fixed = f.delay?.fixedDelay ? parseDuration(f.delay.fixedDelay) : undefined;
  if (f.delay && fixed !== undefined) out.delay = { fixed_delay: protoDuration(fixed), percentage: fractionalPercent(f.delay.percentage, f.delay.percent) };
  if (f.abort) {
    const abort: Json = { percentage: fractionalPercent(f.abort.percentage) };
    if (f.abort.httpStatus !== undefined) abort.http_status = f.abort.httpStatus;
    else if (f.abort.grpcStatus !== undefined) abort.grpc_status = grpcStatusCode(f.abort.grpcStatus);
    else return out.delay ? out : undefined;
    out.abort = abort;
  }
  return out.delay || out.abort ? out : undefined;
}

const GRPC_CODES = ['OK', 'CANCELLED', 'UNKNOWN', 'INVALID_ARGUMENT', 'DEADLINE_EXCEEDED', 'NOT_FOUND', 'ALREADY_EXISTS', 'PERMISSION_DENIED', 'RESOURCE_EXHAUSTED', 'FAILED_PRECONDITION', 'ABORTED', 'OUT_OF_RANGE', 'UNIMPLEMENTED', 'INTERNAL', 'UNAVAILABLE', 'DATA_LOSS', 'UNAUTHENTICATED'];
function grpcStatusCode(s: string): number {
  const i = GRPC_CODES.indexOf(s.toUpperCase());
  return i >= 0 ? i : Number(s) || 2;
}

/** The route-level CorsPolicy config, or undefined. */
export function corsConfig(c: CorsPolicy | undefined): Json | undefined {
  if (!c) return undefined;
  const out: Json = { '@type': CORS_POLICY_TYPE };
  const origins: Json[] = [];
  for (const o of c.allowOrigins ?? []) {
    const m = stringMatcher(o);
    if (m) origins.push(m);
  }
  for (const o of c.allowOrigin ?? []) origins.push(o === '*' ? { safe_regex: { regex: '.*' } } : { exact: o });
  if (origins.length > 0) out.allow_origin_string_match = origins;
  if (c.allowMethods?.length) out.allow_methods = c.allowMethods.join(',');
  if (c.allowHeaders?.length) out.allow_headers = c.allowHeaders.join(',');
  if (c.exposeHeaders?.length) out.expose_headers = c.exposeHeaders.join(',');
  const maxAge = c.maxAge ? parseDuration(c.maxAge) : undefined;
  if (maxAge !== undefined) out.max_age = String(Math.floor(maxAge / 1000));
  if (c.allowCredentials !== undefined) out.allow_credentials = c.allowCredentials;
  if (c.unmatchedPreflights === 'IGNORE') out.forward_not_matching_preflights = false;
  else if (c.unmatchedPreflights === 'FORWARD') out.forward_not_matching_preflights = true;
  out.filter_enabled = { default_value: { numerator: 100, denominator: 'HUNDRED' } };
  return out;
}

const REDIRECT_CODES: Record<number, string> = { 301: 'MOVED_PERMANENTLY', 302: 'FOUND', 303: 'SEE_OTHER', 307: 'TEMPORARY_REDIRECT', 308: 'PERMANENT_REDIRECT' };

/** Envoy RedirectAction for an Istio redirect (default code 301). */
export function redirectAction(r: HTTPRedirect): Json {
  const out: Json = {};
  if (r.scheme) out.scheme_redirect = r.scheme;
  if (r.authority) out.host_redirect = r.authority;
  if (r.port) out.port_redirect = r.port;
  if (r.uri) out.path_redirect = r.uri;
  out.response_code = REDIRECT_CODES[r.redirectCode ?? 301] ?? 'MOVED_PERMANENTLY';
  return out;
}

/** Header additions and removals of one direction, in Envoy's fields (`set` overwrites, `add` appends). */
function headerOps(ops: HeaderOperations | undefined, prefix: 'request' | 'response', into: Json, skipAuthority: boolean): void {
  if (!ops) return;
  const add: Json[] = [];
  for (const [key, value] of Object.entries(ops.set ?? {})) {
    if (skipAuthority && isAuthorityHeader(key)) continue;
    add.push({ header: { key, value }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' });
  }
  for (const [key, value] of Object.entries(ops.add ?? {})) add.push({ header: { key, value }, append_action: 'APPEND_IF_EXISTS_OR_ADD' });
  if (add.length > 0) into[`${prefix}_headers_to_add`] = [...((into[`${prefix}_headers_to_add`] as Json[] | undefined) ?? []), ...add];
  if (ops.remove?.length) into[`${prefix}_headers_to_remove`] = [...((into[`${prefix}_headers_to_remove`] as string[] | undefined) ?? []), ...ops.remove];
}

function isAuthorityHeader(k: string): boolean {
  const l = k.toLowerCase();
  return l === 'host' || l === ':authority';
}

/** Adds Istio `headers` (request and response) to an Envoy Route or WeightedCluster.ClusterWeight. */
export function applyHeaders(h: Headers | undefined, into: Json): void {
  headerOps(h?.request, 'request', into, true);
  headerOps(h?.response, 'response', into, false);
}

/** A `set` of Host/:authority in request headers, which Istio turns into an authority rewrite. */
export function authorityFromHeaders(h: Headers | undefined): string | undefined {
  for (const [k, v] of Object.entries(h?.request?.set ?? {})) if (isAuthorityHeader(k)) return v;
  return undefined;
}

/** Envoy hash_policy for the DestinationRule's consistentHash of a destination (subset and port aware). */
export function hashPolicyFor(dest: ResolvedDestination, ctx: Pick<ActionContext, 'destinationRule'>): Json[] | undefined {
  const dr = ctx.destinationRule(dest.host);
  if (!dr) return undefined;
  const subsetPolicy = dest.subset ? dr.spec.subsets?.find((s) => s.name === dest.subset)?.trafficPolicy : undefined;
  const ch = effectivePolicy(dr.spec.trafficPolicy, subsetPolicy, dest.port).loadBalancer?.consistentHash;
  if (!ch) return undefined;
  if (ch.httpHeaderName) return [{ header: { header_name: ch.httpHeaderName } }];
  if (ch.httpCookie?.name) {
    const cookie: Json = { name: ch.httpCookie.name };
    const ttl = ch.httpCookie.ttl ? parseDuration(ch.httpCookie.ttl) : undefined;
    if (ttl !== undefined) cookie.ttl = protoDuration(ttl);
    if (ch.httpCookie.path) cookie.path = ch.httpCookie.path;
    return [{ cookie }];
  }
  if (ch.useSourceIp) return [{ connection_properties: { source_ip: true } }];
  if (ch.httpQueryParameterName) return [{ query_parameter: { name: ch.httpQueryParameterName } }];
  return undefined;
}

/** The route timeout in Envoy form: the VirtualService's, else 0s (disabled, Istio's sidecar default). */
export function routeTimeout(timeout: string | undefined): string {
  const ms = timeout ? parseDuration(timeout) : undefined;
  return protoDuration(ms ?? 0);
}

/**
 * The Envoy RouteAction for an http route with destinations (`match` decides the kind of rewrite),
 * or undefined when it has none. Destinations of weight 0 are dropped; one left means `cluster`.
 */
export function routeAction(r: HTTPRoute, match: Json, ctx: ActionContext): { action: Json; destinations: ResolvedDestination[] } | undefined {
  const dests = (r.route ?? []).filter((d) => d.destination?.host);
  if (dests.length === 0) return undefined;
  const weighted = dests.length > 1 ? dests.filter((d) => (d.weight ?? 0) > 0) : dests;
  const resolved = weighted.map((d) => resolveDestination(d.destination, ctx));
  const action: Json = {};
  const first = weighted[0];
  const firstResolved = resolved[0];
  if (weighted.length === 1 && first && firstResolved) {
    action.cluster = firstResolved.cluster;
  } else if (weighted.length > 1) {
    action.weighted_clusters = {
      clusters: weighted.map((d, i) => {
        const cw: Json = { name: resolved[i]?.cluster ?? '', weight: d.weight ?? 0 };
        applyHeaders(d.headers, cw);
        const authority = authorityFromHeaders(d.headers);
        if (authority) cw.host_rewrite_literal = authority;
        return cw;
      }),
    };
  } else {
    return undefined;
  }
  const timeout = routeTimeout(r.timeout);
  action.timeout = timeout;
  const retry = retryPolicy(r.retries);
  if (retry) action.retry_policy = retry;
  if (r.rewrite?.uriRegexRewrite?.match !== undefined) {
    action.regex_rewrite = { pattern: { regex: r.rewrite.uriRegexRewrite.match }, substitution: r.rewrite.uriRegexRewrite.rewrite ?? '' };
  } else if (r.rewrite?.uri !== undefined) {
    if (match.safe_regex) action.regex_rewrite = { pattern: { regex: (match.safe_regex as { regex: string }).regex }, substitution: r.rewrite.uri };
    else action.prefix_rewrite = r.rewrite.uri;
  }
  const authority = r.rewrite?.authority ?? authorityFromHeaders(r.headers) ?? (weighted.length === 1 ? authorityFromHeaders(first?.headers) : undefined);
  if (authority) action.host_rewrite_literal = authority;
  const mirrors = mirrorPolicies(r, ctx);
  if (mirrors.length > 0) action.request_mirror_policies = mirrors;
  for (const d of resolved) {
    const hp = hashPolicyFor(d, ctx);
    if (hp) {
      action.hash_policy = hp;
      break;
    }
  }
  action.max_stream_duration = { max_stream_duration: timeout, grpc_timeout_header_max: timeout };
  return { action, destinations: resolved };
}

function mirrorPolicies(r: HTTPRoute, ctx: ActionContext): Json[] {
  const out: Json[] = [];
  if (r.mirror?.host) {
    if (r.mirrorPercentage?.value === 0) return out;
    out.push({ cluster: resolveDestination(r.mirror, ctx).cluster, runtime_fraction: { default_value: fractionalPercent(r.mirrorPercentage) }, trace_sampled: false });
  }
  for (const m of r.mirrors ?? []) {
    if (!m.destination?.host || m.percentage?.value === 0) continue;
    out.push({ cluster: resolveDestination(m.destination, ctx).cluster, runtime_fraction: { default_value: fractionalPercent(m.percentage) }, trace_sampled: false });
  }
  return out;
}
