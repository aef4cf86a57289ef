// Helpers for the upstream's tests: host lists, cluster JSON in Envoy's shape, small real HTTP/1.1 and
// HTTP/2 servers on 127.0.0.1 port 0. Test-only; throws on misuse.

import { once } from 'node:events';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { seededRandom } from './clock.ts';
import { HostImpl, type EndpointSpec } from './host.ts';
import type { PickerOptions } from './lb/types.ts';
import type { UpstreamHttpRequest, UpstreamHttpResponse } from './types.ts';

export function makeHost(address: string, port: number, extra: Partial<EndpointSpec> = {}): HostImpl {
  return new HostImpl({ address, port, weight: 1, locality: {}, priority: 0, healthStatus: 'HEALTHY', ...extra });
}

/** n hosts 10.0.0.1..n:80 with the given weights (default 1). */
export function makeHosts(n: number, weights: readonly number[] = []): HostImpl[] {
  return Array.from({ length: n }, (_, i) => makeHost(`10.0.0.${i + 1}`, 80, { weight: weights[i] ?? 1 }));
}

export function pickerOptions(seed = 1, extra: Partial<PickerOptions> = {}): PickerOptions {
  return { random: seededRandom(seed), minRingSize: 1024, maxRingSize: 8 * 1024 * 1024, maglevTableSize: 65537, choiceCount: 2, ...extra };
}

/** Counts picks per host key. */
export function tally(n: number, pick: (i: number) => { key: string } | undefined): Map<string, number> {
  const m = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const h = pick(i);
    const k = h?.key ?? 'none';
    m.set(k, (m.get(k) ?? 0) + 1);
  }
  return m;
}

export function endpoint(address: string, port: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { endpoint: { address: { socket_address: { address, port_value: port } } }, ...extra };
}

/** A ClusterLoadAssignment with one locality holding `eps`. */
export function assignment(name: string, eps: Array<Record<string, unknown>>, group: Record<string, unknown> = {}): Record<string, unknown> {
  return { cluster_name: name, endpoints: [{ lb_endpoints: eps, ...group }] };
}

/** A STATIC cluster pointing at 127.0.0.1:ports. */
export function staticCluster(name: string, ports: number[], extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    '@type': 'type.googleapis.com/envoy.config.cluster.v3.Cluster',
    name,
    type: 'STATIC',
    connect_timeout: '1s',
    load_assignment: assignment(name, ports.map((p) => endpoint('127.0.0.1', p))),
    ...extra,
  };
}

export const HTTP2_OPTIONS = {
  'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
    '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
    explicit_http_config: { http2_protocol_options: {} },
  },
};

export interface TestServer {
  port: number;
  /** Remote addresses of the connections the server accepted, in order. */
  connections: string[];
  close(): Promise<void>;
}

export async function http1Server(handler: http.RequestListener): Promise<TestServer & { server: http.Server }> {
  const server = http.createServer(handler);
  const connections: string[] = [];
  server.on('connection', (s) => connections.push(`${s.remoteAddress}:${s.remotePort}`));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    server,
    port: (server.address() as AddressInfo).port,
    connections,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

export async function http2Server(handler: (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => void): Promise<TestServer & { server: http2.Http2Server; sessions: Set<http2.ServerHttp2Session> }> {
  const server = http2.createServer();
  const connections: string[] = [];
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('connection', (s: import('node:net').Socket) => connections.push(`${s.remoteAddress}:${s.remotePort}`));
  server.on('session', (s) => {
    sessions.add(s);
    s.on('close', () => sessions.delete(s));
  });
  server.on('stream', (stream, headers) => {
    stream.on('error', () => undefined); // resets the tests provoke
    handler(stream, headers);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    server,
    sessions,
    port: (server.address() as AddressInfo).port,
    connections,
    close: async () => {
      for (const s of sessions) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** Turns the event loop until `cond` holds (for effects of socket events); fails after `ms`. */
export async function until(cond: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not reached in time');
    await new Promise((r) => setImmediate(r));
  }
}

export function get(path = '/', headers: Record<string, string> = {}, signal: AbortSignal = new AbortController().signal): UpstreamHttpRequest {
  return { method: 'GET', path, headers: { host: 'test.local', ...headers }, body: null, signal };
}

export async function readBody(res: UpstreamHttpResponse): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of res.body) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString();
}
