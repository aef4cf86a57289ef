// One cluster as CDS defined it: its hosts (EDS, load_assignment, DNS, or ORIGINAL_DST addresses made
// on demand), the load balancer rebuilt whenever hosts or their health change, per-host connection
// pools under the cluster's circuit breakers, and outlier detection. Failures are UpstreamErrors.

import type { Socket } from 'node:net';
import type { Logger } from '../../common/log.ts';
import type { Clock, Random, Timer } from './clock.ts';
import type { ClusterConfig } from './cluster-config.ts';
import { DnsDiscovery, type Resolver } from './dns.ts';
import { EMPTY_ASSIGNMENT, type LoadAssignment } from './endpoints.ts';
import { HostImpl, hostKey, type EndpointSpec } from './host.ts';
import { PriorityLoadBalancer, pickerFor, type LoadBalancer } from './lb/index.ts';
import { OutlierDetector, type OutlierStats } from './outlier.ts';
import { connectSocket } from './pool/connect.ts';
import { HostPool } from './pool/host-pool.ts';
import { ClusterResources, type ClusterStats, type LimitCounters, type SlotWaiter } from './pool/resources.ts';
import { abortError } from './pool/types.ts';
import { UpstreamError, type Host, type HostOutcome, type LbContext, type Locality, type UpstreamCluster, type UpstreamHttpRequest, type UpstreamHttpResponse } from './types.ts';

export interface ClusterDeps {
  readonly clock: Clock;
  readonly random: Random;
  readonly resolver: Resolver;
  readonly log?: Logger;
  /** The circuit-breaker counts of a cluster when they are shared with other worker processes (default: this process's own). */
  readonly limitCounters?: (clusterName: string) => LimitCounters | undefined;
}

export interface HostDescription {
  key: string;
  healthy: boolean;
  ejected: boolean;
  weight: number;
  activeRequests: number;
  locality: Locality;
  priority: number;
  healthStatus: string;
  /** proxy-config's OUTLIER CHECK column. */
  outlierCheck: 'OK' | 'FAILED';
  hostname?: string;
  connections: number;
}

export interface ClusterDescription {
  name: string;
  type: ClusterConfig['type'];
  lbPolicy: ClusterConfig['lbPolicy'];
  circuitBreakers: ClusterConfig['circuitBreakers'];
  hosts: HostDescription[];
  stats: ClusterStats;
  outlier?: OutlierStats;
}

const NO_HOSTS: LoadBalancer = { chooseHost: () => undefined };

export class ClusterImpl implements UpstreamCluster {
  readonly info: ClusterConfig;
  hosts: readonly HostImpl[] = [];
  readonly resources: ClusterResources;
  /** Resolves once the cluster has its first hosts from DNS (at once for other types). */
  readonly ready: Promise<void>;
  private byKey = new Map<string, HostImpl>();
  private lb: LoadBalancer = NO_HOSTS;
  private assignment: LoadAssignment = EMPTY_ASSIGNMENT;
  private readonly outlier: OutlierDetector | undefined;
  private readonly dns: DnsDiscovery | undefined;
  private cleanupTimer: Timer | undefined;
  private drained = false;

  constructor(info: ClusterConfig, private readonly deps: ClusterDeps) {
    this.info = info;
    this.resources = new ClusterResources(info.circuitBreakers, info.istioConfig, deps.limitCounters?.(info.name));
    if (info.outlier) {
      this.outlier = new OutlierDetector(info.outlier, {
        clusterName: info.name,
        clock: deps.clock,
        random: deps.random,
        hosts: () => this.hosts,
        onHealthChange: () => this.rebuild(),
        ...(deps.log ? { log: deps.log } : {}),
      });
      this.outlier.start();
    }
    if ((info.type === 'STRICT_DNS' || info.type === 'LOGICAL_DNS') && info.loadAssignment) {
      const la = info.loadAssignment;
      this.assignment = la;
      this.dns = new DnsDiscovery(info, { resolver: deps.resolver, clock: deps.clock, ...(deps.log ? { log: deps.log } : {}), onUpdate: (specs) => this.setHosts(specs) });
      this.ready = this.dns.firstRound;
      this.dns.start();
    } else {
      this.ready = Promise.resolve();
      if (info.type === 'STATIC' && info.loadAssignment) this.setAssignment(info.loadAssignment);
    }
  }

  /** EDS (or a static load_assignment): the cluster's hosts from now on. */
  setAssignment(la: LoadAssignment): void {
    this.assignment = la;
    this.setHosts(la.endpoints);
  }

