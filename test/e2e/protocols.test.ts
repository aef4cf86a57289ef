// HTTP/2, gRPC and WebSocket through a sidecar pair in real network namespaces: unary gRPC calls
// (@grpc/grpc-js on both ends) succeed with their trailers and statuses, an h2c request with prior
// knowledge reaches an `http2` port as HTTP/2, and a WebSocket upgrade is echoed through both sidecars;
// both sidecars log each of them with the right protocol and code.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { netnsSkipReason } from '../helpers/netns.ts';
import { APPS, poll, startTestMesh, type TestMesh, CLIENT_YAML } from '../helpers/mesh.ts';
import { findSamples, parseExposition } from '../helpers/prometheus.ts';

const skip = netnsSkipReason();
const GRPC = 'grpc-echo.demo.svc.cluster.local';
const ECHO = 'echo.demo.svc.cluster.local';

const YAML = `
apiVersion: v1
kind: Service
metadata: {name: grpc-echo, namespace: demo}
spec:
  selector: {app: grpc-echo}
  ports: [{name: grpc, port: 9090, targetPort: 9090}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: grpc-echo, namespace: demo}
spec:
  selector: {matchLabels: {app: grpc-echo}}
  template:
    metadata: {labels: {app: grpc-echo}}
    spec: {containers: [{name: grpc, image: tsmesh/grpc-echo, ports: [{containerPort: 9090}]}]}
---
apiVersion: v1
kind: Service
metadata: {name: echo, namespace: demo}
spec:
  selector: {app: echo}
  ports:
  - {name: http, port: 80, targetPort: 8080}
  - {name: http2, port: 8081, targetPort: 8081}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: echo, namespace: demo}
spec:
  selector: {matchLabels: {app: echo}}
  template:
    metadata: {labels: {app: echo}}
    spec: {containers: [{name: echo, image: tsmesh/echo, ports: [{containerPort: 8080}, {containerPort: 8081}]}]}
---
${CLIENT_YAML}
`;

interface GrpcResult {
  code: number;
  details: string;
  reply: { name: string; echo: { n: number }; metadata: Record<string, string> } | null;
  headers: Record<string, string>;
  trailers: Record<string, string>;
  error?: string;
}

interface WsResult {
  status: number;
  headers?: Record<string, string>;
  echoed?: string[];
  error?: string;
}

