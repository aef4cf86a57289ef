// The sidecar's data path in one process, driven by xDS resources as the control plane sends them: real
// listeners on 127.0.0.1 port 0, real upstream servers, real clients. What a caller of the proxy sees.

import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import { DataPlane } from './data-plane.ts';
import { agentEnvFrom } from './identity.ts';
import { staticCluster } from './upstream/test-support.ts';

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

function plane(): DataPlane {
  const env = agentEnvFrom({ POD_NAME: 'app-0', POD_NAMESPACE: 'test', INSTANCE_IP: '127.0.0.1', ISTIO_METAJSON_LABELS: '{"app":"app"}' });
  const p = new DataPlane({ env, log: quiet });
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

describe('data plane', () => {
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
  });
});
