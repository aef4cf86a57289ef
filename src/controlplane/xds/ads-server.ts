// The state-of-the-world ADS server: gRPC streams, per-type subscriptions, versions and nonces, ACK/NACK, debounced pushes through a per-connection queue that sends only what changed, with a bound on the bytes written but not yet flushed; a bad stream or a failing generator is logged and isolated, never crashing the server.
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
//    push gets the latest merged request afterwards, not a backlog;
//  - a push sends only what changed for that proxy, by per-resource versions (a hash of the encoding):
//    LDS and CDS whole when any of their resources changed (the client takes a response as the full
//    set), other types only the changed resources (clients keep the ones a response leaves out); a
//    push with reason 'debug' resends everything;
//  - responses written but not yet flushed to the socket are bounded in bytes (maxBytesInFlight):
//    further writes wait, so a push of megabytes to a thousand proxies does not buffer them all.
// Delta (incremental) xDS on DeltaAggregatedResources follows the same rules with per-resource
// versions (a hash of the encoded resource): only changed resources are sent, vanished ones are
// listed in removed_resources, subscriptions change by resource_names_(un)subscribe.

import { createHash } from 'node:crypto';
import dc from 'node:diagnostics_channel';
import { logger, type Logger } from '../../common/log.ts';
import {
  type DeltaDiscoveryRequest, type DeltaDiscoveryResponse, type DiscoveryRequest, type DiscoveryResponse, type XdsNode,
} from '../../xds/ads-service.ts';
import { parseNode, type ProxyIdentity } from '../../xds/node.ts';
import { encodeAny, TYPE_SHORT_NAMES, TYPE_URLS, type AnyWire, type XdsObject } from '../../xds/protos.ts';
import { GRPC_STATUS, GrpcAdsTransport, type AdsStream } from './grpc-transport.ts';
import { deltaResponseChunks, discoveryResponseChunks } from './response-encoding.ts';
import { DEFAULT_DEBOUNCE, Debouncer, systemClock, type Clock, type DebounceOptions } from './debounce.ts';
import { describePush, mergePushRequests, type PushReason, type PushRequest } from './push-request.ts';

/** A resource a generator produced: its name and the object in the JSON convention, carrying "@type" (or an encoded Any). */
export interface GeneratedResource {
  name: string;
  resource: object;
  /** A version that changes exactly when the encoding does, when the generator knows one; else the server hashes the encoding. */
  version?: string;
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
  /** Bytes of responses written but not flushed to the sockets before further writes wait (default 64 MiB; a larger response still goes alone). */
  maxBytesInFlight?: number;
  /**
   * A write not flushed after this long (a peer that stopped reading) stops counting against
   * maxBytesInFlight, so that it cannot hold up other streams (default 5000 ms). Its stream still
   * sends nothing more until it flushed.
   */
  stalledWriteMs?: number;
  /** How long stop() waits for streams to end cleanly before destroying every connection (default 1000 ms). */
  stopGraceMs?: number;
}

export const DEFAULT_MAX_BYTES_IN_FLIGHT = 64 * 2 ** 20;

/** Types a state-of-the-world response must carry whole (the client deletes what a response leaves out). */
const FULL_STATE_TYPES: ReadonlySet<string> = new Set([TYPE_URLS.LISTENER, TYPE_URLS.CLUSTER]);


/** Delta bookkeeping of one type on one stream. */
interface DeltaWatch {
  wildcard: boolean;
  names: Set<string>;
  /** What the proxy holds: resource name -> version. */
  known: Map<string, string>;
}

/** A resource on the wire with its name and content version, shared by every stream that gets it. */
interface Encoded {
  readonly name: string;
  readonly any: AnyWire;
  readonly version: string;
}

/** A response ready to write, and what to record once it is written. */
interface Outgoing {
  watch: WatchState;
  response: DiscoveryResponse | DeltaDiscoveryResponse;
  info: WriteInfo;
  commit(): void;
}

