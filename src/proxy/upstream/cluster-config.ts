// Parses one CDS Cluster (proto3 JSON, snake_case) into the immutable settings the upstream uses;
// throws ClusterConfigError with the cluster name and field path for anything it cannot honour.

import { isIP } from 'node:net';
import type { LoadAssignment } from './endpoints.ts';
import { parseLoadAssignment } from './endpoints.ts';
import { ClusterConfigError, arr, bool, durationMs, enumName, num, obj, str } from './json.ts';
import type { Json } from './json.ts';
import type { CircuitBreakers, ClusterInfo } from './types.ts';

const TYPES = ['STATIC', 'STRICT_DNS', 'LOGICAL_DNS', 'EDS', 'ORIGINAL_DST'] as const;
const LB_POLICIES = ['ROUND_ROBIN', 'LEAST_REQUEST', 'RING_HASH', 'RANDOM', '_ORIGINAL_DST_LB', 'MAGLEV', 'CLUSTER_PROVIDED', 'LOAD_BALANCING_POLICY_CONFIG'] as const;
const DNS_FAMILIES = ['AUTO', 'V4_ONLY', 'V6_ONLY', 'V4_PREFERRED', 'ALL'] as const;
const PRIORITIES = ['DEFAULT', 'HIGH'] as const;
const HTTP_PROTOCOL_OPTIONS = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';
const RAW_BUFFER = ['envoy.transport_sockets.raw_buffer', 'raw_buffer'];

/** Envoy's defaults. */
export const DEFAULTS = {
  connectTimeoutMs: 5000,
  circuitBreakers: { maxConnections: 1024, maxPendingRequests: 1024, maxRequests: 1024, maxRetries: 3 } satisfies CircuitBreakers,
  idleTimeoutMs: 3_600_000,
  panicThreshold: 50,
  minRingSize: 1024,
  maxRingSize: 8 * 1024 * 1024,
  maglevTableSize: 65537,
  dnsRefreshMs: 5000,
  originalDstCleanupMs: 5000,
  http2MaxConcurrentStreams: 2147483647,
} as const;

export interface OutlierConfig {
  readonly consecutive5xx: number;
  readonly enforcingConsecutive5xx: number;
  readonly consecutiveGatewayFailure: number;
  readonly enforcingConsecutiveGatewayFailure: number;
  readonly splitExternalLocalOriginErrors: boolean;
  readonly consecutiveLocalOriginFailure: number;
  readonly enforcingConsecutiveLocalOriginFailure: number;
  readonly intervalMs: number;
  readonly baseEjectionTimeMs: number;
  readonly maxEjectionTimeMs: number;
  /** Percent of the cluster's hosts that may be ejected at once. */
  readonly maxEjectionPercent: number;
  /** Eject one host even when that exceeds max_ejection_percent (off by default). */
  readonly alwaysEjectOneHost: boolean;
}

/** ClusterInfo plus everything else the cluster manager needs from CDS. */
export interface ClusterConfig extends ClusterInfo {
  /** healthy_panic_threshold, percent; 0 disables panic mode. */
  readonly panicThreshold: number;
  /** common_lb_config.locality_weighted_lb_config present: pick a locality by weight first. */
  readonly localityWeighted: boolean;
  readonly minRingSize: number;
  readonly maxRingSize: number;
  readonly maglevTableSize: number;
  /** least_request_lb_config.choice_count (2: power of two choices). */
  readonly choiceCount: number;
  readonly outlier?: OutlierConfig;
  /** 4 (V4_ONLY), 6 (V6_ONLY) or 0 (any; V4_PREFERRED sorts IPv4 first). */
  readonly dnsFamily: 0 | 4 | 6;
  readonly dnsV4Preferred: boolean;
  readonly dnsRefreshMs: number;
  readonly dnsFailureRefreshMs: number;
  /** The EDS resource name this cluster subscribes to (eds_cluster_config.service_name or the name). */
  readonly edsServiceName: string;
  /** load_assignment of STATIC and DNS clusters. */
  readonly loadAssignment?: LoadAssignment;
  /** tcp_keepalive keepalive_time in seconds (Node sets only the idle time before probes). */
  readonly tcpKeepaliveSec?: number;
  readonly http2MaxConcurrentStreams: number;
  readonly originalDstCleanupMs: number;
  /** Where the cluster's policy comes from, for error explanations: "DestinationRule bookinfo/reviews". */
  readonly istioConfig?: string;
  /** The DestinationRule subset this cluster is for. */
  readonly subset?: string;
  /** A stable fingerprint of the source JSON: an update with the same one keeps the cluster as it is. */
  readonly fingerprint: string;
}

