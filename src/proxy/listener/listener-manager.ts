// The listener manager: binds the listeners LDS asks for (15001 virtualOutbound, 15006 virtualInbound,
// Sidecar ingress/egress binds), hands each accepted connection to the listener of its original
// destination, inspects its first bytes when a filter chain needs SNI/ALPN/HTTP, selects the filter
// chain and passes the connection to the HTTP connection manager or the TCP proxy; counts connections per
// listener and per worker (Envoy's listener.<address>.worker_<id>.*). A listener that cannot bind makes apply()
// throw (the xDS client NACKs); already bound listeners keep serving.

import net, { type Socket } from 'node:net';
import type { ProxyContext } from '../context.ts';
import { ConfigError } from '../config/errors.ts';
import { selectChain, type CompiledChain, type CompiledListener, type HttpChain } from '../config/listeners.ts';
import type { HttpConnectionManager } from '../http/connection-manager.ts';
import type { Counter, Gauge } from '../telemetry/prometheus.ts';
import type { StatsRegistry } from '../telemetry/stats.ts';
import { proxyTcp } from '../tcp/tcp-proxy.ts';
import { inspect, type Inspection } from './inspector.ts';

/** Who took an accepted connection over. */
type Taker = 'http1' | 'http2' | 'tcp' | 'closed';

export type OriginalDstFn = (socket: Socket) => { address: string; port: number } | undefined;

interface Bound {
  key: string;
  server: net.Server;
  listener: CompiledListener;
  /**
   * Connections accepted while apply() is still binding the rest of the set: held (unread) until the new
   * listener table is in place, so a connection is never handed off by the previous table (with
   * --concurrency, a replacement worker takes connections as soon as its first listener is bound).
   */
  held?: Socket[];
}

const ORIGINAL_DST_FILTER = 'envoy.filters.listener.original_dst';

/** Envoy's per-worker listener stats: listener.<address>.worker_<id>.downstream_cx_{total,active}. */
export function workerListenerStats(workerId: number): Array<{ name: string; type: 'counter' | 'gauge'; help: string; labels: string[] }> {
  return [
    { name: `envoy_listener_worker_${workerId}_downstream_cx_total`, type: 'counter', help: `Connections accepted by the listener on worker ${workerId}`, labels: ['listener_address'] },
    { name: `envoy_listener_worker_${workerId}_downstream_cx_active`, type: 'gauge', help: `Connections open on the listener on worker ${workerId}`, labels: ['listener_address'] },
  ];
}

/** Envoy's listener stat scope: 0.0.0.0:15006 -> "0.0.0.0_15006". */
export function listenerStatAddress(address: string, port: number): string {
  return `${address}_${port}`.replaceAll(':', '_');
}

/** Where accepted connections are counted (the listener's stats and this worker's). */
export interface ListenerStatsOptions {
  stats: StatsRegistry;
  /** This process's worker id (0 when there is one process). */
  workerId: number;
}

interface ListenerCells {
  total: Counter;
  active: Gauge;
  workerTotal: Counter;
  workerActive: Gauge;
}

function normalizeIp(ip: string | undefined): string {
  if (!ip) return '';
  return ip.startsWith('::ffff:') ? ip.slice(7) : ip;
}

export class ListenerManager {
  readonly #ctx: ProxyContext;
  readonly #hcm: HttpConnectionManager;
  readonly #originalDst: OriginalDstFn;
  readonly #bound = new Map<string, Bound>();
  /** Every listener by `address:port` (bound or not), for original-destination hand-off. */
  #byAddress = new Map<string, CompiledListener>();
  #listeners: CompiledListener[] = [];
  #draining = false;
  readonly #stats: ListenerStatsOptions | undefined;
  readonly #cells = new Map<string, ListenerCells>();

  constructor(ctx: ProxyContext, hcm: HttpConnectionManager, originalDst: OriginalDstFn, stats?: ListenerStatsOptions) {
    this.#ctx = ctx;
    this.#hcm = hcm;
    this.#originalDst = originalDst;
    this.#stats = stats;
    if (stats) stats.stats.define(workerListenerStats(stats.workerId));
  }

