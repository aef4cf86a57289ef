// The messages between the control-plane benchmark's driver, its control-plane process and its proxy-fleet processes; plain data, nothing here fails.

import type { MeshOptions } from './mesh.ts';

/** xDS types by their short names, in push order. */
export const XDS_TYPES = ['CDS', 'EDS', 'LDS', 'RDS'] as const;
export type XdsType = (typeof XDS_TYPES)[number];
export type PerType = Record<XdsType, number>;

export function perType(): PerType {
  return { CDS: 0, EDS: 0, LDS: 0, RDS: 0 };
}

/** One simulated proxy: a pod of the mesh. */
export interface ProxySpec {
  pod: string;
  namespace: string;
  ip: string;
  labels: Record<string, string>;
}

/** Resource usage of a process at one moment. */
export interface Usage {
  /** process.cpuUsage() user + system, seconds since the process started. */
  cpuS: number;
  rssMB: number;
  heapUsedMB: number;
  /** V8 heap committed (used or not): what RSS keeps after a collection. */
  heapTotalMB: number;
  /** Memory of Buffers and other objects outside the JS heap. */
  externalMB: number;
  /** resourceUsage().maxRSS: the peak so far. */
  maxRssMB: number;
  /** The highest RSS sampled (every 200 ms) since the last `usage` request with `resetPeak`. */
  sampledPeakMB: number;
}

export interface CpStartRequest {
  mesh: MeshOptions;
  proxies: number;
  debounce: { quietMs: number; maxDelayMs: number };
}

export interface CpStartReply {
  xdsPort: number;
  resources: number;
  services: number;
  pods: number;
  replicas: [number, number];
  canaries: number;
  /** store.apply (validation included) and the first push context, ms. */
  applyMs: number;
  pushContextMs: number;
  /** The pods chosen to act as proxies, spread round-robin over the namespaces. */
  proxies: ProxySpec[];
  usage: Usage;
}

export interface CpChangeRequest {
  /** The new v1 weight of the target VirtualService. */
  weight: number;
  /** Stop waiting for ACKs after this long. */
  timeoutMs: number;
}

export interface CpChangeReply {
  version: string;
  /** From store.apply until the first response of the new version was written. */
  firstPushMs: number;
  /** Proxies connected when the change was applied. */
  connected: number;
  /** Proxies that were sent the new version. */
  pushedProxies: number;
  /** Per pushed proxy, ms from store.apply until its last ACK of the new version. */
  ackMs: number[];
  /** Proxies pushed but not fully ACKed when the wait ended. */
  unacked: number;
  /** ms from store.apply until the last ACK (or the timeout). */
  allAckedMs: number;
  /** Responses and bytes (encoded resources) sent with the new version, per type. */
  responses: PerType;
  bytes: PerType;
  cpuS: number;
  usage: Usage;
}

export interface FleetConnectRequest {
  address: string;
  proxies: ProxySpec[];
}

/** Progress a fleet sends while its proxies sync. */
export interface FleetProgress {
  connected: number;
  synced: number;
  errors: number;
}

/** What one fleet measured of its proxies. */
export interface FleetReport {
  proxies: number;
  synced: number;
  errors: string[];
  /** Per proxy: ms from its stream opening until it had ACKed CDS, EDS, LDS and RDS with matching names. */
  syncMs: number[];
  /** Per proxy: ms from the fleet's `connect` request until it was synced. */
  syncAtMs: number[];
  /** Per proxy, encoded resource bytes received until synced, per type. */
  syncBytes: PerType[];
  /** Per proxy, resources held when synced, per type. */
  syncResources: PerType[];
  /** Per proxy, encoded resource bytes received after being synced (pushes), per type. */
  laterBytes: PerType[];
  laterResponses: PerType[];
  /** The fleet process's own CPU seconds (its cost is not the control plane's). */
  cpuS: number;
  rssMB: number;
}
