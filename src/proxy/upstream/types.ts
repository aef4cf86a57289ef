// The upstream contract between the router and the cluster manager: clusters, hosts, load balancing
// and connections. The router does retries and timeouts; a cluster chooses a host, enforces its
// circuit breakers, pools connections and learns (outlier detection) from the outcomes it is told.

import type { Readable } from 'node:stream';
import type { Socket } from 'node:net';
import type { ResponseFlag } from '../stream-info.ts';

export interface Locality {
  region?: string;
  zone?: string;
  sub_zone?: string;
}

/** One endpoint of a cluster. Mutable state (active requests, ejection) lives on the object. */
export interface Host {
  readonly address: string;
  readonly port: number;
  /** "ip:port" (or the pipe path). */
  readonly key: string;
  readonly weight: number;
  readonly locality: Locality;
  readonly priority: number;
  /** Istio's endpoint metadata: `name;namespace;canonical;revision;cluster` (filter_metadata.istio.workload). */
  readonly workload?: string;
  /** health_status from EDS is HEALTHY/UNKNOWN and the outlier detector has not ejected it. */
  healthy(): boolean;
  /** Requests in flight to this host (for LEAST_REQUEST). */
  readonly activeRequests: number;
}

/** What the load balancer may use to choose. Every field may be absent. */
export interface LbContext {
  /** From the route's hash policy (header, cookie, source IP, query parameter); RING_HASH/MAGLEV use it. */
  hashKey?: string;
  /** Hosts tried by earlier attempts (retry_host_predicate previous_hosts): avoided when others exist. */
  previousHosts?: ReadonlySet<string>;
  /** For ORIGINAL_DST clusters: where the connection was originally going. */
  originalDst?: { address: string; port: number };
  /** The proxy's own locality, for locality-weighted balancing. */
  localLocality?: Locality;
}

/** Outcome of one request to a host, reported to the cluster for outlier detection and stats. */
export type HostOutcome =
  | { kind: 'response'; status: number }
  | { kind: 'connect_failure' }
  | { kind: 'reset' }
  | { kind: 'timeout' };

export type UpstreamErrorKind = 'overflow' | 'no_healthy_upstream' | 'connect_failure' | 'connect_timeout' | 'reset' | 'protocol_error' | 'retry_overflow';

/** A failure before or instead of an upstream response; `flag` is the access-log response flag. */
export class UpstreamError extends Error {
  readonly kind: UpstreamErrorKind;
  readonly flag: ResponseFlag;
  readonly host?: Host;
  /** %UPSTREAM_TRANSPORT_FAILURE_REASON% / detail for x-tsmesh-error, e.g. "connect ECONNREFUSED 10.244.0.5:9080". */
  readonly detail: string;
  constructor(kind: UpstreamErrorKind, detail: string, host?: Host) {
    super(`${kind}: ${detail}`);
    this.kind = kind;
    this.detail = detail;
    if (host) this.host = host;
    this.flag = kind === 'overflow' || kind === 'retry_overflow' ? 'UO' : kind === 'no_healthy_upstream' ? 'UH' : kind === 'reset' ? 'UR' : kind === 'protocol_error' ? 'UPE' : 'UF';
  }
}

export type OutgoingHeaders = Record<string, string | string[]>;

/**
 * What aborts an upstream request: an AbortSignal, or anything with these members (the router's
 * Cancellation, which is much cheaper to make per request than an AbortController).
 */