describe('HTTP/2, gRPC and WebSocket through a sidecar pair', { skip, timeout: 120_000 }, () => {
  let mesh: TestMesh;
  const grpc = async (extra: string[] = []): Promise<GrpcResult[]> => {
    const r = await mesh.exec('client', [process.execPath, join(APPS, 'grpc-client.mjs'), `${mesh.vip(GRPC)}:9090`, '--authority', `${GRPC}:9090`, ...extra]);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout.trim().split('\n').map((l) => JSON.parse(l) as GrpcResult);
  };
  const ws = async (path: string, messages: string[]): Promise<WsResult> => {
    const r = await mesh.exec('client', [process.execPath, join(APPS, 'ws-client.mjs'), `http://${mesh.vip(ECHO)}${path}`, ...messages, '-H', `host: ${ECHO}`]);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout.trim()) as WsResult;
  };

  before(async () => {
    mesh = await startTestMesh({
      yaml: YAML,
      images: {
        'tsmesh/echo': { argv: [process.execPath, join(APPS, 'echo.mjs')], env: { PORT: '8080', H2C_PORT: '8081' } },
        'tsmesh/grpc-echo': { argv: [process.execPath, join(APPS, 'grpc-echo.mjs')], env: { PORT: '9090' } },
      },
      meshOverrides: ['meshConfig.accessLogFile=/dev/stdout'],
    });
    await poll('the gRPC app answering', async () => ((await grpc())[0]?.code === 0 ? true : undefined));
    await poll('the echo app answering', async () => ((await mesh.fetch('client', `http://${mesh.vip(ECHO)}/`, { headers: { host: ECHO } }))[0]?.status === 200 ? true : undefined));
  });
  after(async () => {
    await mesh?.stop();
  });

  it('carries unary gRPC calls with their trailers through both sidecars', async () => {
    const calls = await grpc(['-n', '3']);
    assert.equal(calls.length, 3);
    for (const [i, c] of calls.entries()) {
      assert.equal(c.code, 0, JSON.stringify(c));
      assert.match(c.reply?.name ?? '', /^grpc-echo-/);
      assert.equal(c.reply?.echo.n, i);
      assert.equal(c.trailers['x-echo-trailer'], 'yes', 'the trailer reached the client');
      assert.ok(c.reply?.metadata['x-envoy-peer-metadata-id'], 'the server saw Istio\'s peer headers');
    }
    const server = await mesh.accessLog('grpc-echo', '/tsmesh.test.Echo/Say', { count: 3 });
    const client = await mesh.accessLog('client', '/tsmesh.test.Echo/Say', { count: 3 });
    for (const e of [...server.slice(-3), ...client.slice(-3)]) {
      assert.equal(e.method, 'POST', e.raw);
      assert.equal(e.protocol, 'HTTP/2', e.raw);
      assert.equal(e.code, 200, e.raw);
      assert.equal(e.details, 'via_upstream', e.raw);
    }
    assert.equal(client.at(-1)?.cluster, `outbound|9090||${GRPC}`);
    assert.equal(server.at(-1)?.cluster, 'inbound|9090||');
  });

  it('delivers a gRPC error status and its message from the trailers', async () => {
    const [c] = await grpc(['--code', '7']);
    assert.equal(c?.code, 7, JSON.stringify(c));
    assert.equal(c?.details, 'asked to fail with 7');
    assert.equal(c?.trailers['x-echo-trailer'], 'yes');
    // both outcomes counted by the server sidecar as gRPC, with their gRPC status
    const series = await poll('gRPC series on the server sidecar', async () => {
      const text = await (await fetch(`http://${mesh.ip('grpc-echo')}:15020/stats/prometheus`)).text();
      const exp = parseExposition(text);
      const ok = findSamples(exp, 'istio_requests_total', { reporter: 'destination', request_protocol: 'grpc', response_code: '200', grpc_response_status: '0', destination_workload: 'grpc-echo', source_workload: 'client' });
      const failed = findSamples(exp, 'istio_requests_total', { reporter: 'destination', request_protocol: 'grpc', response_code: '200', grpc_response_status: '7', destination_workload: 'grpc-echo', source_workload: 'client' });
      return ok.length > 0 && failed.length > 0 ? { ok, failed } : undefined;
    }, 5000, 200);
    assert.equal(series.failed[0]?.value, 1);
  });

  it('sends an h2c request with prior knowledge to an http2 port as HTTP/2 end to end', async () => {
    const [r] = await mesh.fetch('client', `http://${mesh.vip(ECHO)}:8081/over-h2c`, { h2: true, headers: { host: `${ECHO}:8081` } });
    assert.equal(r?.status, 200, JSON.stringify(r));
    const seen = JSON.parse(r?.body ?? '{}') as { protocol: string; remote: string; name: string };
    assert.equal(seen.protocol, '2.0', 'the application got HTTP/2');
    assert.match(seen.remote, /^127\.0\.0\.6:/);
    const [client] = await mesh.accessLog('client', '/over-h2c');
    const [server] = await mesh.accessLog('echo', '/over-h2c');
    assert.equal(client?.protocol, 'HTTP/2', client?.raw);
    assert.equal(server?.protocol, 'HTTP/2', server?.raw);
    assert.equal(client?.cluster, `outbound|8081||${ECHO}`);
  });

  it('ends a header-only HTTP/2 response (204) at once through both sidecars', async () => {
    const [r] = await mesh.fetch('client', `http://${mesh.vip(ECHO)}:8081/status/204`, { h2: true, headers: { host: `${ECHO}:8081` }, timeoutMs: 5000 });
    assert.equal(r?.status, 204, JSON.stringify(r));
    assert.equal(r?.error, undefined, 'the stream ended');
    const [client] = await mesh.accessLog('client', '/status/204');
    assert.equal(client?.code, 204, client?.raw);
  });

  it('upgrades to WebSocket and echoes frames through both sidecars', async () => {
    const r = await ws('/ws', ['one', 'two', 'x'.repeat(300)]);
    assert.equal(r.status, 101, JSON.stringify(r));
    assert.deepEqual(r.echoed, ['one', 'two', 'x'.repeat(300)], JSON.stringify(r));
    assert.equal(r.headers?.upgrade, 'websocket');
    assert.match(r.headers?.['x-app'] ?? '', /^echo-/);
    // the upgrade went through the sidecars like any request: a request id, Istio's peer headers, 127.0.0.6
    const requestId = r.headers?.['x-echo-x-request-id'] ?? '';
    assert.match(requestId, /^[0-9a-f-]{36}$/, JSON.stringify(r.headers));
    assert.match(r.headers?.['x-echo-x-envoy-peer-metadata-id'] ?? '', /^sidecar~[\d.]+~client-/);
    assert.match(r.headers?.['x-echo-remote'] ?? '', /^127\.0\.0\.6:/);
    const [client] = await mesh.accessLog('client', '/ws');
    const [server] = await mesh.accessLog('echo', '/ws');
    for (const e of [client, server]) {
      assert.equal(e?.code, 101, e?.raw);
      assert.equal(e?.requestId, requestId, e?.raw);
      assert.equal(e?.route, 'default', e?.raw);
      assert.match(e?.downstreamRemote ?? '', /^[\d.]+:\d+$/, e?.raw);
      assert.match(e?.upstreamLocal ?? '', /^[\d.]+:\d+$/, e?.raw);
    }
    assert.equal(client?.cluster, `outbound|80||${ECHO}`);
    assert.equal(server?.cluster, 'inbound|8080||');
    assert.match(server?.upstreamLocal ?? '', /^127\.0\.0\.6:/);
  });
});
