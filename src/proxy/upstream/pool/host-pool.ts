// One host's connections and its queue of pending requests, as Envoy's connection pools do: use a
// ready connection, else queue (within max_pending_requests, else UpstreamError overflow → UO) and open
// a connection when max_connections allows (a host with none always gets one); connect failures fail
// the queue (UF). drain() closes idle connections now and busy ones when their requests end.

import type { Logger } from '../../../common/log.ts';
import type { Clock } from '../clock.ts';
import type { ClusterConfig } from '../cluster-config.ts';
import type { HostConnections, HostImpl } from '../host.ts';
import { UpstreamError, type UpstreamHttpRequest, type UpstreamHttpResponse } from '../types.ts';
import { Http1Connection } from './http1.ts';
import { Http2Connection } from './http2.ts';
import type { ClusterResources, SlotWaiter } from './resources.ts';
import { PoolRequest, type PoolConnection, type PoolEvents } from './types.ts';

export interface PoolDeps {
  readonly info: ClusterConfig;
  readonly resources: ClusterResources;
  readonly clock: Clock;
  readonly log?: Logger;
}

export class HostPool implements HostConnections, PoolEvents, SlotWaiter {
  private readonly conns = new Set<PoolConnection>();
  private readonly ready: PoolConnection[] = [];
  private queue: PoolRequest[] = [];
  private head = 0;
  private pendingCount = 0;
  private connectingCapacity = 0;
  private draining = false;
  private drained: Array<() => void> = [];

  constructor(readonly host: HostImpl, private readonly deps: PoolDeps) {}

  get size(): number {
    return this.conns.size;
  }

  get pending(): number {
    return this.pendingCount;
  }

  /**
   * Sends one request through this host's connections within the cluster's max_requests; it counts in
   * the host's activeRequests and the cluster's requests until its response ends or it fails.
   */
  request(req: UpstreamHttpRequest): Promise<UpstreamHttpResponse> {
    const res = this.deps.resources;
    res.stats.upstream_rq_total++;
    if (!res.tryRequest()) {
      res.stats.upstream_rq_pending_overflow++;
      return Promise.reject(new UpstreamError('overflow', res.overflowDetail('max_requests'), this.host));
    }
    this.host.activeRequests++;
    return new Promise<UpstreamHttpResponse>((resolve, reject) => {
      const pr = new PoolRequest(req, resolve, reject, this.finishRequest);
      if (req.signal.aborted) {
        pr.fail(req.signal.reason);
        pr.finish();
        return;
      }
      const conn = this.takeReady();
      if (conn) {
        this.dispatch(conn, pr);
        return;
      }
      if (!res.tryPendingAdded()) {
        res.stats.upstream_rq_pending_overflow++;
        pr.fail(new UpstreamError('overflow', `${res.overflowDetail('max_pending_requests')} with all ${res.limits.maxConnections} connection(s) busy`, this.host));
        pr.finish();
        return;
      }
      this.enqueue(pr);
      this.maybeConnect();
    });
  }

  private readonly finishRequest = (): void => {
    this.deps.resources.requestDone();
    this.host.activeRequests--;
  };

  private dispatch(conn: PoolConnection, pr: PoolRequest): void {
    conn.dispatch(pr);
    if (conn.state === 'ready' && conn.available() > 0) this.pushReady(conn);
  }

  private takeReady(): PoolConnection | undefined {
    while (this.ready.length > 0) {
      const c = this.ready.pop() as PoolConnection;
      c.inReady = false;
      if (c.state === 'ready' && c.available() > 0) return c;
    }
    return undefined;
  }

  private pushReady(c: PoolConnection): void {
    if (c.inReady) return;
    c.inReady = true;
    this.ready.push(c);
  }

  /** Queues a request already counted by tryPendingAdded(). */
  private enqueue(pr: PoolRequest): void {
    this.queue.push(pr);
    this.pendingCount++;
    pr.cancelPending = (reason) => {
      if (pr.state !== 'pending') return;
      this.removePending(pr);
      this.deps.resources.stats.upstream_rq_cancelled++;
      pr.fail(reason);
      pr.finish();
    };
  }

