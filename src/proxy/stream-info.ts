// StreamInfo: what the proxy records about one HTTP request or one TCP connection, filled in along the
// data path and read once at the end by the access log and the metrics. Plain data; never throws.

/** Envoy's response flags (the short names its access log prints). */
export const RESPONSE_FLAGS = {
  UH: 'no healthy upstream host',
  UF: 'upstream connection failure',
  UO: 'upstream overflow (circuit breaking)',
  NR: 'no route configured',
  URX: 'upstream retry limit exceeded',
  UT: 'upstream request timeout',
  LH: 'local service failed health check',
  UR: 'upstream remote reset',
  UC: 'upstream connection termination',
  DC: 'downstream connection termination',
  LR: 'connection local reset',
  DI: 'request delayed by fault injection',
  FI: 'request aborted by fault injection',
  RL: 'rate limited locally',
  UAEX: 'unauthorized (external authorization)',
  RLSE: 'rate limit service error',
  IH: 'invalid Envoy request headers',
  SI: 'stream idle timeout',
  DPE: 'downstream protocol error',
  UPE: 'upstream protocol error',
  UMSDR: 'upstream max stream duration reached',
  NC: 'no cluster found',
  DT: 'duration timeout',
} as const;

export type ResponseFlag = keyof typeof RESPONSE_FLAGS;

/** Istio's peer/workload identity, as carried by x-envoy-peer-metadata and endpoint metadata. */
export interface WorkloadMetadata {
  workload?: string;
  namespace?: string;
  app?: string;
  version?: string;
  canonicalService?: string;
  canonicalRevision?: string;
  /** SPIFFE identity, e.g. spiffe://cluster.local/ns/default/sa/bookinfo-productpage. */
  principal?: string;
  cluster?: string;
}

export type Direction = 'inbound' | 'outbound';

export interface StreamInfo {
  /** Epoch milliseconds when the first byte of the request (or the connection) arrived. */
  startTime: number;
  /** Set when the stream ends; duration = endTime - startTime. */
  endTime?: number;
  direction: Direction;
  kind: 'http' | 'tcp';

  // ---- HTTP request ----
  method?: string;
  /** x-envoy-original-path if present, else :path. */
  path?: string;
  /** 'HTTP/1.1', 'HTTP/2', 'HTTP/1.0'; undefined for TCP. */
  protocol?: string;
  /** Request header lookup (lower-case names). */
  requestHeader?: (name: string) => string | undefined;
  /** Response header lookup (lower-case names). */
  responseHeader?: (name: string) => string | undefined;
  /** Trailer lookup (grpc-status). */
  responseTrailer?: (name: string) => string | undefined;
  authority?: string;
  requestId?: string;

  // ---- result ----
  /** 0 when no response was sent (connection reset before headers). */
  responseCode: number;
  responseFlags: ResponseFlag[];
  /** Envoy's %RESPONSE_CODE_DETAILS%: via_upstream, route_not_found, upstream_reset_before_response_started{...}, fault_filter_abort... */
  responseCodeDetails?: string;
  connectionTerminationDetails?: string;
  upstreamTransportFailureReason?: string;
  bytesReceived: number;
  bytesSent: number;
  /** Time from the request's start until the upstream's response headers, ms. */
  upstreamServiceTimeMs?: number;

  // ---- where it went ----
  routeName?: string;
  /** Cluster name as in xDS (%UPSTREAM_CLUSTER_RAW%). */
  upstreamCluster?: string;
  /** "ip:port" of the chosen endpoint. */
  upstreamHost?: string;
  upstreamLocalAddress?: string;
  downstreamLocalAddress?: string;
  downstreamRemoteAddress?: string;
  requestedServerName?: string;
  /** Retries performed (attempt count - 1). */
  retries?: number;

  // ---- for Istio's metrics ----
  source?: WorkloadMetadata;
  destination?: WorkloadMetadata;
  /** destination_service (FQDN) and its name/namespace. */
  destinationService?: { host: string; name?: string; namespace?: string };
  connectionSecurityPolicy?: 'mutual_tls' | 'none' | 'unknown';
  requestProtocolLabel?: 'http' | 'grpc' | 'tcp';
  /** gRPC messages seen in each direction (istio_request_messages_total / istio_response_messages_total); absent when not counted. */
  grpcRequestMessages?: number;
  grpcResponseMessages?: number;
}

export function newStreamInfo(direction: Direction, kind: 'http' | 'tcp', now: number): StreamInfo {
  return { startTime: now, direction, kind, responseCode: 0, responseFlags: [], bytesReceived: 0, bytesSent: 0 };
}

export function addFlag(info: StreamInfo, flag: ResponseFlag): void {
  if (!info.responseFlags.includes(flag)) info.responseFlags.push(flag);
}

/** Envoy prints the flags comma-separated, '-' when none. */
export function formatFlags(flags: readonly ResponseFlag[]): string {
  return flags.length === 0 ? '-' : flags.join(',');
}
