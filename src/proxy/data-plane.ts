// The sidecar's data path in one process: clusters, route tables, listeners, the HTTP connection manager and
// telemetry, with one apply function per xDS type. Each apply is all-or-nothing and throws (the message is the
// NACK's) when a resource does not compile or a listener cannot bind; what was applied before keeps serving.

import type { Socket } from 'node:net';
import type { Logger } from '../common/log.ts';
import { compileRouteTable, type RouteTable } from '../xds/route-table.ts';
import { compileListener, type CompiledListener } from './config/listeners.ts';
import { ConfigError } from './config/errors.ts';
import type { ProxyContext } from './context.ts';
import { HttpConnectionManager } from './http/connection-manager.ts';
import type { AgentEnv } from './identity.ts';
import { ListenerManager } from './listener/listener-manager.ts';
import { getOriginalDst, originalDstAvailable } from './listener/original-dst.ts';
import type { SinkRegistry } from './telemetry/sink.ts';
import { snapshotFamilies } from './telemetry/snapshot.ts';
import type { DataPlaneSnapshot, XdsKind } from './workers/protocol.ts';
import { Telemetry } from './telemetry/telemetry.ts';
import { createClusterManager, type UpstreamClusterManager } from './upstream/cluster-manager.ts';
import type { LimitCounters } from './upstream/pool/resources.ts';

type Json = Record<string, unknown>;

export interface DataPlaneOptions {
  env: AgentEnv;
  log: Logger;
  /** This process's worker id (0 in a single-process sidecar); it names the per-worker listener stats. */
  workerId?: number;
  /** Circuit-breaker counts shared with the other workers, by cluster name. */
  limitCounters?: (clusterName: string) => LimitCounters | undefined;
  /** Access log sinks (workers write each line in one atomic write). */
  sinks?: SinkRegistry;
  /** Where a captured connection was going (default: SO_ORIGINAL_DST through the native addon). Tests set it. */
  originalDst?: (socket: Socket) => { address: string; port: number } | undefined;
}

export { APPLY_ORDER, type DataPlaneSnapshot, type XdsKind } from './workers/protocol.ts';

export class DataPlane {
  readonly clusters: UpstreamClusterManager;
  readonly telemetry: Telemetry;
  readonly listeners: ListenerManager;
  readonly workerId: number;
  #routes = new Map<string, RouteTable>();
  readonly #hcm: HttpConnectionManager;
  #stopped = false;

  constructor(opts: DataPlaneOptions) {
    const { env, log } = opts;
    this.workerId = opts.workerId ?? 0;
    this.clusters = createClusterManager({ log, ...(opts.limitCounters ? { limitCounters: opts.limitCounters } : {}) });
    this.telemetry = new Telemetry({ self: env.identity.workload, hostname: env.identity.podName, ...(opts.sinks ? { sinks: opts.sinks } : {}) });
    const ctx: ProxyContext = {
      identity: env.identity,
      routeTable: (name) => this.#routes.get(name),
      clusters: this.clusters,
      now: () => Date.now(),
      random: Math.random,
      report: (info, accessLog) => this.telemetry.report(info, accessLog),
      reportTcpOpen: (info) => this.telemetry.reportTcpOpen(info),
    };
    this.#hcm = new HttpConnectionManager(ctx);
    const canOrigDst = opts.originalDst !== undefined || originalDstAvailable();
    if (!canOrigDst && this.workerId === 0) log.warn('SO_ORIGINAL_DST is unavailable (native addon not built): captured connections will be routed by their local address');
    this.listeners = new ListenerManager(
      ctx,
      this.#hcm,
      opts.originalDst ?? ((socket: Socket) => {
        if (!canOrigDst) return undefined;
        try {
          return getOriginalDst(socket);
        } catch {
          return undefined; // not redirected: the local address is the destination
        }
      }),
      { stats: this.telemetry.stats, workerId: this.workerId },
    );
  }

  /** Applies one xDS type's full set of resources; throws with the NACK message. */
  async apply(kind: XdsKind, resources: Json[]): Promise<void> {
    if (kind === 'clusters') this.clusters.setClusters(resources);
    else if (kind === 'endpoints') this.clusters.setEndpoints(resources);
    else if (kind === 'routes') this.#applyRoutes(resources);
    else await this.#applyListeners(resources);
  }

  async #applyListeners(ls: Json[]): Promise<void> {
    const compiled: CompiledListener[] = [];
    const errors: string[] = [];
    for (const l of ls) {
      try {
        const c = compileListener(l);
        for (const chain of [...c.chains, ...(c.defaultChain ? [c.defaultChain] : [])]) this.telemetry.compile(chain.filter.accessLog, `listener ${c.name}: chain ${chain.name}: access_log`);
        compiled.push(c);
      } catch (err) {
        errors.push((err as Error).message);
      }
    }
    if (errors.length > 0) throw new ConfigError(errors.join('; '));
    await this.listeners.apply(compiled);
  }

  #applyRoutes(rs: Json[]): void {
    const next = new Map<string, RouteTable>();
    const errors: string[] = [];
    for (const rc of rs) {
      const t = compileRouteTable(rc);
      if (t.problems.length > 0) errors.push(`route configuration ${t.name}: ${t.problems.join('; ')}`);
      next.set(t.name, t);
    }
    if (errors.length > 0) throw new ConfigError(errors.join('; '));
    this.#routes = next;
  }

  describeListeners(): Array<{ name: string; address: string }> {
    return this.listeners.listeners.map((l) => ({ name: l.name, address: `${l.address}:${l.port}` }));
  }

  /** This process's stats and Istio metrics as plain data, and its heap. */
  snapshot(): DataPlaneSnapshot {
    this.telemetry.collect();
    const mem = process.memoryUsage();
    return {
      stats: snapshotFamilies(this.telemetry.stats.families()),
      metrics: snapshotFamilies(this.telemetry.metrics.families),
      memory: { heapUsed: mem.heapUsed, heapTotal: mem.heapTotal },
    };
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    await this.listeners.close();
    await this.clusters.close();
    await this.telemetry.flush();
  }
}
