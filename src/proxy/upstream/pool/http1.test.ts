// HTTP/1.1 upstream pools against real servers on 127.0.0.1: keep-alive reuse, circuit-breaker
// overflow (UO), max_requests_per_connection, connect failure and timeout (UF), reset (UR), binding to
// 127.0.0.6, streamed bodies with backpressure, aborts, idle timeout.

import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type AddressInfo } from 'node:net';
import { after, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { FakeClock } from '../clock.ts';
import { createClusterManager, type UpstreamClusterManager } from '../cluster-manager.ts';
import { get, http1Server, readBody, staticCluster, until, type TestServer } from '../test-support.ts';
import { UpstreamError, type UpstreamHttpResponse } from '../types.ts';

const managers: UpstreamClusterManager[] = [];
const servers: TestServer[] = [];
after(async () => {
  await Promise.all(managers.map((m) => m.close()));
  await Promise.all(servers.map((s) => s.close()));
});

function manager(clusters: Array<Record<string, unknown>>, clock?: FakeClock): UpstreamClusterManager {
  const m = createClusterManager(clock ? { clock } : {});
  m.setClusters(clusters);
  managers.push(m);
  return m;
}

/** A server whose responses wait until release() is called; `arrived` resolves per request. */
async function slowServer(): Promise<TestServer & { waiting: ServerResponse[]; arrived: () => Promise<void>; release: () => void }> {
  const waiting: ServerResponse[] = [];
  let notify: (() => void) | undefined;
  const s = await http1Server((req: IncomingMessage, res: ServerResponse) => {
    req.resume();
    waiting.push(res);
    notify?.();
  });
  servers.push(s);
  return {
    ...s,
    waiting,
    arrived: () => new Promise<void>((r) => (notify = r)),
    release: () => {
      for (const res of waiting.splice(0)) res.end('done');
    },
  };
}

function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

describe('HTTP/1.1 upstream pool', () => {
  it('reuses one keep-alive connection for sequential requests and reports the local address', async () => {
    const s = await http1Server((req, res) => res.end(`hello ${req.url}`));
    servers.push(s);
    const c = manager([staticCluster('keepalive', [s.port])]).get('keepalive')!;
    const host = c.chooseHost({})!;
    for (let i = 0; i < 5; i++) {
      const res = await c.request(host, get(`/r${i}`));
      assert.equal(res.statusCode, 200);
      assert.equal(await readBody(res), `hello /r${i}`);
      assert.match(res.localAddress ?? '', /^127\.0\.0\.1:\d+$/);
      assert.deepEqual(await res.trailers, {});
    }
    assert.equal(s.connections.length, 1);
    assert.equal(host.activeRequests, 0);
  });

  it('max_connections 1 + max_pending_requests 1: two in flight (one queued), the third gets overflow (UO)', async () => {
    const s = await slowServer();
    const c = manager([staticCluster('cb', [s.port], { circuit_breakers: { thresholds: [{ max_connections: 1, max_pending_requests: 1 }] } })]).get('cb')!;
    const host = c.chooseHost({})!;
    const arrived = s.arrived();
    const r1 = c.request(host, get('/1'));
    await arrived;
    const r2 = c.request(host, get('/2'));
    const r3 = c.request(host, get('/3'));
    await assert.rejects(r3, (e: unknown) => e instanceof UpstreamError && e.kind === 'overflow' && e.flag === 'UO' && /max_pending_requests \(1\)/.test(e.detail));
    assert.equal(c.describe().stats.upstream_rq_pending_overflow, 1);
    s.release();
    assert.equal(await readBody(await r1), 'done');
    const second = s.arrived();
    await second;
    s.release();
    assert.equal(await readBody(await r2), 'done');
    assert.equal(s.connections.length, 1, 'the queued request waited for the one connection');
  });

  it('max_requests caps requests in flight across the cluster (overflow UO at once)', async () => {
    const s = await slowServer();
    const c = manager([staticCluster('maxrq', [s.port], { circuit_breakers: { thresholds: [{ max_requests: 2 }] } })]).get('maxrq')!;
    const host = c.chooseHost({})!;
    const a = s.arrived();
    const r1 = c.request(host, get());
    await a;
    const b = s.arrived();
    const r2 = c.request(host, get());
    await b;
    await assert.rejects(c.request(host, get()), (e: unknown) => e instanceof UpstreamError && e.flag === 'UO' && /max_requests \(2\)/.test(e.detail));
    s.release();
    await readBody(await r1);
    await readBody(await r2);
  });

  it('max_requests_per_connection 2: five requests use three connections', async () => {
    const s = await http1Server((_req, res) => res.end('ok'));
    servers.push(s);
    const c = manager([
      staticCluster('mrpc', [s.port], {
        typed_extension_protocol_options: {
          'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
            '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
            common_http_protocol_options: { max_requests_per_connection: 2 },
            explicit_http_config: { http_protocol_options: {} },
          },
        },
      }),
    ]).get('mrpc')!;
    const host = c.chooseHost({})!;
    for (let i = 0; i < 5; i++) assert.equal(await readBody(await c.request(host, get())), 'ok');
    assert.equal(s.connections.length, 3);
  });

  it('a closed port fails with connect_failure (UF) and Envoy’s "delayed connect error: 111"', async () => {
    const port = await closedPort();
    const c = manager([staticCluster('refused', [port])]).get('refused')!;
    const host = c.chooseHost({})!;
    await assert.rejects(c.request(host, get()), (e: unknown) => e instanceof UpstreamError && e.kind === 'connect_failure' && e.flag === 'UF' && e.detail === 'delayed connect error: 111' && e.host === host);
    assert.equal(c.describe().stats.upstream_cx_connect_fail, 1);
    assert.equal(host.activeRequests, 0);
  });

  it('connect_timeout fires as connect_timeout (UF) when the connection is not up in time', async () => {
    const s = await http1Server((_req, res) => res.end());
    servers.push(s);
    const clock = new FakeClock();
    const c = manager([staticCluster('slowconnect', [s.port], { connect_timeout: '0.25s' })], clock).get('slowconnect')!;
    const p = c.request(c.chooseHost({})!, get());
    clock.advance(250); // before the event loop could complete the TCP handshake
    await assert.rejects(p, (e: unknown) => e instanceof UpstreamError && e.kind === 'connect_timeout' && e.flag === 'UF');
    assert.equal(c.describe().stats.upstream_cx_connect_timeout, 1);
  });

  it('a connection reset after the request was sent fails with reset (UR)', async () => {
    const s = await http1Server((req) => req.socket.destroy());
    servers.push(s);
    const c = manager([staticCluster('reset', [s.port])]).get('reset')!;
    await assert.rejects(c.request(c.chooseHost({})!, get()), (e: unknown) => e instanceof UpstreamError && e.kind === 'reset' && e.flag === 'UR');
  });

  it('binds to upstream_bind_config 127.0.0.6: the server sees the request from 127.0.0.6', async () => {
    const s = await http1Server((req, res) => res.end(req.socket.remoteAddress));
    servers.push(s);
    const c = manager([staticCluster('bind', [s.port], { upstream_bind_config: { source_address: { address: '127.0.0.6', port_value: 0 } } })]).get('bind')!;
    const res = await c.request(c.chooseHost({})!, get());
    assert.equal(await readBody(res), '127.0.0.6');
    assert.match(res.localAddress ?? '', /^127\.0\.0\.6:\d+$/);
  });

  it('sends Buffer and streamed request bodies, and streams a large response with backpressure', async () => {
    const total = 8 * 1024 * 1024;
    let written = 0;
    let blocked: (() => void) | undefined;
    const s = await http1Server((req, res) => {
      if (req.method === 'POST') {
        const parts: Buffer[] = [];
        req.on('data', (d: Buffer) => parts.push(d));
        req.on('end', () => res.end(`got ${Buffer.concat(parts).length} bytes`));
        return;
      }
      const chunk = Buffer.alloc(64 * 1024, 'x');
      const pump = (): void => {
        while (written < total) {
          written += chunk.length;
          if (!res.write(chunk)) {
            blocked?.();
            res.once('drain', pump);
            return;
          }
        }
        res.end();
      };
      pump();
    });
    servers.push(s);
    const c = manager([staticCluster('bodies', [s.port])]).get('bodies')!;
    const host = c.chooseHost({})!;
    const post = (body: Buffer | import('node:stream').Readable): ReturnType<typeof c.request> => c.request(host, { method: 'POST', path: '/', headers: { host: 'x', 'content-type': 'application/octet-stream' }, body, signal: new AbortController().signal });
    assert.equal(await readBody(await post(Buffer.alloc(100_000, 1))), 'got 100000 bytes');
    const { Readable } = await import('node:stream');
    assert.equal(await readBody(await post(Readable.from([Buffer.alloc(1000), Buffer.alloc(2345)]))), 'got 3345 bytes');

    const isBlocked = new Promise<void>((r) => (blocked = r));
    const res: UpstreamHttpResponse = await c.request(host, get('/big'));
    await isBlocked;
    await delay(50); // nobody reads: the server must stay blocked
    assert.ok(written < 4 * 1024 * 1024, `server wrote ${written} bytes while nobody read`);
    let received = 0;
    for await (const chunk of res.body) received += (chunk as Buffer).length;
    assert.equal(received, total);
  });

  it('an abort while queued takes the request out of the queue; an abort in flight resets it', async () => {
    const s = await slowServer();
    const c = manager([staticCluster('abort', [s.port], { circuit_breakers: { thresholds: [{ max_connections: 1, max_pending_requests: 1 }] } })]).get('abort')!;
    const host = c.chooseHost({})!;
    const a = s.arrived();
    const inflight = new AbortController();
    const r1 = c.request(host, get('/', {}, inflight.signal));
    await a;
    const queued = new AbortController();
    const r2 = c.request(host, get('/', {}, queued.signal));
    queued.abort(new Error('per-try timeout'));
    await assert.rejects(r2, /per-try timeout/);
    assert.equal(c.resources.pending, 0);
    inflight.abort(new Error('route timeout'));
    await assert.rejects(r1, /route timeout/);
    assert.equal(host.activeRequests, 0);
    // The cluster still works afterwards.
    const r3 = c.request(host, get());
    await s.arrived();
    s.release();
    assert.equal((await r3).statusCode, 200);
  });

  it('reaches a unix socket endpoint (Sidecar ingress unix://) and an IPv6 one', async () => {
    const { createServer: createHttpServer } = await import('node:http');
    const { tmpdir } = await import('node:os');
    const path = `${tmpdir()}/tsmesh-upstream-${process.pid}.sock`;
    const unix = createHttpServer((_req, res) => res.end('over a pipe'));
    unix.listen(path);
    await once(unix, 'listening');
    const m = manager([{ name: 'pipe', type: 'STATIC', load_assignment: { cluster_name: 'pipe', endpoints: [{ lb_endpoints: [{ endpoint: { address: { pipe: { path } } } }] }] } }]);
    const c = m.get('pipe')!;
    const host = c.chooseHost({})!;
    assert.equal(host.key, path);
    assert.equal(await readBody(await c.request(host, get())), 'over a pipe');
    await m.close();
    unix.close();

    const v6 = createHttpServer((req, res) => res.end(`from ${req.socket.remoteAddress}`));
    v6.listen(0, '::1');
    await once(v6, 'listening');
    const port = (v6.address() as AddressInfo).port;
    const m6 = manager([{ name: 'v6', type: 'STATIC', load_assignment: { cluster_name: 'v6', endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '::1', port_value: port } } } }] }] } }]);
    const c6 = m6.get('v6')!;
    const h6 = c6.chooseHost({})!;
    assert.equal(h6.key, `[::1]:${port}`);
    const res = await c6.request(h6, get());
    assert.equal(await readBody(res), 'from ::1');
    assert.match(res.localAddress ?? '', /^\[::1\]:\d+$/);
    await m6.close();
    v6.close();
  });

  it('max_retries 1: one retry at a time, the next is refused until it is released', () => {
    const c = manager([staticCluster('retries', [1], { circuit_breakers: { thresholds: [{ max_retries: 1 }] } })]).get('retries')!;
    assert.equal(c.tryRetry(), true);
    assert.equal(c.tryRetry(), false);
    assert.equal(c.describe().stats.upstream_rq_retry_overflow, 1);
    c.releaseRetry();
    assert.equal(c.tryRetry(), true);
  });

  it('closes a connection after idle_timeout', async () => {
    const s = await http1Server((_req, res) => res.end('ok'));
    servers.push(s);
    let closed: (() => void) | undefined;
    s.server.on('connection', (sock) => sock.on('close', () => closed?.()));
    const c = manager([
      staticCluster('idle', [s.port], {
        typed_extension_protocol_options: {
          'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
            '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
            common_http_protocol_options: { idle_timeout: '0.1s' },
            explicit_http_config: { http_protocol_options: {} },
          },
        },
      }),
    ]).get('idle')!;
    const host = c.chooseHost({})!;
    const gone = new Promise<void>((r) => (closed = r));
    await readBody(await c.request(host, get()));
    await gone;
    await until(() => c.describe().hosts[0]?.connections === 0);
    assert.equal(c.resources.connections, 0);
  });
});

