// The state-of-the-world ADS server: gRPC streams, per-type subscriptions, versions and nonces, ACK/NACK, debounced pushes through a per-connection queue; a bad stream or a failing generator is logged and isolated, never crashing the server.
//
// Protocol (envoy's xDS, state of the world):
//  - the first request on a stream must carry a Node with Istio's id (`type~ip~pod.ns~ns.svc.cluster.local`),
//    else the stream ends with INVALID_ARGUMENT;
//  - a request for a type not yet watched, or without a nonce, or with a changed resource-name list,
//    is answered at once from the current snapshot;
//  - a request carrying the nonce we last sent is an ACK (its version_info is recorded) or, with
//    error_detail, a NACK (logged and shown in status; nothing is resent until the next push);
//    a request carrying an older nonce is stale and ignored;
//  - a push (debounced) regenerates, per connection, the watched types whose generator is affected,
//    in the order CDS, EDS, LDS, RDS, SDS, then any other; a connection still writing the previous
//    push gets the latest merged request afterwards, not a backlog.
// Delta (incremental) xDS on DeltaAggregatedResources follows the same rules with per-resource
// versions (a hash of the encoded resource): only changed resources are sent, vanished ones are
// listed in removed_resources, subscriptions change by resource_names_(un)subscribe.

import * as grpc from '@grpc/grpc-js';
import { createHash } from 'node:crypto';
import dc from 'node:diagnostics_channel';
import { logger, type Logger } from '../../common/log.ts';
import {
  adsServiceDefinition, type DeltaDiscoveryRequest, type DeltaDiscoveryResponse, type DiscoveryRequest, type DiscoveryResponse, type XdsNode,
} from '../../xds/ads-service.ts';
import { parseNode, type ProxyIdentity } from '../../xds/node.ts';
import { encodeAny, TYPE_SHORT_NAMES, TYPE_URLS, type AnyWire, type XdsObject } from '../../xds/protos.ts';
import { DEFAULT_DEBOUNCE, Debouncer, systemClock, type Clock, type DebounceOptions } from './debounce.ts';
import { describePush, mergePushRequests, type PushReason, type PushRequest } from './push-request.ts';

/** A resource a generator produced: its name and the object in the JSON convention, carrying "@type". */
export interface GeneratedResource {
  name: string;
  resource: object;
}

/**
 * Builds the resources of one type for one proxy. Pure: no I/O, no mutation of the snapshot; the
 * returned objects must not be changed afterwards (the server caches their encoding by identity).
 */
export interface Generator<S> {
  readonly typeUrl: string;
  /** `names` are the subscribed resource names; [] means wildcard (everything the proxy may see). */
  generate(proxy: ConnectedProxy, snapshot: S, names: readonly string[]): GeneratedResource[];
  /** false: this push cannot change this type, so it is not regenerated or resent. Absent: always affected. */
  affectedBy?(change: PushRequest): boolean;
}

export interface NackInfo {
  /** version_info of the NACK: the version the proxy still runs. */
  readonly version: string;
  /** The nonce of the response that was rejected. */
  readonly nonce: string;
  readonly message: string;
  readonly at: number;
}

/** What one connection watches of one type, and where the exchange stands. */
export interface WatchState {
  readonly typeUrl: string;
  /** Subscribed names; [] = wildcard (delta: wildcard plus explicit names shows the names after '*'). */
  names: readonly string[];
  sentVersion?: string;
  sentNonce?: string;
  sentAt?: number;
  sentCount?: number;
  ackedVersion?: string;
  ackedNonce?: string;
  ackedAt?: number;
  lastNack?: NackInfo;
  /** Why the last generation or encoding failed (nothing was sent then); cleared by a successful send. */
  lastError?: string;
}

/** A proxy on an open ADS stream. */
export interface ConnectedProxy extends ProxyIdentity {
  /** Unique per stream: `<node id>-<n>`. */
  readonly connectionId: string;
  readonly connectedAt: number;
  /** The peer address of the stream. */
  readonly peer: string;
  /** 'delta' for DeltaAggregatedResources streams. */
  readonly protocol: 'sotw' | 'delta';
  readonly watches: ReadonlyMap<string, Readonly<WatchState>>;
}

