// The sidecar's ADS client: subscribes to CDS and LDS (wildcard), then EDS and RDS for the names they
// reference, hands each response to an applier, ACKs what applied and NACKs what did not (with the
// reason), keeps serving the last good config while the control plane is away, and reconnects with
// backoff, resubscribing with the versions it holds. The stream is its own small gRPC client (ads-stream.ts).

import { EventEmitter } from 'node:events';
import type { DiscoveryRequest, DiscoveryResponse, XdsNode } from '../../xds/ads-service.ts';
import { decodeAny, TYPE_URLS } from '../../xds/protos.ts';
import type { Logger } from '../../common/log.ts';
import { AdsStream } from './ads-stream.ts';

type Json = Record<string, unknown>;

export interface XdsAppliers {
  /** Each throws (with a message for the NACK) when the resources cannot be applied. */
  clusters(resources: Json[]): void | Promise<void>;
  endpoints(resources: Json[]): void | Promise<void>;
  listeners(resources: Json[]): void | Promise<void>;
  routes(resources: Json[]): void | Promise<void>;
}

export interface XdsClientOptions {
  /** host:port of the control plane's ADS. */
  address: string;
  node: XdsNode;
  appliers: XdsAppliers;
  log?: Logger;
  /** Reconnect backoff (ms). */
  backoff?: { initialMs: number; maxMs: number };
  /** HTTP/2 PING interval and how long one may go unanswered before the stream is given up (ms); default 30 s and 20 s. */
  keepalive?: { intervalMs: number; timeoutMs: number };
}

interface TypeState {
  version: string;
  nonce: string;
  names: string[];
  /** Last accepted resources by name. */
  resources: Map<string, Json>;
  received: boolean;
  lastError?: string;
}

const ORDER = [TYPE_URLS.CLUSTER, TYPE_URLS.ENDPOINT, TYPE_URLS.LISTENER, TYPE_URLS.ROUTE] as const;

/** Emits 'ready' once the first full config (CDS, EDS of every EDS cluster, LDS, RDS of every route) applied, 'update' after every applied response, 'nack' and 'disconnected'. */
export class XdsClient extends EventEmitter {
  readonly #opts: XdsClientOptions;
  readonly #state = new Map<string, TypeState>();
  #stream: AdsStream | undefined;
  #stopped = false;
  #backoffMs: number;
  #timer: NodeJS.Timeout | undefined;
  #ready = false;
  #queue: Promise<void> = Promise.resolve();
  #first = true;
  connected = false;

  constructor(opts: XdsClientOptions) {
    super();
    this.#opts = opts;
    this.#backoffMs = opts.backoff?.initialMs ?? 500;
    for (const t of ORDER) this.#state.set(t, { version: '', nonce: '', names: [], resources: new Map(), received: false });
  }

  get ready(): boolean {
    return this.#ready;
  }

  /** What is applied now, per type: version, names, and the last NACK reason. */
  status(): Array<{ typeUrl: string; version: string; count: number; error?: string }> {
    return ORDER.map((t) => {
      const s = this.#state.get(t);
      return { typeUrl: t, version: s?.version ?? '', count: s?.resources.size ?? 0, ...(s?.lastError ? { error: s.lastError } : {}) };
    });
  }

