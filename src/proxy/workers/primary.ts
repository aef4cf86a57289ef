// The sidecar's primary process with --concurrency N (N >= 2): the one ADS connection, the admin, Prometheus,
// agent and health servers and readiness, and N worker processes that run the data path. xDS updates are ACKed
// once every worker applied them and NACKed with a worker's reason otherwise; stats and /clusters are the sum of
// every worker's. Start failures throw (MESH_ERR_PROXY_WORKERS, or the admin servers' own errors).

import { logger, type Logger } from '../../common/log.ts';
import { configDumpOf } from '../config-dump.ts';
import { agentEnvFrom, type AgentEnv } from '../identity.ts';
import { startAdminServers, type AdminOptions, type AdminServers } from '../telemetry/admin.ts';
import { MetricFamily, renderFamilies } from '../telemetry/prometheus.ts';
import { mergeSnapshots } from '../telemetry/snapshot.ts';
import { StatsRegistry } from '../telemetry/stats.ts';
import { TELEMETRY_STATS } from '../telemetry/telemetry.ts';
import type { ClusterDescription } from '../upstream/cluster-manager.ts';
import { XdsClient } from '../xds-client/xds-client.ts';
import { WorkerPool, type WorkerInfo } from './pool.ts';

type Json = Record<string, unknown>;

/** Stats the primary sets itself (its view of the whole proxy); the workers' copies are ignored. */
const PRIMARY_STATS = new Set(['envoy_server_live', 'envoy_server_state', 'envoy_server_uptime', 'envoy_server_concurrency', 'envoy_server_memory_allocated', 'envoy_server_memory_heap_size']);

export interface WorkerSidecarOptions {
  concurrency: number;
  env?: NodeJS.ProcessEnv;
  adminPorts?: AdminOptions['ports'];
  log?: Logger;
  /** The script workers run and its arguments (default bin/tsmesh proxy). */
  workerExec?: string;
  workerArgs?: string[];
}

function addNumbers(into: object, from: object): void {
  const t = into as Record<string, unknown>;
  for (const [k, v] of Object.entries(from)) if (typeof v === 'number' && typeof t[k] === 'number') t[k] = t[k] + v;
}

/** Merges the workers' /clusters views: counts add up; a host is ejected when any worker ejected it. */
export function mergeClusterViews(views: readonly (readonly ClusterDescription[])[]): ClusterDescription[] {
  const byName = new Map<string, ClusterDescription>();
  for (const view of views) {
    for (const c of view) {
      const have = byName.get(c.name);
      if (!have) {
        byName.set(c.name, structuredClone(c));
        continue;
      }
      addNumbers(have.stats, c.stats);
      if (c.outlier && have.outlier) addNumbers(have.outlier, c.outlier);
      for (const h of c.hosts) {
        const mine = have.hosts.find((x) => x.key === h.key);
        if (!mine) {
          have.hosts.push(structuredClone(h));
          continue;
        }
        mine.activeRequests += h.activeRequests;
        mine.connections += h.connections;
        if (h.ejected) {
          mine.ejected = true;
          mine.outlierCheck = 'FAILED';
        }
        mine.healthy = mine.healthy && h.healthy;
      }
    }
  }
  return [...byName.values()];
}

export class WorkerSidecar {
  readonly env: AgentEnv;
  readonly log: Logger;
  readonly xds: XdsClient;
  readonly pool: WorkerPool;
  /** The primary's stats: its own server gauges, and every worker's stats merged in at each scrape. */
  readonly stats = new StatsRegistry();
  /** Istio's metrics, every worker's merged at each scrape. */
  readonly metrics = { families: [] as MetricFamily[], render(): string { return renderFamilies(this.families); } };
  #memory = { heapUsed: 0, heapTotal: 0 };
  #admin?: AdminServers;
  #stopped = false;
  readonly #opts: WorkerSidecarOptions;
  readonly #started = Date.now();

  constructor(opts: WorkerSidecarOptions) {
    this.#opts = opts;
    const env = opts.env ?? process.env;
    this.env = agentEnvFrom(env);
    this.log = opts.log ?? logger('proxy');
    this.stats.define(TELEMETRY_STATS);
    this.pool = new WorkerPool({
      count: opts.concurrency, log: this.log, env,
      ...(opts.workerExec ? { exec: opts.workerExec } : {}), ...(opts.workerArgs ? { args: opts.workerArgs } : {}),
    });
    this.xds = new XdsClient({
      address: this.env.discoveryAddress,
      node: this.env.node,
      log: this.log,
      appliers: {
        clusters: (cs) => this.pool.apply('clusters', cs),
        endpoints: (es) => this.pool.apply('endpoints', es),
        listeners: (ls) => this.pool.apply('listeners', ls),
        routes: (rs) => this.pool.apply('routes', rs),
      },
    });
    this.xds.on('ready', () => this.log.info(`sidecar ready: first full configuration applied by all ${opts.concurrency} workers`));
  }

  get workers(): WorkerInfo[] {
    return this.pool.info();
  }

  async #gather(): Promise<void> {
    const snaps = await this.pool.snapshots();
    const retired = this.pool.retired;
    this.stats.replace(mergeSnapshots([...snaps.map((s) => s.stats), retired.stats]).filter((f) => !PRIMARY_STATS.has(f.def.name)));
    this.metrics.families = mergeSnapshots([...snaps.map((s) => s.metrics), retired.metrics]);
    const own = process.memoryUsage();
    this.#memory = snaps.reduce((m, s) => ({ heapUsed: m.heapUsed + s.memory.heapUsed, heapTotal: m.heapTotal + s.memory.heapTotal }), { heapUsed: own.heapUsed, heapTotal: own.heapTotal });
  }

  configDump(includeEds: boolean): Json {
    return configDumpOf(this.xds, includeEds);
  }

  async start(): Promise<void> {
    await this.pool.start();
    try {
      this.#admin = await startAdminServers({
        ...(this.#opts.adminPorts ? { ports: this.#opts.adminPorts } : {}),
        providers: {
          configDump: (q) => this.configDump(q.includeEds),
          clusters: async () => mergeClusterViews(await this.pool.clusters()),
          listeners: () => this.pool.listeners(),
          ready: () => this.xds.ready,
          serverInfo: () => ({
            node: this.env.node,
            uptime_current_epoch: `${Math.round((Date.now() - this.#started) / 1000)}s`,
            command_line_options: { concurrency: this.#opts.concurrency },
            workers: this.pool.info(),
            shared_circuit_breakers: this.pool.sharedLimits,
            xds: this.xds.status(),
          }),
        },
        hooks: {
          quit: () => void this.stop().then(() => process.exit(0)),
          drain: (o) => this.pool.drain(o),
          logLevel: (level) => this.pool.setLogLevel(level),
        },
        metrics: this.metrics,
        stats: this.stats,
        gather: () => this.#gather(),
        concurrency: this.#opts.concurrency,
        memoryUsage: () => this.#memory,
      });
    } catch (err) {
      await this.pool.stop();
      throw err;
    }
    this.xds.start();
    this.log.info('sidecar started', { node: this.env.node.id, xds: this.env.discoveryAddress, workers: this.pool.info().map((w) => w.pid).join(',') });
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.xds.stop();
    await this.pool.stop();
    await this.#admin?.close();
  }
}