export type SyncState = 'SYNCED' | 'STALE' | 'NOT SENT';

export interface TypeSyncStatus {
  typeUrl: string;
  /** CDS, EDS, LDS, RDS, SDS, or the type URL. */
  type: string;
  state: SyncState;
  names: readonly string[];
  sentVersion?: string;
  sentNonce?: string;
  ackedVersion?: string;
  ackedNonce?: string;
  /** The NACK that makes this type STALE, if any. */
  nack?: NackInfo;
  error?: string;
}

export interface ProxySyncStatus {
  proxyId: string;
  connectionId: string;
  proxyType: ConnectedProxy['type'];
  protocol: ConnectedProxy['protocol'];
  namespace: string;
  podName: string;
  ip: string;
  connectedAt: number;
  types: TypeSyncStatus[];
}

/** Named diagnostics channels; messages are the objects described beside each. */
export const XDS_EVENTS = {
  /** { proxy } */
  connect: 'tsmesh:xds:connect',
  /** { proxy, reason } */
  disconnect: 'tsmesh:xds:disconnect',
  /** { proxy, typeUrl, version, nonce } */
  ack: 'tsmesh:xds:ack',
  /** { proxy, typeUrl, version, nonce, message } */
  nack: 'tsmesh:xds:nack',
  /** { proxy, typeUrl, version, nonce, resources, removed, bytes, trigger: 'request' | 'push', reasons } */
  push: 'tsmesh:xds:push',
} as const;

export interface XdsConnectEvent { proxy: ConnectedProxy }
export interface XdsDisconnectEvent { proxy: ConnectedProxy; reason: string }
export interface XdsAckEvent { proxy: ConnectedProxy; typeUrl: string; version: string; nonce: string }
export interface XdsNackEvent extends XdsAckEvent { message: string }
export interface XdsPushEvent {
  proxy: ConnectedProxy;
  typeUrl: string;
  version: string;
  nonce: string;
  resources: number;
  /** Delta only: names listed in removed_resources. */
  removed: number;
  bytes: number;
  trigger: 'request' | 'push';
  reasons: PushReason[];
}

const channels = {
  connect: dc.channel(XDS_EVENTS.connect),
  disconnect: dc.channel(XDS_EVENTS.disconnect),
  ack: dc.channel(XDS_EVENTS.ack),
  nack: dc.channel(XDS_EVENTS.nack),
  push: dc.channel(XDS_EVENTS.push),
};

/** Envoy's recommended order: clusters before their endpoints, listeners before their routes. */
export const PUSH_ORDER: readonly string[] = [TYPE_URLS.CLUSTER, TYPE_URLS.ENDPOINT, TYPE_URLS.LISTENER, TYPE_URLS.ROUTE, TYPE_URLS.SECRET];

export interface AdsServerOptions<S> {
  generators: readonly Generator<S>[];
  /** The current snapshot (push context); called once per push and for each request answered. */
  snapshot: () => S;
  clock?: Clock;
  debounce?: Partial<DebounceOptions>;
  log?: Logger;
  /** false: this push does not concern this proxy (scoping). Absent: every proxy is pushed. */
  shouldPush?(proxy: ConnectedProxy, req: PushRequest): boolean;
  /** DiscoveryResponse.control_plane.identifier; default 'tsmesh'. */
  controlPlaneId?: string;
  /** Server credentials; insecure by default. */
  credentials?: grpc.ServerCredentials;
  serverOptions?: grpc.ServerOptions;
}

type AdsCall = grpc.ServerDuplexStream<DiscoveryRequest, DiscoveryResponse>;
type DeltaCall = grpc.ServerDuplexStream<DeltaDiscoveryRequest, DeltaDiscoveryResponse>;
type AnyCall = AdsCall | DeltaCall;

/** Delta bookkeeping of one type on one stream. */
interface DeltaWatch {
  wildcard: boolean;
  names: Set<string>;
  /** What the proxy holds: resource name -> version. */
  known: Map<string, string>;
}

