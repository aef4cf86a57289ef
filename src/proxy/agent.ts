// The sidecar process (pilot-agent + Envoy in one): identity from the environment, the ADS client, the
// config appliers (clusters, endpoints, listeners, routes), the data path, telemetry and the admin,
// Prometheus, agent and health servers. Keeps serving its last good config when the control plane is away.

import { logger, type Logger } from '../common/log.ts';
import { configDumpOf } from './config-dump.ts';
import { DataPlane } from './data-plane.ts';
import { agentEnvFrom, type AgentEnv } from './identity.ts';
import type { ListenerManager } from './listener/listener-manager.ts';
import { startAdminServers, type AdminServers, type AdminOptions } from './telemetry/admin.ts';
import type { Telemetry } from './telemetry/telemetry.ts';
import type { UpstreamClusterManager } from './upstream/cluster-manager.ts';
import { XdsClient } from './xds-client/xds-client.ts';

type Json = Record<string, unknown>;

export interface AgentOptions {
  env?: NodeJS.ProcessEnv;
  /** Override ports of the admin/stats/agent/health servers (tests: 0 or null). */
  adminPorts?: AdminOptions['ports'];
  log?: Logger;
}

/** The sidecar in one process (the default, --concurrency 1): xDS, the data path and the admin servers together. */
export class SidecarAgent {
  readonly env: AgentEnv;
  readonly log: Logger;
  readonly data: DataPlane;
  readonly xds: XdsClient;
  #admin?: AdminServers;
  #stopped = false;
  readonly #opts: AgentOptions;
  readonly #started = Date.now();

  constructor(opts: AgentOptions = {}) {
    this.#opts = opts;
    this.env = agentEnvFrom(opts.env ?? process.env);
    this.log = opts.log ?? logger('proxy');
    this.data = new DataPlane({ env: this.env, log: this.log });
    this.xds = new XdsClient({
      address: this.env.discoveryAddress,
      node: this.env.node,
      log: this.log,
      appliers: {
        clusters: (cs) => this.data.apply('clusters', cs),
        endpoints: (es) => this.data.apply('endpoints', es),
        listeners: (ls) => this.data.apply('listeners', ls),
        routes: (rs) => this.data.apply('routes', rs),
      },
    });
    this.xds.on('ready', () => this.log.info('sidecar ready: first full configuration applied'));
  }

  get clusters(): UpstreamClusterManager {
    return this.data.clusters;
  }

  get telemetry(): Telemetry {
    return this.data.telemetry;
  }

  get listeners(): ListenerManager {
    return this.data.listeners;
  }

  configDump(includeEds: boolean): Json {
    return configDumpOf(this.xds, includeEds);
  }

  async start(): Promise<void> {
    this.#admin = await startAdminServers({
      ...(this.#opts.adminPorts ? { ports: this.#opts.adminPorts } : {}),
      providers: {
        configDump: (q) => this.configDump(q.includeEds),
        clusters: () => this.clusters.describe(),
        listeners: () => this.data.describeListeners(),
        ready: () => this.xds.ready,
        serverInfo: () => ({ node: this.env.node, uptime_current_epoch: `${Math.round((Date.now() - this.#started) / 1000)}s`, xds: this.xds.status() }),
      },
      hooks: {
        quit: () => void this.stop().then(() => process.exit(0)),
        drain: () => this.listeners.drain(),
      },
      metrics: this.telemetry.metrics,
      stats: this.telemetry.stats,
      collect: () => this.telemetry.collect(),
    });
    this.xds.start();
    this.log.info('sidecar started', { node: this.env.node.id, xds: this.env.discoveryAddress });
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.xds.stop();
    await this.data.stop();
    await this.#admin?.close();
  }
}