  resources(typeUrl: string): Json[] {
    return [...(this.#state.get(typeUrl)?.resources.values() ?? [])];
  }

  start(): void {
    this.#stopped = false;
    this.#connect();
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#stream?.close();
    this.#stream = undefined;
  }

  #connect(): void {
    if (this.#stopped) return;
    this.#first = true;
    const lost = (stream: AdsStream, why: string): void => {
      if (this.#stream !== stream) return;
      this.#stream = undefined;
      this.connected = false;
      this.emit('disconnected', why);
      if (this.#stopped) return;
      this.#opts.log?.warn('xds: stream closed; serving the last good config and reconnecting', { reason: why, retryInMs: this.#backoffMs });
      this.#timer = setTimeout(() => this.#connect(), this.#backoffMs);
      this.#backoffMs = Math.min(this.#backoffMs * 2, this.#opts.backoff?.maxMs ?? 30_000);
    };
    this.#stream?.close();
    const stream: AdsStream = new AdsStream({
      address: this.#opts.address,
      ...(this.#opts.keepalive ? { keepaliveMs: this.#opts.keepalive.intervalMs, keepaliveTimeoutMs: this.#opts.keepalive.timeoutMs } : {}),
      onResponse: (r: DiscoveryResponse) => {
        if (this.#stream !== stream) return;
        this.connected = true;
        this.#backoffMs = this.#opts.backoff?.initialMs ?? 500;
        this.#queue = this.#queue.then(() => this.#onResponse(r)).catch((err: unknown) => this.#opts.log?.error('xds: response handling failed', { error: String(err) }));
      },
      onClose: (why) => lost(stream, why),
    });
    this.#stream = stream;
    // (re)subscribe: CDS and LDS as wildcards; EDS and RDS with the names we already know
    for (const t of ORDER) {
      const s = this.#state.get(t);
      if (!s) continue;
      if (t === TYPE_URLS.ENDPOINT || t === TYPE_URLS.ROUTE) {
        if (s.names.length > 0) this.#send({ type_url: t, version_info: s.version, resource_names: s.names });
      } else this.#send({ type_url: t, version_info: s.version, resource_names: [] });
    }
  }

  #send(req: DiscoveryRequest): void {
    if (!this.#stream) return;
    if (this.#first) {
      req = { ...req, node: this.#opts.node };
      this.#first = false;
    }
    this.#stream.send(req);
  }

  async #onResponse(r: DiscoveryResponse): Promise<void> {
    const t = r.type_url;
    const s = this.#state.get(t);
    if (!s) return;
    let resources: Json[];
    try {
      resources = r.resources.map((a) => decodeAny(a));
    } catch (err) {
      this.#nack(t, s, r, `cannot decode: ${(err as Error).message}`);
      return;
    }
    // EDS and RDS responses hold only the names asked for; merge into what we have
    let full: Json[] = resources;
    if (t === TYPE_URLS.ENDPOINT || t === TYPE_URLS.ROUTE) {
      const key = t === TYPE_URLS.ENDPOINT ? 'cluster_name' : 'name';
      const merged = new Map(s.resources);
      for (const x of resources) merged.set(String(x[key]), x);
      for (const name of [...merged.keys()]) if (!s.names.includes(name)) merged.delete(name);
      full = [...merged.values()];
    }
    try {
      const appliers = this.#opts.appliers;
      if (t === TYPE_URLS.CLUSTER) await appliers.clusters(full);
      else if (t === TYPE_URLS.ENDPOINT) await appliers.endpoints(full);
      else if (t === TYPE_URLS.LISTENER) await appliers.listeners(full);
      else await appliers.routes(full);
    } catch (err) {
      this.#nack(t, s, r, (err as Error).message);
      return;
    }
    const key = t === TYPE_URLS.ENDPOINT ? 'cluster_name' : 'name';
    s.resources = new Map(full.map((x) => [String(x[key]), x]));
    s.version = r.version_info;
    s.nonce = r.nonce;
    s.received = true;
    delete s.lastError;
    this.#send({ type_url: t, version_info: r.version_info, response_nonce: r.nonce, resource_names: s.names });
    if (t === TYPE_URLS.CLUSTER) this.#resubscribe(TYPE_URLS.ENDPOINT, edsNames(full));
    if (t === TYPE_URLS.LISTENER) this.#resubscribe(TYPE_URLS.ROUTE, rdsNames(full));
    this.emit('update', t);
    this.#checkReady();
  }

  #nack(t: string, s: TypeState, r: DiscoveryResponse, message: string): void {
    s.lastError = message;
    s.nonce = r.nonce;
    this.#opts.log?.warn('xds: rejected config (NACK); the last good config keeps serving', { type: t, version: r.version_info, reason: message });
    this.#send({ type_url: t, version_info: s.version, response_nonce: r.nonce, resource_names: s.names, error_detail: { code: 3, message } });
    this.emit('nack', t, message);
  }

  #resubscribe(t: string, names: string[]): void {
    const s = this.#state.get(t);
    if (!s) return;
    const sorted = [...new Set(names)].sort();
    if (sorted.length === s.names.length && sorted.every((n, i) => n === s.names[i])) return;
    s.names = sorted;
    if (sorted.length === 0) {
      s.received = true;
      this.#checkReady();
    }
    this.#send({ type_url: t, version_info: s.version, response_nonce: s.nonce, resource_names: sorted });
  }

  #checkReady(): void {
    if (this.#ready) return;
    const cds = this.#state.get(TYPE_URLS.CLUSTER);
    const eds = this.#state.get(TYPE_URLS.ENDPOINT);
    const lds = this.#state.get(TYPE_URLS.LISTENER);
    const rds = this.#state.get(TYPE_URLS.ROUTE);
    if (!cds?.received || !lds?.received) return;
    if (eds && eds.names.length > 0 && !eds.received) return;
    if (rds && rds.names.length > 0 && !rds.received) return;
    this.#ready = true;
    this.emit('ready');
  }
}

function edsNames(clusters: Json[]): string[] {
  const out: string[] = [];
  for (const c of clusters) {
    if (c.type !== 'EDS') continue;
    const sn = (c.eds_cluster_config as Json | undefined)?.service_name;
    out.push(typeof sn === 'string' && sn ? sn : String(c.name));
  }
  return out;
}

function rdsNames(listeners: Json[]): string[] {
  const out: string[] = [];
  const visit = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(visit);
    else if (v && typeof v === 'object') {
      const o = v as Json;
      const rds = o.rds as Json | undefined;
      if (rds && typeof rds.route_config_name === 'string') out.push(rds.route_config_name);
      for (const x of Object.values(o)) if (x && typeof x === 'object') visit(x);
    }
  };
  visit(listeners);
  return out;
}
