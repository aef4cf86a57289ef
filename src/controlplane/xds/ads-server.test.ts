import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import dc from 'node:diagnostics_channel';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { createInterface } from 'node:readline';
import * as grpc from '@grpc/grpc-js';
import {
  createAdsClient, type AdsClient, type AdsClientStream, type DeltaAdsClientStream, type DeltaDiscoveryRequest, type DeltaDiscoveryResponse, type DiscoveryRequest, type DiscoveryResponse,
} from '../../xds/ads-service.ts';
import { formatNodeId } from '../../xds/node.ts';
import { decodeAny, encodeMessage, TYPE_URLS } from '../../xds/protos.ts';
import type { Logger } from '../../common/log.ts';
import {
  AdsServer, XDS_EVENTS, type AdsServerOptions, type ConnectedProxy, type GeneratedResource, type Generator, type TypeSyncStatus, type XdsNackEvent, type XdsPushEvent,
} from './ads-server.ts';
import { FakeClock } from './fake-clock.ts';
import type { PushRequest } from './push-request.ts';

// ---- a tiny mesh: the snapshot the fake generators read ------------------------------------------

interface Snap {
  services: string[];
  endpoints: Record<string, string[]>;
  port: number;
}

const clusterName = (svc: string): string => `outbound|80||${svc}.default.svc.cluster.local`;

function generators(opts: { edsOnlyOnEndpoint?: boolean; failLds?: () => boolean } = {}): Generator<Snap>[] {
  return [
    {
      typeUrl: TYPE_URLS.CLUSTER,
      generate: (_p, s) => s.services.map((svc) => ({
        name: clusterName(svc),
        resource: { '@type': TYPE_URLS.CLUSTER, name: clusterName(svc), type: 'EDS', connect_timeout: '10s', eds_cluster_config: { eds_config: { ads: {}, resource_api_version: 'V3' } } },
      })),
      ...(opts.edsOnlyOnEndpoint ? { affectedBy: (c: PushRequest) => c.full } : {}),
    },
    {
      typeUrl: TYPE_URLS.ENDPOINT,
      generate: (_p, s, names) => names.filter((n) => s.services.some((svc) => clusterName(svc) === n)).map((n) => ({
        name: n,
        resource: {
          '@type': TYPE_URLS.ENDPOINT,
          cluster_name: n,
          endpoints: [{ lb_endpoints: (s.endpoints[n] ?? []).map((ip) => ({ endpoint: { address: { socket_address: { address: ip, port_value: 8080 } } } })) }],
        },
      })),
    },
    {
      typeUrl: TYPE_URLS.LISTENER,
      generate: (_p, s) => {
        if (opts.failLds?.()) throw new Error('listener translation exploded');
        return [{ name: `0.0.0.0_${s.port}`, resource: { '@type': TYPE_URLS.LISTENER, name: `0.0.0.0_${s.port}`, address: { socket_address: { address: '0.0.0.0', port_value: s.port } } } }];
      },
      ...(opts.edsOnlyOnEndpoint ? { affectedBy: (c: PushRequest) => c.full } : {}),
    },
    {
      typeUrl: TYPE_URLS.ROUTE,
      generate: (_p, s, names) => names.map((n) => ({
        name: n,
        resource: { '@type': TYPE_URLS.ROUTE, name: n, virtual_hosts: s.services.map((svc) => ({ name: svc, domains: [svc], routes: [{ match: { prefix: '/' }, route: { cluster: clusterName(svc) } }] })) },
      })),
      ...(opts.edsOnlyOnEndpoint ? { affectedBy: (c: PushRequest) => c.full } : {}),
    },
  ];
}

const quietLog: Logger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

interface Harness {
  server: AdsServer<Snap>;
  snap: { current: Snap };
  clock: FakeClock;
  port: number;
  logs: string[];
  close(): Promise<void>;
}

async function startHarness(extra: Partial<AdsServerOptions<Snap>> & { gens?: Generator<Snap>[] } = {}): Promise<Harness> {
  const snap = { current: { services: ['reviews', 'ratings'], endpoints: { [clusterName('reviews')]: ['10.1.0.5'] }, port: 9080 } };
  const clock = new FakeClock();
  const logs: string[] = [];
  const log: Logger = { ...quietLog, warn: (m, f) => logs.push(`${m} ${JSON.stringify(f)}`), error: (m, f) => logs.push(`${m} ${JSON.stringify(f)}`) };
  const server = new AdsServer<Snap>({ generators: extra.gens ?? generators(), snapshot: () => snap.current, clock, log, debounce: { quietMs: 100, maxDelayMs: 1000 }, ...extra });
  const port = await server.start('127.0.0.1:0');
  return { server, snap, clock, port, logs, close: () => server.stop() };
}

