// The sidecar's data path in one process, driven by xDS resources as the control plane sends them: real
// listeners on 127.0.0.1 port 0, real upstream servers, real clients. What a caller of the proxy sees.

import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer as createHttpServer } from 'node:http';
import net, { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import { DataPlane } from './data-plane.ts';
import { agentEnvFrom } from './identity.ts';
import { findSamples, parseExposition } from '../../test/helpers/prometheus.ts';
import { staticCluster, until } from './upstream/test-support.ts';

const quiet = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };
const planes: DataPlane[] = [];
const servers: Server[] = [];
const clients: Socket[] = [];
after(async () => {
  for (const c of clients) c.destroy();
  await Promise.all(planes.map((p) => p.stop()));
  for (const s of servers) s.close();
});

const HCM = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const TCP = 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy';

function plane(originalDst?: (socket: Socket) => { address: string; port: number } | undefined): DataPlane {
  const env = agentEnvFrom({ POD_NAME: 'app-0', POD_NAMESPACE: 'test', INSTANCE_IP: '127.0.0.1', ISTIO_METAJSON_LABELS: '{"app":"app"}' });
  const p = new DataPlane({ env, log: quiet, ...(originalDst ? { originalDst } : {}) });
  planes.push(p);
  return p;
}

async function echoServer(): Promise<number> {
  const s = createServer((c) => {
    c.on('error', () => undefined);
    c.pipe(c);
  });
  servers.push(s);
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  return (s.address() as AddressInfo).port;
}

/** An inbound-style listener: HTTP chains for some ports (so first bytes are inspected) and a TCP chain. */
function inboundListener(name: string, tcpCluster: string, httpRoute: Record<string, unknown>): Record<string, unknown> {
  return {
    name,
    address: { socket_address: { address: '127.0.0.1', port_value: 0 } },
    traffic_direction: 'INBOUND',
    filter_chains: [
      {
        name: 'http-on-1',
        filter_chain_match: { destination_port: 1 },
        filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: { '@type': HCM, stat_prefix: 'in', route_config: httpRoute, http_filters: [{ name: 'envoy.filters.http.router' }] } }],
      },
    ],
    default_filter_chain: { name: 'tcp', filters: [{ name: 'envoy.filters.network.tcp_proxy', typed_config: { '@type': TCP, stat_prefix: tcpCluster, cluster: tcpCluster } }] },
  };
}

/** An outbound listener routing every host to `cluster`, as Istio's routes do (retries, attempt count, decorator). */
function outboundListener(name: string, cluster: string): Record<string, unknown> {
  const route = {
    name: 'r',
    virtual_hosts: [{ name: 'svc', domains: ['*'], include_request_attempt_count: true, routes: [{ name: 'default', match: { prefix: '/' }, decorator: { operation: 'svc:80/*' }, route: { cluster, timeout: '0s', retry_policy: { retry_on: 'connect-failure,retriable-status-codes', num_retries: 2, retriable_status_codes: [503] } } }] }],
  };
  return {
    name,
    address: { socket_address: { address: '127.0.0.1', port_value: 0 } },
    traffic_direction: 'OUTBOUND',
    filter_chains: [{ name, filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: { '@type': HCM, stat_prefix: name, route_config: route, http_filters: [{ name: 'envoy.filters.http.router' }] } }] }],
  };
}

/** A TCP server that answers its tag to whatever it is sent, then closes. */
async function tagServer(tag: string): Promise<number> {
  const s = createServer((c) => {
    c.on('error', () => undefined);
    c.once('data', () => c.end(tag));
  });
  servers.push(s);
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  return (s.address() as AddressInfo).port;
}

async function freePort(): Promise<number> {
  const s = createServer().listen(0, '127.0.0.1');
  await once(s, 'listening');
  const { port } = s.address() as AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}

function tcpChain(cluster: string): Record<string, unknown> {
  return { name: cluster, filters: [{ name: 'envoy.filters.network.tcp_proxy', typed_config: { '@type': TCP, stat_prefix: cluster, cluster } }] };
}