interface Encoded {
  any: AnyWire;
  version?: string;
}

interface PushJob<S> {
  req: PushRequest;
  snapshot: S;
  version: string;
}

interface Connection<S> {
  readonly proxy: ConnectedProxy;
  readonly watches: Map<string, WatchState>;
  readonly call: AnyCall;
  /** Present on delta streams. */
  readonly delta?: Map<string, DeltaWatch>;
  pending?: PushJob<S>;
  sending: boolean;
  closed: boolean;
}

function isWildcard(names: readonly string[]): boolean {
  return names.length === 0 || names.includes('*');
}

function sameNames(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  const s = new Set(a);
  return b.every((n) => s.has(n));
}

function shortType(typeUrl: string): string {
  return TYPE_SHORT_NAMES[typeUrl] ?? typeUrl;
}

function orderIndex(typeUrl: string): number {
  const i = PUSH_ORDER.indexOf(typeUrl);
  return i < 0 ? PUSH_ORDER.length : i;
}

export class AdsServer<S> {
  readonly #opts: AdsServerOptions<S>;
  readonly #generators = new Map<string, Generator<S>>();
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #debouncer: Debouncer<PushRequest>;
  readonly #connections = new Map<string, Connection<S>>();
  readonly #calls = new Set<AnyCall>();
  readonly #encoded = new WeakMap<object, Encoded>();
  readonly #nonceBase: string;
  #server: grpc.Server | undefined;
  #version: string;
  #pushCount = 0;
  #nonceCount = 0;
  #connCount = 0;