/** A minimal ADS client over real gRPC: requests, and a queue of responses to await. */
class TestProxy {
  readonly client: AdsClient;
  readonly stream: AdsClientStream;
  readonly id: string;
  readonly #queue: DiscoveryResponse[] = [];
  readonly #waiters: Array<(r: DiscoveryResponse) => void> = [];
  readonly closed: Promise<grpc.StatusObject>;
  readonly metadata: Record<string, unknown>;
  #first = true;

  constructor(port: number, opts: { namespace?: string; pod?: string; ip?: string; metadata?: Record<string, unknown> } = {}) {
    this.id = formatNodeId({ ip: opts.ip ?? '10.1.0.9', podName: opts.pod ?? 'productpage-v1-abc', namespace: opts.namespace ?? 'default' });
    this.client = createAdsClient(`127.0.0.1:${port}`);
    this.stream = this.client.StreamAggregatedResources();
    this.stream.on('data', (r: DiscoveryResponse) => {
      const w = this.#waiters.shift();
      if (w) w(r);
      else this.#queue.push(r);
    });
    this.closed = new Promise((resolve) => {
      this.stream.on('status', resolve);
      this.stream.on('error', () => undefined);
    });
    this.metadata = { NAMESPACE: opts.namespace ?? 'default', LABELS: { app: 'productpage', version: 'v1' }, INSTANCE_IPS: opts.ip ?? '10.1.0.9', ...opts.metadata };
  }

  send(req: DiscoveryRequest): void {
    if (this.#first) {
      req = { ...req, node: { id: this.id, metadata: this.metadata } };
      this.#first = false;
    }
    this.stream.write(req);
  }

  subscribe(typeUrl: string, names: string[] = []): void {
    this.send({ type_url: typeUrl, resource_names: names });
  }

  ack(r: DiscoveryResponse, names: string[] = []): void {
    this.send({ type_url: r.type_url, version_info: r.version_info, response_nonce: r.nonce, resource_names: names });
  }

  nack(r: DiscoveryResponse, previousVersion: string, message: string, names: string[] = []): void {
    this.send({ type_url: r.type_url, version_info: previousVersion, response_nonce: r.nonce, resource_names: names, error_detail: { code: 3, message } });
  }