describe('data plane', () => {
  it('a connection accepted while the rest of a listener set is still binding waits for the whole set (never routed by the previous one)', { timeout: 10_000 }, async () => {
    const target = await tagServer('TARGET');
    const fallback = await tagServer('FALLBACK');
    const [virtualPort, otherPort] = [await freePort(), await freePort()];
    // every captured connection "was going to" 127.0.0.1:9, which a bind_to_port: false listener serves
    const p = plane(() => ({ address: '127.0.0.1', port: 9 }));
    await p.apply('clusters', [staticCluster('target', [target]), staticCluster('fallback', [fallback])]);
    const listeners = [
      { name: 'virtualOutbound', address: { socket_address: { address: '127.0.0.1', port_value: virtualPort } }, use_original_dst: true, filter_chains: [], default_filter_chain: tcpChain('fallback') },
      { name: 'other', address: { socket_address: { address: '127.0.0.1', port_value: otherPort } }, filter_chains: [], default_filter_chain: tcpChain('fallback') },
      { name: '127.0.0.1_9', address: { socket_address: { address: '127.0.0.1', port_value: 9 } }, bind_to_port: false, filter_chains: [], default_filter_chain: tcpChain('target') },
    ];
    // the second bind is held back until a connection has reached the first listener
    const proto = net.Server.prototype;
    // eslint-disable-next-line @typescript-eslint/unbound-method -- put back as it was, and only ever called with apply()
    const listen = proto.listen;
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => (release = r));
    let calls = 0;
    proto.listen = function (this: Server, ...args: unknown[]) {
      calls++;
      if (calls === 2) {
        void gate.then(() => (listen as (...a: unknown[]) => Server).apply(this, args));
        return this;
      }
      return (listen as (...a: unknown[]) => Server).apply(this, args);
    } as typeof listen;
    let applying: Promise<void>;
    try {
      applying = p.apply('listeners', listeners);
      await until(() => calls === 2);
    } finally {
      proto.listen = listen;
    }
    let got = '';
    try {
      const client = connect({ host: '127.0.0.1', port: virtualPort });
      clients.push(client);
      await once(client, 'connect');
      client.write('hello');
      client.on('data', (d: Buffer) => (got += d.toString()));
      await new Promise((r) => setTimeout(r, 150)); // the connection is accepted and waits
      assert.equal(got, '', 'nothing answers before the whole listener set is in place');
      release();
      await once(client, 'close');
    } finally {
      release();
      await applying;
    }
    assert.equal(got, 'TARGET');
  });


  it('HTTP/1.1 through an outbound listener: whole and streamed responses, streamed request bodies, the headers Istio adds', { timeout: 20_000 }, async () => {
    const seen: Array<{ method: string; url: string; headers: Record<string, string | string[] | undefined>; body: string }> = [];
    const upstream = createHttpServer((req, res) => {
      let body = '';
      req.setEncoding('latin1');
      req.on('data', (c: string) => (body += c));
      req.on('end', () => {
        seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
        if (req.url === '/chunked') {
          res.write('first,');
          setTimeout(() => res.end('second'), 20);
        } else if (req.url === '/retry' && seen.filter((x) => x.url === '/retry').length === 1) {
          res.writeHead(503).end('try again');
        } else res.end(`echo ${req.method} ${body.length}`);
      });
    });
    upstream.listen(0, '127.0.0.1');
    await once(upstream, 'listening');
    servers.push(upstream);
    const p = plane();
    await p.apply('clusters', [staticCluster('outbound|80||svc.test.svc.cluster.local', [(upstream.address() as AddressInfo).port])]);
    await p.apply('listeners', [outboundListener('out', 'outbound|80||svc.test.svc.cluster.local')]);
    const base = `http://127.0.0.1:${p.listeners.boundPorts().get('out')}`;

    const whole = await fetch(`${base}/a?b=c`);
    assert.equal(whole.status, 200);
    assert.equal(await whole.text(), 'echo GET 0');
    assert.match(whole.headers.get('x-envoy-upstream-service-time') ?? '', /^\d+$/);
    const first = seen[0];
    assert.equal(first?.url, '/a?b=c');
    assert.match(String(first?.headers['x-request-id']), /^[0-9a-f-]{36}$/);
    assert.equal(first?.headers['x-forwarded-proto'], 'http');
    assert.equal(first?.headers['x-envoy-attempt-count'], '1');
    assert.equal(first?.headers['x-envoy-decorator-operation'], 'svc:80/*');
    assert.ok(first?.headers['x-envoy-peer-metadata']);

    const streamed = await fetch(`${base}/chunked`);
    assert.equal(await streamed.text(), 'first,second');

    const big = 'z'.repeat(100_000);
    const { Readable } = await import('node:stream');
    const posted = await fetch(`${base}/up`, { method: 'POST', body: Readable.toWeb(Readable.from([Buffer.from(big.slice(0, 50_000)), Buffer.from(big.slice(50_000))])) as ReadableStream, duplex: 'half' });
    assert.equal(await posted.text(), 'echo POST 100000');

    const retried = await fetch(`${base}/retry`, { method: 'PUT', body: 'again' });
    assert.equal(await retried.text(), 'echo PUT 5');
    assert.deepEqual(seen.filter((x) => x.url === '/retry').map((x) => [x.headers['x-envoy-attempt-count'], x.body]), [['1', 'again'], ['2', 'again']]);
  });

  it('TCP through a listener that inspects first bytes (it also has HTTP chains): the client’s first bytes reach the upstream', { timeout: 10_000 }, async () => {
    const echo = await echoServer();
    const p = plane();
    await p.apply('clusters', [staticCluster('echo', [echo])]);
    await p.apply('listeners', [inboundListener('in', 'echo', { name: 'r', virtual_hosts: [] })]);
    const port = p.listeners.boundPorts().get('in');
    assert.ok(port);
    const client: Socket = connect({ host: '127.0.0.1', port });
    clients.push(client);
    await once(client, 'connect');
    client.write('hello first bytes\n');
    let got = '';
    client.on('data', (d: Buffer) => {
      got += d.toString();
      if (got.includes('second\n')) client.end();
      else if (got === 'hello first bytes\n') client.write('second\n');
    });
    await once(client, 'close');
    assert.equal(got, 'hello first bytes\nsecond\n');
    // the connection's bytes, both ways, in Istio's TCP metrics once the proxy closed it
    const sample = (name: string): number | undefined => findSamples(parseExposition(p.telemetry.metrics.render()), name, {})[0]?.value;
    await until(() => sample('istio_tcp_connections_closed_total') === 1);
    assert.equal(sample('istio_tcp_received_bytes_total'), got.length);
    assert.equal(sample('istio_tcp_sent_bytes_total'), got.length);
  });
});
