// DestinationRule traffic policies: merging rule, port and subset levels the way Istio does, and
// turning the result into Envoy Cluster fields (lb_policy, circuit_breakers, outlier_detection,
// protocol options). Pure; invalid values were rejected by validation, anything odd is skipped.

import { parseDuration, protoDuration } from '../../common/duration.ts';
import type { ConnectionPoolSettings, LoadBalancerSettings, OutlierDetection, PortTrafficPolicy, TrafficPolicy } from '../../config/types.ts';

/** Envoy's "no limit" for circuit breaker thresholds, which Istio sets explicitly. */
export const MAX_UINT32 = 4294967295;

type Json = Record<string, unknown>;

/**
 * The effective policy for one port of one (sub)set: the rule's policy, overridden field by field
 * (loadBalancer, connectionPool, outlierDetection, tls) by the rule's portLevelSettings for the port,
 * then by the subset's policy and the subset's own portLevelSettings.
 */
export function effectivePolicy(rule: TrafficPolicy | undefined, subset: TrafficPolicy | undefined, port: number): PortTrafficPolicy {
  const out: PortTrafficPolicy = {};
  const apply = (p: TrafficPolicy | PortTrafficPolicy | undefined): void => {
    if (!p) return;
    if (p.loadBalancer) out.loadBalancer = p.loadBalancer;
    if (p.connectionPool) out.connectionPool = p.connectionPool;
    if (p.outlierDetection) out.outlierDetection = p.outlierDetection;
    if (p.tls) out.tls = p.tls;
  };
  const portLevel = (p: TrafficPolicy | undefined): PortTrafficPolicy | undefined => p?.portLevelSettings?.find((s) => s.port?.number === port);
  apply(rule);
  apply(portLevel(rule));
  apply(subset);
  apply(portLevel(subset));
  return out;
}

/** Envoy lb_policy and its config for an Istio loadBalancer setting (Istio's default is LEAST_REQUEST). */
export function lbPolicyFields(lb: LoadBalancerSettings | undefined): Json {
  const ch = lb?.consistentHash;
  if (ch) {
    if (ch.maglev) return { lb_policy: 'MAGLEV', ...(ch.maglev.tableSize ? { maglev_lb_config: { table_size: ch.maglev.tableSize } } : {}) };
    const minRing = ch.ringHash?.minimumRingSize ?? ch.minimumRingSize;
    return { lb_policy: 'RING_HASH', ...(minRing ? { ring_hash_lb_config: { minimum_ring_size: minRing } } : {}) };
  }
  switch (lb?.simple) {
    case 'ROUND_ROBIN':
      return { lb_policy: 'ROUND_ROBIN' };
    case 'RANDOM':
      return { lb_policy: 'RANDOM' };
    case 'PASSTHROUGH':
      return { lb_policy: 'CLUSTER_PROVIDED' };
    default:
      return { lb_policy: 'LEAST_REQUEST' };
  }
}

/** circuit_breakers: Istio sets every threshold, unlimited unless the connection pool says otherwise. */
export function circuitBreakers(cp: ConnectionPoolSettings | undefined): Json {
  return {
    thresholds: [
      {
        max_connections: cp?.tcp?.maxConnections ?? MAX_UINT32,
        max_pending_requests: cp?.http?.http1MaxPendingRequests ?? MAX_UINT32,
        max_requests: cp?.http?.http2MaxRequests ?? MAX_UINT32,
        max_retries: cp?.http?.maxRetries ?? MAX_UINT32,
        track_remaining: true,
      },
    ],
  };
}

/** Envoy outlier_detection for Istio's; undefined when the policy has none. */
export function outlierDetection(od: OutlierDetection | undefined): Json | undefined {
  if (!od) return undefined;
  const out: Json = { enforcing_success_rate: 0 };
  const c5xx = od.consecutive5xxErrors ?? od.consecutiveErrors;
  if (c5xx !== undefined) {
    out.consecutive_5xx = c5xx;
    out.enforcing_consecutive_5xx = c5xx > 0 ? 100 : 0;
  } else {
    out.enforcing_consecutive_5xx = 0;
  }
  if (od.consecutiveGatewayErrors !== undefined) {
    out.consecutive_gateway_failure = od.consecutiveGatewayErrors;
    out.enforcing_consecutive_gateway_failure = od.consecutiveGatewayErrors > 0 ? 100 : 0;
  }
  if (od.splitExternalLocalOriginErrors) {
    out.split_external_local_origin_errors = true;
    if (od.consecutiveLocalOriginFailures !== undefined) {
      out.consecutive_local_origin_failure = od.consecutiveLocalOriginFailures;
      out.enforcing_consecutive_local_origin_failure = 100;
    }
  }
  const interval = od.interval ? parseDuration(od.interval) : undefined;
  if (interval !== undefined) out.interval = protoDuration(interval);
  const base = od.baseEjectionTime ? parseDuration(od.baseEjectionTime) : undefined;
  if (base !== undefined) out.base_ejection_time = protoDuration(base);
  if (od.maxEjectionPercent !== undefined) out.max_ejection_percent = od.maxEjectionPercent;
  return out;
}

/** HttpProtocolOptions for an upstream: HTTP/2 for h2/gRPC ports, idle timeout and requests per connection. */
export function httpProtocolOptions(http2: boolean, cp: ConnectionPoolSettings | undefined): Json | undefined {
  const common: Json = {};
  const idle = cp?.http?.idleTimeout ? parseDuration(cp.http.idleTimeout) : undefined;
  if (idle !== undefined) common.idle_timeout = protoDuration(idle);
  if (cp?.http?.maxRequestsPerConnection) common.max_requests_per_connection = cp.http.maxRequestsPerConnection;
  const upgrade = cp?.http?.h2UpgradePolicy === 'UPGRADE';
  if (!http2 && !upgrade && Object.keys(common).length === 0) return undefined;
  const opts: Json = {
    '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
    explicit_http_config: http2 || upgrade ? { http2_protocol_options: {} } : { http_protocol_options: {} },
  };
  if (Object.keys(common).length > 0) opts.common_http_protocol_options = common;
  return { 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': opts };
}