  next(): Promise<DiscoveryResponse> {
    const r = this.#queue.shift();
    if (r) return Promise.resolve(r);
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  get queued(): number {
    return this.#queue.length;
  }

  close(): void {
    this.stream.cancel();
    this.client.close();
  }
}

/** Resolves with the first message on a diagnostics channel that satisfies pred. */
function nextEvent<T>(name: string, pred: (m: T) => boolean = () => true): Promise<T> {
  return new Promise((resolve) => {
    const fn = (m: unknown): void => {
      if (!pred(m as T)) return;
      dc.unsubscribe(name, fn);
      resolve(m as T);
    };
    dc.subscribe(name, fn);
  });
}

const names = (r: DiscoveryResponse): string[] => r.resources.map((a) => {
  const o = decodeAny(a);
  return String(o.name ?? o.cluster_name);
});

/** Subscribes to CDS, EDS, LDS and RDS as Envoy does and ACKs each first response. */
async function syncAll(p: TestProxy): Promise<Record<string, DiscoveryResponse>> {
  const got: Record<string, DiscoveryResponse> = {};
  p.subscribe(TYPE_URLS.CLUSTER);
  got.cds = await p.next();
  p.ack(got.cds);
  const eds = [clusterName('reviews'), clusterName('ratings')];
  p.subscribe(TYPE_URLS.ENDPOINT, eds);
  got.eds = await p.next();
  p.ack(got.eds, eds);
  p.subscribe(TYPE_URLS.LISTENER);
  got.lds = await p.next();
  p.ack(got.lds);
  p.subscribe(TYPE_URLS.ROUTE, ['9080']);
  got.rds = await p.next();
  const acked = nextEvent<{ typeUrl: string }>(XDS_EVENTS.ack, (e) => e.typeUrl === TYPE_URLS.ROUTE);
  p.ack(got.rds, ['9080']);
  await acked;
  return got;
}

describe('ADS server (state of the world, real gRPC)', () => {
  it('serves CDS, EDS, LDS and RDS to a subscribing proxy, and shows it SYNCED once it ACKs', async () => {
    const h = await startHarness();
    const connected = nextEvent<{ proxy: ConnectedProxy }>(XDS_EVENTS.connect);
    const p = new TestProxy(h.port, { namespace: 'bookinfo', pod: 'productpage-v1-abc', ip: '10.1.0.9' });
    try {
      const got = await syncAll(p);
      const { proxy } = await connected;
      assert.equal(proxy.namespace, 'bookinfo');
      assert.equal(proxy.podName, 'productpage-v1-abc');
      assert.equal(proxy.ip, '10.1.0.9');
      assert.equal(proxy.type, 'sidecar');
      assert.deepEqual(proxy.labels, { app: 'productpage', version: 'v1' });

      assert.equal(got.cds!.type_url, TYPE_URLS.CLUSTER);
      assert.deepEqual(names(got.cds!).sort(), [clusterName('ratings'), clusterName('reviews')]);
      assert.deepEqual(names(got.eds!).sort(), [clusterName('ratings'), clusterName('reviews')]);
      const cla = got.eds!.resources.map((a) => decodeAny(a)).find((o) => o.cluster_name === clusterName('reviews'));
      assert.deepEqual(cla?.endpoints, [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '10.1.0.5', port_value: 8080 } } } }] }]);
      assert.deepEqual(names(got.lds!), ['0.0.0.0_9080']);
      assert.deepEqual(names(got.rds!), ['9080']);
      const nonces = new Set(Object.values(got).map((r) => r.nonce));
      assert.equal(nonces.size, 4, 'a nonce per response');

      const [status] = h.server.syncStatus();
      assert.equal(status?.proxyId, p.id);
      assert.deepEqual(status?.types.map((t) => [t.type, t.state]), [['CDS', 'SYNCED'], ['EDS', 'SYNCED'], ['LDS', 'SYNCED'], ['RDS', 'SYNCED']]);
      assert.equal(status?.types[0]?.ackedVersion, got.cds!.version_info);
      assert.equal(status?.types[3]?.sentNonce, got.rds!.nonce);
    } finally {
      p.close();
      await h.close();
    }
  });

  it('shows NOT SENT for a type the proxy has not asked for, and STALE until a response is ACKed', async () => {
    const h = await startHarness();
    const p = new TestProxy(h.port);
    try {
      p.subscribe(TYPE_URLS.CLUSTER);
      const cds = await p.next();
      const types = () => Object.fromEntries(h.server.syncStatus()[0]!.types.map((t) => [t.type, t.state]));
      assert.deepEqual(types(), { CDS: 'STALE', EDS: 'NOT SENT', LDS: 'NOT SENT', RDS: 'NOT SENT' });
      const acked = nextEvent(XDS_EVENTS.ack);
      p.ack(cds);
      await acked;
      assert.equal(types().CDS, 'SYNCED');
    } finally {
      p.close();
      await h.close();
    }
  });

  it('records a NACK with its reason as STALE and does not resend until the next push', async () => {
    const h = await startHarness();
    const p = new TestProxy(h.port);
    try {
      await syncAll(p);
      h.snap.current = { ...h.snap.current, port: 9090 };
      h.server.push({ full: true, reasons: new Set(['config']), kinds: new Set(['Sidecar']) });
      h.clock.advance(100);
      // only the listener changed, so only LDS is pushed
      const lds = await p.next();
      assert.equal(lds.type_url, TYPE_URLS.LISTENER);
      assert.deepEqual(names(lds), ['0.0.0.0_9090']);
      const nacked = nextEvent<XdsNackEvent>(XDS_EVENTS.nack);
      const previous = h.server.syncStatus()[0]!.types.find((t) => t.type === 'LDS')!.ackedVersion!;
      p.nack(lds, previous, 'Error adding/updating listener(s) 0.0.0.0_9090: cannot bind');
      const ev = await nacked;
      assert.equal(ev.message, 'Error adding/updating listener(s) 0.0.0.0_9090: cannot bind');

      const ldsStatus = h.server.syncStatus()[0]!.types.find((t) => t.type === 'LDS')!;
      assert.equal(ldsStatus.state, 'STALE');
      assert.equal(ldsStatus.nack?.message, 'Error adding/updating listener(s) 0.0.0.0_9090: cannot bind');
      assert.equal(ldsStatus.ackedVersion, previous, 'the proxy keeps running the version it ACKed before');
      assert.equal(ldsStatus.sentVersion, lds.version_info);
      assert.ok(h.logs.some((l) => l.startsWith('ADS NACK') && l.includes('cannot bind')), 'the NACK is logged with its reason');
      assert.equal(h.server.syncStatus()[0]!.types.find((t) => t.type === 'CDS')!.state, 'SYNCED');

      // the next thing the proxy receives is the next push, not a resend of the rejected listener
      h.snap.current = { ...h.snap.current, port: 9091 };
      h.server.push({ full: true, reasons: new Set(['config']) });
      h.clock.advance(100);
      const after = await p.next();
      assert.equal(after.type_url, TYPE_URLS.LISTENER);
      assert.equal(after.version_info, h.server.version);
      assert.notEqual(h.server.version, lds.version_info);
      assert.deepEqual(names(after), ['0.0.0.0_9091']);
    } finally {
      p.close();
      await h.close();
    }
  });

  it('ignores an ACK carrying an old nonce', async () => {
    const h = await startHarness();
    const p = new TestProxy(h.port);
    try {
      p.subscribe(TYPE_URLS.CLUSTER);
      const first = await p.next();
      h.snap.current = { ...h.snap.current, services: [...h.snap.current.services, 'details'] };
      h.server.push({ full: true, reasons: new Set(['config']) });
      h.clock.advance(100);
      const second = await p.next();
      assert.notEqual(second.nonce, first.nonce);
      p.ack(first); // stale
      const acked = nextEvent<{ nonce: string }>(XDS_EVENTS.ack);
      p.ack(second);
      assert.equal((await acked).nonce, second.nonce, 'the first ACK event is the current one');
      const cds = h.server.syncStatus()[0]!.types[0]!;
      assert.equal(cds.state, 'SYNCED');
      assert.equal(cds.ackedVersion, second.version_info);
    } finally {
      p.close();
      await h.close();
    }
  });

  it('pushes new resources with a new version after a snapshot change, CDS then EDS then LDS then RDS', async () => {
    const h = await startHarness();
    const p = new TestProxy(h.port);
    try {
      const before = await syncAll(p);
      const pushes: XdsPushEvent[] = [];
      const onPush = (m: unknown): void => void pushes.push(m as XdsPushEvent);
      dc.subscribe(XDS_EVENTS.push, onPush);
      h.snap.current = { services: ['reviews', 'ratings', 'details'], endpoints: { [clusterName('reviews')]: ['10.1.0.5', '10.1.0.6'] }, port: 9090 };
      h.server.push({ full: true, reasons: new Set(['config']), kinds: new Set(['ServiceEntry']) });
      h.clock.advance(100);
      const got: DiscoveryResponse[] = [];
      for (let i = 0; i < 4; i++) got.push(await p.next());
      dc.unsubscribe(XDS_EVENTS.push, onPush);
      assert.deepEqual(got.map((r) => r.type_url), [TYPE_URLS.CLUSTER, TYPE_URLS.ENDPOINT, TYPE_URLS.LISTENER, TYPE_URLS.ROUTE]);
      for (const r of got) assert.notEqual(r.version_info, before.cds!.version_info);
      assert.equal(new Set(got.map((r) => r.version_info)).size, 1, 'one version per push');
      assert.deepEqual(names(got[0]!).sort(), [clusterName('details'), clusterName('ratings'), clusterName('reviews')]);
      assert.deepEqual(names(got[1]!), [clusterName('reviews')], 'EDS carries only the assignment that changed');
      const cla = got[1]!.resources.map((a) => decodeAny(a)).find((o) => o.cluster_name === clusterName('reviews')) as { endpoints: Array<{ lb_endpoints: unknown[] }> };
      assert.equal(cla.endpoints[0]?.lb_endpoints.length, 2);
      assert.deepEqual(pushes.map((e) => [e.trigger, e.reasons]), Array(4).fill(['push', ['config']]));
      assert.ok(pushes.every((e) => e.bytes > 0));
    } finally {
      p.close();
      await h.close();
    }
  });

  it('debounces: several pushes inside the quiet period become one, continuous pushes are forced at the maximum delay', async () => {
    const h = await startHarness({ debounce: { quietMs: 100, maxDelayMs: 300 } });
    const p = new TestProxy(h.port);
    try {
      p.subscribe(TYPE_URLS.CLUSTER);
      p.ack(await p.next());
      const v0 = h.server.version;
      let n = 0;
      const change = (): void => {
        h.snap.current = { ...h.snap.current, services: [...h.snap.current.services, `svc${++n}`] };
      };
      for (let i = 0; i < 5; i++) {
        change();
        h.server.push({ full: true, reasons: new Set(['config']) });
        h.clock.advance(20);
      }
      assert.equal(h.server.version, v0, 'no push while changes keep arriving within the quiet period');
      h.clock.advance(99);
      const one = await p.next();
      assert.notEqual(one.version_info, v0);
      assert.match(one.version_info, /\/1$/, 'the first push');
      p.ack(one);

      // a change every 50 ms never leaves 100 ms of quiet: the push is forced 300 ms after the first
      for (let t = 0; t < 250; t += 50) {
        change();
        h.server.push({ full: true, reasons: new Set(['endpoint']) });
        h.clock.advance(50);
      }
      assert.match(h.server.version, /\/1$/, 'not yet at 250 ms');
      change();
      h.server.push({ full: true, reasons: new Set(['endpoint']) });
      h.clock.advance(50);
      assert.match(h.server.version, /\/2$/, 'forced at 300 ms');
      const two = await p.next();
      assert.equal(two.version_info, h.server.version);
      assert.equal(p.queued, 0, 'one response, not one per request');
    } finally {
      p.close();
      await h.close();
    }
  });

  it('does not resend a type whose generator is not affected by the push', async () => {
    const h = await startHarness({ gens: generators({ edsOnlyOnEndpoint: true }) });
    const p = new TestProxy(h.port);
    try {
      await syncAll(p);
      h.snap.current = { ...h.snap.current, endpoints: { [clusterName('reviews')]: ['10.1.0.7'] } };
      h.server.push({ full: false, reasons: new Set(['endpoint']) });
      h.clock.advance(100);
      const eds = await p.next();
      assert.equal(eds.type_url, TYPE_URLS.ENDPOINT);
      p.ack(eds, [clusterName('reviews'), clusterName('ratings')]);
      // the next full push shows nothing else was queued in between
      h.snap.current = { ...h.snap.current, services: [...h.snap.current.services, 'details'] };
      h.server.push({ full: true, reasons: new Set(['config']) });
      h.clock.advance(100);
      const next = await p.next();
      assert.equal(next.type_url, TYPE_URLS.CLUSTER);
      assert.notEqual(next.version_info, eds.version_info);
    } finally {
      p.close();
      await h.close();
    }
  });

  it('sends a connection still busy with a push the latest merged push, not a backlog', async () => {
    const h = await startHarness({ debounce: { quietMs: 0, maxDelayMs: 0 } });
    const p = new TestProxy(h.port);
    try {
      p.subscribe(TYPE_URLS.CLUSTER);
      p.ack(await p.next());
      for (let i = 1; i <= 5; i++) {
        h.snap.current = { ...h.snap.current, services: [...h.snap.current.services, `svc${i}`] };
        h.server.push({ full: true, reasons: new Set(['config']) });
      }
      const r = await p.next();
      assert.equal(r.version_info, h.server.version);
      assert.equal(names(r).length, 7, 'the latest snapshot');
      p.ack(r);
      // a marker push proves no older responses were still on their way
      h.server.push({ full: true, reasons: new Set(['debug']) });
      const marker = await p.next();
      assert.equal(marker.version_info, h.server.version);
      assert.match(marker.version_info, /\/6$/);
    } finally {
      p.close();
      await h.close();
    }
  });

  it('scopes pushes to the proxies shouldPush accepts', async () => {
    const h = await startHarness({ shouldPush: (proxy, req) => !req.namespaces || req.namespaces.has(proxy.namespace) });
    const a = new TestProxy(h.port, { namespace: 'a', pod: 'pa', ip: '10.0.0.1' });
    const b = new TestProxy(h.port, { namespace: 'b', pod: 'pb', ip: '10.0.0.2' });
    try {
      for (const p of [a, b]) {
        p.subscribe(TYPE_URLS.CLUSTER);
        p.ack(await p.next());
      }
      h.snap.current = { ...h.snap.current, services: [...h.snap.current.services, 'details'] };
      h.server.push({ full: true, reasons: new Set(['config']), namespaces: new Set(['a']) });
      h.clock.advance(100);
      const ra = await a.next();
      const v1 = h.server.version;
      assert.equal(ra.version_info, v1);
      h.snap.current = { ...h.snap.current, services: [...h.snap.current.services, 'mongo'] };
      h.server.push({ full: true, reasons: new Set(['config']) });
      h.clock.advance(100);
      const rb = await b.next();
      assert.equal(rb.version_info, h.server.version, 'b skipped the push scoped to namespace a');
      assert.notEqual(rb.version_info, v1);
    } finally {
      a.close();
      b.close();
      await h.close();
    }
  });

  it('answers a changed resource-name list in an ACK with the newly named resources', async () => {
    const h = await startHarness();
    const p = new TestProxy(h.port);
    try {
      p.subscribe(TYPE_URLS.ENDPOINT, [clusterName('reviews')]);
      const first = await p.next();
      assert.deepEqual(names(first), [clusterName('reviews')]);
      p.ack(first, [clusterName('reviews'), clusterName('ratings')]);
      const second = await p.next();
      assert.deepEqual(names(second).sort(), [clusterName('ratings'), clusterName('reviews')]);
      assert.deepEqual(h.server.syncStatus()[0]!.types.find((t) => t.type === 'EDS')!.names, [clusterName('reviews'), clusterName('ratings')]);
    } finally {
      p.close();
      await h.close();
    }
  });

  it('sends nothing for a type whose generator fails, and says why in status', async () => {
    let fail = true;
    const h = await startHarness({ gens: generators({ failLds: () => fail }) });
    const p = new TestProxy(h.port);
    try {
      p.subscribe(TYPE_URLS.LISTENER);
      p.subscribe(TYPE_URLS.CLUSTER);
      const r = await p.next();
      assert.equal(r.type_url, TYPE_URLS.CLUSTER, 'the failing LDS produced no response');
      const lds = h.server.syncStatus()[0]!.types.find((t) => t.type === 'LDS')!;
      assert.equal(lds.state, 'NOT SENT');
      assert.match(lds.error ?? '', /listener translation exploded/);
      fail = false;
      h.server.push({ full: true, reasons: new Set(['config']) });
      h.clock.advance(100);
      // the listeners it never got arrive; the unchanged clusters are not sent again
      const next = await p.next();
      assert.equal(next.type_url, TYPE_URLS.LISTENER);
      assert.equal(next.version_info, h.server.version);
    } finally {
      p.close();
      await h.close();
    }
  });

  it('rejects a stream whose node id is not Istio-shaped', async () => {
    const h = await startHarness();
    const client = createAdsClient(`127.0.0.1:${h.port}`);
    try {
      const s = client.StreamAggregatedResources();
      const status = new Promise<grpc.StatusObject>((resolve) => {
        s.on('status', resolve);
        s.on('error', () => undefined);
      });
      s.write({ node: { id: 'my-test-client' }, type_url: TYPE_URLS.CLUSTER });
      const st = await status;
      assert.equal(st.code, grpc.status.INVALID_ARGUMENT);
      assert.match(st.details, /type~ip~podName\.namespace/);
      assert.equal(h.server.proxies().length, 0);
    } finally {
      client.close();
      await h.close();
    }
  });

  it('removes a proxy when its stream goes away', async () => {
    const h = await startHarness();
    const p = new TestProxy(h.port);
    try {
      p.subscribe(TYPE_URLS.CLUSTER);
      await p.next();
      assert.equal(h.server.proxies().length, 1);
      const gone = nextEvent<{ proxy: ConnectedProxy; reason: string }>(XDS_EVENTS.disconnect);
      p.close();
      const ev = await gone;
      assert.equal(ev.proxy.id, p.id);
      assert.equal(h.server.proxies().length, 0);
      assert.deepEqual(h.server.syncStatus(), []);
    } finally {
      await h.close();
    }
  });
});

