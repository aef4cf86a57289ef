// A cluster's circuit breakers (max_connections, max_pending_requests, max_requests, max_retries) as
// counters shared by its host pools (and, with --concurrency, by every worker process through shared memory),
// plus this process's connection/request stats; pools blocked on max_connections wait here for a slot.
// Plain bookkeeping; never throws.

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

/**
 * One circuit-breaker count of a cluster. Local to this process by default; with several workers it is the
 * cluster's count across all of them (src/proxy/workers/shared-counters.ts), as Envoy's are across its threads.
 */
export interface LimitCounter {
  /** What the limit is compared with. */
  total(): number;
  /** Adds 1 when total() is below `limit` (one atomic step across workers); false, and no change, otherwise. */
  tryAcquire(limit: number): boolean;
  /** Adds 1 whatever the limit. */
  acquire(): void;
  release(): void;
  /** Shared across processes: slots freed elsewhere are not announced here, so waiters are re-checked by a timer. */
  readonly shared?: boolean;
}

export type LimitName = 'connections' | 'pending' | 'requests' | 'retries';
export type LimitCounters = Record<LimitName, LimitCounter>;

/** A counter of this process only. `share` > 1 divides each limit (rounded up) for when workers cannot share counts. */
export class LocalCounter implements LimitCounter {
  value = 0;
  constructor(private readonly share = 1) {}
  total(): number {
    return this.value;
  }
  tryAcquire(limit: number): boolean {
    if (this.value >= (this.share > 1 ? Math.ceil(limit / this.share) : limit)) return false;
    this.value++;
    return true;
  }
  acquire(): void {
    this.value++;
  }
  release(): void {
    if (this.value > 0) this.value--;
  }
}

export function localCounters(share = 1): LimitCounters {
  return { connections: new LocalCounter(share), pending: new LocalCounter(share), requests: new LocalCounter(share), retries: new LocalCounter(share) };
}

/** How often waiters for a connection slot are re-checked when the counts are shared with other processes. */
const SHARED_SLOT_POLL_MS = 20;

export class ClusterResources {
  /** This process's connections, pending requests, requests and retries (the stats and /clusters show these). */
  connections = 0;
  pending = 0;
  requests = 0;
  retries = 0;
  readonly stats: ClusterStats;
  private readonly waiters = new Set<SlotWaiter>();
  private readonly counters: LimitCounters;
  private poll: NodeJS.Timeout | undefined;

  /** `istioConfig`: "DestinationRule ns/name" when the thresholds come from one; `counters`: shared ones (workers). */
  constructor(readonly limits: CircuitBreakers, private readonly istioConfig?: string, counters?: LimitCounters) {
    this.stats = Object.fromEntries(CLUSTER_STATS.map((s) => [s, 0])) as ClusterStats;
    this.counters = counters ?? localCounters();
  }

  /** For x-tsmesh-error: "max_pending_requests (1) reached (connectionPool.http.http1MaxPendingRequests of DestinationRule ns/name)". */
  overflowDetail(limit: keyof typeof ISTIO_FIELDS): string {
    const where = this.istioConfig ? ` (${ISTIO_FIELDS[limit]} of ${this.istioConfig})` : '';
    return `${limit} (${this.limits[LIMIT_KEYS[limit]]}) reached${where}`;
  }

  canCreateConnection(): boolean {
    return this.counters.connections.total() < this.limits.maxConnections;
  }

  /** Counts a new connection when max_connections allows it; false (nothing counted) otherwise. */
  tryConnectionOpened(): boolean {
    if (!this.counters.connections.tryAcquire(this.limits.maxConnections)) return false;
    this.countOpened();
    return true;
  }

  /** Counts a new connection whatever the limit (a pool's first connection). */
  connectionOpened(): void {
    this.counters.connections.acquire();
    this.countOpened();
  }

  private countOpened(): void {
    this.connections++;
    this.stats.upstream_cx_total++;
    this.stats.upstream_cx_active = this.connections;
  }

  connectionClosed(): void {
    this.counters.connections.release();
    this.connections--;
    this.stats.upstream_cx_active = this.connections;
    this.stats.upstream_cx_destroy++;
    this.notifyWaiters();
  }

  private notifyWaiters(): void {
    if (this.waiters.size === 0) return;
    for (const w of this.waiters) {
      if (!this.canCreateConnection()) break;
      if (w.onSlotAvailable()) this.waiters.delete(w);
    }
    this.checkPoll();
  }

  waitForSlot(w: SlotWaiter): void {
    this.waiters.add(w);
    this.checkPoll();
  }

  stopWaiting(w: SlotWaiter): void {
    this.waiters.delete(w);
    this.checkPoll();
  }

  /** With shared counts a slot may free up in another worker: look again every SHARED_SLOT_POLL_MS while someone waits. */
  private checkPoll(): void {
    if (this.waiters.size > 0 && this.counters.connections.shared && !this.poll) {
      this.poll = setInterval(() => this.notifyWaiters(), SHARED_SLOT_POLL_MS);
      this.poll.unref();
    } else if (this.waiters.size === 0 && this.poll) {
      clearInterval(this.poll);
      this.poll = undefined;
    }
  }

  /** Counts a pending request when max_pending_requests allows it; false (nothing counted) otherwise. */
  tryPendingAdded(): boolean {
    if (!this.counters.pending.tryAcquire(this.limits.maxPendingRequests)) return false;
    this.pending++;
    this.stats.upstream_rq_pending_total++;
    this.stats.upstream_rq_pending_active = this.pending;
    return true;
  }

  pendingRemoved(): void {
    this.counters.pending.release();
    this.pending--;
    this.stats.upstream_rq_pending_active = this.pending;
  }

  /** Counts a request when max_requests allows it; false (nothing counted) otherwise. */
  tryRequest(): boolean {
    if (!this.counters.requests.tryAcquire(this.limits.maxRequests)) return false;
    this.requests++;
    this.stats.upstream_rq_active = this.requests;
    return true;
  }

  requestDone(): void {
    this.counters.requests.release();
    this.requests--;
    this.stats.upstream_rq_active = this.requests;
  }

  tryRetry(): boolean {
    if (!this.counters.retries.tryAcquire(this.limits.maxRetries)) {
      this.stats.upstream_rq_retry_overflow++;
      return false;
    }
    this.retries++;
    return true;
  }

  releaseRetry(): void {
    if (this.retries <= 0) return;
    this.retries--;
    this.counters.retries.release();
  }
}
