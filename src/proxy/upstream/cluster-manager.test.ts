// The cluster manager end to end with real servers: CDS swaps that leave requests in flight to finish,
// EDS updates that remove a busy host, ORIGINAL_DST hosts made per address and cleaned up, TCP
// connects within max_connections, NACK messages, describe() for /clusters.

import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { ServerResponse } from 'node:http';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import { FakeClock } from './clock.ts';
import { ClusterConfigError, createClusterManager, type UpstreamClusterManager } from './cluster-manager.ts';
import { assignment, endpoint, get, http1Server, readBody, staticCluster, until, type TestServer } from './test-support.ts';
import { UpstreamError } from './types.ts';

const managers: UpstreamClusterManager[] = [];
const servers: TestServer[] = [];
after(async () => {
  await Promise.all(managers.map((m) => m.close()));
  await Promise.all(servers.map((s) => s.close()));
});

function newManager(clock?: FakeClock): UpstreamClusterManager {
  const m = createClusterManager(clock ? { clock } : {});
  managers.push(m);
  return m;
}

function edsCluster(name: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { name, type: 'EDS', connect_timeout: '1s', eds_cluster_config: { eds_config: { ads: {} }, service_name: name }, lb_policy: 'ROUND_ROBIN', ...extra };
}

async function heldServer(): Promise<TestServer & { held: ServerResponse[]; arrived: Promise<void>; closed: { sockets: number } }> {
  const held: ServerResponse[] = [];
  let arrivedResolve!: () => void;
  const arrived = new Promise<void>((r) => (arrivedResolve = r));
  const closed = { sockets: 0 };
  const s = await http1Server((req, res) => {
    req.resume();
    if (req.url !== '/slow') {
      res.end('fast');
      return;
    }
    held.push(res);
    arrivedResolve();
  });
  s.server.on('connection', (sock) => sock.on('close', () => closed.sockets++));
  servers.push(s);
  return { ...s, held, arrived, closed };
}