/** A minimal delta ADS client. */
class DeltaTestProxy {
  readonly client: AdsClient;
  readonly stream: DeltaAdsClientStream;
  readonly id: string;
  readonly #queue: DeltaDiscoveryResponse[] = [];
  readonly #waiters: Array<(r: DeltaDiscoveryResponse) => void> = [];
  #first = true;

  constructor(port: number, pod = 'details-v1-xyz') {
    this.id = formatNodeId({ ip: '10.1.0.20', podName: pod, namespace: 'default' });
    this.client = createAdsClient(`127.0.0.1:${port}`);
    this.stream = this.client.DeltaAggregatedResources();
    this.stream.on('data', (r: DeltaDiscoveryResponse) => {
      const w = this.#waiters.shift();
      if (w) w(r);
      else this.#queue.push(r);
    });
    this.stream.on('error', () => undefined);
  }

  send(req: DeltaDiscoveryRequest): void {
    if (this.#first) {
      req = { ...req, node: { id: this.id, metadata: { NAMESPACE: 'default' } } };
      this.#first = false;
    }
    this.stream.write(req);
  }

  next(): Promise<DeltaDiscoveryResponse> {
    const r = this.#queue.shift();
    if (r) return Promise.resolve(r);
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  ack(r: DeltaDiscoveryResponse): void {
    this.send({ type_url: r.type_url, response_nonce: r.nonce });
  }

  close(): void {
    this.stream.cancel();
    this.client.close();
  }
}

const deltaNames = (r: DeltaDiscoveryResponse): string[] => r.resources.map((x) => x.name).sort();

describe('ADS server (delta xDS, real gRPC)', () => {
  it('sends only what changed and lists what vanished', async () => {
    const h = await startHarness();
    const p = new DeltaTestProxy(h.port);
    try {
      p.send({ type_url: TYPE_URLS.CLUSTER }); // wildcard
      const first = await p.next();
      assert.deepEqual(deltaNames(first), [clusterName('ratings'), clusterName('reviews')]);
      assert.deepEqual(first.removed_resources, []);
      assert.equal(first.resources[0]?.resource?.type_url, TYPE_URLS.CLUSTER);
      const acked = nextEvent(XDS_EVENTS.ack);
      p.ack(first);
      await acked;
      const [st] = h.server.syncStatus();
      assert.equal(st?.protocol, 'delta');
      assert.equal(st?.types.find((t) => t.type === 'CDS')?.state, 'SYNCED');

      // an endpoint change: EDS is answered, CDS (unchanged) is not; CDS is handled first in a push,
      // so the EDS response proves the CDS turn produced nothing
      p.send({ type_url: TYPE_URLS.ENDPOINT, resource_names_subscribe: [clusterName('reviews')] });
      p.ack(await p.next());
      h.snap.current = { ...h.snap.current, endpoints: { [clusterName('reviews')]: ['10.1.0.5', '10.1.0.6'] } };
      h.server.push({ full: true, reasons: new Set(['endpoint']) });
      h.clock.advance(100);
      const eds = await p.next();
      assert.equal(eds.type_url, TYPE_URLS.ENDPOINT, 'no CDS response for an unchanged cluster set');
      assert.deepEqual(deltaNames(eds), [clusterName('reviews')]);
      p.ack(eds);
      // details appears and ratings goes
      h.snap.current = { ...h.snap.current, services: ['reviews', 'details'] };
      h.server.push({ full: true, reasons: new Set(['config']) });
      h.clock.advance(100);
      const change = await p.next();
      assert.equal(change.type_url, TYPE_URLS.CLUSTER);
      assert.equal(change.system_version_info, h.server.version);
      assert.deepEqual(deltaNames(change), [clusterName('details')]);
      assert.deepEqual(change.removed_resources, [clusterName('ratings')]);
    } finally {
      p.close();
      await h.close();
    }
  });

  it('answers named subscriptions incrementally, says which names do not exist, and stops after unsubscribe', async () => {
    const h = await startHarness();
    const p = new DeltaTestProxy(h.port);
    try {
      const reviews = clusterName('reviews');
      const ratings = clusterName('ratings');
      p.send({ type_url: TYPE_URLS.ENDPOINT, resource_names_subscribe: [reviews] });
      const a = await p.next();
      assert.deepEqual(deltaNames(a), [reviews]);
      p.send({ type_url: TYPE_URLS.ENDPOINT, resource_names_subscribe: [ratings, 'outbound|80||nope.default.svc.cluster.local'], response_nonce: a.nonce });
      const b = await p.next();
      assert.deepEqual(deltaNames(b), [ratings], 'only the newly subscribed resource');
      assert.deepEqual(b.removed_resources, ['outbound|80||nope.default.svc.cluster.local'], 'a subscribed name that does not exist');
      const processed = nextEvent<{ nonce: string }>(XDS_EVENTS.ack, (e) => e.nonce === b.nonce);
      p.send({ type_url: TYPE_URLS.ENDPOINT, resource_names_unsubscribe: [reviews], response_nonce: b.nonce });
      await processed; // the same request ACKs b: once the ACK is seen, the unsubscribe is applied
      assert.deepEqual(h.server.syncStatus()[0]!.types.find((t) => t.type === 'EDS')!.names, [ratings, 'outbound|80||nope.default.svc.cluster.local']);
      // reviews changes (unsubscribed: not sent), then ratings changes (sent)
      h.snap.current = { ...h.snap.current, endpoints: { [reviews]: ['10.9.9.9'] } };
      h.server.push({ full: false, reasons: new Set(['endpoint']) });
      h.clock.advance(100);
      h.snap.current = { ...h.snap.current, endpoints: { [reviews]: ['10.9.9.9'], [ratings]: ['10.8.8.8'] } };
      h.server.push({ full: false, reasons: new Set(['endpoint']) });
      h.clock.advance(100);
      const c = await p.next();
      assert.deepEqual(deltaNames(c), [ratings]);
      assert.equal(c.system_version_info, h.server.version);
    } finally {
      p.close();
      await h.close();
    }
  });

  it('skips resources a reconnecting proxy already holds (initial_resource_versions), and records NACKs', async () => {
    const h = await startHarness();
    const p1 = new DeltaTestProxy(h.port, 'details-v1-a');
    const p2 = new DeltaTestProxy(h.port, 'details-v1-b');
    try {
      p1.send({ type_url: TYPE_URLS.CLUSTER });
      const held = await p1.next();
      const versions = Object.fromEntries(held.resources.map((r) => [r.name, r.version]));
      versions['outbound|80||gone.default.svc.cluster.local'] = 'old';
      p2.send({ type_url: TYPE_URLS.CLUSTER, initial_resource_versions: versions });
      const again = await p2.next();
      assert.deepEqual(again.resources, [], 'nothing the proxy already has');
      assert.deepEqual(again.removed_resources, ['outbound|80||gone.default.svc.cluster.local']);

      const nacked = nextEvent<XdsNackEvent>(XDS_EVENTS.nack);
      p1.send({ type_url: TYPE_URLS.CLUSTER, response_nonce: held.nonce, error_detail: { code: 3, message: 'cluster rejected' } });
      assert.equal((await nacked).message, 'cluster rejected');
      const st = h.server.syncStatus().find((x) => x.proxyId === p1.id)!.types.find((t) => t.type === 'CDS')!;
      assert.equal(st.state, 'STALE');
      assert.equal(st.nack?.message, 'cluster rejected');
    } finally {
      p1.close();
      p2.close();
      await h.close();
    }
  });
});

/** HTTP/2 frames by hand: a client that opens an ADS stream asking for CDS, with windows large enough that the server sends everything. */
function h2Frame(type: number, flags: number, stream: number, payload: Uint8Array): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head.writeUInt8(type, 3);
  head.writeUInt8(flags, 4);
  head.writeUInt32BE(stream, 5);
  return Buffer.concat([head, payload]);
}

