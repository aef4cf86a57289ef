// Conformance with an independent xDS client: the unmodified @grpc/grpc-js-xds library dials
// xds:///reviews.bookinfo.svc.cluster.local:9080 through tsmesh's control plane to real gRPC servers
// labelled reviews v1/v2/v3, and follows Istio's VirtualServices and DestinationRules: subsets, a header
// match, 90/10 and 50/50 weights, fault abort, timeout, retries, and a live change without a restart.
// Its own file: grpc-js-xds reads its bootstrap once per process.

import { rawUnaryService } from '../helpers/grpc.ts';
import assert from 'node:assert/strict';
import dc from 'node:diagnostics_channel';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import * as grpcXds from '@grpc/grpc-js-xds';
import { loadString } from '../../src/config/loader.ts';
import { ControlPlane } from '../../src/controlplane/server.ts';
import { XDS_EVENTS, type XdsNackEvent, type XdsPushEvent } from '../../src/controlplane/xds/ads-server.ts';
import type { Logger } from '../../src/common/log.ts';

const quiet: Logger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };
const TARGET = 'reviews.bookinfo.svc.cluster.local:9080';

const service = rawUnaryService('Get', '/bookinfo.Reviews/Get');

interface Backend { version: string; port: number; server: grpc.Server; calls: number; behaviour: { failFirst: number; delayMs: number } }

async function startBackend(version: string): Promise<Backend> {
  const server = new grpc.Server();
  const b: Backend = { version, port: 0, server, calls: 0, behaviour: { failFirst: 0, delayMs: 0 } };
  server.addService(service, {
    Get: (_call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
      b.calls++;
      if (b.behaviour.failFirst > 0) {
        b.behaviour.failFirst--;
        cb({ code: grpc.status.UNAVAILABLE, details: 'warming up' });
        return;
      }
      setTimeout(() => cb(null, Buffer.from(version)), b.behaviour.delayMs);
    },
  });
  b.port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  return b;
}

/** The mesh: reviews as a ServiceEntry whose endpoints are the three local servers, plus the DestinationRule. */
function meshYaml(backends: Backend[]): string {
  const eps = backends.map((b) => `  - address: 127.0.0.1\n    ports: {grpc: ${b.port}}\n    labels: {app: reviews, version: ${b.version}}\n`).join('');
  return `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews, namespace: bookinfo}
spec:
  hosts: [reviews.bookinfo.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports:
  - {number: 9080, name: grpc, protocol: GRPC}
  endpoints:
${eps}---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: bookinfo}
spec:
  host: reviews.bookinfo.svc.cluster.local
  trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
  - {name: v3, labels: {version: v3}}
`;
}

const vs = (http: string): string => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: bookinfo}
spec:
  hosts: [reviews.bookinfo.svc.cluster.local]
  http:
${http}`;

describe('conformance: @grpc/grpc-js-xds through the tsmesh control plane', () => {
  let cp: ControlPlane;
  let client: grpc.Client;
  const backends: Backend[] = [];
  const nacks: string[] = [];
  const onNack = (m: unknown): void => void nacks.push((m as XdsNackEvent).message);

  /** Applies a VirtualService and waits until the client ACKs the route version pushed for it. */
  async function route(http: string): Promise<void> {
    const acked = new Promise<void>((resolve) => {
      let pushed: string | undefined;
      const isGrpcRoute = (e: { proxy: { type: string }; typeUrl: string }): boolean => e.proxy.type === 'grpc' && e.typeUrl.endsWith('RouteConfiguration');
      const onPush = (m: unknown): void => {
        const e = m as XdsPushEvent;
        if (isGrpcRoute(e) && e.trigger === 'push') pushed = e.version;
      };
      const onAck = (m: unknown): void => {
        const e = m as { proxy: { type: string }; typeUrl: string; version: string };
        if (isGrpcRoute(e) && pushed !== undefined && e.version === pushed) {
          dc.unsubscribe(XDS_EVENTS.ack, onAck);
          dc.unsubscribe(XDS_EVENTS.push, onPush);
          resolve();
        }
      };
      dc.subscribe(XDS_EVENTS.push, onPush);
      dc.subscribe(XDS_EVENTS.ack, onAck);
    });
    const r = cp.store.apply(loadString(vs(http), 'vs.yaml').resources);
    assert.equal(r.accepted, true, JSON.stringify(r.diagnostics));
    await acked;
    // grpc-js-xds ACKs on receipt and swaps its config selector just after: let it settle
    await new Promise((res) => setTimeout(res, 300));
  }

  function call(metadata: Record<string, string> = {}, deadlineMs = 5000): Promise<{ ok: true; version: string } | { ok: false; code: number; details: string }> {
    const md = new grpc.Metadata();
    for (const [k, v] of Object.entries(metadata)) md.set(k, v);
    return new Promise((resolve) => {
      client.makeUnaryRequest('/bookinfo.Reviews/Get', (b: Buffer) => b, (b: Buffer) => b, Buffer.from('hi'), md, { deadline: Date.now() + deadlineMs }, (err, value) => {
        if (err) resolve({ ok: false, code: err.code, details: err.details });
        else resolve({ ok: true, version: value?.toString() ?? '' });
      });
    });
  }

  async function shares(n: number, metadata: Record<string, string> = {}): Promise<Record<string, number>> {
    const counts: Record<string, number> = {};
    for (let i = 0; i < n; i++) {
      const r = await call(metadata);
      const key = r.ok ? r.version : `error:${r.code}`;
      counts[key] = (counts[key] ?? 0) + 1;
    }
    for (const k of Object.keys(counts)) counts[k] = (counts[k] ?? 0) / n;
    return counts;
  }

  before(async () => {
    for (const v of ['v1', 'v2', 'v3']) backends.push(await startBackend(v));
    cp = new ControlPlane({ xdsAddress: '127.0.0.1:0', httpAddress: '127.0.0.1:0', log: quiet, debounce: { quietMs: 10, maxDelayMs: 100 } });
    await cp.start();
    assert.equal(cp.store.apply(loadString(meshYaml(backends), 'mesh.yaml').resources).accepted, true);
    dc.subscribe(XDS_EVENTS.nack, onNack);
    process.env.GRPC_XDS_BOOTSTRAP_CONFIG = JSON.stringify({
      xds_servers: [{ server_uri: `127.0.0.1:${cp.xdsPort}`, channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] }],
      node: { id: 'sidecar~127.0.0.1~productpage-grpc.bookinfo~bookinfo.svc.cluster.local', metadata: { GENERATOR: 'grpc', NAMESPACE: 'bookinfo', LABELS: { app: 'productpage' }, INSTANCE_IPS: '127.0.0.1' }, locality: {} },
    });
    grpcXds.register();
    assert.equal(cp.store.apply(loadString(vs('  - route:\n    - destination: {host: reviews.bookinfo.svc.cluster.local, subset: v1}\n'), 'vs.yaml').resources).accepted, true);
    client = new grpc.Client(`xds:///${TARGET}`, grpc.credentials.createInsecure());
  });

  after(async () => {
    client.close();
    await new Promise((r) => setTimeout(r, 100));
    dc.unsubscribe(XDS_EVENTS.nack, onNack);
    await cp.stop();
    for (const b of backends) b.server.forceShutdown();
  });

  it('routes every call to subset v1 (virtual-service-all-v1)', async () => {
    assert.deepEqual(await shares(40), { v1: 1 });
  });

  it('routes end-user: jason to v2 and everyone else to v1 (reviews-test-v2)', async () => {
    await route('  - match:\n    - headers: {end-user: {exact: jason}}\n    route:\n    - destination: {host: reviews.bookinfo.svc.cluster.local, subset: v2}\n  - route:\n    - destination: {host: reviews.bookinfo.svc.cluster.local, subset: v1}\n');
    assert.deepEqual(await shares(20, { 'end-user': 'jason' }), { v2: 1 });
    assert.deepEqual(await shares(20), { v1: 1 });
  });

  it('splits 90/10 and 50/50 within 6 points over 400 calls', async () => {
    await route('  - route:\n    - destination: {host: reviews.bookinfo.svc.cluster.local, subset: v1}\n      weight: 90\n    - destination: {host: reviews.bookinfo.svc.cluster.local, subset: v2}\n      weight: 10\n');
    const s1 = await shares(400);
    assert.ok(Math.abs((s1.v1 ?? 0) - 0.9) <= 0.06 && Math.abs((s1.v2 ?? 0) - 0.1) <= 0.06, JSON.stringify(s1));
    await route('  - route:\n    - destination: {host: reviews.bookinfo.svc.cluster.local, subset: v1}\n      weight: 50\n    - destination: {host: reviews.bookinfo.svc.cluster.local, subset: v3}\n      weight: 50\n');
    const s2 = await shares(400);
    assert.ok(Math.abs((s2.v1 ?? 0) - 0.5) <= 0.06 && Math.abs((s2.v3 ?? 0) - 0.5) <= 0.06, JSON.stringify(s2));
  });

  it('aborts calls with the fault filter (httpStatus 500 -> UNKNOWN)', async () => {
    const before = backends[0]?.calls ?? 0;
    await route('  - fault:\n      abort: {httpStatus: 500, percentage: {value: 100}}\n    route:\n    - destination: {host: reviews.bookinfo.svc.cluster.local, subset: v1}\n');
    const r = await call();
    assert.equal(r.ok, false);
    assert.equal(!r.ok && r.code, grpc.status.UNKNOWN);
    assert.equal(backends[0]?.calls, before, 'the aborted call never reached the server');
  });

  it('times out after the route timeout (DEADLINE_EXCEEDED)', async () => {
    const v1 = backends[0];
    assert.ok(v1);
    v1.behaviour.delayMs = 1500;
    try {
      await route('  - timeout: 0.2s\n    route:\n    - destination: {host: reviews.bookinfo.svc.cluster.local, subset: v1}\n');
      const r = await call();
      assert.equal(!r.ok && r.code, grpc.status.DEADLINE_EXCEEDED);
    } finally {
      v1.behaviour.delayMs = 0;
    }
  });

  it('retries UNAVAILABLE answers (retryOn unavailable, 3 attempts)', async () => {
    const v2 = backends[1];
    assert.ok(v2);
    await route('  - retries: {attempts: 3, retryOn: unavailable}\n    route:\n    - destination: {host: reviews.bookinfo.svc.cluster.local, subset: v2}\n');
    v2.behaviour.failFirst = 2;
    const calls = v2.calls;
    const r = await call();
    assert.deepEqual(r, { ok: true, version: 'v2' });
    assert.equal(v2.calls - calls, 3, 'two failures and a success');
  });

  it('accepted every resource: no NACK from the gRPC client', () => {
    assert.deepEqual(nacks, []);
  });
});