interface WriteInfo {
  typeUrl: string;
  version: string;
  nonce: string;
  resources: number;
  removed: number;
  bytes: number;
  trigger: 'request' | 'push';
  req: PushRequest | undefined;
}

/** A type to answer from the current snapshot because the proxy asked; `requested`: delta names just subscribed. */
interface RequestTask {
  requested: Set<string>;
}

/** Bytes written but not yet flushed, shared by every stream; writes beyond the limit wait their turn (FIFO). */
class ByteBudget {
  readonly #max: number;
  #used = 0;
  readonly #waiters: Array<{ bytes: number; grant: (release: () => void) => void }> = [];

  constructor(max: number) {
    this.#max = max;
  }

  get used(): number {
    return this.#used;
  }

  #take(bytes: number): () => void {
    this.#used += bytes;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.#used -= bytes;
      this.#wake();
    };
  }

  #fits(bytes: number): boolean {
    return this.#used === 0 || this.#used + bytes <= this.#max;
  }

  #wake(): void {
    while (this.#waiters.length > 0) {
      const w = this.#waiters[0];
      if (!w || !this.#fits(w.bytes)) return;
      this.#waiters.shift();
      w.grant(this.#take(w.bytes));
    }
  }

  /** A release function at once when the bytes fit and nobody waits, else a promise of one. */
  acquire(bytes: number): (() => void) | Promise<() => void> {
    if (this.#waiters.length === 0 && this.#fits(bytes)) return this.#take(bytes);
    return new Promise((grant) => this.#waiters.push({ bytes, grant }));
  }
}

interface PushJob<S> {
  req: PushRequest;
  snapshot: S;
  version: string;
}

interface Connection<S> {
  readonly proxy: ConnectedProxy;
  readonly watches: Map<string, WatchState>;
  readonly call: AdsStream;
  /** Present on delta streams. */
  readonly delta?: Map<string, DeltaWatch>;
  /**
   * State of the world: the resources of each type as the proxy holds them since our last response
   * (everything generated then: what that response left out, the proxy already had).
   */
  readonly sent: Map<string, readonly Encoded[]>;
  /** Types to answer, in the order asked. */
  readonly requests: Map<string, RequestTask>;
  /** Completions of this stream's unflushed writes (each releases its share of the budget). */
  readonly inFlight: Set<() => void>;
  /** Resolves when the stream's last write flushed: a stream has one unflushed response at most. */
  flushed?: Promise<void>;
  pending?: PushJob<S>;
  sending: boolean;
  closed: boolean;
}

function isWildcard(names: readonly string[]): boolean {
  return names.length === 0 || names.includes('*');
}

function sameNames(a: readonly string[], b: readonly string[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  // clients resend their list in the same order: compare in order first
  let i = 0;
  while (i < a.length && a[i] === b[i]) i++;
  if (i === a.length) return true;
  const s = new Set(a);
  return b.every((n) => s.has(n));
}

let lastNames: readonly string[] | undefined;
let lastSet: ReadonlySet<string> | undefined;

/**
 * The subscribed names as a set (undefined for a wildcard). The last one is kept, so that a generator
 * and the server asking for the same list share it; no more is kept (a set of thousands of cluster
 * names per proxy would cost more memory than building it again).
 */
export function subscribedNames(names: readonly string[]): ReadonlySet<string> | undefined {
  if (isWildcard(names)) return undefined;
  if (names !== lastNames || !lastSet) {
    lastNames = names;
    lastSet = new Set(names);
  }
  return lastSet;
}

/** Requested names, shared between proxies (thousands of cluster names per proxy are otherwise thousands of copies). */
const NAME_TABLE_MAX = 200_000;
const nameTable = new Map<string, string>();

function internName(n: string): string {
  const known = nameTable.get(n);
  if (known !== undefined) return known;
  if (nameTable.size >= NAME_TABLE_MAX) nameTable.clear();
  nameTable.set(n, n);
  return n;
}

function internNames(names: readonly string[]): string[] {
  return names.map(internName);
}

/** True when both hold the same resources, in the same order, at the same versions. */
function sameResources(a: readonly Encoded[], b: readonly Encoded[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    const y = b[i];
    if (x !== y && (x?.version !== y?.version || x?.name !== y?.name)) return false;
  }
  return true;
}

/** The resources of `now` the proxy does not hold at that version (`held`: what it was last sent). */
function changedSince(held: readonly Encoded[] | undefined, now: readonly Encoded[]): Encoded[] {
  if (!held) return [...now];
  // the usual case: the same names in the same order
  let aligned = held.length === now.length;
  for (let i = 0; aligned && i < now.length; i++) aligned = held[i]?.name === now[i]?.name;
  if (aligned) return now.filter((e, i) => held[i]?.version !== e.version);
  const versions = new Map(held.map((e) => [e.name, e.version]));
  return now.filter((e) => versions.get(e.name) !== e.version);
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
  readonly #streams = new Set<AdsStream>();
  readonly #encoded = new WeakMap<object, Encoded>();
  readonly #nonceBase: string;
  readonly #budget: ByteBudget;
  #transport: GrpcAdsTransport | undefined;
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
    this.#budget = new ByteBudget(opts.maxBytesInFlight ?? DEFAULT_MAX_BYTES_IN_FLIGHT);
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

  /** Bytes of responses written and not yet flushed to a socket. */
  get bytesInFlight(): number {
    return this.#budget.used;
  }

  /**
   * Binds and serves ADS (gRPC over plaintext HTTP/2, grpc-transport.ts) on address ('0.0.0.0:15010',
   * '127.0.0.1:0', '[::1]:0'); resolves to the bound port.
   */
  async start(address: string): Promise<number> {
    if (this.#transport) throw new Error('AdsServer already started');
    const { host, port } = splitAddress(address);
    const transport = new GrpcAdsTransport((stream) => this.#onStream(stream), this.#log);
    this.#transport = transport;
    let bound: number;
    try {
      bound = await transport.listen(host, port);
    } catch (err) {
      this.#transport = undefined;
      await transport.close(0);
      throw err;
    }
    this.#log.info('ADS serving', { address, port: bound });
    return bound;
  }

  /**
   * Ends every stream (each gets an OK status, waited for up to stopGraceMs), then destroys every
   * connection still open, so nothing of it keeps the process alive.
   */
  async stop(): Promise<void> {
    this.#debouncer.stop();
    for (const conn of [...this.#connections.values()]) this.#close(conn, 'server stopping');
    this.#streams.clear();
    const transport = this.#transport;
    this.#transport = undefined;
    await transport?.close(this.#opts.stopGraceMs ?? 1000);
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

  #onStream(stream: AdsStream): void {
    this.#streams.add(stream);
    let conn: Connection<S> | undefined;
    stream.onMessage = (req) => {
      try {
        if (!conn) {
          conn = this.#open(stream, req.node);
          if (!conn) return;
        }
        if (conn.delta) this.#onDeltaRequest(conn, conn.delta, req);
        else this.#onRequest(conn, req);
      } catch (err) {
        this.#log.error('ADS request failed', { proxy: conn?.proxy.id, error: (err as Error).message });
      }
    };
    stream.onClose = (reason) => {
      this.#streams.delete(stream);
      if (conn) this.#close(conn, reason);
    };
  }

  #open(call: AdsStream, node: XdsNode | undefined): Connection<S> | undefined {
    const protocol = call.method;
    let identity: ProxyIdentity;
    try {
      identity = parseNode(node);
    } catch (err) {
      const message = (err as Error).message;
      this.#log.warn('ADS stream rejected', { peer: call.peer, error: message });
      void call.end(GRPC_STATUS.INVALID_ARGUMENT, message);
      return undefined;
    }
    const watches = new Map<string, WatchState>();
    const proxy: ConnectedProxy = {
      ...identity,
      connectionId: `${identity.id}-${++this.#connCount}`,
      connectedAt: this.#clock.now(),
      peer: call.peer,
      protocol,
      watches,
    };
    const conn: Connection<S> = { proxy, watches, call, sent: new Map(), requests: new Map(), inFlight: new Set(), sending: false, closed: false };
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
    conn.requests.clear();
    // writes that will never flush give their share of the budget back
    for (const done of [...conn.inFlight]) done();
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
      w.names = internNames(names);
      conn.watches.set(typeUrl, w);
      this.#request(conn, typeUrl);
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
      watch.names = internNames(names);
      this.#request(conn, typeUrl);
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
    const subscribe = internNames(req.resource_names_subscribe ?? []);
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
    if (first || added.length > 0) this.#request(conn, typeUrl, added.filter((n) => n !== '*'));
  }

  // ---- responses ---------------------------------------------------------------------------------

  /** Queues an answer to what the proxy asked for; the connection's pump sends it from the snapshot of then. */
  #request(conn: Connection<S>, typeUrl: string, requested: readonly string[] = []): void {
    let task = conn.requests.get(typeUrl);
    if (!task) conn.requests.set(typeUrl, (task = { requested: new Set() }));
    for (const n of requested) task.requested.add(n);
    if (!conn.sending && !conn.closed) void this.#pump(conn);
  }

  /** The response for one type, or undefined when there is nothing to send (or generation failed). */
  #prepare(conn: Connection<S>, typeUrl: string, snapshot: S, version: string, trigger: 'request' | 'push', req: PushRequest | undefined, requested: ReadonlySet<string>, force: boolean): Outgoing | undefined {
    if (conn.closed) return undefined;
    if (!conn.delta) return this.#prepareSotw(conn, typeUrl, snapshot, version, trigger, req, force);
    const d = conn.delta.get(typeUrl);
    if (!d) return undefined;
    return this.#prepareDelta(conn, d, typeUrl, snapshot, version, trigger, req, requested, force);
  }

  /** Runs the generator for a watch; undefined (and the error recorded) when it or an encoding fails. */
  #generate(conn: Connection<S>, typeUrl: string, snapshot: S, names: readonly string[]): Encoded[] | undefined {
    const gen = this.#generators.get(typeUrl);
    const watch = conn.watches.get(typeUrl);
    if (!gen || !watch) return undefined;
    try {
      const produced = gen.generate(conn.proxy, snapshot, names);
      const wanted = subscribedNames(names);
      const out: Encoded[] = [];
      for (const r of produced) {
        if (wanted && !wanted.has(r.name)) continue;
        const enc = this.#encode(r);
        if (enc.any.type_url !== typeUrl) throw new Error(`resource ${r.name} is a ${enc.any.type_url}, not a ${typeUrl}`);
        out.push(enc);
      }
      return out;
    } catch (err) {
      // a partial state-of-the-world response would delete resources: send nothing, keep the old config
      const message = (err as Error).message;
      watch.lastError = message;
      this.#log.error('ADS generation failed; nothing sent', { proxy: conn.proxy.id, type: shortType(typeUrl), error: message });
      return undefined;
    }
  }

  /** What changed for one delta watch; `requested` are names just subscribed (answered even when absent). */
  #prepareDelta(
    conn: Connection<S>, d: DeltaWatch, typeUrl: string, snapshot: S, version: string, trigger: 'request' | 'push',
    req: PushRequest | undefined, requested: ReadonlySet<string>, force: boolean,
  ): Outgoing | undefined {
    const watch = conn.watches.get(typeUrl);
    if (!watch) return undefined;
    const produced = this.#generate(conn, typeUrl, snapshot, d.wildcard ? [] : [...d.names]);
    if (!produced) return undefined;
    const resources: DeltaDiscoveryResponse['resources'] = [];
    const present = new Set<string>();
    for (const enc of produced) {
      present.add(enc.name);
      if (d.known.get(enc.name) === enc.version) continue;
      resources.push({ name: enc.name, version: enc.version, resource: enc.any });
    }
    const removed = [...d.known.keys()].filter((n) => !present.has(n));
    for (const n of requested) if (!present.has(n) && !d.known.has(n)) removed.push(n); // "does not exist"
    if (resources.length === 0 && removed.length === 0 && !force) return undefined;
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
    const commit = (): void => {
      for (const r of resources) if (d.wildcard || d.names.has(r.name)) d.known.set(r.name, r.version);
      for (const n of removed) d.known.delete(n);
    };
    return { watch, response, info: { typeUrl, version, nonce, resources: resources.length, removed: removed.length, bytes, trigger, req }, commit };
  }

  /**
   * One state-of-the-world response: on a push, nothing when this proxy already has every resource
   * as generated now; LDS/CDS whole when any changed, other types only the changed resources.
   */
  #prepareSotw(conn: Connection<S>, typeUrl: string, snapshot: S, version: string, trigger: 'request' | 'push', req: PushRequest | undefined, force: boolean): Outgoing | undefined {
    const watch = conn.watches.get(typeUrl);
    if (!watch) return undefined;
    const produced = this.#generate(conn, typeUrl, snapshot, watch.names);
    if (!produced) return undefined;
    const held = conn.sent.get(typeUrl);
    let chosen = produced;
    if (!force) {
      if (FULL_STATE_TYPES.has(typeUrl) || !(typeUrl in TYPE_SHORT_NAMES)) {
        if (held && sameResources(held, produced)) return undefined;
      } else {
        chosen = changedSince(held, produced);
        if (chosen.length === 0) return undefined;
      }
    }
    const commit = (): void => void conn.sent.set(typeUrl, produced);
    const anys = chosen.map((e) => e.any);
    const nonce = `${this.#nonceBase}-${++this.#nonceCount}`;
    const response: DiscoveryResponse = {
      version_info: version,
      resources: anys,
      type_url: typeUrl,
      nonce,
      control_plane: { identifier: this.#opts.controlPlaneId ?? 'tsmesh' },
    };
    const bytes = anys.reduce((n, a) => n + a.value.length, 0);
    return { watch, response, info: { typeUrl, version, nonce, resources: anys.length, removed: 0, bytes, trigger, req }, commit };
  }

  /**
   * Writes a response once the stream flushed its previous one and the budget of unflushed bytes
   * allows; the budget is held until the socket took the response (or it stalled, or the stream closed).
   */
  async #send(conn: Connection<S>, out: Outgoing): Promise<void> {
    if (conn.flushed) await conn.flushed;
    if (conn.closed) return;
    const granted = this.#budget.acquire(out.info.bytes);
    const release = typeof granted === 'function' ? granted : await granted;
    if (conn.closed) {
      release();
      return;
    }
    let flushed!: () => void;
    conn.flushed = new Promise<void>((resolve) => (flushed = resolve));
    const stall = this.#clock.setTimeout(release, this.#opts.stalledWriteMs ?? 5000);
    const done = (): void => {
      if (!conn.inFlight.delete(done)) return;
      this.#clock.clearTimeout(stall);
      release();
      flushed();
    };
    conn.inFlight.add(done);
    this.#write(conn, out, done);
  }

  /** Records and writes one response; `done` runs once the stream flushed it (or the write failed). */
  #write(conn: Connection<S>, out: Outgoing, done: () => void): void {
    const { watch, response, info } = out;
    const proxy = conn.proxy;
    watch.sentVersion = info.version;
    watch.sentNonce = info.nonce;
    watch.sentAt = this.#clock.now();
    watch.sentCount = info.resources;
    delete watch.lastError;
    out.commit();
    try {
      conn.call.write(conn.delta ? deltaResponseChunks(response as DeltaDiscoveryResponse) : discoveryResponseChunks(response as DiscoveryResponse), done);
    } catch (err) {
      done();
      this.#log.warn('ADS write failed', { proxy: proxy.id, error: (err as Error).message });
      this.#close(conn, 'write failed');
      void conn.call.end(GRPC_STATUS.INTERNAL, `write failed: ${(err as Error).message}`);
      return;
    }
    const { typeUrl, version, nonce, resources, removed, bytes, trigger } = info;
    this.#log.debug('ADS sent', { proxy: proxy.id, type: shortType(typeUrl), version, nonce, resources, removed, trigger });
    if (channels.push.hasSubscribers) {
      const reasons = info.req ? [...info.req.reasons] : [];
      channels.push.publish({ proxy, typeUrl, version, nonce, resources, removed, bytes, trigger, reasons } satisfies XdsPushEvent);
    }
  }

  #encode(r: GeneratedResource): Encoded {
    let enc = this.#encoded.get(r.resource);
    if (!enc) {
      const any = encodeAny(r.resource as XdsObject);
      enc = { name: r.name, any, version: r.version ?? createHash('sha1').update(any.value).digest('base64url').slice(0, 16) };
      this.#encoded.set(r.resource, enc);
    }
    // one object under two names (a generator's choice) keeps both names apart
    return enc.name === r.name ? enc : { ...enc, name: r.name };
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

  /** The watched types a push request may change, in push order. */
  #affectedTypes(conn: Connection<S>, req: PushRequest): string[] {
    return [...conn.watches.keys()]
      .filter((t) => {
        const gen = this.#generators.get(t);
        if (!gen) return false;
        try {
          return gen.affectedBy?.(req) ?? true;
        } catch (err) {
          this.#log.error('ADS affectedBy failed; pushing', { type: shortType(t), error: (err as Error).message });
          return true;
        }
      })
      .sort((a, b) => orderIndex(a) - orderIndex(b) || a.localeCompare(b));
  }

  /**
   * Drains a connection's queue, one response at a time: answers to requests first (in the order
   * asked), then the latest merged push; waits whenever the budget of unflushed bytes is spent.
   */
  async #pump(conn: Connection<S>): Promise<void> {
    conn.sending = true;
    try {
      while (!conn.closed) {
        const asked = conn.requests.entries().next();
        if (!asked.done) {
          const [typeUrl, task] = asked.value;
          conn.requests.delete(typeUrl);
          let out: Outgoing | undefined;
          try {
            out = this.#prepare(conn, typeUrl, this.#opts.snapshot(), this.#version, 'request', undefined, task.requested, true);
          } catch (err) {
            this.#log.error('ADS request not answered', { proxy: conn.proxy.id, type: shortType(typeUrl), error: (err as Error).message });
          }
          if (out) await this.#send(conn, out);
          continue;
        }
        if (!conn.pending) break;
        // let other streams' I/O (ACKs) interleave with a push to many proxies
        await new Promise<void>((resolve) => setImmediate(resolve));
        const job = conn.pending;
        if (!job || conn.closed) continue;
        conn.pending = undefined;
        const force = job.req.reasons.has('debug');
        for (const typeUrl of this.#affectedTypes(conn, job.req)) {
          if (conn.closed) break;
          const out = this.#prepare(conn, typeUrl, job.snapshot, job.version, 'push', job.req, new Set(), force);
          if (out) await this.#send(conn, out);
        }
      }
    } catch (err) {
      this.#log.error('ADS push to proxy failed', { proxy: conn.proxy.id, error: (err as Error).message });
    } finally {
      conn.sending = false;
    }
  }
}

/** `host:port` or `[v6]:port` for the listener; an empty host is every address. */
function splitAddress(address: string): { host: string; port: number } {
  const idx = address.lastIndexOf(':');
  const port = Number(address.slice(idx + 1));
  if (idx < 0 || !Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`AdsServer: bad address ${JSON.stringify(address)} (want host:port)`);
  const host = address.slice(0, idx).replace(/^\[|\]$/g, '');
  return { host: host || '0.0.0.0', port };
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
