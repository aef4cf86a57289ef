// The sidecar's local HTTP endpoints with Istio's port meanings: Envoy's admin (127.0.0.1:15000), Prometheus stats
// (15090), the agent's merged metrics and readiness (15020) and health (15021). Start fails with a message naming the
// address; a handler that fails answers 500 and never takes the proxy down.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setLogLevel, type LogLevel } from '../../common/log.ts';
import type { ClusterManager, Locality } from '../upstream/types.ts';
import { appScrapeFromEnv, scrapeApp, type AppScrapeConfig } from './app-metrics.ts';
import { systemClock, type Clock } from './clock.ts';
import { MetricFamily, PROMETHEUS_CONTENT_TYPE, renderFamilies, type MetricDef } from './prometheus.ts';
import { formatStatsText, statLines, type StatsRegistry } from './stats.ts';

/** Istio's ports (M6). */
export const DEFAULT_PORTS = { admin: 15000, prometheus: 15090, agent: 15020, health: 15021 } as const;

/** The agent's own metrics, merged into 15020's output. */
export const AGENT_METRICS = {
  scrapes: { name: 'istio_agent_scrapes_total', type: 'counter', help: 'Scrapes of the merged metrics endpoint, by source', labels: ['type'] },
  failures: { name: 'istio_agent_scrape_failures_total', type: 'counter', help: 'Failed scrapes of a metrics source', labels: ['type'] },
} as const satisfies Record<string, MetricDef>;

export type ClusterDescription = ReturnType<ClusterManager['describe']>[number];

export interface ListenerDescription {
  name: string;
  /** "ip:port" ("[::]:15001" for IPv6). */
  address: string;
}

export interface ConfigDumpQuery {
  resource?: string;
  mask?: string;
  nameRegex?: string;
  includeEds: boolean;
}

export interface AdminProviders {
  /** Envoy's /config_dump object ({configs: [...]}). */
  configDump(query: ConfigDumpQuery): unknown;
  /** (A promise when the answer comes from worker processes.) */
  clusters(): readonly ClusterDescription[] | Promise<readonly ClusterDescription[]>;
  listeners(): readonly ListenerDescription[] | Promise<readonly ListenerDescription[]>;
  /** True once the first full config (CDS, EDS, LDS, RDS) is applied. */
  ready(): boolean;
  /** Extra /server_info fields (node, command_line_options...). */
  serverInfo?(): Record<string, unknown>;
}

export interface AdminHooks {
  /** POST /quitquitquit (15000 and 15020): shut the proxy down. */
  quit(): void;
  /** POST /drain_listeners[?inboundonly][&graceful]. */
  drain(opts: { inboundOnly: boolean; graceful: boolean }): void;
  /** POST /logging?level=: the level was set in this process; pass it on (worker processes). */
  logLevel?(level: LogLevel): void;
}

export interface AdminOptions {
  /** Ports to listen on (0 = any free port, null = do not start); Istio's by default. */
  ports?: { admin?: number | null; prometheus?: number | null; agent?: number | null; health?: number | null };
  /** Address of the admin listener (127.0.0.1: Envoy's admin is never exposed). */
  bindAdmin?: string;
  /** Address of the 15090/15020/15021 listeners (default 0.0.0.0). */
  bindPublic?: string;
  providers: AdminProviders;
  hooks: AdminHooks;
  /** Istio's metrics (an IstioMetrics); families, when given, also show in /stats. */
  metrics?: { render(): string; readonly families?: readonly MetricFamily[] };
  stats: StatsRegistry;
  /** Called before stats are read (e.g. Telemetry.collect). */
  collect?: () => void;
  /** Awaited before stats are read: brings `stats` and `metrics` up to date (the primary merging its workers'). */
  gather?: () => Promise<void>;
  /** envoy_server_concurrency: worker count (default 1). */
  concurrency?: number;
  /** envoy_server_memory_*: default this process's heap; the primary adds its workers'. */
  memoryUsage?: () => { heapUsed: number; heapTotal: number };
  /** The application's metrics to merge on 15020; default from ISTIO_PROMETHEUS_ANNOTATIONS, null for none. */
  appScrape?: AppScrapeConfig | null;
  clock?: Clock;
  version?: string;
}

export interface RunningServer {
  port: number;
  address: string;
}

export interface AdminServers {
  admin?: RunningServer;
  prometheus?: RunningServer;
  agent?: RunningServer;
  health?: RunningServer;
  /** Set by POST /healthcheck/fail, cleared by /healthcheck/ok. */
  readonly healthCheckFailed: boolean;
  close(): Promise<void>;
}

type Reply = { status: number; body: string; type?: string };
type Handler = (req: IncomingMessage, url: URL) => Reply | Promise<Reply>;