  private setHosts(specs: readonly EndpointSpec[]): void {
    const next = new Map<string, HostImpl>();
    const list: HostImpl[] = [];
    for (const spec of specs) {
      const key = hostKey(spec.address, spec.port, spec.pipe);
      if (next.has(key)) continue;
      let h = this.byKey.get(key);
      if (h) h.update(spec);
      else h = new HostImpl(spec);
      next.set(key, h);
      list.push(h);
    }
    for (const [key, h] of this.byKey) {
      if (next.has(key)) continue;
      this.outlier?.forget(h);
      void h.pool?.drain();
    }
    list.sort((a, b) => a.priority - b.priority);
    this.byKey = next;
    this.hosts = list;
    this.rebuild();
  }

  private rebuild(): void {
    if (this.info.type === 'ORIGINAL_DST') return;
    if (this.hosts.length === 0) {
      this.lb = NO_HOSTS;
      return;
    }
    const { factory, hashing } = pickerFor(this.info.lbPolicy);
    const i = this.info;
    this.lb = new PriorityLoadBalancer(this.hosts, factory, {
      random: this.deps.random,
      minRingSize: i.minRingSize,
      maxRingSize: i.maxRingSize,
      maglevTableSize: i.maglevTableSize,
      choiceCount: i.choiceCount,
      panicThreshold: i.panicThreshold,
      overprovisioningFactor: this.assignment.overprovisioningFactor,
      localityWeighted: i.localityWeighted,
      localityWeights: this.assignment.localityWeights,
      hashing,
    });
  }

  /** The balancer in use (tests and describe read its priority load). */
  get loadBalancer(): LoadBalancer {
    return this.lb;
  }

  chooseHost(ctx: LbContext): HostImpl | undefined {
    if (this.info.type === 'ORIGINAL_DST') return this.originalDstHost(ctx);
    return this.lb.chooseHost(ctx);
  }

  /** CLUSTER_PROVIDED: the connection's original destination, one host per address, kept while used. */
  private originalDstHost(ctx: LbContext): HostImpl | undefined {
    const od = ctx.originalDst;
    if (!od) return undefined;
    const key = hostKey(od.address, od.port);
    let h = this.byKey.get(key);
    if (!h) {
      if (this.drained) return undefined;
      h = new HostImpl({ address: od.address, port: od.port, weight: 1, locality: {}, priority: 0, healthStatus: 'HEALTHY' });
      this.byKey.set(key, h);
      this.hosts = [...this.hosts, h];
      this.cleanupTimer ??= this.deps.clock.setTimer(this.info.originalDstCleanupMs, () => this.cleanupOriginalDst());
    }
    h.used = true;
    return h;
  }

  /** Envoy's cleanup_interval: hosts not chosen since the last sweep and without requests go. */
  private cleanupOriginalDst(): void {
    this.cleanupTimer = undefined;
    if (this.drained) return;
    const keep: HostImpl[] = [];
    for (const h of this.hosts) {
      if (h.used || h.activeRequests > 0) {
        h.used = false;
        keep.push(h);
      } else {
        this.byKey.delete(h.key);
        void h.pool?.drain();
      }
    }
    this.hosts = keep;
    if (keep.length > 0) this.cleanupTimer = this.deps.clock.setTimer(this.info.originalDstCleanupMs, () => this.cleanupOriginalDst());
  }

  private poolFor(host: HostImpl): HostPool {
    let p = host.pool as HostPool | undefined;
    if (!p) {
      p = new HostPool(host, { info: this.info, resources: this.resources, clock: this.deps.clock, ...(this.deps.log ? { log: this.deps.log } : {}) });
      host.pool = p;
    }
    return p;
  }

  request(host: Host, req: UpstreamHttpRequest): Promise<UpstreamHttpResponse> {
    if (!(host instanceof HostImpl)) return Promise.reject(new UpstreamError('no_healthy_upstream', `host ${host.key} is not a host of cluster ${this.info.name}`));
    return this.poolFor(host).request(req);
  }

