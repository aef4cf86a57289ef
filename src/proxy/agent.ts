// The sidecar process (pilot-agent + Envoy in one): identity from the environment, the ADS client, the
// config appliers (clusters, endpoints, listeners, routes), the data path, telemetry and the admin,
// Prometheus, agent and health servers. Keeps serving its last good config when the control plane is away.

import { getOriginalDst, originalDstAvailable } from './listener/original-dst.ts';
import type { Socket } from 'node:net';
import { logger, type Logger } from '../common/log.ts';
import { compileRouteTable, type RouteTable } from '../xds/route-table.ts';
import { TYPE_URLS } from '../xds/protos.ts';
import { DUMP_TYPES } from '../xds/configdump/dump.ts';
import { compileListener, type CompiledListener } from './config/listeners.ts';
import { ConfigError } from './config/errors.ts';
import type { ProxyContext } from './context.ts';
import { HttpConnectionManager } from './http/connection-manager.ts';
import { agentEnvFrom, type AgentEnv } from './identity.ts';
import { ListenerManager } from './listener/listener-manager.ts';
import { startAdminServers, type AdminServers, type AdminOptions } from './telemetry/admin.ts';
import { Telemetry } from './telemetry/telemetry.ts';
import { createClusterManager, type UpstreamClusterManager } from './upstream/cluster-manager.ts';
import { XdsClient } from './xds-client/xds-client.ts';

type Json = Record<string, unknown>;

export interface AgentOptions {
  env?: NodeJS.ProcessEnv;
  /** Override ports of the admin/stats/agent/health servers (tests: 0 or null). */
  adminPorts?: AdminOptions['ports'];
  log?: Logger;
}

export class SidecarAgent {
  readonly env: AgentEnv;
  readonly log: Logger;
  readonly clusters: UpstreamClusterManager;
  readonly telemetry: Telemetry;
  readonly listeners: ListenerManager;
  readonly xds: XdsClient;
  #routes = new Map<string, RouteTable>();
  #admin?: AdminServers;
  #stopped = false;
  readonly #opts: AgentOptions;
  readonly #hcm: HttpConnectionManager;
  readonly #started = Date.now();

  constructor(opts: AgentOptions = {}) {
    this.#opts = opts;
    this.env = agentEnvFrom(opts.env ?? process.env);
    this.log = opts.log ?? logger('proxy');
    this.clusters = createClusterManager({ log: this.log });
    this.telemetry = new Telemetry({ self: this.env.identity.workload, hostname: this.env.identity.podName });
    const ctx: ProxyContext = {
      identity: this.env.identity,
      routeTable: (name) => this.#routes.get(name),
      clusters: this.clusters,
      now: () => Date.now(),
      random: Math.random,
      report: (info, accessLog) => this.telemetry.report(info, accessLog),
      reportTcpOpen: (info) => this.telemetry.reportTcpOpen(info),
    };
    this.#hcm = new HttpConnectionManager(ctx);
    const canOrigDst = originalDstAvailable();
    if (!canOrigDst) this.log.warn('SO_ORIGINAL_DST is unavailable (native addon not built): captured connections will be routed by their local address');
    this.listeners = new ListenerManager(ctx, this.#hcm, (socket: Socket) => {
      if (!canOrigDst) return undefined;
      try {
        return getOriginalDst(socket);
      } catch {
        return undefined; // not redirected: the local address is the destination
      }
    });
    this.xds = new XdsClient({
      address: this.env.discoveryAddress,
      node: this.env.node,
      log: this.log,
      appliers: {
        clusters: (cs) => this.clusters.setClusters(cs),
        endpoints: (es) => this.clusters.setEndpoints(es),
        listeners: (ls) => this.#applyListeners(ls),
        routes: (rs) => this.#applyRoutes(rs),
      },
    });
    this.xds.on('ready', () => this.log.info('sidecar ready: first full configuration applied'));
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

  configDump(includeEds: boolean): Json {
    const ver = (t: string): string => this.xds.status().find((s) => s.typeUrl === t)?.version ?? '';
    const configs: Json[] = [
      { '@type': DUMP_TYPES.clusters, version_info: ver(TYPE_URLS.CLUSTER), dynamic_active_clusters: this.xds.resources(TYPE_URLS.CLUSTER).map((cluster) => ({ version_info: ver(TYPE_URLS.CLUSTER), cluster })) },
      { '@type': DUMP_TYPES.listeners, version_info: ver(TYPE_URLS.LISTENER), dynamic_listeners: this.xds.resources(TYPE_URLS.LISTENER).map((listener) => ({ name: listener.name, active_state: { version_info: ver(TYPE_URLS.LISTENER), listener } })) },
      { '@type': DUMP_TYPES.routes, dynamic_route_configs: this.xds.resources(TYPE_URLS.ROUTE).map((route_config) => ({ version_info: ver(TYPE_URLS.ROUTE), route_config })) },
    ];
    if (includeEds) configs.push({ '@type': DUMP_TYPES.endpoints, dynamic_endpoint_configs: this.xds.resources(TYPE_URLS.ENDPOINT).map((endpoint_config) => ({ version_info: ver(TYPE_URLS.ENDPOINT), endpoint_config })) });
    return { configs };
  }

  async start(): Promise<void> {
    this.#admin = await startAdminServers({
      ...(this.#opts.adminPorts ? { ports: this.#opts.adminPorts } : {}),
      providers: {
        configDump: (q) => this.configDump(q.includeEds),
        clusters: () => this.clusters.describe(),
        listeners: () => this.listeners.listeners.map((l) => ({ name: l.name, address: `${l.address}:${l.port}` })),
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
    await this.listeners.close();
    await this.clusters.close();
    await this.telemetry.flush();
    await this.#admin?.close();
  }
}