  constructor(opts: AdsServerOptions<S>) {
    this.#opts = opts;
    for (const g of opts.generators) {
      if (this.#generators.has(g.typeUrl)) throw new Error(`AdsServer: two generators for ${g.typeUrl}`);
      this.#generators.set(g.typeUrl, g);
    }
    this.#clock = opts.clock ?? systemClock;
    this.#log = opts.log ?? logger('ads');
    this.#nonceBase = this.#clock.now().toString(36);
    this.#version = this.#makeVersion();
    this.#debouncer = new Debouncer<PushRequest>({
      ...DEFAULT_DEBOUNCE,
      ...opts.debounce,
      clock: this.#clock,
      merge: mergePushRequests,
      fire: (req) => this.#dispatch(req),
    });
  }

  /** The version the next response will carry (the last push's version). */
  get version(): string {
    return this.#version;
  }

  /** Binds and serves ADS on address ('0.0.0.0:15010', '127.0.0.1:0'); resolves to the bound port. */
  async start(address: string): Promise<number> {
    if (this.#server) throw new Error('AdsServer already started');
    const server = new grpc.Server({ 'grpc.max_send_message_length': -1, ...this.#opts.serverOptions });
    server.addService(adsServiceDefinition(), {
      StreamAggregatedResources: (call: AdsCall) => this.#onStream(call, 'sotw'),
      DeltaAggregatedResources: (call: DeltaCall) => this.#onStream(call, 'delta'),
    });
    this.#server = server;
    const port = await new Promise<number>((resolve, reject) => {
      server.bindAsync(address, this.#opts.credentials ?? grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p)));
    });
    this.#log.info('ADS serving', { address, port });
    return port;
  }

  /** Ends every stream (each gets an OK status, waited for up to 1 s), then closes the server and its connections. */
  async stop(): Promise<void> {
    this.#debouncer.stop();
    for (const conn of [...this.#connections.values()]) this.#close(conn, 'server stopping');
    const calls = [...this.#calls];
    this.#calls.clear();
    const server = this.#server;
    this.#server = undefined;
    let grace: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      Promise.all(calls.map(endCall)),
      new Promise<void>((resolve) => {
        grace = setTimeout(resolve, 1000);
        grace.unref();
      }),
    ]);
    clearTimeout(grace);
    // not tryShutdown: a graceful HTTP/2 close can leave an idle client connection half-open forever
    server?.forceShutdown();
  }

  /** Queues a push; requests within the debounce window merge into one. */
  push(req: PushRequest): void {
    this.#debouncer.add(req);
  }

  /** Sends a pending debounced push now. */
  flush(): void {
    this.#debouncer.flush();
  }

  /** The proxies connected now. */
  proxies(): ConnectedProxy[] {
    return [...this.#connections.values()].map((c) => c.proxy);
  }

  /** Per proxy and type: SYNCED (the last response was ACKed), STALE (not yet ACKed, or NACKed), NOT SENT. */
  syncStatus(): ProxySyncStatus[] {
    const out: ProxySyncStatus[] = [];
    for (const conn of this.#connections.values()) {
      const typeUrls = new Set<string>([...this.#generators.keys(), ...conn.watches.keys()]);
      const types = [...typeUrls].sort((a, b) => orderIndex(a) - orderIndex(b) || a.localeCompare(b)).map((typeUrl) => typeStatus(typeUrl, conn.watches.get(typeUrl)));
      const p = conn.proxy;
      out.push({ proxyId: p.id, connectionId: p.connectionId, proxyType: p.type, protocol: p.protocol, namespace: p.namespace, podName: p.podName, ip: p.ip, connectedAt: p.connectedAt, types });
    }
    return out.sort((a, b) => a.proxyId.localeCompare(b.proxyId) || a.connectionId.localeCompare(b.connectionId));
  }

  // ---- streams -----------------------------------------------------------------------------------

  #onStream(call: AnyCall, protocol: 'sotw' | 'delta'): void {
    this.#calls.add(call);
    let conn: Connection<S> | undefined;
    const finish = (reason: string): void => {
      this.#calls.delete(call);
      if (conn) this.#close(conn, reason);
    };
    call.on('data', (req: DiscoveryRequest | DeltaDiscoveryRequest) => {
      try {
        if (!conn) {
          conn = this.#open(call, req.node, protocol);
          if (!conn) return;
        }
        if (conn.delta) this.#onDeltaRequest(conn, conn.delta, req);
        else this.#onRequest(conn, req);
      } catch (err) {
        this.#log.error('ADS request failed', { proxy: conn?.proxy.id, error: (err as Error).message });
      }
    });
    call.on('end', () => {
      finish('client closed the stream');
      try {
        call.end();
      } catch {
        // already ended
      }
    });
    call.on('cancelled', () => finish('stream cancelled'));
    call.on('error', (err: Error) => finish(`stream error: ${err.message}`));
    call.on('close', () => finish('stream closed'));
  }

  #open(call: AnyCall, node: XdsNode | undefined, protocol: 'sotw' | 'delta'): Connection<S> | undefined {
    let identity: ProxyIdentity;
    try {
      identity = parseNode(node);
    } catch (err) {
      const message = (err as Error).message;
      this.#log.warn('ADS stream rejected', { peer: call.getPeer(), error: message });
      call.emit('error', { code: grpc.status.INVALID_ARGUMENT, details: message });
      return undefined;
    }
    const watches = new Map<string, WatchState>();
    const proxy: ConnectedProxy = {
      ...identity,
      connectionId: `${identity.id}-${++this.#connCount}`,
      connectedAt: this.#clock.now(),
      peer: call.getPeer(),
      protocol,
      watches,
    };
    const conn: Connection<S> = { proxy, watches, call, sending: false, closed: false };
    if (protocol === 'delta') Object.assign(conn, { delta: new Map<string, DeltaWatch>() });
    this.#connections.set(proxy.connectionId, conn);
    this.#log.info('ADS connected', { proxy: proxy.id, connection: proxy.connectionId, type: proxy.type, protocol, peer: proxy.peer });
    if (channels.connect.hasSubscribers) channels.connect.publish({ proxy } satisfies XdsConnectEvent);
    return conn;
  }

  #close(conn: Connection<S>, reason: string): void {
    if (conn.closed) return;
    conn.closed = true;
    conn.pending = undefined;
    this.#connections.delete(conn.proxy.connectionId);
    this.#log.info('ADS disconnected', { proxy: conn.proxy.id, connection: conn.proxy.connectionId, reason });
    if (channels.disconnect.hasSubscribers) channels.disconnect.publish({ proxy: conn.proxy, reason } satisfies XdsDisconnectEvent);
  }

  #onRequest(conn: Connection<S>, req: DiscoveryRequest): void {
    const typeUrl = req.type_url ?? '';
    const names = req.resource_names ?? [];
    const nonce = req.response_nonce ?? '';
    const proxy = conn.proxy;
    if (!this.#generators.has(typeUrl)) {
      this.#log.warn('ADS request for a type this server does not serve', { proxy: proxy.id, type: typeUrl || '(empty)' });
      return;
    }
    const watch = conn.watches.get(typeUrl);
    if (!watch || nonce === '') {
      // a new subscription (or a reconnecting proxy's first request, or a change before any response)
      const w = watch ?? { typeUrl, names };
      w.names = [...names];
      conn.watches.set(typeUrl, w);
      this.#sendType(conn, typeUrl, this.#opts.snapshot(), this.#version, 'request', undefined, true);
      return;
    }
    if (nonce !== watch.sentNonce) {
      this.#log.debug('ADS stale nonce ignored', { proxy: proxy.id, type: shortType(typeUrl), nonce, expected: watch.sentNonce });
      return;
    }
    const version = req.version_info ?? '';
    if (req.error_detail) {
      this.#recordNack(conn, watch, version, nonce, req.error_detail);
      return;
    }
    this.#recordAck(conn, watch, version, nonce);
    if (!sameNames(watch.names, names)) {
      watch.names = [...names];
      this.#sendType(conn, typeUrl, this.#opts.snapshot(), this.#version, 'request', undefined, true);
    }
  }

  #recordAck(conn: Connection<S>, watch: WatchState, version: string, nonce: string): void {
    watch.ackedVersion = version;
    watch.ackedNonce = nonce;
    watch.ackedAt = this.#clock.now();
    const { proxy } = conn;
    const typeUrl = watch.typeUrl;
    this.#log.debug('ADS ACK', { proxy: proxy.id, type: shortType(typeUrl), version, nonce });
    if (channels.ack.hasSubscribers) channels.ack.publish({ proxy, typeUrl, version, nonce } satisfies XdsAckEvent);
  }

  /** A NACK is logged and kept for status; nothing is resent until the next push. */
  #recordNack(conn: Connection<S>, watch: WatchState, version: string, nonce: string, detail: { code?: number; message?: string }): void {
    const message = detail.message ?? `error code ${detail.code ?? 'unknown'}`;
    watch.lastNack = { version, nonce, message, at: this.#clock.now() };
    const { proxy } = conn;
    const typeUrl = watch.typeUrl;
    this.#log.warn('ADS NACK', { proxy: proxy.id, type: shortType(typeUrl), rejected: watch.sentVersion, running: version, nonce, reason: message });
    if (channels.nack.hasSubscribers) channels.nack.publish({ proxy, typeUrl, version, nonce, message } satisfies XdsNackEvent);
  }

  #onDeltaRequest(conn: Connection<S>, delta: Map<string, DeltaWatch>, req: DeltaDiscoveryRequest): void {
    const typeUrl = req.type_url ?? '';
    const proxy = conn.proxy;
    if (!this.#generators.has(typeUrl)) {
      this.#log.warn('ADS delta request for a type this server does not serve', { proxy: proxy.id, type: typeUrl || '(empty)' });
      return;
    }
    const nonce = req.response_nonce ?? '';
    let watch = conn.watches.get(typeUrl);
    if (watch && nonce !== '') {
      if (nonce !== watch.sentNonce) {
        this.#log.debug('ADS stale nonce ignored', { proxy: proxy.id, type: shortType(typeUrl), nonce, expected: watch.sentNonce });
      } else if (req.error_detail) {
        // delta requests carry no version_info: the proxy still runs what it last ACKed
        this.#recordNack(conn, watch, watch.ackedVersion ?? '', nonce, req.error_detail);
      } else {
        this.#recordAck(conn, watch, watch.sentVersion ?? '', nonce);
      }
    }
    // subscription changes apply whatever the nonce: they are incremental and must not be lost
    const subscribe = req.resource_names_subscribe ?? [];
    const unsubscribe = req.resource_names_unsubscribe ?? [];
    let d = delta.get(typeUrl);
    const first = !d;
    if (!d) {
      // a first request that names nothing is a (legacy) wildcard subscription
      d = { wildcard: subscribe.length === 0, names: new Set(), known: new Map(Object.entries(req.initial_resource_versions ?? {})) };
      delta.set(typeUrl, d);
    }
    const added: string[] = [];
    for (const n of subscribe) {
      if (n === '*') {
        if (!d.wildcard) added.push(n);
        d.wildcard = true;
      } else if (!d.names.has(n)) {
        d.names.add(n);
        added.push(n);
      }
    }
    for (const n of unsubscribe) {
      if (n === '*') d.wildcard = false;
      else d.names.delete(n);
      if (!d.wildcard) d.known.delete(n);
    }
    const names = d.wildcard ? (d.names.size > 0 ? ['*', ...d.names] : []) : [...d.names];
    if (!watch) {
      watch = { typeUrl, names };
      conn.watches.set(typeUrl, watch);
    } else {
      watch.names = names;
    }
    if (!d.wildcard) for (const n of [...d.known.keys()]) if (!d.names.has(n)) d.known.delete(n);
    if (first || added.length > 0) {
      this.#sendDelta(conn, d, typeUrl, this.#opts.snapshot(), this.#version, 'request', undefined, new Set(added.filter((n) => n !== '*')), true);
    }
  }

  // ---- responses ---------------------------------------------------------------------------------

  #sendType(conn: Connection<S>, typeUrl: string, snapshot: S, version: string, trigger: 'request' | 'push', req: PushRequest | undefined, force: boolean): boolean {
    if (!conn.delta) return this.#send(conn, typeUrl, snapshot, version, trigger, req);
    const d = conn.delta.get(typeUrl);
    if (!d) return true;
    return this.#sendDelta(conn, d, typeUrl, snapshot, version, trigger, req, new Set(), force);
  }

  /** Runs the generator for a watch; undefined (and the error recorded) when it or an encoding fails. */
  #generate(conn: Connection<S>, typeUrl: string, snapshot: S, names: readonly string[]): Array<{ name: string; enc: Encoded }> | undefined {
    const gen = this.#generators.get(typeUrl);
    const watch = conn.watches.get(typeUrl);
    if (!gen || !watch) return undefined;
    try {
      let produced = gen.generate(conn.proxy, snapshot, names);
      if (!isWildcard(names)) {
        const wanted = new Set(names);
        produced = produced.filter((r) => wanted.has(r.name));
      }
      return produced.map((r) => {
        const enc = this.#encode(r.resource);
        if (enc.any.type_url !== typeUrl) throw new Error(`resource ${r.name} is a ${enc.any.type_url}, not a ${typeUrl}`);
        return { name: r.name, enc };
      });
    } catch (err) {
      // a partial state-of-the-world response would delete resources: send nothing, keep the old config
      const message = (err as Error).message;
      watch.lastError = message;
      this.#log.error('ADS generation failed; nothing sent', { proxy: conn.proxy.id, type: shortType(typeUrl), error: message });
      return undefined;
    }
  }

  /** Sends what changed for one delta watch; `requested` are names just subscribed (answered even when absent). */
  #sendDelta(
    conn: Connection<S>, d: DeltaWatch, typeUrl: string, snapshot: S, version: string, trigger: 'request' | 'push',
    req: PushRequest | undefined, requested: ReadonlySet<string>, force: boolean,
  ): boolean {
    const watch = conn.watches.get(typeUrl);
    if (!watch || conn.closed) return true;
    const produced = this.#generate(conn, typeUrl, snapshot, d.wildcard ? [] : [...d.names]);
    if (!produced) return true;
    const resources: DeltaDiscoveryResponse['resources'] = [];
    const present = new Set<string>();
    for (const { name, enc } of produced) {
      present.add(name);
      enc.version ??= createHash('sha1').update(enc.any.value).digest('base64url').slice(0, 16);
      if (d.known.get(name) === enc.version) continue;
      resources.push({ name, version: enc.version, resource: enc.any });
    }
    const removed = [...d.known.keys()].filter((n) => !present.has(n));
    for (const n of requested) if (!present.has(n) && !d.known.has(n)) removed.push(n); // "does not exist"
    if (resources.length === 0 && removed.length === 0 && !force) return true;
    for (const r of resources) d.known.set(r.name, r.version);
    for (const n of removed) d.known.delete(n);
    const nonce = `${this.#nonceBase}-${++this.#nonceCount}`;
    const response: DeltaDiscoveryResponse = {
      system_version_info: version,
      resources,
      type_url: typeUrl,
      removed_resources: removed,
      nonce,
      control_plane: { identifier: this.#opts.controlPlaneId ?? 'tsmesh' },
    };
    const bytes = resources.reduce((n, r) => n + (r.resource?.value.length ?? 0), 0);
    return this.#write(conn, watch, response, { typeUrl, version, nonce, resources: resources.length, removed: removed.length, bytes, trigger, req });
  }

  /** Records and writes one response; returns false when the stream wants a drain first. */
  #write(
    conn: Connection<S>, watch: WatchState, response: DiscoveryResponse | DeltaDiscoveryResponse,
    info: { typeUrl: string; version: string; nonce: string; resources: number; removed: number; bytes: number; trigger: 'request' | 'push'; req: PushRequest | undefined },
  ): boolean {
    const proxy = conn.proxy;
    watch.sentVersion = info.version;
    watch.sentNonce = info.nonce;
    watch.sentAt = this.#clock.now();
    watch.sentCount = info.resources;
    delete watch.lastError;
    let ok = true;
    try {
      ok = (conn.call as grpc.ServerDuplexStream<unknown, unknown>).write(response);
    } catch (err) {
      this.#log.warn('ADS write failed', { proxy: proxy.id, error: (err as Error).message });
      this.#close(conn, 'write failed');
      return true;
    }
    const { typeUrl, version, nonce, resources, removed, bytes, trigger } = info;
    this.#log.debug('ADS sent', { proxy: proxy.id, type: shortType(typeUrl), version, nonce, resources, removed, trigger });
    if (channels.push.hasSubscribers) {
      const reasons = info.req ? [...info.req.reasons] : [];
      channels.push.publish({ proxy, typeUrl, version, nonce, resources, removed, bytes, trigger, reasons } satisfies XdsPushEvent);
    }
    return ok;
  }

  /** Generates, encodes and writes one state-of-the-world response; false when the stream wants a drain first. */
  #send(conn: Connection<S>, typeUrl: string, snapshot: S, version: string, trigger: 'request' | 'push', req: PushRequest | undefined): boolean {
    const watch = conn.watches.get(typeUrl);
    if (!watch || conn.closed) return true;
    const produced = this.#generate(conn, typeUrl, snapshot, watch.names);
    if (!produced) return true;
    const anys = produced.map((p) => p.enc.any);
    const nonce = `${this.#nonceBase}-${++this.#nonceCount}`;
    const response: DiscoveryResponse = {
      version_info: version,
      resources: anys,
      type_url: typeUrl,
      nonce,
      control_plane: { identifier: this.#opts.controlPlaneId ?? 'tsmesh' },
    };
    const bytes = anys.reduce((n, a) => n + a.value.length, 0);
    return this.#write(conn, watch, response, { typeUrl, version, nonce, resources: anys.length, removed: 0, bytes, trigger, req });
  }

  #encode(resource: object): Encoded {
    let enc = this.#encoded.get(resource);
    if (!enc) {
      enc = { any: encodeAny(resource as XdsObject) };
      this.#encoded.set(resource, enc);
    }
    return enc;
  }

  // ---- pushes ------------------------------------------------------------------------------------

  #makeVersion(): string {
    return `${new Date(this.#clock.now()).toISOString()}/${this.#pushCount}`;
  }

  #dispatch(req: PushRequest): void {
    let snapshot: S;
    try {
      snapshot = this.#opts.snapshot();
    } catch (err) {
      this.#log.error('ADS push skipped: snapshot failed', { error: (err as Error).message });
      return;
    }
    this.#pushCount++;
    this.#version = this.#makeVersion();
    let queued = 0;
    for (const conn of this.#connections.values()) {
      if (this.#opts.shouldPush) {
        let wanted: boolean;
        try {
          wanted = this.#opts.shouldPush(conn.proxy, req);
        } catch (err) {
          this.#log.error('ADS shouldPush failed; pushing', { proxy: conn.proxy.id, error: (err as Error).message });
          wanted = true;
        }
        if (!wanted) continue;
      }
      const job: PushJob<S> = conn.pending
        ? { req: mergePushRequests(conn.pending.req, req), snapshot, version: this.#version }
        : { req, snapshot, version: this.#version };
      conn.pending = job;
      queued++;
      if (!conn.sending) void this.#pump(conn);
    }
    this.#log.info('ADS push', { version: this.#version, request: describePush(req), proxies: queued, connected: this.#connections.size });
  }

  /** Drains a connection's queue: one merged job at a time, waiting for the stream when it is full. */
  async #pump(conn: Connection<S>): Promise<void> {
    conn.sending = true;
    try {
      // let other streams' I/O (ACKs) interleave with a push to many proxies
      await new Promise<void>((resolve) => setImmediate(resolve));
      while (conn.pending && !conn.closed) {
        const job = conn.pending;
        conn.pending = undefined;
        const types = [...conn.watches.keys()]
          .filter((t) => {
            const gen = this.#generators.get(t);
            if (!gen) return false;
            try {
              return gen.affectedBy?.(job.req) ?? true;
            } catch (err) {
              this.#log.error('ADS affectedBy failed; pushing', { type: shortType(t), error: (err as Error).message });
              return true;
            }
          })
          .sort((a, b) => orderIndex(a) - orderIndex(b) || a.localeCompare(b));
        for (const typeUrl of types) {
          if (conn.closed) break;
          const ok = this.#sendType(conn, typeUrl, job.snapshot, job.version, 'push', job.req, false);
          if (!ok) await drained(conn.call);
        }
      }
    } catch (err) {
      this.#log.error('ADS push to proxy failed', { proxy: conn.proxy.id, error: (err as Error).message });
    } finally {
      conn.sending = false;
    }
  }
}