  #countConnection(listener: CompiledListener, socket: Socket): void {
    const s = this.#stats;
    if (!s) return;
    const address = listenerStatAddress(listener.address, listener.port);
    let c = this.#cells.get(address);
    if (!c) {
      const labels = { listener_address: address };
      const w = `envoy_listener_worker_${s.workerId}_downstream_cx_`;
      c = {
        total: s.stats.counter('envoy_listener_downstream_cx_total', labels),
        active: s.stats.gauge('envoy_listener_downstream_cx_active', labels),
        workerTotal: s.stats.counter(`${w}total`, labels),
        workerActive: s.stats.gauge(`${w}active`, labels),
      };
      this.#cells.set(address, c);
    }
    const cells = c;
    cells.total.inc();
    cells.workerTotal.inc();
    cells.active.inc();
    cells.workerActive.inc();
    socket.once('close', () => {
      cells.active.dec();
      cells.workerActive.dec();
    });
  }

  get listeners(): readonly CompiledListener[] {
    return this.#listeners;
  }

  /** The ports actually bound, by listener name (port 0 in config binds a free port: tests). */
  boundPorts(): Map<string, number> {
    const out = new Map<string, number>();
    for (const b of this.#bound.values()) {
      const a = b.server.address();
      if (a && typeof a === 'object') out.set(b.listener.name, a.port);
    }
    return out;
  }

  /** Applies the full LDS set: binds new listeners, updates existing ones in place, closes removed ones. */
  async apply(listeners: readonly CompiledListener[]): Promise<void> {
    const wanted = new Map<string, CompiledListener>();
    for (const l of listeners) if (l.bindToPort) wanted.set(`${l.address}:${l.port}|${l.name}`, l);
    const opened: Bound[] = [];
    try {
      for (const [key, l] of wanted) {
        const existing = this.#bound.get(key);
        if (existing) continue;
        opened.push(await this.#bind(key, l));
      }
    } catch (err) {
      for (const b of opened) {
        b.server.close();
        for (const socket of b.held ?? []) socket.destroy();
      }
      throw err;
    }
    const byAddress = new Map<string, CompiledListener>();
    for (const l of listeners) if (!byAddress.has(`${l.address}:${l.port}`)) byAddress.set(`${l.address}:${l.port}`, l);
    this.#byAddress = byAddress;
    this.#listeners = [...listeners];
    for (const b of opened) this.#bound.set(b.key, b);
    for (const [key, b] of this.#bound) {
      const l = wanted.get(key);
      if (l) b.listener = l;
      else {
        b.server.close();
        this.#bound.delete(key);
      }
    }
    for (const b of opened) {
      const held = b.held ?? [];
      b.held = undefined;
      for (const socket of held) if (!socket.destroyed) this.#onConnection(b, socket);
    }
  }

  #bind(key: string, l: CompiledListener): Promise<Bound> {
    const server = net.createServer({ noDelay: true, pauseOnConnect: false });
    const bound: Bound = { key, server, listener: l, held: [] };
    server.on('connection', (socket) => this.#onConnection(bound, socket));
    return new Promise((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) => reject(new ConfigError(`listener ${l.name}: cannot bind ${l.address}:${l.port}: ${err.code ?? err.message}`)));
      server.listen({ host: l.address, port: l.port, backlog: 1024 }, () => {
        server.removeAllListeners('error');
        server.on('error', () => undefined);
        resolve(bound);
      });
    });
  }

  /** Stops accepting new connections (Envoy's /drain_listeners); open ones finish. */
  drain(): void {
    this.#draining = true;
    for (const b of this.#bound.values()) b.server.close();
  }

  async close(): Promise<void> {
    this.#draining = true;
    await Promise.all([...this.#bound.values()].map((b) => new Promise<void>((r) => b.server.close(() => r()))));
    this.#bound.clear();
    this.#hcm.close();
  }

  #onConnection(bound: Bound, socket: Socket): void {
    if (bound.held) {
      socket.on('error', () => undefined);
      bound.held.push(socket);
      return;
    }
    if (socket.listenerCount('error') === 0) socket.on('error', () => undefined);
    if (this.#draining) {
      socket.destroy();
      return;
    }
    let listener = bound.listener;
    let destination = { address: normalizeIp(socket.localAddress), port: socket.localPort ?? 0 };
    const listenerFilters = Array.isArray(listener.raw.listener_filters) ? (listener.raw.listener_filters as Array<{ name?: string }>) : [];
    if (listener.useOriginalDst || listenerFilters.some((f) => f.name === ORIGINAL_DST_FILTER)) {
      const orig = this.#originalDst(socket);
      if (orig) destination = { address: normalizeIp(orig.address), port: orig.port };
    }
    if (listener.useOriginalDst) {
      const target = this.#byAddress.get(`${destination.address}:${destination.port}`) ?? this.#byAddress.get(`0.0.0.0:${destination.port}`);
      if (target && target !== listener && !target.useOriginalDst) listener = target;
    }
    this.#countConnection(listener, socket);
    const needsBytes = listener.inspectTls || listener.inspectHttp || listener.chains.some((c) => c.filter.kind === 'http') || listener.defaultChain?.filter.kind === 'http';
    if (!needsBytes) {
      this.#dispatch(socket, listener, destination, undefined);
      return;
    }
    // read the first bytes, then put them back for whoever takes the connection
    let settled = false;
    const timer = setTimeout(() => settle(undefined), listener.inspectTimeoutMs);
    const onData = (chunk: Buffer): void => settle(chunk);
    const onEnd = (): void => settle(undefined);
    const settle = (chunk: Buffer | undefined): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.pause();
      if (chunk) socket.unshift(chunk);
      const seen = chunk ? inspect(chunk) : undefined;
      let taker: Taker = 'closed';
      try {
        taker = this.#dispatch(socket, listener, destination, seen);
      } catch {
        socket.destroy();
      }
      // Only node:http's server is given a paused socket it will not resume itself. node:http2 takes the
      // socket's handle over and replays the unshifted bytes on the next tick (resuming here would race it:
      // "bad client magic"); the TCP proxy resumes once its upstream is connected (resuming here would
      // emit the client's first bytes before anyone pipes them: they would be lost).
      if (taker === 'http1') socket.resume();
    };
    socket.on('data', onData);
    socket.once('end', onEnd);
  }

  #dispatch(socket: Socket, listener: CompiledListener, destination: { address: string; port: number }, seen: Inspection | undefined): Taker {
    const facts = {
      destinationIp: destination.address,
      destinationPort: destination.port,
      transportProtocol: seen?.transportProtocol ?? 'raw_buffer',
      applicationProtocols: seen?.applicationProtocols ?? [],
      ...(seen?.serverName ? { serverName: seen.serverName } : {}),
    };
    let chain: CompiledChain | undefined = selectChain(listener, facts);
    // an HTTP chain cannot serve bytes that are not HTTP: fall back to the default chain (passthrough)
    if (chain?.filter.kind === 'http' && seen && seen.transportProtocol === 'tls') chain = listener.defaultChain;
    if (!chain) {
      socket.destroy();
      return 'closed';
    }
    if (chain.filter.kind === 'http') {
      const conn = { listener, chain: chain as CompiledChain & { filter: HttpChain }, destination, ...(seen?.serverName ? { serverName: seen.serverName } : {}) };
      const h2 = seen?.h2c === true;
      this.#hcm.handle(socket, conn, h2);
      return h2 ? 'http2' : 'http1';
    }
    proxyTcp(this.#ctx, socket, { listener, chain: chain.filter, destination, ...(seen?.serverName ? { serverName: seen.serverName } : {}) });
    return 'tcp';
  }
}
