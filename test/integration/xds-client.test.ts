// The sidecar's ADS client (XdsClient over its own HTTP/2 gRPC stream) against the real control plane: the first full
// config, ACKs the control plane records, a NACK with the applier's reason while the last good config stays, and a
// reconnect after the control plane restarts; against stub servers: a gRPC status it ends the stream with, responses
// split anywhere in the byte stream, and a connection whose keepalive pings go unanswered.

import assert from 'node:assert/strict';
import { once } from 'node:events';
import http2 from 'node:http2';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { Logger } from '../../src/common/log.ts';
import { loadString } from '../../src/config/loader.ts';
import { ControlPlane } from '../../src/controlplane/server.ts';
import { XdsClient, type XdsAppliers } from '../../src/proxy/xds-client/xds-client.ts';
import { DISCOVERY_REQUEST, DISCOVERY_RESPONSE } from '../../src/xds/ads-codec.ts';
import type { DiscoveryRequest } from '../../src/xds/ads-service.ts';
import { formatNodeId } from '../../src/xds/node.ts';
import { decodeMessage, encodeAny, messageType, TYPE_URLS } from '../../src/xds/protos.ts';

const quiet: Logger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };
type Json = Record<string, unknown>;

const MESH = `apiVersion: v1
kind: Service
metadata: {name: echo, namespace: demo}
spec:
  selector: {app: echo}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: echo, namespace: demo}
spec:
  selector: {matchLabels: {app: echo}}
  template:
    metadata: {labels: {app: echo}}
    spec: {containers: [{name: echo, image: echo}]}
`;
const vs = (weight: number): string => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: echo, namespace: demo}
spec:
  hosts: [echo.demo.svc.cluster.local]
  http: [{route: [{destination: {host: echo.demo.svc.cluster.local}, weight: ${weight}}, {destination: {host: echo.demo.svc.cluster.local, port: {number: 80}}, weight: ${100 - weight}}]}]