function hpackLiteral(name: string, value: string): Buffer {
  // literal header field without indexing, new name, no Huffman coding (both shorter than 127 bytes)
  return Buffer.concat([Buffer.from([0, name.length]), Buffer.from(name), Buffer.from([value.length]), Buffer.from(value)]);
}

function rawAdsRequest(): Buffer {
  const big = 0x7fffffff;
  const settings = Buffer.alloc(6);
  settings.writeUInt16BE(0x4, 0); // SETTINGS_INITIAL_WINDOW_SIZE
  settings.writeUInt32BE(big, 2);
  const increment = Buffer.alloc(4);
  increment.writeUInt32BE(big - 65535, 0);
  const headers = Buffer.concat([
    hpackLiteral(':method', 'POST'),
    hpackLiteral(':scheme', 'http'),
    hpackLiteral(':path', '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources'),
    hpackLiteral(':authority', 'localhost'),
    hpackLiteral('content-type', 'application/grpc'),
    hpackLiteral('te', 'trailers'),
  ]);
  const id = formatNodeId({ ip: '10.1.0.9', podName: 'stuck-1', namespace: 'default' });
  const msg = encodeMessage('envoy.service.discovery.v3.DiscoveryRequest', { node: { id, metadata: { NAMESPACE: 'default' } }, type_url: TYPE_URLS.CLUSTER });
  const grpcMessage = Buffer.alloc(5 + msg.length);
  grpcMessage.writeUInt32BE(msg.length, 1);
  grpcMessage.set(msg, 5);
  return Buffer.concat([
    Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'),
    h2Frame(0x4, 0, 0, settings),
    h2Frame(0x8, 0, 0, increment),
    h2Frame(0x1, 0x4, 1, headers),
    h2Frame(0x0, 0, 1, grpcMessage),
  ]);
}