const text = (status: number, body: string): Reply => ({ status, body, type: 'text/plain; charset=UTF-8' });
const json = (value: unknown, status = 200): Reply => ({ status, body: `${JSON.stringify(value, null, 2)}\n`, type: 'application/json' });

/** Envoy's log levels, mapped onto tsmesh's four. */
const LEVELS: Readonly<Record<string, LogLevel>> = {
  trace: 'debug', debug: 'debug', info: 'info', warning: 'warn', warn: 'warn', error: 'error', critical: 'error', off: 'error',
};

/** "ip:port" -> Envoy's socket_address. */
function socketAddress(addr: string): { address: string; port_value: number } {
  const colon = addr.lastIndexOf(':');
  const host = addr.slice(0, colon);
  return { address: host.startsWith('[') ? host.slice(1, -1) : host, port_value: Number(addr.slice(colon + 1)) };
}

function healthFlags(h: ClusterDescription['hosts'][number]): string {
  if (h.healthy && !h.ejected) return 'healthy';
  let flags = '';
  if (h.ejected) flags += '/failed_outlier_check';
  if (!h.healthy && !h.ejected) flags += '/failed_eds_health';
  return flags;
}

/** Envoy's /clusters text. */
export function formatClustersText(clusters: readonly ClusterDescription[]): string {
  let out = '';
  for (const c of clusters) {
    out += `${c.name}::observability_name::${c.name}\n`;
    out += `${c.name}::added_via_api::true\n`;
    for (const h of c.hosts) {
      const p = `${c.name}::${h.key}::`;
      const loc: Locality = h.locality;
      out += `${p}rq_active::${h.activeRequests}\n${p}health_flags::${healthFlags(h)}\n${p}weight::${h.weight}\n`;
      out += `${p}region::${loc.region ?? ''}\n${p}zone::${loc.zone ?? ''}\n${p}sub_zone::${loc.sub_zone ?? ''}\n`;
    }
  }
  return out;
}

/** Envoy's /clusters?format=json (envoy.admin.v3.Clusters). */
export function clustersJson(clusters: readonly ClusterDescription[]): unknown {
  return {
    cluster_statuses: clusters.map((c) => ({
      name: c.name,
      observability_name: c.name,
      added_via_api: true,
      host_statuses: c.hosts.map((h) => ({
        address: { socket_address: socketAddress(h.key) },
        stats: [{ name: 'rq_active', type: 'GAUGE', value: String(h.activeRequests) }],
        health_status: {
          eds_health_status: h.healthy || h.ejected ? 'HEALTHY' : 'UNHEALTHY',
          ...(h.ejected ? { failed_outlier_check: true } : {}),
        },
        weight: h.weight,
        locality: h.locality,
      })),
    })),
  };
}

interface State {
  healthCheckFailed: boolean;
  logLevel: LogLevel;
}

function serverState(opts: AdminOptions, state: State): 'LIVE' | 'DRAINING' | 'PRE_INITIALIZING' {
  if (!opts.providers.ready()) return 'PRE_INITIALIZING';
  return state.healthCheckFailed ? 'DRAINING' : 'LIVE';
}

function refreshServerStats(opts: AdminOptions, state: State, startedAt: number): void {
  opts.collect?.();
  const s = serverState(opts, state);
  opts.stats.gauge('envoy_server_live').set(s === 'LIVE' ? 1 : 0);
  opts.stats.gauge('envoy_server_state').set(s === 'LIVE' ? 0 : s === 'DRAINING' ? 1 : 2);
  opts.stats.gauge('envoy_server_uptime').set(Math.floor(((opts.clock ?? systemClock).now() - startedAt) / 1000));
  opts.stats.gauge('envoy_server_concurrency').set(opts.concurrency ?? 1);
  const mem = opts.memoryUsage?.() ?? process.memoryUsage();
  opts.stats.gauge('envoy_server_memory_allocated').set(mem.heapUsed);
  opts.stats.gauge('envoy_server_memory_heap_size').set(mem.heapTotal);
}

async function proxyMetricsText(opts: AdminOptions, state: State, startedAt: number): Promise<string> {
  await opts.gather?.();
  refreshServerStats(opts, state, startedAt);
  return opts.stats.render() + (opts.metrics?.render() ?? '');
}

function requirePost(req: IncomingMessage): Reply | undefined {
  return req.method === 'POST' ? undefined : text(405, 'This endpoint requires POST.\n');
}

function loggingListing(state: State): string {
  return `active loggers:\n  tsmesh: ${state.logLevel}\n`;
}