`;

/** Appliers that keep what they were given; `failRoutes` makes the routes applier refuse with that message. */
function recorder(): { appliers: XdsAppliers; last: Record<'clusters' | 'endpoints' | 'listeners' | 'routes', Json[]>; failRoutes?: string } {
  const r: ReturnType<typeof recorder> = {
    last: { clusters: [], endpoints: [], listeners: [], routes: [] },
    appliers: {
      clusters: (x) => void (r.last.clusters = x),
      endpoints: (x) => void (r.last.endpoints = x),
      listeners: (x) => void (r.last.listeners = x),
      routes: (x) => {
        if (r.failRoutes) throw new Error(r.failRoutes);
        r.last.routes = x;
      },
    },
  };
  return r;
}

async function until(what: string, check: () => boolean): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (check()) return;
    await new Promise((res) => setTimeout(res, 10));
  }
  assert.fail(`timed out waiting for ${what}`);
}

function startControlPlane(port = 0): Promise<ControlPlane> {
  const cp = new ControlPlane({ xdsAddress: `127.0.0.1:${port}`, httpAddress: '127.0.0.1:0', log: quiet, debounce: { quietMs: 10, maxDelayMs: 50 } });
  const loaded = loadString(MESH, 'mesh.yaml');
  assert.ok(cp.store.apply(loaded.resources, 'test', loaded.diagnostics).accepted);
  return cp.start().then(() => cp);
}

describe('XdsClient against the control plane', () => {
  let cp: ControlPlane;
  let client: XdsClient;
  const rec = recorder();
  let nodeId = '';

  before(async () => {
    cp = await startControlPlane();
    const pod = cp.pushContext().registry.workloads.find((w) => w.labels.app === 'echo');
    assert.ok(pod);
    nodeId = formatNodeId({ ip: pod.ip, podName: pod.name, namespace: 'demo' });
    client = new XdsClient({
      address: `127.0.0.1:${cp.xdsPort}`,
      node: { id: nodeId, metadata: { NAMESPACE: 'demo', NAME: pod.name, INSTANCE_IPS: pod.ip, LABELS: pod.labels } },
      appliers: rec.appliers,
      log: quiet,
      backoff: { initialMs: 20, maxMs: 100 },
    });
  });
  after(async () => {
    client.stop();
    await cp.stop();
  });

  const status = (c: ControlPlane, type: string): { state: string; nack?: { message?: string } } | undefined =>
    c.ads.syncStatus().find((p) => p.proxyId === nodeId)?.types.find((t) => t.type === type);

  it('gets the first full configuration, and the control plane sees every type ACKed', async () => {
    const ready = once(client, 'ready');
    client.start();
    await ready;
    assert.ok(rec.last.clusters.some((c) => c.name === 'outbound|80||echo.demo.svc.cluster.local'), JSON.stringify(rec.last.clusters.map((c) => c.name)));
    assert.ok(rec.last.endpoints.some((e) => e.cluster_name === 'outbound|80||echo.demo.svc.cluster.local'));
    assert.ok(rec.last.listeners.some((l) => l.name === 'virtualOutbound'));
    assert.ok(rec.last.routes.some((r) => r.name === '80'));
    await until('CDS, EDS, LDS and RDS SYNCED', () => ['CDS', 'EDS', 'LDS', 'RDS'].every((t) => status(cp, t)?.state === 'SYNCED'));
  });

  it('NACKs a config the sidecar cannot apply, with its reason, and keeps the last good one', async () => {
    const before = JSON.stringify(rec.last.routes);
    rec.failRoutes = 'route 80 does not compile here';
    const nack = once(client, 'nack');
    const loaded = loadString(vs(70), 'vs.yaml');
    assert.ok(cp.store.apply(loaded.resources, 'test', loaded.diagnostics).accepted);
    const [type, message] = (await nack) as [string, string];
    assert.equal(type, TYPE_URLS.ROUTE);
    assert.equal(message, 'route 80 does not compile here');
    await until('RDS STALE with the reason', () => status(cp, 'RDS')?.state === 'STALE' && status(cp, 'RDS')?.nack?.message === message);
    assert.equal(JSON.stringify(client.resources(TYPE_URLS.ROUTE)), before, 'the last good routes stay');
    assert.equal(client.status().find((s) => s.typeUrl === TYPE_URLS.ROUTE)?.error, message);
    delete rec.failRoutes;
  });

  it('reconnects after the control plane restarts and is served and ACKs again', async () => {
    const port = cp.xdsPort;
    const lost = once(client, 'disconnected');
    await cp.stop();
    await lost;
    cp = await startControlPlane(port);
    await until('CDS, EDS, LDS and RDS SYNCED on the new control plane', () => ['CDS', 'EDS', 'LDS', 'RDS'].every((t) => status(cp, t)?.state === 'SYNCED'));
    assert.equal(client.connected, true);
  });
});

describe('XdsClient against stub servers', () => {
  const servers: Array<http2.Http2Server | net.Server> = [];
  const clients: XdsClient[] = [];
  after(() => {
    for (const c of clients) c.stop();
    for (const s of servers) s.close();
  });
  const listen = async <S extends http2.Http2Server | net.Server>(s: S): Promise<number> => {
    servers.push(s);
    s.listen(0, '127.0.0.1');
    await once(s, 'listening');
    return (s.address() as net.AddressInfo).port;
  };
  const newClient = (port: number, extra: Partial<ConstructorParameters<typeof XdsClient>[0]> = {}): { client: XdsClient; rec: ReturnType<typeof recorder> } => {
    const rec = recorder();
    const client = new XdsClient({ address: `127.0.0.1:${port}`, node: { id: 'sidecar~10.0.0.1~a.b~b.svc.cluster.local' }, appliers: rec.appliers, log: quiet, backoff: { initialMs: 10, maxMs: 20 }, ...extra });
    clients.push(client);
    return { client, rec };
  };
  /** A gRPC message: the 5-byte prefix and the bytes. */
  const frame = (bytes: Uint8Array): Buffer => {
    const b = Buffer.alloc(5 + bytes.length);
    b.writeUInt32BE(bytes.length, 1);
    b.set(bytes, 5);
    return b;
  };

  it('reports the gRPC status the control plane ends the stream with, and tries again', async () => {
    let streams = 0;
    const server = http2.createServer();
    server.on('stream', (s) => {
      streams++;
      s.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '14', 'grpc-message': 'draining%20for%20an%20upgrade' }, { endStream: true });
    });
    const { client } = newClient(await listen(server));
    const lost = once(client, 'disconnected');
    client.start();
    assert.deepEqual(await lost, ['grpc-status 14 (UNAVAILABLE): draining for an upgrade']);
    await until('a second attempt', () => streams >= 2);
  });

  it('reads responses however the byte stream splits them, and ACKs each', async () => {
    const requests: DiscoveryRequest[] = [];
    const server = http2.createServer();
    server.on('stream', (s) => {
      s.respond({ ':status': 200, 'content-type': 'application/grpc' });
      let buf = Buffer.alloc(0);
      s.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        while (buf.length >= 5 && buf.length >= 5 + buf.readUInt32BE(1)) {
          const n = buf.readUInt32BE(1);
          requests.push(decodeMessage(DISCOVERY_REQUEST, buf.subarray(5, 5 + n)));
          buf = buf.subarray(5 + n);
        }
      });
      const response = (type: string, nonce: string, resources: Json[]): Buffer =>
        frame(messageType(DISCOVERY_RESPONSE).encode({ version_info: 'v1', type_url: type, nonce, resources: resources.map((r) => encodeAny(r)) }).finish());
      const cluster = { '@type': TYPE_URLS.CLUSTER, name: 'static-one', type: 'STATIC', connect_timeout: '1s' };
      const bytes = Buffer.concat([response(TYPE_URLS.CLUSTER, 'n1', [cluster]), response(TYPE_URLS.LISTENER, 'n2', [])]);
      // the first 7 bytes one at a time (a prefix split across writes), the rest in one write holding both messages' ends
      for (let i = 0; i < 7; i++) s.write(bytes.subarray(i, i + 1));
      s.write(bytes.subarray(7));
    });
    const { client, rec } = newClient(await listen(server));
    const ready = once(client, 'ready');
    client.start();
    await ready;
    assert.deepEqual(rec.last.clusters.map((c) => c.name), ['static-one']);
    await until('both ACKs', () => requests.some((r) => r.response_nonce === 'n1') && requests.some((r) => r.response_nonce === 'n2'));
    assert.equal(requests[0]?.node?.id, 'sidecar~10.0.0.1~a.b~b.svc.cluster.local', 'the first request carries the node');
    assert.equal(requests.find((r) => r.response_nonce === 'n1')?.error_detail, undefined, 'an ACK, not a NACK');
  });

  it('gives up a connection whose keepalive pings go unanswered', async () => {
    const silent = net.createServer((s) => s.resume());
    const { client } = newClient(await listen(silent), { keepalive: { intervalMs: 20, timeoutMs: 100 } });
    const lost = once(client, 'disconnected');
    client.start();
    const [why] = (await lost) as [string];
    assert.match(why, /^keepalive ping to 127\.0\.0\.1:\d+ unanswered for 100 ms$/);
  });
});