describe('cluster manager', () => {
  it('keeps an unchanged cluster, swaps a changed one, and lets the request in flight on the old one finish', async () => {
    const s = await heldServer();
    const m = newManager();
    m.setClusters([staticCluster('web', [s.port]), staticCluster('other', [1])]);
    const v1 = m.get('web')!;
    const other = m.get('other')!;
    const inflight = v1.request(v1.chooseHost({})!, get('/slow'));
    await s.arrived;

    m.setClusters([staticCluster('web', [s.port], { connect_timeout: '2s' }), staticCluster('other', [1])]);
    assert.equal(m.get('other'), other, 'an identical cluster is kept as it is');
    const v2 = m.get('web')!;
    assert.notEqual(v2, v1);
    assert.equal(v2.info.connectTimeoutMs, 2000);

    s.held[0]!.end('finished');
    const res = await inflight;
    assert.equal(await readBody(res), 'finished');
    // The old cluster's connection is closed once its request is done.
    await until(() => s.closed.sockets === 1);
    assert.equal(await readBody(await v2.request(v2.chooseHost({})!, get('/fast'))), 'fast');
  });

  it('applies EDS to EDS clusters (also when it came first), removes a busy host without failing its request', async () => {
    const s = await heldServer();
    const t = await http1Server((_req, res) => res.end('t'));
    servers.push(t);
    const m = newManager();
    m.setClusters([edsCluster('svc')]);
    assert.equal(m.get('svc')!.chooseHost({}), undefined, 'no endpoints yet: no host (503 UH)');
    m.setEndpoints([assignment('svc', [endpoint('127.0.0.1', s.port)])]);
    const c = m.get('svc')!;
    const host = c.chooseHost({})!;
    assert.equal(host.key, `127.0.0.1:${s.port}`);
    const inflight = c.request(host, get('/slow'));
    await s.arrived;
    m.setEndpoints([assignment('svc', [endpoint('127.0.0.1', t.port)])]);
    assert.equal(c.chooseHost({})!.key, `127.0.0.1:${t.port}`);
    s.held[0]!.end('still served');
    assert.equal(await readBody(await inflight), 'still served');
    await until(() => s.closed.sockets === 1);

    // A CDS change of the cluster keeps the endpoints EDS gave (ADS will not resend them).
    m.setClusters([edsCluster('svc', { lb_policy: 'RANDOM' })]);
    assert.equal(m.get('svc')!.chooseHost({})!.key, `127.0.0.1:${t.port}`);
  });

  it('refuses a bad update as a whole with every problem in the message, keeping the previous clusters', () => {
    const m = newManager();
    m.setClusters([staticCluster('good', [1])]);
    assert.throws(
      () => m.setClusters([staticCluster('good', [1]), { name: 'bad1', type: 'ORIGINAL_DST' }, { name: 'bad2', maglev_lb_config: { table_size: 10 }, lb_policy: 'MAGLEV' }]),
      (e: unknown) => e instanceof ClusterConfigError && /cluster 'bad1'/.test(e.message) && /cluster 'bad2'/.test(e.message),
    );
    assert.ok(m.get('good'));
    assert.equal(m.get('bad1'), undefined);
    assert.throws(() => m.setEndpoints([{ cluster_name: 'good', endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: 'not-an-ip', port_value: 1 } } } }] }] }]), /ClusterLoadAssignment 'good'.*not an IP address/);
  });

  it('ORIGINAL_DST: one host per original destination, bound to 127.0.0.6, cleaned up when unused', async () => {
    const s = await http1Server((req, res) => res.end(req.socket.remoteAddress));
    servers.push(s);
    const clock = new FakeClock();
    const m = newManager(clock);
    m.setClusters([{ name: 'InboundPassthroughCluster', type: 'ORIGINAL_DST', lb_policy: 'CLUSTER_PROVIDED', connect_timeout: '1s', upstream_bind_config: { source_address: { address: '127.0.0.6', port_value: 0 } } }]);
    const c = m.get('InboundPassthroughCluster')!;
    assert.equal(c.chooseHost({}), undefined, 'no original destination: no host');
    const dst = { address: '127.0.0.1', port: s.port };
    const h = c.chooseHost({ originalDst: dst })!;
    assert.equal(h.key, `127.0.0.1:${s.port}`);
    assert.equal(c.chooseHost({ originalDst: dst }), h, 'the same address gets the same host (and its pool)');
    assert.equal(c.chooseHost({ originalDst: { address: '127.0.0.1', port: 1 } })!.key, '127.0.0.1:1');
    assert.equal(await readBody(await c.request(h, get())), '127.0.0.6');
    assert.equal(c.hosts.length, 2);
    clock.advance(5000); // first sweep: both were used since the start
    c.chooseHost({ originalDst: dst });
    clock.advance(5000); // second sweep: the unused one goes
    assert.deepEqual(c.hosts.map((x) => x.key), [`127.0.0.1:${s.port}`]);
  });

  it('connect() opens TCP connections within max_connections; beyond it and max_pending_requests: UO', async () => {
    const sockets: Socket[] = [];
    const echo = createServer((sock) => {
      sockets.push(sock);
      sock.pipe(sock);
    });
    echo.listen(0, '127.0.0.1');
    await once(echo, 'listening');
    const port = (echo.address() as AddressInfo).port;
    const m = newManager();
    m.setClusters([staticCluster('tcp', [port], { circuit_breakers: { thresholds: [{ max_connections: 1, max_pending_requests: 1 }] } })]);
    const c = m.get('tcp')!;
    const host = c.chooseHost({})!;
    const first = await c.connect(host);
    first.write('ping');
    const [data] = (await once(first, 'data')) as [Buffer];
    assert.equal(data.toString(), 'ping');
    const waiting = c.connect(host); // queued: max_connections reached
    await assert.rejects(c.connect(host), (e: unknown) => e instanceof UpstreamError && e.flag === 'UO');
    first.destroy();
    const second = await waiting;
    assert.equal(c.resources.connections, 1);
    second.destroy();
    await until(() => c.resources.connections === 0);
    for (const s of sockets) s.destroy();
    echo.close();
  });

  it('describes clusters and hosts for /clusters', () => {
    const m = newManager();
    m.setClusters([staticCluster('d', [1, 2], { circuit_breakers: { thresholds: [{ max_connections: 7 }] } })]);
    m.setEndpoints([]);
    const [d] = m.describe();
    assert.equal(d?.name, 'd');
    assert.equal(d?.circuitBreakers.maxConnections, 7);
    assert.deepEqual(
      d?.hosts.map((h) => [h.key, h.healthy, h.ejected, h.weight, h.activeRequests, h.outlierCheck]),
      [
        ['127.0.0.1:1', true, false, 1, 0, 'OK'],
        ['127.0.0.1:2', true, false, 1, 0, 'OK'],
      ],
    );
  });
});