/** Ends a stream with an OK status and resolves once that is written (or the stream is gone). */
function endCall(call: AnyCall): Promise<void> {
  return new Promise<void>((resolve) => {
    if (call.destroyed || call.writableFinished) {
      resolve();
      return;
    }
    call.once('finish', () => resolve());
    call.once('close', () => resolve());
    call.once('error', () => resolve());
    try {
      call.end();
    } catch {
      resolve();
    }
  });
}

function drained(call: AnyCall): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = (): void => {
      call.off('drain', done);
      call.off('close', done);
      call.off('cancelled', done);
      resolve();
    };
    call.on('drain', done);
    call.on('close', done);
    call.on('cancelled', done);
  });
}

function typeStatus(typeUrl: string, w: Readonly<WatchState> | undefined): TypeSyncStatus {
  const s: TypeSyncStatus = { typeUrl, type: shortType(typeUrl), state: 'NOT SENT', names: w?.names ?? [] };
  if (!w) return s;
  if (w.sentVersion !== undefined) s.sentVersion = w.sentVersion;
  if (w.sentNonce !== undefined) s.sentNonce = w.sentNonce;
  if (w.ackedVersion !== undefined) s.ackedVersion = w.ackedVersion;
  if (w.ackedNonce !== undefined) s.ackedNonce = w.ackedNonce;
  if (w.lastError !== undefined) s.error = w.lastError;
  if (w.sentNonce === undefined) return s;
  if (w.lastNack && w.lastNack.nonce === w.sentNonce) {
    s.state = 'STALE';
    s.nack = w.lastNack;
  } else {
    s.state = w.ackedNonce === w.sentNonce ? 'SYNCED' : 'STALE';
  }
  return s;
}
