// Istio's standard metrics (istio_requests_total, istio_request_duration_milliseconds, ..., istio_tcp_*) recorded
// from a finished StreamInfo by either reporter, with Istio's labels in Istio's order; one cached series object per
// label set. Absent values become "unknown"; recording never throws.

import type { StreamInfo, WorkloadMetadata } from '../stream-info.ts';
import { formatFlags } from '../stream-info.ts';
import { systemClock, type Clock } from './clock.ts';
import { grpcStatusOf } from './filter.ts';
import { addressWithoutPort } from './format.ts';
import { Counter, Histogram, MetricFamily, renderFamilies, type MetricDef } from './prometheus.ts';

/** Istio's label names, in Istio's order (HTTP and gRPC metrics). */
export const ISTIO_HTTP_LABELS = [
  'reporter', 'source_workload', 'source_canonical_service', 'source_canonical_revision', 'source_workload_namespace',
  'source_principal', 'source_app', 'source_version', 'source_cluster', 'destination_workload', 'destination_workload_namespace',
  'destination_principal', 'destination_app', 'destination_version', 'destination_service', 'destination_canonical_service',
  'destination_canonical_revision', 'destination_service_name', 'destination_service_namespace', 'destination_cluster',
  'request_protocol', 'response_code', 'grpc_response_status', 'response_flags', 'connection_security_policy',
] as const;

/** TCP metrics carry the same labels without response_code and grpc_response_status. */
export const ISTIO_TCP_LABELS: readonly string[] = ISTIO_HTTP_LABELS.filter((l) => l !== 'response_code' && l !== 'grpc_response_status');

/** Istio's buckets for istio_request_duration_milliseconds. */
export const DURATION_BUCKETS_MS = [0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000] as const;
/** Istio's buckets for istio_request_bytes and istio_response_bytes. */
export const SIZE_BUCKETS_BYTES = [1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000, 1000000000] as const;

const HTTP = ISTIO_HTTP_LABELS;
const TCP = ISTIO_TCP_LABELS;

/** Every metric this component records, declared once. */
export const ISTIO_METRICS = {
  requests: { name: 'istio_requests_total', type: 'counter', help: 'Requests handled by the proxy, by reporter', labels: HTTP },
  duration: { name: 'istio_request_duration_milliseconds', type: 'histogram', help: 'Request duration in milliseconds', labels: HTTP, buckets: DURATION_BUCKETS_MS },
  requestBytes: { name: 'istio_request_bytes', type: 'histogram', help: 'HTTP request body sizes in bytes', labels: HTTP, buckets: SIZE_BUCKETS_BYTES },
  responseBytes: { name: 'istio_response_bytes', type: 'histogram', help: 'HTTP response body sizes in bytes', labels: HTTP, buckets: SIZE_BUCKETS_BYTES },
  requestMessages: { name: 'istio_request_messages_total', type: 'counter', help: 'gRPC messages sent by clients', labels: HTTP },
  responseMessages: { name: 'istio_response_messages_total', type: 'counter', help: 'gRPC messages sent by servers', labels: HTTP },
  tcpOpened: { name: 'istio_tcp_connections_opened_total', type: 'counter', help: 'TCP connections opened', labels: TCP },
  tcpClosed: { name: 'istio_tcp_connections_closed_total', type: 'counter', help: 'TCP connections closed', labels: TCP },
  tcpSent: { name: 'istio_tcp_sent_bytes_total', type: 'counter', help: 'Bytes sent to the downstream over TCP', labels: TCP },
  tcpReceived: { name: 'istio_tcp_received_bytes_total', type: 'counter', help: 'Bytes received from the downstream over TCP', labels: TCP },
} as const satisfies Record<string, MetricDef>;

/** Clusters whose traffic Istio labels destination_service_name with the cluster's own name. */
const VIRTUAL_CLUSTERS = new Set(['PassthroughCluster', 'BlackHoleCluster', 'InboundPassthroughCluster', 'InboundPassthroughClusterIpv4', 'InboundPassthroughClusterIpv6']);
const UNKNOWN = 'unknown';

/** The cells of one HTTP label set; the gRPC message counters exist only once something was counted. */
interface HttpSeries {
  values: string[];
  requests: Counter;
  duration: Histogram;
  requestBytes: Histogram;
  responseBytes: Histogram;
  requestMessages?: Counter;
  responseMessages?: Counter;
}

/** The labels every HTTP series of one cluster, peer, direction, protocol and policy shares, and its series. */
interface HttpBase {
  /** The labels before response_code. */
  head: string[];
  /** connection_security_policy. */
  policy: string;
  /** Series without flags or grpc status, by response code. */
  byCode: Map<number, HttpSeries>;
  /** The others, by "code|grpc|flags". */
  other: Map<string, HttpSeries>;
}