  connect(host: Host, signal?: AbortSignal): Promise<Socket> {
    if (!(host instanceof HostImpl)) return Promise.reject(new UpstreamError('no_healthy_upstream', `host ${host.key} is not a host of cluster ${this.info.name}`));
    const res = this.resources;
    // `open` runs once the connection is counted (tryConnectionOpened).
    const open = (): Promise<Socket> => {
      host.activeRequests++;
      return connectSocket(host, {
        cluster: this.info.name,
        timeoutMs: this.info.connectTimeoutMs,
        clock: this.deps.clock,
        ...(this.info.bindAddress ? { localAddress: this.info.bindAddress } : {}),
        ...(this.info.tcpKeepaliveSec !== undefined ? { keepAliveSec: this.info.tcpKeepaliveSec } : {}),
        ...(signal ? { signal } : {}),
      }).then(
        (socket) => {
          socket.once('close', () => {
            host.activeRequests--;
            res.connectionClosed();
          });
          return socket;
        },
        (err: unknown) => {
          host.activeRequests--;
          if (err instanceof UpstreamError) res.stats[err.kind === 'connect_timeout' ? 'upstream_cx_connect_timeout' : 'upstream_cx_connect_fail']++;
          res.connectionClosed();
          throw err;
        },
      );
    };
    if (res.tryConnectionOpened()) return open();
    if (!res.tryPendingAdded()) {
      res.stats.upstream_cx_overflow++;
      return Promise.reject(new UpstreamError('overflow', `${res.overflowDetail('max_connections')} and ${res.overflowDetail('max_pending_requests')}`, host));
    }
    // Wait for a connection slot, as Envoy's TCP pool queues a pending connection.
    return new Promise<Socket>((resolve, reject) => {
      const waiter: SlotWaiter = {
        onSlotAvailable: () => {
          if (!res.tryConnectionOpened()) return false;
          signal?.removeEventListener('abort', onAbort);
          res.pendingRemoved();
          open().then(resolve, reject);
          return true;
        },
      };
      const onAbort = (): void => {
        res.stopWaiting(waiter);
        res.pendingRemoved();
        reject(abortError(signal?.reason));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      res.waitForSlot(waiter);
    });
  }

  /**
   * Why chooseHost() found nothing, naming the cluster and the config behind it, for x-tsmesh-error:
   * "outbound|9080|v2|reviews.bookinfo.svc.cluster.local has 0 endpoints (subset v2 of DestinationRule bookinfo/reviews)".
   */
  explainNoHost(): string {
    const i = this.info;
    const from = i.subset ? ` (subset ${i.subset} of ${i.istioConfig ?? 'its DestinationRule'})` : i.istioConfig ? ` (${i.istioConfig})` : '';
    if (i.type === 'ORIGINAL_DST') return `${i.name} forwards to the original destination, and this request has none`;
    const n = this.hosts.length;
    if (n === 0) {
      if (this.dns) return `${i.name} has 0 endpoints: DNS has not resolved ${this.info.loadAssignment?.endpoints.map((e) => e.address).join(', ') ?? 'its hostnames'} yet`;
      return `${i.name} has 0 endpoints${from}`;
    }
    let ejected = 0;
    let unhealthy = 0;
    for (const h of this.hosts) {
      if (h.ejected) ejected++;
      else if (!h.healthy()) unhealthy++;
    }
    const parts = [ejected > 0 ? `${ejected} ejected by outlier detection` : '', unhealthy > 0 ? `${unhealthy} not healthy in EDS` : ''].filter(Boolean).join(', ');
    return `${i.name}: none of its ${n} endpoints is healthy (${parts}) and panic mode is off (healthy_panic_threshold ${i.panicThreshold}%)${from}`;
  }

  tryRetry(): boolean {
    return this.resources.tryRetry();
  }

  releaseRetry(): void {
    this.resources.releaseRetry();
  }

  report(host: Host, outcome: HostOutcome): void {
    if (this.outlier && host instanceof HostImpl) this.outlier.report(host, outcome);
  }

  /** Stops discovery and timers; pools close idle connections now and busy ones when their requests end. */
  async drain(): Promise<void> {
    this.drained = true;
    this.outlier?.stop();
    this.dns?.stop();
    this.cleanupTimer?.cancel();
    this.cleanupTimer = undefined;
    await Promise.all(this.hosts.flatMap((h) => (h.pool ? [h.pool.drain()] : [])));
  }

  describe(): ClusterDescription {
    const d: ClusterDescription = {
      name: this.info.name,
      type: this.info.type,
      lbPolicy: this.info.lbPolicy,
      circuitBreakers: this.info.circuitBreakers,
      stats: { ...this.resources.stats },
      hosts: this.hosts.map((h) => ({
        key: h.key,
        healthy: h.healthy(),
        ejected: h.ejected,
        weight: h.weight,
        activeRequests: h.activeRequests,
        locality: h.locality,
        priority: h.priority,
        healthStatus: h.healthStatus,
        outlierCheck: h.ejected ? 'FAILED' : 'OK',
        ...(h.hostname ? { hostname: h.hostname } : {}),
        connections: h.pool?.size ?? 0,
      })),
    };
    if (this.outlier) d.outlier = { ...this.outlier.stats };
    return d;
  }
}