export interface AbortSignalLike {
  readonly aborted: boolean;
  readonly reason: unknown;
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

export interface UpstreamHttpRequest {
  method: string;
  /** Path with query string. */
  path: string;
  /** Lower-case names; hop-by-hop headers already removed; includes host/:authority as `host`. */
  headers: OutgoingHeaders;
  /** A buffered body (retries replay it) or a stream (no retries once it is consumed); null = none. */
  body: Buffer | Readable | null;
  /** Aborts the request (route timeout, per-try timeout, downstream gone). */
  signal: AbortSignalLike;
}

export interface UpstreamHttpResponse {
  statusCode: number;
  /** Lower-case names. */
  headers: Record<string, string | string[] | undefined>;
  body: Readable;
  /** Resolves with the trailers when the body ends (HTTP/2, gRPC); {} for HTTP/1. */
  trailers: Promise<Record<string, string>>;
  /** "ip:port" of the local side of the upstream connection. */
  localAddress?: string;
  /**
   * True when the response has no body at all: HTTP/2 END_STREAM on the headers (a gRPC trailers-only
   * response, a 204). The body stream may already have ended by the time the caller sees it.
   */
  endStream?: boolean;
  /**
   * The whole body, when it had arrived with the head (HTTP/1.1; trailers are then {}): the caller may send it
   * as is instead of reading `body` (which then need not be made at all).
   */
  fullBody?: Buffer;
}

export interface CircuitBreakers {
  maxConnections: number;
  maxPendingRequests: number;
  maxRequests: number;
  maxRetries: number;
}

/** A cluster's immutable settings, from CDS. */
export interface ClusterInfo {
  readonly name: string;
  readonly type: 'EDS' | 'STATIC' | 'STRICT_DNS' | 'LOGICAL_DNS' | 'ORIGINAL_DST';
  readonly lbPolicy: 'ROUND_ROBIN' | 'LEAST_REQUEST' | 'RANDOM' | 'RING_HASH' | 'MAGLEV' | 'CLUSTER_PROVIDED';
  readonly connectTimeoutMs: number;
  /** 'http2' for h2/gRPC upstreams (HttpProtocolOptions explicit http2), else 'http1'. */
  readonly protocol: 'http1' | 'http2';
  readonly circuitBreakers: CircuitBreakers;
  /** source_address of upstream_bind_config (127.0.0.6 for inbound clusters). */
  readonly bindAddress?: string;
  /** filter_metadata.istio.services[0]: the service this cluster is for. */
  readonly service?: { host: string; name?: string; namespace?: string };
  readonly idleTimeoutMs?: number;
  readonly maxRequestsPerConnection?: number;
}

export interface UpstreamCluster {
  readonly info: ClusterInfo;
  /** The hosts EDS (or the static config) gave, in priority order. */
  readonly hosts: readonly Host[];
  /** A healthy host chosen by the cluster's lb policy; undefined when none is healthy (→ 503 UH). */
  chooseHost(ctx: LbContext): Host | undefined;
  /** Sends one HTTP request to `host`, within the circuit breakers; rejects with UpstreamError. */
  request(host: Host, req: UpstreamHttpRequest): Promise<UpstreamHttpResponse>;
  /** Opens a TCP connection to `host` (tcp_proxy), within max_connections; rejects with UpstreamError. */
  connect(host: Host, signal?: AbortSignal): Promise<Socket>;
  /** Reserves a retry within max_retries; false = retry overflow. Call releaseRetry when it ends. */
  tryRetry(): boolean;
  releaseRetry(): void;
  /** Tells the outlier detector how a request to `host` went. */
  report(host: Host, outcome: HostOutcome): void;
  /**
   * Why chooseHost() returned undefined, naming the cluster and its config (for x-tsmesh-error), e.g.
   * "outbound|9080|v2|reviews.bookinfo.svc.cluster.local has 0 endpoints (subset v2 of DestinationRule bookinfo/reviews)".
   */
  explainNoHost?(): string;
}

/** Everything CDS and EDS configured, swapped as a whole on every update. */
export interface ClusterManager {
  get(name: string): UpstreamCluster | undefined;
  /** Applies CDS (the full set); clusters that disappear are drained and closed. */
  setClusters(clusters: ReadonlyArray<Record<string, unknown>>): void;
  /** Applies EDS load assignments (by cluster_name). */
  setEndpoints(assignments: ReadonlyArray<Record<string, unknown>>): void;
  /** For /clusters and proxy-config: every cluster with its hosts and their health/outlier state. */
  describe(): Array<{ name: string; hosts: Array<{ key: string; healthy: boolean; ejected: boolean; weight: number; activeRequests: number; locality: Locality }> }>;
  close(): Promise<void>;
}