function adminRoutes(opts: AdminOptions, state: State, startedAt: number): Map<string, Handler> {
  const r = new Map<string, Handler>();
  const promText = async (): Promise<Reply> => ({ status: 200, body: await proxyMetricsText(opts, state, startedAt), type: PROMETHEUS_CONTENT_TYPE });
  r.set('/ready', () => {
    const s = serverState(opts, state);
    return text(s === 'LIVE' ? 200 : 503, `${s}\n`);
  });
  r.set('/server_info', () => {
    const uptime = `${Math.floor(((opts.clock ?? systemClock).now() - startedAt) / 1000)}s`;
    return json({
      version: `tsmesh/${opts.version ?? 'dev'}`, state: serverState(opts, state), hot_restart_version: 'disabled',
      uptime_current_epoch: uptime, uptime_all_epochs: uptime, ...opts.providers.serverInfo?.(),
    });
  });
  r.set('/stats/prometheus', promText);
  r.set('/stats', async (_req, url) => {
    const format = url.searchParams.get('format');
    if (format === 'prometheus') return promText();
    await opts.gather?.();
    refreshServerStats(opts, state, startedAt);
    const families: MetricFamily[] = [...opts.stats.families()];
    let lines = statLines(families);
    if (opts.metrics?.families) lines = [...lines, ...statLines(opts.metrics.families)];
    const filter = url.searchParams.get('filter');
    if (filter !== null && filter !== '') {
      let re: RegExp;
      try {
        re = new RegExp(filter);
      } catch (err) {
        return text(400, `Invalid regex: ${(err as Error).message}\n`);
      }
      lines = lines.filter((l) => re.test(l.name));
    }
    if (url.searchParams.has('usedonly')) lines = lines.filter((l) => (typeof l.value === 'number' ? l.value !== 0 : l.value.count !== 0));
    if (format === 'json') return json({ stats: lines.map((l) => (typeof l.value === 'number' ? { name: l.name, value: l.value } : { name: l.name, histogram: l.value })) });
    return text(200, formatStatsText(lines));
  });
  r.set('/config_dump', (_req, url) => {
    const q: ConfigDumpQuery = { includeEds: url.searchParams.has('include_eds') };
    const resource = url.searchParams.get('resource');
    const mask = url.searchParams.get('mask');
    const nameRegex = url.searchParams.get('name_regex');
    if (resource) q.resource = resource;
    if (mask) q.mask = mask;
    if (nameRegex) q.nameRegex = nameRegex;
    return json(opts.providers.configDump(q));
  });
  r.set('/clusters', async (_req, url) => {
    const clusters = await opts.providers.clusters();
    return url.searchParams.get('format') === 'json' ? json(clustersJson(clusters)) : text(200, formatClustersText(clusters));
  });
  r.set('/listeners', async (_req, url) => {
    const listeners = await opts.providers.listeners();
    if (url.searchParams.get('format') === 'json') {
      return json({ listener_statuses: listeners.map((l) => ({ name: l.name, local_address: { socket_address: socketAddress(l.address) } })) });
    }
    return text(200, listeners.map((l) => `${l.name}::${l.address}\n`).join(''));
  });
  r.set('/logging', (req, url) => {
    const params = [...url.searchParams.entries()];
    if (params.length === 0) return text(200, loggingListing(state));
    const notPost = requirePost(req);
    if (notPost) return notPost;
    for (const [name, value] of params) {
      if (name !== 'level') return text(400, `unknown logger "${name}": tsmesh has one level for every logger; use /logging?level=<level>\n`);
      const level = LEVELS[value];
      if (!level) return text(400, `error: unknown logger level "${value}" (one of ${Object.keys(LEVELS).join(', ')})\n`);
      setLogLevel(level);
      state.logLevel = level;
      opts.hooks.logLevel?.(level);
    }
    return text(200, loggingListing(state));
  });
  r.set('/quitquitquit', (req) => {
    const notPost = requirePost(req);
    if (notPost) return notPost;
    setImmediate(() => opts.hooks.quit());
    return text(200, 'OK\n');
  });
  r.set('/drain_listeners', (req, url) => {
    const notPost = requirePost(req);
    if (notPost) return notPost;
    opts.hooks.drain({ inboundOnly: url.searchParams.has('inboundonly'), graceful: url.searchParams.has('graceful') });
    return text(200, 'OK\n');
  });
  r.set('/healthcheck/fail', (req) => {
    const notPost = requirePost(req);
    if (notPost) return notPost;
    state.healthCheckFailed = true;
    return text(200, 'OK\n');
  });
  r.set('/healthcheck/ok', (req) => {
    const notPost = requirePost(req);
    if (notPost) return notPost;
    state.healthCheckFailed = false;
    return text(200, 'OK\n');
  });
  const index = [...r.keys(), '/'].sort();
  r.set('/', () => text(200, `admin commands are:\n${index.map((p) => `  ${p}\n`).join('')}`));
  return r;
}

function readiness(opts: AdminOptions, state: State): Reply {
  if (!opts.providers.ready()) return text(503, 'Envoy proxy is NOT ready: config not received from XDS server (is the control plane running?)\n');
  if (state.healthCheckFailed) return text(503, 'Envoy proxy is NOT ready: server is draining\n');
  return text(200, '');
}

