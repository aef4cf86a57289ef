// Retries, timeouts and fault injection through a sidecar pair in real network namespaces: what the
// client sees (status, body, x-tsmesh-error), what the upstream saw (attempt counts) and the response
// flags in the client sidecar's access log. One VirtualService; a request header picks the policy.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { netnsSkipReason } from '../helpers/netns.ts';
import { APPS, poll, startTestMesh, type FetchResult, type TestMesh, CLIENT_YAML, ECHO_DEPLOYMENT_YAML, ECHO_SERVICE_YAML } from '../helpers/mesh.ts';

const skip = netnsSkipReason();
const HOST = 'echo.demo.svc.cluster.local';

const YAML = `
${ECHO_SERVICE_YAML}
---
${ECHO_DEPLOYMENT_YAML}
---
${CLIENT_YAML}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: echo, namespace: demo}
spec:
  hosts: [echo]
  http:
  - match: [{headers: {x-test: {exact: retry3}}}]
    retries: {attempts: 3, retryOn: 5xx}
    route: [{destination: {host: echo}}]
  - match: [{headers: {x-test: {exact: noretry}}}]
    retries: {attempts: 0}
    route: [{destination: {host: echo}}]
  - match: [{headers: {x-test: {exact: timeout}}}]
    timeout: 1s
    route: [{destination: {host: echo}}]
  - match: [{headers: {x-test: {exact: delay}}}]
    fault: {delay: {fixedDelay: 1s, percentage: {value: 100}}}
    route: [{destination: {host: echo}}]
  - match: [{headers: {x-test: {exact: abort}}}]
    fault: {abort: {httpStatus: 418, percentage: {value: 100}}}
    route: [{destination: {host: echo}}]
  - route: [{destination: {host: echo}}]
`;

describe('retries, timeouts and faults through a sidecar pair', { skip, timeout: 120_000 }, () => {
  let mesh: TestMesh;
  let vip = '';
  const get = async (path: string, test?: string): Promise<FetchResult> => {
    const [r] = await mesh.fetch('client', `http://${vip}${path}`, { headers: { host: HOST, ...(test ? { 'x-test': test } : {}) } });
    assert.ok(r, `no result for ${path}`);
    return r;
  };
  const seenByApp = async (key: string): Promise<number> => (JSON.parse((await get(`/count?key=${key}`)).body) as { count: number }).count;

  before(async () => {
    mesh = await startTestMesh({
      yaml: YAML,
      images: { 'tsmesh/echo': { argv: [process.execPath, join(APPS, 'echo.mjs')], env: { PORT: '8080' } } },
      meshOverrides: ['meshConfig.accessLogFile=/dev/stdout'],
    });
    vip = mesh.vip(HOST);
    await poll('the echo app answering', async () => ((await get('/')).status === 200 ? true : undefined));
  });
  after(async () => {
    await mesh?.stop();
  });

  it('retries a flaky upstream: 503, 503, then 200 on the third attempt', async () => {
    const r = await get('/flaky?key=retry&fail=2', 'retry3');
    assert.equal(r.status, 200, JSON.stringify(r));
    const echoed = JSON.parse(r.body) as { headers: Record<string, string> };
    assert.equal(echoed.headers['x-envoy-attempt-count'], '3', 'the final attempt is the third');
    assert.equal(await seenByApp('retry'), 3, 'the application saw three requests');
    const [client] = await mesh.accessLog('client', '/flaky?key=retry&fail=2');
    assert.equal(client?.code, 200);
    assert.equal(client?.flags, '-', client?.raw);
    assert.equal(client?.details, 'via_upstream');
    const server = await mesh.accessLog('echo', '/flaky?key=retry&fail=2', { count: 3 });
    assert.deepEqual(server.map((e) => e.code), [503, 503, 200]);
  });

  it('gives up after the attempts and passes the last 503 on with URX', async () => {
    const r = await get('/flaky?key=exhaust&fail=10', 'retry3');
    assert.equal(r.status, 503, JSON.stringify(r));
    assert.equal(r.headers['x-tsmesh-error'], undefined, 'the 503 is the application\'s, not the proxy\'s');
    assert.equal(await seenByApp('exhaust'), 4, 'one try and three retries');
    const [client] = await mesh.accessLog('client', '/flaky?key=exhaust&fail=10');
    assert.equal(client?.code, 503);
    assert.equal(client?.flags, 'URX', client?.raw);
    assert.equal(client?.details, 'via_upstream');
  });

  it('with attempts: 0 the upstream\'s 503 reaches the client untouched', async () => {
    const r = await get('/flaky?key=noretry&fail=1', 'noretry');
    assert.equal(r.status, 503, JSON.stringify(r));
    assert.equal(r.headers['x-tsmesh-error'], undefined);
    assert.equal((JSON.parse(r.body) as { status: number }).status, 503, 'the body is the application\'s');
    assert.equal(await seenByApp('noretry'), 1);
    const [client] = await mesh.accessLog('client', '/flaky?key=noretry&fail=1');
    assert.equal(client?.code, 503);
    assert.equal(client?.flags, '-', client?.raw);
    assert.equal(client?.details, 'via_upstream');
  });

  it('times a slow upstream out after 1 s: 504 UT', async () => {
    const r = await get('/delay/3000', 'timeout');
    assert.equal(r.status, 504, JSON.stringify(r));
    assert.equal(r.body, 'upstream request timeout');
    assert.match(r.headers['x-tsmesh-error'] ?? '', /^UT /);
    assert.ok(r.ms >= 900, `answered after ${r.ms} ms, before the 1 s timeout`);
    const [client] = await mesh.accessLog('client', '/delay/3000');
    assert.equal(client?.code, 504);
    assert.equal(client?.flags, 'UT', client?.raw);
    assert.equal(client?.details, 'upstream_response_timeout');
    // the server sidecar saw its client go away mid-request
    const [server] = await mesh.accessLog('echo', '/delay/3000');
    assert.equal(server?.code, 0, server?.raw);
    assert.equal(server?.flags, 'DC', server?.raw);
    assert.equal(server?.details, 'downstream_remote_disconnect', server?.raw);
  });

  it('delays by fault injection: 200 after at least 1 s, DI', async () => {
    const r = await get('/delayed-by-fault', 'delay');
    assert.equal(r.status, 200, JSON.stringify(r));
    assert.ok(r.ms >= 900, `answered after ${r.ms} ms, before the 1 s fault delay`);
    const [client] = await mesh.accessLog('client', '/delayed-by-fault');
    assert.equal(client?.code, 200);
    assert.equal(client?.flags, 'DI', client?.raw);
    assert.equal(client?.details, 'via_upstream');
  });

  it('aborts by fault injection: 418 fault filter abort, FI, and the app never sees it', async () => {
    const r = await get('/aborted?key=abort', 'abort');
    assert.equal(r.status, 418, JSON.stringify(r));
    assert.equal(r.body, 'fault filter abort');
    assert.match(r.headers['x-tsmesh-error'] ?? '', /^FI /);
    const [client] = await mesh.accessLog('client', '/aborted?key=abort');
    assert.equal(client?.code, 418);
    assert.equal(client?.flags, 'FI', client?.raw);
    assert.equal(client?.details, 'fault_filter_abort');
    assert.equal(await seenByApp('abort'), 0);
  });
});