  private removePending(pr: PoolRequest): void {
    // Lazy deletion: the entry stays in the array and is skipped by dequeue().
    pr.cancelPending = undefined;
    pr.state = 'dispatched';
    this.pendingCount--;
    this.deps.resources.pendingRemoved();
    if (this.pendingCount === 0) this.deps.resources.stopWaiting(this);
  }

  private dequeue(): PoolRequest | undefined {
    while (this.head < this.queue.length) {
      const pr = this.queue[this.head++] as PoolRequest;
      if (pr.state !== 'pending') continue;
      if (this.head > 1024 && this.head * 2 > this.queue.length) {
        this.queue = this.queue.slice(this.head);
        this.head = 0;
      }
      this.removePending(pr);
      return pr;
    }
    this.queue.length = 0;
    this.head = 0;
    return undefined;
  }

  private maybeConnect(): void {
    const res = this.deps.resources;
    while (this.pendingCount > this.connectingCapacity) {
      if (!res.tryConnectionOpened()) {
        if (this.conns.size > 0) {
          res.stats.upstream_cx_overflow++;
          res.waitForSlot(this);
          return;
        }
        // Envoy: a pool with no connection at all may always open one, so its queue cannot starve.
        res.connectionOpened();
      }
      this.createConnection();
    }
  }

  onSlotAvailable(): boolean {
    if (this.pendingCount === 0) return true;
    this.maybeConnect();
    return this.pendingCount <= this.connectingCapacity;
  }

  private createConnection(): void {
    const { info, clock, log } = this.deps;
    const opts = { info, clock, host: this.host, events: this, ...(log ? { log } : {}) };
    const conn: PoolConnection = info.protocol === 'http2' ? new Http2Connection(opts) : new Http1Connection(opts);
    this.conns.add(conn);
    this.connectingCapacity += conn.initialCapacity;
    conn.start();
  }

  onConnected(c: PoolConnection): void {
    this.connectingCapacity -= c.initialCapacity;
    this.serve(c);
  }

  onCapacity(c: PoolConnection): void {
    if (c.state === 'ready') this.serve(c);
  }

  onConnectFailed(c: PoolConnection, err: unknown): void {
    this.connectingCapacity -= c.initialCapacity;
    const s = this.deps.resources.stats;
    if (err instanceof UpstreamError && err.kind === 'connect_timeout') s.upstream_cx_connect_timeout++;
    else s.upstream_cx_connect_fail++;
    this.forget(c);
    // The host is likely down: fail what waits for it rather than keep it queued (the router retries).
    for (let pr = this.dequeue(); pr; pr = this.dequeue()) {
      s.upstream_rq_pending_failure_eject++;
      pr.fail(err);
      pr.finish();
    }
    this.checkDrained();
  }

  onStreamDone(c: PoolConnection): void {
    if (c.state !== 'ready') return;
    if (this.draining && this.pendingCount === 0 && c.active() === 0) {
      c.close();
      return;
    }
    this.serve(c);
  }

  onClosed(c: PoolConnection): void {
    if (!this.conns.has(c)) return;
    this.forget(c);
    if (this.pendingCount > 0) this.maybeConnect();
    this.checkDrained();
  }

  private forget(c: PoolConnection): void {
    if (!this.conns.delete(c)) return;
    this.deps.resources.connectionClosed();
  }

  private serve(c: PoolConnection): void {
    while (c.state === 'ready' && c.available() > 0) {
      const pr = this.dequeue();
      if (!pr) break;
      c.dispatch(pr);
    }
    if (c.state === 'ready' && c.available() > 0) {
      if (this.draining && c.active() === 0) c.close();
      else this.pushReady(c);
    }
  }

  /** Closes idle connections now, the others when their requests end; resolves when none is left. */
  drain(): Promise<void> {
    this.draining = true;
    for (const c of [...this.conns]) if (c.state !== 'connecting' && c.active() === 0 && this.pendingCount === 0) c.close();
    return new Promise((resolve) => {
      this.drained.push(resolve);
      this.checkDrained();
    });
  }

  private checkDrained(): void {
    if (!this.draining || this.conns.size > 0 || this.pendingCount > 0) return;
    const waiters = this.drained;
    this.drained = [];
    for (const w of waiters) w();
  }
}