describe('explanations for x-tsmesh-error', () => {
  const drMeta = { metadata: { filter_metadata: { istio: { services: [{ host: 'reviews.bookinfo.svc.cluster.local' }], config: '/apis/networking.istio.io/v1/namespaces/bookinfo/destination-rule/reviews', subset: 'v2' } } } };

  it('names the cluster, the subset and the DestinationRule when there are no endpoints', () => {
    const m = newManager();
    m.setClusters([edsCluster('outbound|9080|v2|reviews.bookinfo.svc.cluster.local', drMeta)]);
    const c = m.get('outbound|9080|v2|reviews.bookinfo.svc.cluster.local')!;
    assert.equal(c.chooseHost({}), undefined);
    assert.equal(c.explainNoHost(), 'outbound|9080|v2|reviews.bookinfo.svc.cluster.local has 0 endpoints (subset v2 of DestinationRule bookinfo/reviews)');
  });

  it('says how many endpoints are ejected or unhealthy when panic mode is off', () => {
    const m = newManager();
    m.setClusters([edsCluster('e', { common_lb_config: { healthy_panic_threshold: { value: 0 } } })]);
    m.setEndpoints([assignment('e', [endpoint('10.0.0.1', 80, { health_status: 'UNHEALTHY' }), endpoint('10.0.0.2', 80)])]);
    const c = m.get('e')!;
    c.hosts[1]!.ejected = true;
    m.setEndpoints([assignment('e', [endpoint('10.0.0.1', 80, { health_status: 'UNHEALTHY' }), endpoint('10.0.0.2', 80)])]);
    assert.equal(c.chooseHost({}), undefined);
    assert.equal(c.explainNoHost(), 'e: none of its 2 endpoints is healthy (1 ejected by outlier detection, 1 not healthy in EDS) and panic mode is off (healthy_panic_threshold 0%)');
  });

  it('names the DestinationRule field behind an overflow', async () => {
    const s = await heldServer();
    const m = newManager();
    m.setClusters([staticCluster('o', [s.port], { circuit_breakers: { thresholds: [{ max_connections: 1, max_pending_requests: 1 }] }, ...drMeta })]);
    const c = m.get('o')!;
    const host = c.chooseHost({})!;
    const first = c.request(host, get('/slow'));
    await s.arrived;
    const queued = c.request(host, get('/fast'));
    await assert.rejects(c.request(host, get('/slow')), (e: unknown) => e instanceof UpstreamError && e.detail === 'max_pending_requests (1) reached (connectionPool.http.http1MaxPendingRequests of DestinationRule bookinfo/reviews) with all 1 connection(s) busy');
    s.held[0]!.end();
    await readBody(await first);
    assert.equal(await readBody(await queued), 'fast');
  });
});