describe('ADS server stop', () => {
  it('lets its process exit after stop() while a peer has stopped reading a large response', async () => {
    const fixture = new URL('./ads-stop.fixture.ts', import.meta.url).pathname;
    const child = spawn(process.execPath, ['--import', 'tsx', fixture], { stdio: ['pipe', 'pipe', 'inherit'] });
    const exited = once(child, 'exit');
    const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    let peer: Socket | undefined;
    try {
      const port = Number((await lines.next()).value);
      assert.ok(port > 0, 'the fixture serves');
      peer = connect({ port, host: '127.0.0.1' });
      peer.on('error', () => undefined); // the server resets the connection it destroys
      await once(peer, 'connect');
      // read a first chunk of the response, then read nothing more: the server's socket fills up
      const first = once(peer, 'data');
      peer.write(rawAdsRequest());
      await first;
      peer.pause();
      child.stdin.write('stop\n');
      assert.equal((await lines.next()).value, 'stopped');
      // a socket left behind would keep the process alive (bounded: a hang fails here, not forever)
      const outcome = await Promise.race([exited.then(([code]) => `exit ${String(code)}`), new Promise((r) => setTimeout(() => r('still running'), 20_000).unref())]);
      assert.equal(outcome, 'exit 0');
    } finally {
      peer?.destroy();
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});

describe('ADS server flow control', () => {
  // bounded: without the stall, the second proxy would wait forever
  it('holds other streams back while the unflushed bytes exceed the budget, and lets them go once a stuck peer stalls', { timeout: 30_000 }, async () => {
    const pad = 'x'.repeat(2 ** 20);
    const cluster = (name: string, metadata?: object): GeneratedResource => ({
      name,
      resource: { '@type': TYPE_URLS.CLUSTER, name, type: 'STATIC', connect_timeout: '1s', ...(metadata ? { metadata } : {}) },
    });
    // 48 MiB for the stuck peer: more than the loopback buffers hold, so its write never flushes
    const big = Array.from({ length: 48 }, (_, i) => cluster(`c${i}`, { filter_metadata: { pad: { v: pad } } }));
    const gens: Generator<Snap>[] = [{ typeUrl: TYPE_URLS.CLUSTER, generate: (p) => (p.podName === 'stuck-1' ? big : [cluster('small')]) }];
    const h = await startHarness({ gens, maxBytesInFlight: 2 ** 20, stalledWriteMs: 5000 });
    const peer = connect({ port: h.port, host: '127.0.0.1' });
    peer.on('error', () => undefined);
    const p = new TestProxy(h.port);
    const until = async (cond: () => boolean): Promise<void> => {
      while (!cond()) await new Promise((r) => setTimeout(r, 5));
    };
    try {
      await once(peer, 'connect');
      const first = once(peer, 'data');
      peer.write(rawAdsRequest());
      await first;
      peer.pause();
      await until(() => h.server.bytesInFlight > 2 ** 20);
      p.subscribe(TYPE_URLS.CLUSTER);
      const status = (): TypeSyncStatus | undefined => h.server.syncStatus().find((s) => s.proxyId === p.id)?.types.find((t) => t.type === 'CDS');
      await until(() => status()?.names !== undefined && h.server.proxies().some((x) => x.id === p.id && x.watches.has(TYPE_URLS.CLUSTER)));
      assert.equal(status()?.state, 'NOT SENT', 'the answer waits for the budget the stuck peer holds');
      h.clock.advance(5000);
      const r = await p.next();
      assert.deepEqual(names(r), ['small']);
    } finally {
      peer.destroy();
      p.close();
      await h.close();
    }
  });
});
