// Istio's names for generated xDS resources: cluster names `direction|port|subset|host`, listener and
// route names. Pure string functions; parse returns undefined for names not in the subset-key form.

export type TrafficDirection = 'inbound' | 'outbound' | 'inbound-vip' | 'outbound-vip';

/** `outbound|9080|v1|reviews.bookinfo.svc.cluster.local`; subset and host may be empty (`inbound|9080||`). */
export function clusterName(direction: TrafficDirection, port: number, subset: string, host: string): string {
  return `${direction}|${port}|${subset}|${host}`;
}

export interface ParsedClusterName {
  direction: TrafficDirection;
  port: number;
  subset: string;
  host: string;
}

export function parseClusterName(name: string): ParsedClusterName | undefined {
  const parts = name.split('|');
  if (parts.length !== 4) return undefined;
  const [direction, port, subset, host] = parts as [string, string, string, string];
  const n = Number(port);
  if (!Number.isInteger(n)) return undefined;
  if (direction !== 'inbound' && direction !== 'outbound' && direction !== 'inbound-vip' && direction !== 'outbound-vip') return undefined;
  return { direction, port: n, subset, host };
}

/** Well-known static cluster and listener names, as Istio's sidecar has them. */
export const BLACKHOLE_CLUSTER = 'BlackHoleCluster';
export const PASSTHROUGH_CLUSTER = 'PassthroughCluster';
export const INBOUND_PASSTHROUGH_CLUSTER = 'InboundPassthroughCluster';
export const VIRTUAL_OUTBOUND_LISTENER = 'virtualOutbound';
export const VIRTUAL_INBOUND_LISTENER = 'virtualInbound';
/** The address inbound traffic is sent to the application from (Istio's inbound passthrough source). */
export const INBOUND_PASSTHROUGH_BIND_IPV4 = '127.0.0.6';