function fail(name: string, msg: string): never {
  throw new ClusterConfigError(`cluster '${name}': ${msg}`);
}

/** The cluster's settings; throws ClusterConfigError("cluster 'name': field: problem"). */
export function parseCluster(c: Record<string, unknown>): ClusterConfig {
  const name = typeof c.name === 'string' ? c.name : '';
  if (!name) throw new ClusterConfigError('cluster without a name');
  try {
    return parse(name, c);
  } catch (err) {
    if (err instanceof ClusterConfigError && !err.message.startsWith('cluster ')) fail(name, err.message);
    throw err;
  }
}

function parse(name: string, c: Json): ClusterConfig {
  if (c.cluster_type !== undefined) {
    const ct = obj(c.cluster_type, 'cluster_type');
    fail(name, `cluster_type ${JSON.stringify(ct?.name ?? '')} (custom cluster types such as aggregate clusters) is not supported`);
  }
  const type = enumName(c.type, TYPES, 'type') ?? 'STATIC';
  if (c.load_balancing_policy !== undefined) fail(name, 'load_balancing_policy is not supported; use lb_policy');
  const lb = enumName(c.lb_policy, LB_POLICIES, 'lb_policy') ?? 'ROUND_ROBIN';
  if (lb === '_ORIGINAL_DST_LB' || lb === 'LOAD_BALANCING_POLICY_CONFIG') fail(name, `lb_policy ${lb} is not supported`);
  if (type === 'ORIGINAL_DST' && lb !== 'CLUSTER_PROVIDED') fail(name, `lb_policy ${lb} is not valid for an ORIGINAL_DST cluster; only CLUSTER_PROVIDED is`);
  if (type !== 'ORIGINAL_DST' && lb === 'CLUSTER_PROVIDED') fail(name, `lb_policy CLUSTER_PROVIDED is only valid for ORIGINAL_DST clusters (this one is ${type})`);

  const ts = obj(c.transport_socket, 'transport_socket');
  if (ts && !RAW_BUFFER.includes(String(ts.name ?? 'raw_buffer'))) fail(name, `transport_socket '${String(ts.name)}' is not supported yet (only plaintext raw_buffer upstreams)`);
  if (arr(c.transport_socket_matches, 'transport_socket_matches').length > 0) fail(name, 'transport_socket_matches is not supported yet (only plaintext upstreams)');
  if (arr(c.health_checks, 'health_checks').length > 0) fail(name, 'active health_checks are not supported (use outlier_detection)');

  const connectTimeoutMs = durationMs(c.connect_timeout, 'connect_timeout') ?? DEFAULTS.connectTimeoutMs;
  if (connectTimeoutMs <= 0) fail(name, 'connect_timeout: must be positive');

  // HTTP protocol options: the typed extension (current) or the deprecated cluster-level fields.
  const tepo = obj(c.typed_extension_protocol_options, 'typed_extension_protocol_options') ?? {};
  for (const key of Object.keys(tepo)) {
    if (key !== HTTP_PROTOCOL_OPTIONS) fail(name, `typed_extension_protocol_options.${key} is not supported`);
  }
  const hpo = obj(tepo[HTTP_PROTOCOL_OPTIONS], `typed_extension_protocol_options.${HTTP_PROTOCOL_OPTIONS}`);
  let protocol: 'http1' | 'http2' = obj(c.http2_protocol_options, 'http2_protocol_options') ? 'http2' : 'http1';
  let h2opts = obj(c.http2_protocol_options, 'http2_protocol_options');
  let common = obj(c.common_http_protocol_options, 'common_http_protocol_options');
  if (hpo) {
    const p = `typed_extension_protocol_options.${HTTP_PROTOCOL_OPTIONS}`;
    if (hpo.auto_config !== undefined) fail(name, `${p}.auto_config (ALPN protocol selection) is not supported; use explicit_http_config`);
    if (hpo.use_downstream_protocol_config !== undefined) fail(name, `${p}.use_downstream_protocol_config is not supported; use explicit_http_config`);
    const explicit = obj(hpo.explicit_http_config, `${p}.explicit_http_config`);
    if (explicit?.http3_protocol_options !== undefined) fail(name, `${p}.explicit_http_config.http3_protocol_options: HTTP/3 upstreams are not supported`);
    if (explicit?.http2_protocol_options !== undefined) {
      protocol = 'http2';
      h2opts = obj(explicit.http2_protocol_options, `${p}.explicit_http_config.http2_protocol_options`);
    } else if (explicit?.http_protocol_options !== undefined) {
      protocol = 'http1';
    }
    common = obj(hpo.common_http_protocol_options, `${p}.common_http_protocol_options`) ?? common;
  }
  const idleTimeoutMs = durationMs(common?.idle_timeout, 'common_http_protocol_options.idle_timeout') ?? DEFAULTS.idleTimeoutMs;
  const maxRequestsPerConnection = num(common?.max_requests_per_connection, 'common_http_protocol_options.max_requests_per_connection') ?? num(c.max_requests_per_connection, 'max_requests_per_connection');
  const h2Streams = num(h2opts?.max_concurrent_streams, 'http2_protocol_options.max_concurrent_streams') ?? DEFAULTS.http2MaxConcurrentStreams;

  const circuitBreakers = parseCircuitBreakers(obj(c.circuit_breakers, 'circuit_breakers'));

  const bind = obj(obj(c.upstream_bind_config, 'upstream_bind_config')?.source_address, 'upstream_bind_config.source_address');
  const bindAddress = str(bind?.address, 'upstream_bind_config.source_address.address');
  if (bindAddress !== undefined && isIP(bindAddress) === 0) fail(name, `upstream_bind_config.source_address.address: '${bindAddress}' is not an IP address`);

  const ka = obj(obj(c.upstream_connection_options, 'upstream_connection_options')?.tcp_keepalive, 'upstream_connection_options.tcp_keepalive');
  const tcpKeepaliveSec = ka ? num(ka.keepalive_time, 'upstream_connection_options.tcp_keepalive.keepalive_time') ?? 7200 : undefined;

  const istio = obj(obj(obj(c.metadata, 'metadata')?.filter_metadata, 'metadata.filter_metadata')?.istio, 'metadata.filter_metadata.istio');
  const svc = obj(arr(istio?.services, 'metadata.filter_metadata.istio.services')[0], 'metadata.filter_metadata.istio.services[0]');
  let service: ClusterInfo['service'];
  const svcHost = str(svc?.host, 'metadata.filter_metadata.istio.services[0].host');
  if (svcHost) {
    service = { host: svcHost };
    const n = str(svc?.name, 'metadata.filter_metadata.istio.services[0].name');
    const ns = str(svc?.namespace, 'metadata.filter_metadata.istio.services[0].namespace');
    if (n) service.name = n;
    if (ns) service.namespace = ns;
  }

  // Istio's metadata.filter_metadata.istio.config: /apis/networking.istio.io/v1/namespaces/<ns>/destination-rule/<name>
  const configPath = str(istio?.config, 'metadata.filter_metadata.istio.config');
  const cfgMatch = configPath ? /\/namespaces\/([^/]+)\/destination-rule\/([^/]+)$/.exec(configPath) : null;
  const istioConfig = cfgMatch ? `DestinationRule ${cfgMatch[1]}/${cfgMatch[2]}` : undefined;
  const subset = str(istio?.subset, 'metadata.filter_metadata.istio.subset');

  const commonLb = obj(c.common_lb_config, 'common_lb_config');
  const panic = num(commonLb?.healthy_panic_threshold, 'common_lb_config.healthy_panic_threshold');
  if (panic !== undefined && (panic < 0 || panic > 100)) fail(name, 'common_lb_config.healthy_panic_threshold: must be a percentage (0-100)');
  if (commonLb?.zone_aware_lb_config !== undefined) fail(name, 'common_lb_config.zone_aware_lb_config is not supported (Istio uses locality priorities)');
  const localityWeighted = commonLb?.locality_weighted_lb_config !== undefined;

  const ring = obj(c.ring_hash_lb_config, 'ring_hash_lb_config');
  const minRingSize = num(ring?.minimum_ring_size, 'ring_hash_lb_config.minimum_ring_size') ?? DEFAULTS.minRingSize;
  const maxRingSize = num(ring?.maximum_ring_size, 'ring_hash_lb_config.maximum_ring_size') ?? DEFAULTS.maxRingSize;
  if (minRingSize < 1 || maxRingSize > DEFAULTS.maxRingSize || minRingSize > maxRingSize) fail(name, `ring_hash_lb_config: need 1 <= minimum_ring_size (${minRingSize}) <= maximum_ring_size (${maxRingSize}) <= ${DEFAULTS.maxRingSize}`);
  const maglevTableSize = num(obj(c.maglev_lb_config, 'maglev_lb_config')?.table_size, 'maglev_lb_config.table_size') ?? DEFAULTS.maglevTableSize;
  if (!isPrime(maglevTableSize) || maglevTableSize > 5_000_011) fail(name, `maglev_lb_config.table_size: ${maglevTableSize} must be a prime number no larger than 5000011`);
  const choiceCount = num(obj(c.least_request_lb_config, 'least_request_lb_config')?.choice_count, 'least_request_lb_config.choice_count') ?? 2;
  if (!Number.isInteger(choiceCount) || choiceCount < 2) fail(name, 'least_request_lb_config.choice_count: must be at least 2');

  const family = enumName(c.dns_lookup_family, DNS_FAMILIES, 'dns_lookup_family') ?? 'AUTO';
  const dnsRefreshMs = durationMs(c.dns_refresh_rate, 'dns_refresh_rate') ?? DEFAULTS.dnsRefreshMs;
  if (dnsRefreshMs < 1) fail(name, 'dns_refresh_rate: must be at least 1ms');
  const dnsFailureRefreshMs = durationMs(obj(c.dns_failure_refresh_rate, 'dns_failure_refresh_rate')?.base_interval, 'dns_failure_refresh_rate.base_interval') ?? dnsRefreshMs;

  let loadAssignment: LoadAssignment | undefined;
  const la = obj(c.load_assignment, 'load_assignment');
  if (type === 'STATIC' || type === 'STRICT_DNS' || type === 'LOGICAL_DNS') {
    loadAssignment = la ? parseLoadAssignment(la, 'load_assignment', type !== 'STATIC') : undefined;
    if (type === 'LOGICAL_DNS' && loadAssignment?.endpoints.length !== 1) fail(name, 'a LOGICAL_DNS cluster needs exactly one endpoint in load_assignment');
    if (type === 'STRICT_DNS' && loadAssignment?.endpoints.some((e) => e.pipe !== undefined)) fail(name, 'load_assignment: a DNS cluster cannot have pipe endpoints');
  }
  const eds = obj(c.eds_cluster_config, 'eds_cluster_config');
  const edsServiceName = str(eds?.service_name, 'eds_cluster_config.service_name') || name;

  const od = obj(c.outlier_detection, 'outlier_detection');
  const cfg: ClusterConfig = {
    name,
    type,
    lbPolicy: lb,
    connectTimeoutMs,
    protocol,
    circuitBreakers,
    idleTimeoutMs,
    panicThreshold: panic ?? DEFAULTS.panicThreshold,
    localityWeighted,
    minRingSize,
    maxRingSize,
    maglevTableSize,
    choiceCount,
    dnsFamily: family === 'V4_ONLY' ? 4 : family === 'V6_ONLY' ? 6 : 0,
    dnsV4Preferred: family === 'V4_PREFERRED',
    dnsRefreshMs,
    dnsFailureRefreshMs,
    edsServiceName,
    http2MaxConcurrentStreams: Math.max(1, h2Streams),
    originalDstCleanupMs: durationMs(c.cleanup_interval, 'cleanup_interval') ?? DEFAULTS.originalDstCleanupMs,
    fingerprint: JSON.stringify(c),
    ...(bindAddress !== undefined ? { bindAddress } : {}),
    ...(service ? { service } : {}),
    ...(istioConfig ? { istioConfig } : {}),
    ...(subset ? { subset } : {}),
    ...(maxRequestsPerConnection ? { maxRequestsPerConnection } : {}),
    ...(loadAssignment ? { loadAssignment } : {}),
    ...(tcpKeepaliveSec !== undefined ? { tcpKeepaliveSec } : {}),
    ...(od ? { outlier: parseOutlier(od) } : {}),
  };
  return cfg;
}

