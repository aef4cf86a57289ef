// The cluster manager: applies CDS (the full set) and EDS, keeps clusters whose config did not change,
// swaps the others without disturbing requests in flight (they finish on the old cluster's pools,
// which then close), and describes everything for /clusters. Invalid resources throw
// ClusterConfigError naming the cluster and field (the xDS client NACKs with that message) and
// nothing of that update is applied.

import type { Logger } from '../../common/log.ts';
import { mathRandom, systemClock, type Clock, type Random } from './clock.ts';
import { ClusterImpl, type ClusterDescription } from './cluster.ts';
import { parseCluster, type ClusterConfig } from './cluster-config.ts';
import { systemResolver, type Resolver } from './dns.ts';
import { parseLoadAssignment, type LoadAssignment } from './endpoints.ts';
import { ClusterConfigError } from './json.ts';
import type { ClusterManager } from './types.ts';
import type { LimitCounters } from './pool/resources.ts';

export { parseCluster } from './cluster-config.ts';
export type { ClusterConfig, OutlierConfig } from './cluster-config.ts';
export { ClusterConfigError } from './json.ts';
export type { ClusterDescription, HostDescription } from './cluster.ts';
export type { Resolver } from './dns.ts';

export interface ClusterManagerOptions {
  clock?: Clock;
  random?: Random;
  log?: Logger;
  /** Name resolution for STRICT_DNS/LOGICAL_DNS clusters (default: node:dns lookup). */
  dns?: Resolver;
  /** Circuit-breaker counts shared with other worker processes, by cluster name (default: each cluster counts alone). */
  limitCounters?: (clusterName: string) => LimitCounters | undefined;
}

export interface UpstreamClusterManager extends ClusterManager {
  get(name: string): ClusterImpl | undefined;
  describe(): ClusterDescription[];
  /** Resolves when every current DNS cluster has finished its first resolution. */
  ready(): Promise<void>;
}

class ClusterManagerImpl implements UpstreamClusterManager {
  private clusters = new Map<string, ClusterImpl>();
  /** EDS resource name → cluster, for the EDS clusters only. */
  private byEdsName = new Map<string, ClusterImpl>();
  /** The latest assignment per EDS name, reapplied when a cluster is replaced by a CDS update. */
  private readonly assignments = new Map<string, LoadAssignment>();
  private readonly draining = new Set<Promise<void>>();
  private readonly deps: ConstructorParameters<typeof ClusterImpl>[1];

  constructor(opts: ClusterManagerOptions) {
    this.deps = { clock: opts.clock ?? systemClock, random: opts.random ?? mathRandom, resolver: opts.dns ?? systemResolver, ...(opts.log ? { log: opts.log } : {}), ...(opts.limitCounters ? { limitCounters: opts.limitCounters } : {}) };
  }

  get(name: string): ClusterImpl | undefined {
    return this.clusters.get(name);
  }

  setClusters(list: ReadonlyArray<Record<string, unknown>>): void {
    const parsed: ClusterConfig[] = [];
    const errors: string[] = [];
    const seen = new Set<string>();
    for (const c of list) {
      try {
        const cfg = parseCluster(c);
        if (seen.has(cfg.name)) throw new ClusterConfigError(`cluster '${cfg.name}': defined twice`);
        seen.add(cfg.name);
        parsed.push(cfg);
      } catch (err) {
        if (!(err instanceof ClusterConfigError)) throw err;
        errors.push(err.message);
      }
    }
    if (errors.length > 0) throw new ClusterConfigError(errors.join('; '));

    const next = new Map<string, ClusterImpl>();
    const byEds = new Map<string, ClusterImpl>();
    for (const cfg of parsed) {
      const old = this.clusters.get(cfg.name);
      let cluster: ClusterImpl;
      if (old && old.info.fingerprint === cfg.fingerprint) {
        cluster = old;
      } else {
        cluster = new ClusterImpl(cfg, this.deps);
        if (cfg.type === 'EDS') {
          const la = this.assignments.get(cfg.edsServiceName);
          if (la) cluster.setAssignment(la);
        }
        if (old) this.retire(old);
        this.deps.log?.debug(old ? 'cluster updated' : 'cluster added', { cluster: cfg.name });
      }
      next.set(cfg.name, cluster);
      if (cfg.type === 'EDS') byEds.set(cfg.edsServiceName, cluster);
    }
    for (const [name, old] of this.clusters) {
      if (next.has(name)) continue;
      this.retire(old);
      this.deps.log?.debug('cluster removed', { cluster: name });
    }
    for (const name of this.assignments.keys()) if (!byEds.has(name)) this.assignments.delete(name);
    this.clusters = next;
    this.byEdsName = byEds;
  }

  private retire(c: ClusterImpl): void {
    const p = c.drain().finally(() => this.draining.delete(p));
    this.draining.add(p);
  }

  setEndpoints(assignments: ReadonlyArray<Record<string, unknown>>): void {
    const parsed: Array<[string, LoadAssignment]> = [];
    const errors: string[] = [];
    for (const cla of assignments) {
      const name = typeof cla.cluster_name === 'string' ? cla.cluster_name : '';
      try {
        if (!name) throw new ClusterConfigError('ClusterLoadAssignment without cluster_name');
        parsed.push([name, parseLoadAssignment(cla, `ClusterLoadAssignment '${name}'`, false)]);
      } catch (err) {
        if (!(err instanceof ClusterConfigError)) throw err;
        errors.push(err.message);
      }
    }
    if (errors.length > 0) throw new ClusterConfigError(errors.join('; '));
    for (const [name, la] of parsed) {
      this.assignments.set(name, la);
      this.byEdsName.get(name)?.setAssignment(la);
    }
  }

  describe(): ClusterDescription[] {
    return [...this.clusters.values()].map((c) => c.describe());
  }

  async ready(): Promise<void> {
    await Promise.all([...this.clusters.values()].map((c) => c.ready));
  }

  async close(): Promise<void> {
    for (const c of this.clusters.values()) this.retire(c);
    this.clusters = new Map();
    this.byEdsName = new Map();
    await Promise.all([...this.draining]);
  }
}

export function createClusterManager(opts: ClusterManagerOptions = {}): UpstreamClusterManager {
  return new ClusterManagerImpl(opts);
}