/** The key of streams without peer metadata. */
const NO_PEER: WorkloadMetadata = {};

/** The cells of one TCP label set, created on first use (a close with a new flag has no "opened"). */
interface TcpSeries {
  values: string[];
  opened?: Counter;
  closed?: Counter;
  sent?: Counter;
  received?: Counter;
}

/** The 8 label values of one side (workload, canonical service/revision, namespace, principal, app, version, cluster). */
interface Side {
  workload: string;
  canonicalService: string;
  canonicalRevision: string;
  namespace: string;
  app: string;
  version: string;
  cluster: string;
}

function side(m: WorkloadMetadata | undefined): Side {
  return {
    workload: m?.workload || UNKNOWN,
    canonicalService: m?.canonicalService || UNKNOWN,
    // Istio's injector defaults the canonical revision to "latest" for a known canonical service.
    canonicalRevision: m?.canonicalRevision || (m?.canonicalService ? 'latest' : UNKNOWN),
    namespace: m?.namespace || UNKNOWN,
    app: m?.app || UNKNOWN,
    version: m?.version || UNKNOWN,
    cluster: m?.cluster || UNKNOWN,
  };
}

export interface IstioMetricsOptions {
  clock?: Clock;
}

/**
 * Istio's metrics for one proxy. `self` is this proxy's workload (from its bootstrap), the local side of every
 * stream: the source for outbound streams (reporter="source"), the destination for inbound ones
 * (reporter="destination"). The peer side comes from StreamInfo.source / .destination.
 */
export class IstioMetrics {
  readonly families: readonly MetricFamily[];
  readonly #f: { [K in keyof typeof ISTIO_METRICS]: MetricFamily<(typeof ISTIO_METRICS)[K]['type']> };
  readonly #self: Side;
  readonly #selfPrincipal: string | undefined;
  readonly #clock: Clock;
  readonly #http = new Map<string, HttpSeries>();
  readonly #tcp = new Map<string, TcpSeries>();
  readonly #peerSides = new WeakMap<WorkloadMetadata, Side>();
  readonly #clusterServices = new Map<string, [string, string, string] | null>();
  readonly #tcpReported = new WeakMap<StreamInfo, { received: number; sent: number }>();
  readonly #bases = new Map<string, { service: StreamInfo['destinationService']; byPeer: WeakMap<WorkloadMetadata, Array<HttpBase | undefined>> }>();

  constructor(self: WorkloadMetadata, opts: IstioMetricsOptions = {}) {
    this.#self = side(self);
    this.#selfPrincipal = self.principal || undefined;
    this.#clock = opts.clock ?? systemClock;
    const m = ISTIO_METRICS;
    this.#f = {
      requests: new MetricFamily(m.requests), duration: new MetricFamily(m.duration), requestBytes: new MetricFamily(m.requestBytes),
      responseBytes: new MetricFamily(m.responseBytes), requestMessages: new MetricFamily(m.requestMessages),
      responseMessages: new MetricFamily(m.responseMessages), tcpOpened: new MetricFamily(m.tcpOpened), tcpClosed: new MetricFamily(m.tcpClosed),
      tcpSent: new MetricFamily(m.tcpSent), tcpReceived: new MetricFamily(m.tcpReceived),
    };
    this.families = Object.values(this.#f);
  }

