// A cluster's circuit breakers (max_connections, max_pending_requests, max_requests, max_retries) as
// counters shared by its host pools, plus its connection/request stats; pools blocked on
// max_connections wait here for a slot. Plain bookkeeping; never throws.

import type { CircuitBreakers } from '../types.ts';

/** Envoy's cluster stats this upstream keeps (counters, and gauges ending in _active). */
export const CLUSTER_STATS = [
  'upstream_cx_total',
  'upstream_cx_active',
  'upstream_cx_connect_fail',
  'upstream_cx_connect_timeout',
  'upstream_cx_overflow',
  'upstream_cx_destroy',
  'upstream_rq_total',
  'upstream_rq_active',
  'upstream_rq_pending_total',
  'upstream_rq_pending_active',
  'upstream_rq_pending_overflow',
  'upstream_rq_pending_failure_eject',
  'upstream_rq_cancelled',
  'upstream_rq_retry_overflow',
] as const;

export type ClusterStats = Record<(typeof CLUSTER_STATS)[number], number>;

/** Something waiting for a connection slot (a host pool with pending requests, a TCP connect). */
export interface SlotWaiter {
  /** A connection closed somewhere in the cluster; returns false to stay registered. */
  onSlotAvailable(): boolean;
}

/** The DestinationRule field behind each Envoy threshold (Istio's connectionPool settings). */
const ISTIO_FIELDS = {
  max_connections: 'connectionPool.tcp.maxConnections',
  max_pending_requests: 'connectionPool.http.http1MaxPendingRequests',
  max_requests: 'connectionPool.http.http2MaxRequests',
  max_retries: 'connectionPool.http.maxRetries',
} as const;

const LIMIT_KEYS = { max_connections: 'maxConnections', max_pending_requests: 'maxPendingRequests', max_requests: 'maxRequests', max_retries: 'maxRetries' } as const;

export class ClusterResources {
  connections = 0;
  pending = 0;
  requests = 0;
  retries = 0;
  readonly stats: ClusterStats;
  private readonly waiters = new Set<SlotWaiter>();

  /** `istioConfig`: "DestinationRule ns/name" when the thresholds come from one. */
  constructor(readonly limits: CircuitBreakers, private readonly istioConfig?: string) {
    this.stats = Object.fromEntries(CLUSTER_STATS.map((s) => [s, 0])) as ClusterStats;
  }

  /** For x-tsmesh-error: "max_pending_requests (1) reached (connectionPool.http.http1MaxPendingRequests of DestinationRule ns/name)". */
  overflowDetail(limit: keyof typeof ISTIO_FIELDS): string {
    const where = this.istioConfig ? ` (${ISTIO_FIELDS[limit]} of ${this.istioConfig})` : '';
    return `${limit} (${this.limits[LIMIT_KEYS[limit]]}) reached${where}`;
  }

  canCreateConnection(): boolean {
    return this.connections < this.limits.maxConnections;
  }

  connectionOpened(): void {
    this.connections++;
    this.stats.upstream_cx_total++;
    this.stats.upstream_cx_active = this.connections;
  }

  connectionClosed(): void {
    this.connections--;
    this.stats.upstream_cx_active = this.connections;
    this.stats.upstream_cx_destroy++;
    if (this.waiters.size === 0) return;
    for (const w of this.waiters) {
      if (!this.canCreateConnection()) break;
      if (w.onSlotAvailable()) this.waiters.delete(w);
    }
  }

  waitForSlot(w: SlotWaiter): void {
    this.waiters.add(w);
  }

  stopWaiting(w: SlotWaiter): void {
    this.waiters.delete(w);
  }

  pendingAdded(): void {
    this.pending++;
    this.stats.upstream_rq_pending_total++;
    this.stats.upstream_rq_pending_active = this.pending;
  }

  pendingRemoved(): void {
    this.pending--;
    this.stats.upstream_rq_pending_active = this.pending;
  }

  tryRetry(): boolean {
    if (this.retries >= this.limits.maxRetries) {
      this.stats.upstream_rq_retry_overflow++;
      return false;
    }
    this.retries++;
    return true;
  }

  releaseRetry(): void {
    if (this.retries > 0) this.retries--;
  }
}
