// HTTP/2 upstreams against a real node:http2 server: one connection carries concurrent streams,
// gRPC-style trailers arrive, GOAWAY moves new requests to a new connection, RST_STREAM is a reset (UR),
// max_requests caps concurrent streams (UO).

import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { FakeClock } from '../clock.ts';
import { createClusterManager, type UpstreamClusterManager } from '../cluster-manager.ts';
import { HTTP2_OPTIONS, get, http2Server, readBody, staticCluster, until, type TestServer } from '../test-support.ts';
import { UpstreamError } from '../types.ts';
import * as http2 from 'node:http2';

const managers: UpstreamClusterManager[] = [];
const servers: TestServer[] = [];
after(async () => {
  await Promise.all(managers.map((m) => m.close()));
  await Promise.all(servers.map((s) => s.close()));
});

function h2cluster(name: string, port: number, extra: Record<string, unknown> = {}): ReturnType<UpstreamClusterManager['get']> & object {
  const m = createClusterManager();
  m.setClusters([staticCluster(name, [port], { typed_extension_protocol_options: HTTP2_OPTIONS, ...extra })]);
  managers.push(m);
  return m.get(name)!;
}

describe('HTTP/2 upstream pool', () => {
  it('gets status, headers, body and trailers (gRPC style) from a real HTTP/2 server', async () => {
    const s = await http2Server((stream, headers) => {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'x-path': String(headers[':path']), 'x-authority': String(headers[':authority']) }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0', 'grpc-message': 'fine' }));
      stream.end('payload');
    });
    servers.push(s);
    const c = h2cluster('h2-trailers', s.port);
    assert.equal(c.info.protocol, 'http2');
    const res = await c.request(c.chooseHost({})!, get('/pkg.Svc/Method', { host: 'svc.ns.svc.cluster.local:8080', te: 'trailers' }));
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['x-path'], '/pkg.Svc/Method');
    assert.equal(res.headers['x-authority'], 'svc.ns.svc.cluster.local:8080');
    assert.equal(res.headers[':status'], undefined);
    assert.equal(await readBody(res), 'payload');
    assert.deepEqual(await res.trailers, { 'grpc-status': '0', 'grpc-message': 'fine' });
    assert.match(res.localAddress ?? '', /^127\.0\.0\.1:\d+$/);
  });

  it('carries 20 concurrent requests on one connection and posts bodies', async () => {
    const s = await http2Server((stream) => {
      const parts: Buffer[] = [];
      stream.on('data', (d: Buffer) => parts.push(d));
      stream.on('end', () => {
        stream.respond({ ':status': 200 });
        stream.end(`len=${Buffer.concat(parts).length}`);
      });
    });
    servers.push(s);
    const c = h2cluster('h2-concurrent', s.port);
    const host = c.chooseHost({})!;
    const bodies = await Promise.all(
      Array.from({ length: 20 }, async (_, i) => readBody(await c.request(host, { method: 'POST', path: '/', headers: { host: 'x' }, body: Buffer.alloc(i * 100), signal: new AbortController().signal }))),
    );
    assert.deepEqual(bodies, Array.from({ length: 20 }, (_, i) => `len=${i * 100}`));
    assert.equal(s.connections.length, 1);
    await until(() => host.activeRequests === 0); // a stream is done at its 'close', just after 'end'
  });

  it('after a GOAWAY the next request goes over a new connection', async () => {
    let n = 0;
    const s = await http2Server((stream) => {
      stream.respond({ ':status': 200 });
      stream.end(`r${++n}`);
      if (n === 1) stream.session?.goaway();
    });
    servers.push(s);
    const c = h2cluster('h2-goaway', s.port);
    const host = c.chooseHost({})!;
    assert.equal(await readBody(await c.request(host, get())), 'r1');
    // The GOAWAY frame may still be in flight: wait until the pool has seen it.
    await until(() => c.describe().hosts[0]!.connections === 0);
    assert.equal(await readBody(await c.request(host, get())), 'r2');
    assert.equal(s.connections.length, 2);
  });

  it('a stream reset before the response is a reset (UR); REFUSED_STREAM says so', async () => {
    const s = await http2Server((stream, headers) => stream.close(headers[':path'] === '/refuse' ? http2.constants.NGHTTP2_REFUSED_STREAM : http2.constants.NGHTTP2_INTERNAL_ERROR));
    servers.push(s);
    const c = h2cluster('h2-reset', s.port);
    const host = c.chooseHost({})!;
    await assert.rejects(c.request(host, get('/boom')), (e: unknown) => e instanceof UpstreamError && e.kind === 'reset' && e.flag === 'UR' && /remote reset/.test(e.detail));
    await assert.rejects(c.request(host, get('/refuse')), (e: unknown) => e instanceof UpstreamError && e.detail === 'remote refused stream reset');
    assert.equal(s.connections.length, 1, 'a stream reset leaves the connection usable');
  });

  it('max_requests_per_connection 2 opens a new connection every 2 requests; idle_timeout closes an idle one', async () => {
    const s = await http2Server((stream) => {
      stream.respond({ ':status': 200 });
      stream.end('ok');
    });
    servers.push(s);
    const clock = new FakeClock();
    const m = createClusterManager({ clock });
    managers.push(m);
    const opts = { ...HTTP2_OPTIONS['envoy.extensions.upstreams.http.v3.HttpProtocolOptions'], common_http_protocol_options: { max_requests_per_connection: 2, idle_timeout: '60s' } };
    m.setClusters([staticCluster('h2-limits', [s.port], { typed_extension_protocol_options: { 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': opts } })]);
    const c = m.get('h2-limits')!;
    const host = c.chooseHost({})!;
    for (let i = 0; i < 5; i++) {
      assert.equal(await readBody(await c.request(host, get())), 'ok');
      await until(() => host.activeRequests === 0);
    }
    assert.equal(s.connections.length, 3);
    await until(() => c.resources.connections === 1);
    clock.advance(60_000);
    await until(() => c.resources.connections === 0 && s.sessions.size === 0);
  });

  it('a response without a body (204) ends the stream even if nobody reads it', async () => {
    const s = await http2Server((stream) => stream.respond({ ':status': 204 }, { endStream: true }));
    servers.push(s);
    const c = h2cluster('h2-204', s.port);
    const host = c.chooseHost({})!;
    assert.equal((await c.request(host, get())).statusCode, 204);
    await until(() => host.activeRequests === 0);
  });

  it('max_requests 2 (http2MaxRequests): a third concurrent stream overflows (UO)', async () => {
    const held: http2.ServerHttp2Stream[] = [];
    let arrived: (() => void) | undefined;
    const s = await http2Server((stream) => {
      held.push(stream);
      if (held.length === 2) arrived?.();
    });
    servers.push(s);
    const c = h2cluster('h2-max', s.port, { circuit_breakers: { thresholds: [{ max_requests: 2 }] } });
    const host = c.chooseHost({})!;
    const both = new Promise<void>((r) => (arrived = r));
    const r1 = c.request(host, get());
    const r2 = c.request(host, get());
    await both;
    await assert.rejects(c.request(host, get()), (e: unknown) => e instanceof UpstreamError && e.flag === 'UO');
    for (const st of held) {
      st.respond({ ':status': 204 });
      st.end();
    }
    assert.equal((await r1).statusCode, 204);
    assert.equal((await r2).statusCode, 204);
  });
});
