// The shared, per-process context of the sidecar's data path: who this proxy is, the current route
// tables and clusters, the clock and randomness, and the sink every finished stream is reported to.

import type { RouteTable } from '../xds/route-table.ts';
import type { StreamInfo, WorkloadMetadata } from './stream-info.ts';
import type { ClusterManager } from './upstream/types.ts';

export interface ProxyIdentity {
  /** Istio node id: sidecar~ip~pod.ns~ns.svc.cluster.local. */
  nodeId: string;
  podName: string;
  namespace: string;
  ip: string;
  workload: WorkloadMetadata;
  /** x-envoy-peer-metadata value (base64 protobuf Struct) this proxy sends to its peers. */
  peerMetadataHeader: string;
}

export interface ProxyContext {
  readonly identity: ProxyIdentity;
  /** The current RDS route table by name (swapped on every accepted push). */
  routeTable(name: string): RouteTable | undefined;
  readonly clusters: ClusterManager;
  now(): number;
  random(): number;
  /** Called once per finished HTTP stream or TCP connection (metrics, and the access log entries
   *  of the filter chain that handled it: HttpConnectionManager/TcpProxy `access_log`, compiled once). */
  report(info: StreamInfo, accessLog: readonly Record<string, unknown>[]): void;
  /** Called when a TCP connection opens (istio_tcp_connections_opened_total). */
  reportTcpOpen?(info: StreamInfo): void;
}