function agentRoutes(opts: AdminOptions, state: State, startedAt: number, app: AppScrapeConfig | undefined): Map<string, Handler> {
  const families = { scrapes: new MetricFamily(AGENT_METRICS.scrapes), failures: new MetricFamily(AGENT_METRICS.failures) };
  const r = new Map<string, Handler>();
  r.set('/stats/prometheus', async (req) => {
    families.scrapes.get(['envoy']).inc();
    let body = await proxyMetricsText(opts, state, startedAt);
    let appText = '';
    if (app) {
      families.scrapes.get(['application']).inc();
      const header = Number(req.headers['x-prometheus-scrape-timeout-seconds']);
      const timeoutMs = Number.isFinite(header) && header > 0 ? Math.min(header * 1000, 10_000) * 0.9 : 5000;
      const res = await scrapeApp(app, timeoutMs);
      if (res.ok) appText = res.text;
      else families.failures.get(['application']).inc();
    }
    body += appText + renderFamilies([families.scrapes, families.failures]);
    return { status: 200, body, type: PROMETHEUS_CONTENT_TYPE };
  });
  r.set('/healthz/ready', () => readiness(opts, state));
  r.set('/quitquitquit', (req) => {
    const notPost = requirePost(req);
    if (notPost) return notPost;
    setImmediate(() => opts.hooks.quit());
    return text(200, 'OK\n');
  });
  return r;
}

function serve(routes: Map<string, Handler>): Server {
  return createServer((req, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const handler = routes.get(url.pathname);
    const send = (reply: Reply): void => {
      res.writeHead(reply.status, { 'content-type': reply.type ?? 'text/plain; charset=UTF-8', 'cache-control': 'no-cache, max-age=0' });
      res.end(req.method === 'HEAD' ? undefined : reply.body);
    };
    if (!handler) {
      send(text(404, `invalid path: ${url.pathname}\n`));
      return;
    }
    req.resume();
    Promise.resolve()
      .then(() => handler(req, url))
      .then(send, (err: unknown) => send(text(500, `${url.pathname}: ${(err as Error)?.message ?? String(err)}\n`)));
  });
}

async function listen(server: Server, port: number, host: string, what: string): Promise<RunningServer> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(new Error(`${what}: cannot listen on ${host}:${port}: ${err.message}`));
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      const a = server.address() as AddressInfo;
      resolve({ port: a.port, address: a.address });
    });
  });
}

async function closeServer(server: Server): Promise<void> {
  await new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

/**
 * Starts the admin (127.0.0.1:15000), Prometheus (15090), agent (15020) and health (15021) servers. Rejects,
 * with the others closed again, when one cannot listen.
 */
export async function startAdminServers(opts: AdminOptions): Promise<AdminServers> {
  const startedAt = (opts.clock ?? systemClock).now();
  const envLevel = process.env.TSMESH_LOG_LEVEL as LogLevel | undefined;
  const state: State = { healthCheckFailed: false, logLevel: envLevel && Object.values(LEVELS).includes(envLevel) ? envLevel : 'info' };
  const app = opts.appScrape === null ? undefined : (opts.appScrape ?? appScrapeFromEnv());
  const ports = { ...DEFAULT_PORTS, ...opts.ports };
  const bindAdmin = opts.bindAdmin ?? '127.0.0.1';
  const bindPublic = opts.bindPublic ?? '0.0.0.0';

  const promRoutes = new Map<string, Handler>([['/stats/prometheus', async () => ({ status: 200, body: await proxyMetricsText(opts, state, startedAt), type: PROMETHEUS_CONTENT_TYPE })]]);
  const healthRoutes = new Map<string, Handler>([['/healthz/ready', () => readiness(opts, state)]]);
  const plan: Array<[keyof typeof DEFAULT_PORTS, Map<string, Handler>, string]> = [
    ['admin', adminRoutes(opts, state, startedAt), bindAdmin],
    ['prometheus', promRoutes, bindPublic],
    ['agent', agentRoutes(opts, state, startedAt, app), bindPublic],
    ['health', healthRoutes, bindPublic],
  ];
  const started: Server[] = [];
  const result: { -readonly [K in keyof AdminServers]?: AdminServers[K] } = {};
  try {
    for (const [name, routes, host] of plan) {
      const port = ports[name];
      if (port === null || port === undefined) continue;
      const server = serve(routes);
      started.push(server);
      result[name] = await listen(server, port, host, name);
    }
  } catch (err) {
    await Promise.all(started.map(closeServer));
    throw err;
  }
  return {
    ...result,
    get healthCheckFailed() {
      return state.healthCheckFailed;
    },
    async close() {
      await Promise.all(started.map(closeServer));
    },
  };
}