  /** Records one finished HTTP or gRPC request. */
  recordHttp(info: StreamInfo): void {
    try {
      const s = this.#cachedSeries(info) ?? this.#series(this.#labels(info, true));
      s.requests.inc();
      const end = info.endTime ?? this.#clock.now();
      s.duration.observe(Math.max(0, end - info.startTime));
      s.requestBytes.observe(info.bytesReceived);
      s.responseBytes.observe(info.bytesSent);
      if (info.grpcRequestMessages !== undefined) (s.requestMessages ??= this.#f.requestMessages.get(s.values)).inc(info.grpcRequestMessages);
      if (info.grpcResponseMessages !== undefined) (s.responseMessages ??= this.#f.responseMessages.get(s.values)).inc(info.grpcResponseMessages);
    } catch {
      // A StreamInfo lookup that throws must not take the proxy down; the request is simply not counted.
    }
  }

  /** The series of a full HTTP label set, made (and kept) on first use. */
  #series(values: string[]): HttpSeries {
    const key = values.join('\u0001');
    let s = this.#http.get(key);
    if (!s) {
      const f = this.#f;
      s = { values, requests: f.requests.get(values), duration: f.duration.get(values), requestBytes: f.requestBytes.get(values), responseBytes: f.responseBytes.get(values) };
      this.#http.set(key, s);
    }
    return s;
  }

  /**
   * The series of a stream through a known (non-virtual) cluster without building its 25 labels: label sets are
   * cached per cluster, peer, direction, protocol and security policy, then by response code (and by grpc status
   * and flags when there are any). Undefined when the stream does not qualify (the caller builds the labels).
   */
  #cachedSeries(info: StreamInfo): HttpSeries | undefined {
    const cluster = info.upstreamCluster;
    const protocol = info.requestProtocolLabel;
    if (cluster === undefined || protocol === undefined || VIRTUAL_CLUSTERS.has(cluster)) return undefined;
    let perCluster = this.#bases.get(cluster);
    if (!perCluster || perCluster.service !== info.destinationService) {
      if (this.#bases.size > 10_000) this.#bases.clear();
      perCluster = { service: info.destinationService, byPeer: new WeakMap() };
      this.#bases.set(cluster, perCluster);
    }
    const outbound = info.direction === 'outbound';
    const peerMeta = (outbound ? info.destination : info.source) ?? NO_PEER;
    let slots = perCluster.byPeer.get(peerMeta);
    if (!slots) perCluster.byPeer.set(peerMeta, (slots = []));
    const policy = info.connectionSecurityPolicy;
    const slot = (outbound ? 0 : 12) + (protocol === 'http' ? 0 : protocol === 'grpc' ? 4 : 8) + (policy === undefined ? 0 : policy === 'none' ? 1 : policy === 'mutual_tls' ? 2 : 3);
    let base = slots[slot];
    if (!base) {
      const values = this.#labels(info, false);
      // the TCP label order: ..., request_protocol, response_flags, connection_security_policy
      base = { head: values.slice(0, -2), policy: values.at(-1) as string, byCode: new Map(), other: new Map() };
      slots[slot] = base;
    }
    const grpc = protocol === 'grpc' ? grpcStatusOf(info) : undefined;
    const code = info.responseCode;
    if (grpc === undefined && info.responseFlags.length === 0) {
      let s = base.byCode.get(code);
      if (!s) base.byCode.set(code, (s = this.#series([...base.head, String(code), '', '-', base.policy])));
      return s;
    }
    const flags = formatFlags(info.responseFlags);
    const grpcText = grpc === undefined ? '' : String(grpc);
    const key = `${code}|${grpcText}|${flags}`;
    let s = base.other.get(key);
    if (!s) {
      if (base.other.size > 1000) base.other.clear();
      base.other.set(key, (s = this.#series([...base.head, String(code), grpcText, flags, base.policy])));
    }
    return s;
  }

  /** A TCP connection to the upstream was established. */
  recordTcpOpen(info: StreamInfo): void {
    try {
      const s = this.#tcpSeries(info);
      (s.opened ??= this.#f.tcpOpened.get(s.values)).inc();
      if (!this.#tcpReported.has(info)) this.#tcpReported.set(info, { received: 0, sent: 0 });
    } catch {
      // never throw on the data path
    }
  }

  /** Adds the bytes moved since the last report (call periodically for long connections, and at close). */
  recordTcpBytes(info: StreamInfo): void {
    try {
      let seen = this.#tcpReported.get(info);
      if (!seen) this.#tcpReported.set(info, (seen = { received: 0, sent: 0 }));
      const received = info.bytesReceived - seen.received;
      const sent = info.bytesSent - seen.sent;
      if (received <= 0 && sent <= 0) return;
      const s = this.#tcpSeries(info);
      if (received > 0) (s.received ??= this.#f.tcpReceived.get(s.values)).inc(received);
      if (sent > 0) (s.sent ??= this.#f.tcpSent.get(s.values)).inc(sent);
      seen.received = info.bytesReceived;
      seen.sent = info.bytesSent;
    } catch {
      // never throw on the data path
    }
  }

  /** The connection ended: the last bytes, then the close (with its final response flags). */
  recordTcpClose(info: StreamInfo): void {
    this.recordTcpBytes(info);
    try {
      const s = this.#tcpSeries(info);
      (s.closed ??= this.#f.tcpClosed.get(s.values)).inc();
      this.#tcpReported.delete(info);
    } catch {
      // never throw on the data path
    }
  }

  /** The Prometheus exposition of every series recorded so far. */
  render(): string {
    return renderFamilies(this.families);
  }

  #tcpSeries(info: StreamInfo): TcpSeries {
    const values = this.#labels(info, false);
    const key = values.join('\u0001');
    let s = this.#tcp.get(key);
    if (!s) this.#tcp.set(key, (s = { values }));
    return s;
  }

  #peer(m: WorkloadMetadata | undefined): Side {
    if (!m) return UNKNOWN_SIDE;
    let s = this.#peerSides.get(m);
    if (!s) this.#peerSides.set(m, (s = side(m)));
    return s;
  }

  /** [destination_service, destination_service_name, destination_service_namespace]. */
  #destinationService(info: StreamInfo): [string, string, string] {
    const cluster = info.upstreamCluster;
    if (cluster !== undefined && VIRTUAL_CLUSTERS.has(cluster)) {
      const host = info.destinationService?.host || (info.kind === 'http' ? addressWithoutPort(authorityOf(info)) : undefined);
      return [host || UNKNOWN, cluster, UNKNOWN];
    }
    const svc = info.destinationService;
    if (svc?.host) return [svc.host, svc.name || svc.host, svc.namespace || UNKNOWN];
    if (cluster !== undefined) {
      let parsed = this.#clusterServices.get(cluster);
      if (parsed === undefined) {
        parsed = serviceFromClusterName(cluster);
        if (this.#clusterServices.size > 10_000) this.#clusterServices.clear();
        this.#clusterServices.set(cluster, parsed);
      }
      if (parsed) return parsed;
    }
    const host = info.kind === 'http' ? addressWithoutPort(authorityOf(info)) : undefined;
    return host ? [host, host, UNKNOWN] : [UNKNOWN, UNKNOWN, UNKNOWN];
  }

  #labels(info: StreamInfo, http: boolean): string[] {
    const outbound = info.direction === 'outbound';
    const peerMeta = outbound ? info.destination : info.source;
    const peer = this.#peer(peerMeta);
    const src = outbound ? this.#self : peer;
    const dst = outbound ? peer : this.#self;
    // The peer's principal is what its certificate said (set only under mTLS); ours counts only then too.
    const peerPrincipal = peerMeta?.principal || undefined;
    const mtls = info.connectionSecurityPolicy === 'mutual_tls' || peerPrincipal !== undefined;
    const selfPrincipal = mtls ? this.#selfPrincipal : undefined;
    const srcPrincipal = (outbound ? selfPrincipal : peerPrincipal) ?? UNKNOWN;
    const dstPrincipal = (outbound ? peerPrincipal : selfPrincipal) ?? UNKNOWN;
    const [service, serviceName, serviceNamespace] = this.#destinationService(info);
    const protocol = info.requestProtocolLabel ?? (info.kind === 'tcp' ? 'tcp' : isGrpc(info) ? 'grpc' : 'http');
    // Istio: the source reporter always says unknown; the destination reporter says mutual_tls or none.
    const policy = outbound ? UNKNOWN : (info.connectionSecurityPolicy ?? 'none');
    const v: string[] = [
      outbound ? 'source' : 'destination',
      src.workload, src.canonicalService, src.canonicalRevision, src.namespace, srcPrincipal, src.app, src.version, src.cluster,
      dst.workload, dst.namespace, dstPrincipal, dst.app, dst.version, service, dst.canonicalService, dst.canonicalRevision,
      serviceName, serviceNamespace, dst.cluster, protocol,
    ];
    if (http) {
      const grpc = protocol === 'grpc' ? grpcStatusOf(info) : undefined;
      v.push(String(info.responseCode), grpc === undefined ? '' : String(grpc));
    }
    v.push(formatFlags(info.responseFlags), policy);
    return v;
  }
}

const UNKNOWN_SIDE: Side = side(undefined);

function authorityOf(info: StreamInfo): string | undefined {
  return info.requestHeader?.(':authority') || info.requestHeader?.('host') || info.authority;
}

function isGrpc(info: StreamInfo): boolean {
  const ct = info.requestHeader?.('content-type');
  return ct !== undefined && ct.startsWith('application/grpc');
}

/**
 * Istio's cluster names: `outbound|9080|v1|reviews.default.svc.cluster.local` names the service host; a
 * Kubernetes host gives name and namespace. Inbound clusters (`inbound|9080||`) name no service: null.
 */
export function serviceFromClusterName(cluster: string): [string, string, string] | null {
  const parts = cluster.split('|');
  if (parts.length !== 4 || parts[0] !== 'outbound') return null;
  const host = parts[3] ?? '';
  if (!host) return null;
  const labels = host.split('.');
  if (labels.length >= 3 && labels[2] === 'svc') return [host, labels[0] ?? host, labels[1] ?? UNKNOWN];
  return [host, host, UNKNOWN];
}