/** A TCP server that answers each request head it reads with `answer(head, socket)` (raw HTTP/1.1 bytes). */
async function rawServer(answer: (head: string, socket: import('node:net').Socket, n: number, body: string) => void): Promise<TestServer & { heads: string[] }> {
  const heads: string[] = [];
  const connections: string[] = [];
  const sockets = new Set<import('node:net').Socket>();
  const srv = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    connections.push(`${socket.remoteAddress}:${socket.remotePort}`);
    socket.on('error', () => undefined);
    let buf = '';
    socket.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      for (let end = buf.indexOf('\r\n\r\n'); end >= 0; end = buf.indexOf('\r\n\r\n')) {
        const head = buf.slice(0, end + 4);
        buf = buf.slice(end + 4);
        const m = /content-length: (\d+)/i.exec(head);
        let bodyLen = m ? Number(m[1]) : 0;
        if (/transfer-encoding: chunked/i.test(head)) {
          const last = buf.indexOf('0\r\n\r\n');
          if (last < 0) {
            buf = head + buf; // wait for the whole chunked body
            break;
          }
          bodyLen = last + 5;
        }
        const body = buf.slice(0, bodyLen);
        heads.push(head + body);
        buf = buf.slice(bodyLen);
        answer(head, socket, heads.length, body);
      }
    });
  });
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const s = {
    port: (srv.address() as AddressInfo).port,
    connections,
    heads,
    close: async () => {
      for (const x of sockets) x.destroy();
      await new Promise<void>((r) => srv.close(() => r()));
    },
  };
  servers.push(s);
  return s;
}