function parseCircuitBreakers(cb: Json | undefined): CircuitBreakers {
  const d = DEFAULTS.circuitBreakers;
  const thresholds = arr(cb?.thresholds, 'circuit_breakers.thresholds');
  // The DEFAULT-priority thresholds (the router sends every request at default priority).
  const t = thresholds.map((x, i) => obj(x, `circuit_breakers.thresholds[${i}]`) ?? {}).find((x, i) => (enumName(x.priority, PRIORITIES, `circuit_breakers.thresholds[${i}].priority`) ?? 'DEFAULT') === 'DEFAULT');
  if (!t) return { ...d };
  const p = 'circuit_breakers.thresholds[0]';
  return {
    maxConnections: num(t.max_connections, `${p}.max_connections`) ?? d.maxConnections,
    maxPendingRequests: num(t.max_pending_requests, `${p}.max_pending_requests`) ?? d.maxPendingRequests,
    maxRequests: num(t.max_requests, `${p}.max_requests`) ?? d.maxRequests,
    maxRetries: num(t.max_retries, `${p}.max_retries`) ?? d.maxRetries,
  };
}

function parseOutlier(od: Json): OutlierConfig {
  const p = 'outlier_detection';
  const pct = (v: unknown, f: string, def: number): number => {
    const n = num(v, `${p}.${f}`) ?? def;
    if (n < 0 || n > 100) throw new ClusterConfigError(`${p}.${f}: must be a percentage (0-100)`);
    return n;
  };
  const base = durationMs(od.base_ejection_time, `${p}.base_ejection_time`) ?? 30_000;
  const interval = durationMs(od.interval, `${p}.interval`) ?? 10_000;
  if (interval <= 0) throw new ClusterConfigError(`${p}.interval: must be positive`);
  // Success-rate and failure-percentage ejection are not implemented; Istio disables them (enforcing_success_rate: 0).
  return {
    consecutive5xx: num(od.consecutive_5xx, `${p}.consecutive_5xx`) ?? 5,
    enforcingConsecutive5xx: pct(od.enforcing_consecutive_5xx, 'enforcing_consecutive_5xx', 100),
    consecutiveGatewayFailure: num(od.consecutive_gateway_failure, `${p}.consecutive_gateway_failure`) ?? 5,
    enforcingConsecutiveGatewayFailure: pct(od.enforcing_consecutive_gateway_failure, 'enforcing_consecutive_gateway_failure', 0),
    splitExternalLocalOriginErrors: bool(od.split_external_local_origin_errors, `${p}.split_external_local_origin_errors`) ?? false,
    consecutiveLocalOriginFailure: num(od.consecutive_local_origin_failure, `${p}.consecutive_local_origin_failure`) ?? 5,
    enforcingConsecutiveLocalOriginFailure: pct(od.enforcing_consecutive_local_origin_failure, 'enforcing_consecutive_local_origin_failure', 100),
    intervalMs: interval,
    baseEjectionTimeMs: base,
    maxEjectionTimeMs: Math.max(base, durationMs(od.max_ejection_time, `${p}.max_ejection_time`) ?? 300_000),
    maxEjectionPercent: pct(od.max_ejection_percent, 'max_ejection_percent', 10),
    alwaysEjectOneHost: bool(od.always_eject_one_host, `${p}.always_eject_one_host`) ?? false,
  };
}

function isPrime(n: number): boolean {
  if (!Number.isInteger(n) || n < 2) return false;
  for (let i = 2; i * i <= n; i++) if (n % i === 0) return false;
  return true;
}