/** Writes `text` one small piece at a time (every framing boundary split across reads). */
async function dribble(socket: import('node:net').Socket, text: string, piece = 3): Promise<void> {
  for (let i = 0; i < text.length; i += piece) {
    socket.write(text.slice(i, i + piece), 'latin1');
    await delay(1);
  }
}

describe('HTTP/1.1 upstream client: framing', () => {
  it('reads chunked bodies and heads split across many reads, skipping 100 and 103 heads; keeps the connection', async () => {
    const s = await rawServer((_head, socket) => {
      void dribble(socket, 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nX-Folded: one\r\n  two\r\n\r\n5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nx-trailer: t\r\n\r\n');
    });
    const c = manager([staticCluster('chunked', [s.port])]).get('chunked')!;
    const host = c.chooseHost({})!;
    for (let i = 0; i < 2; i++) {
      const res = await c.request(host, get('/c'));
      assert.equal(res.statusCode, 200);
      assert.deepEqual(res.headers['set-cookie'], ['a=1', 'b=2']);
      assert.equal(res.headers['x-folded'], 'one two');
      assert.equal(await readBody(res), 'hello, world');
    }
    assert.equal(s.connections.length, 1);
  });

  it('HEAD, 204 and 304 have no body whatever their headers say; a body without framing is read until the server closes', async () => {
    const s = await rawServer((head, socket, n) => {
      if (head.startsWith('HEAD')) socket.write('HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n');
      else if (n === 2) socket.write('HTTP/1.1 204 No Content\r\ncontent-length: 5\r\n\r\n');
      else if (n === 3) socket.write('HTTP/1.1 304 Not Modified\r\n\r\n');
      else socket.end('HTTP/1.0 200 OK\r\ncontent-type: text/plain\r\n\r\nuntil the end');
    });
    const c = manager([staticCluster('nobody', [s.port])]).get('nobody')!;
    const host = c.chooseHost({})!;
    const head = await c.request(host, { ...get(), method: 'HEAD' });
    assert.equal(head.headers['content-length'], '1000');
    assert.equal(await readBody(head), '');
    assert.equal(await readBody(await c.request(host, get())), '');
    assert.equal((await c.request(host, get())).statusCode, 304);
    assert.equal(s.connections.length, 1, 'HEAD, 204 and 304 kept the connection');
    assert.equal(await readBody(await c.request(host, get())), 'until the end');
    await until(() => c.describe().hosts[0]?.connections === 0);
    assert.equal(host.activeRequests, 0);
  });

  it('`connection: close` and a Keep-Alive timeout under a second make the next request use a new connection', async () => {
    const s = await rawServer((_h, socket, n) => {
      socket.write(n === 1 ? 'HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok' : 'HTTP/1.1 200 OK\r\nkeep-alive: timeout=1\r\ncontent-length: 2\r\n\r\nok');
    });
    const c = manager([staticCluster('close', [s.port])]).get('close')!;
    const host = c.chooseHost({})!;
    for (let i = 0; i < 3; i++) assert.equal(await readBody(await c.request(host, get())), 'ok');
    assert.equal(s.connections.length, 3);
  });

  it('a malformed response fails with protocol_error (UPE) and the connection is not reused', async () => {
    const bad = ['HTTP/1.1 2OO OK\r\n\r\n', 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\nok', 'HTTP/1.1 200 OK\r\nbad header\r\n\r\n', 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n', 'HTTP/1.1 200 OK\r\ncontent-length: 1\r\ntransfer-encoding: chunked\r\n\r\n'];
    const s = await rawServer((_h, socket, n) => socket.write(bad[n - 1] ?? 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok'));
    const c = manager([staticCluster('upe', [s.port])]).get('upe')!;
    const host = c.chooseHost({})!;
    for (let i = 0; i < bad.length; i++) {
      const failed = c.request(host, get()).then(async (r) => {
        await readBody(r); // chunked data errors arrive with the body
        return r;
      });
      await assert.rejects(failed, (e: unknown) => e instanceof UpstreamError && e.kind === 'protocol_error' && e.flag === 'UPE' && /^upstream protocol error: /.test(e.detail), `response ${i}`);
    }
    assert.equal(await readBody(await c.request(host, get())), 'ok');
    assert.equal(s.connections.length, bad.length + 1);
    assert.equal(host.activeRequests, 0);
  });

  it('a server that closes an idle connection: the next request goes on a new one; an early answer to a streamed body drains the rest and retires the connection', { timeout: 10_000 }, async () => {
    const s = await rawServer((head, socket, n) => {
      if (n === 1) {
        socket.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
        setTimeout(() => socket.end(), 10); // FIN while idle
      } else if (head.startsWith('POST')) {
        // answer at once and stop reading: the client's writes back up until the answer arrives
        socket.pause();
        setTimeout(() => socket.write('HTTP/1.1 413 Payload Too Large\r\ncontent-length: 4\r\n\r\nbig!'), 50);
      }
      else socket.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
    });
    const c = manager([staticCluster('fin', [s.port])]).get('fin')!;
    const host = c.chooseHost({})!;
    assert.equal(await readBody(await c.request(host, get())), 'ok');
    await until(() => c.describe().hosts[0]?.connections === 0);
    assert.equal(await readBody(await c.request(host, get())), 'ok');
    assert.equal(s.connections.length, 2);

    const { PassThrough } = await import('node:stream');
    const body = new PassThrough({ highWaterMark: 1024 });
    const filling = (async () => {
      for (let i = 0; i < 400; i++) if (!body.write(Buffer.alloc(64 * 1024))) await once(body, 'drain');
      body.end();
    })();
    const signal = new AbortController().signal;
    const early = await c.request(host, { method: 'POST', path: '/', headers: { host: 'x', 'content-length': String(400 * 64 * 1024) }, body, signal });
    assert.equal(early.statusCode, 413);
    assert.equal(await readBody(early), 'big!');
    await filling; // the rest of the body is drained, not left blocked
    assert.equal(await readBody(await c.request(host, get())), 'ok');
    assert.equal(s.connections.length, 3, 'the connection with the unfinished body was not reused');
    assert.equal(host.activeRequests, 0);
  });

  it('writes host first, drops connection headers, frames a stream without a length as chunked, and refuses unsendable headers without using the connection', async () => {
    const s = await rawServer((_head, socket, _n, body) => {
      const answer = body || 'ok';
      socket.write(`HTTP/1.1 200 OK\r\ncontent-length: ${answer.length}\r\n\r\n${answer}`);
    });
    const c = manager([staticCluster('head', [s.port])]).get('head')!;
    const host = c.chooseHost({})!;
    const signal = new AbortController().signal;
    const res = await c.request(host, { method: 'GET', path: '/p?q=1', headers: { 'x-a': 'b', host: 'svc.local', connection: 'keep-alive', 'keep-alive': 'timeout=5', 'x-list': ['1', '2'] }, body: null, signal });
    assert.equal(await readBody(res), 'ok');
    assert.equal(s.heads[0], 'GET /p?q=1 HTTP/1.1\r\nhost: svc.local\r\nx-a: b\r\nx-list: 1\r\nx-list: 2\r\n\r\n');
    await assert.rejects(c.request(host, { method: 'GET', path: '/', headers: { host: 'x', 'x-bad': 'a\r\nx-injected: 1' }, body: null, signal }), (e: unknown) => e instanceof UpstreamError && e.kind === 'protocol_error');
    const { Readable } = await import('node:stream');
    const streamed = await c.request(host, { method: 'POST', path: '/up', headers: { host: 'x' }, body: Readable.from([Buffer.from('abc'), Buffer.from('defgh')]), signal });
    assert.equal(await readBody(streamed), '3\r\nabc\r\n5\r\ndefgh\r\n0\r\n\r\n');
    assert.equal(s.connections.length, 1);
  });
});
