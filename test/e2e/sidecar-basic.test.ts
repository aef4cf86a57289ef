// The sidecar end to end, in real network namespaces with the real capture rules: an application's
// plain call to a service's ClusterIP is captured by its sidecar, routed to the server pod's sidecar
// and on to the server, which sees it from 127.0.0.6 with Istio's headers; both sidecars log it.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { netnsSkipReason } from '../helpers/netns.ts';
import { APPS, startTestMesh, type TestMesh, CLIENT_YAML, ECHO_SERVICE_YAML } from '../helpers/mesh.ts';

const skip = netnsSkipReason();

const YAML = `
${ECHO_SERVICE_YAML}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: echo-v1, namespace: demo}
spec:
  selector: {matchLabels: {app: echo, version: v1}}
  template:
    metadata: {labels: {app: echo, version: v1}}
    spec: {containers: [{name: echo, image: tsmesh/echo, ports: [{containerPort: 8080}]}]}
---
${CLIENT_YAML}
`;

describe('sidecar end to end (netns + capture)', { skip }, () => {
  let mesh: TestMesh;
  let vip = '';
  before(async () => {
    mesh = await startTestMesh({
      yaml: YAML,
      images: { 'tsmesh/echo': { argv: [process.execPath, join(APPS, 'echo.mjs')], env: { PORT: '8080' } } },
      meshOverrides: ['meshConfig.accessLogFile=/dev/stdout'],
    });
    vip = mesh.cp.pushContext().registry.service('echo.demo.svc.cluster.local')[0]?.addresses[0] ?? '';
    assert.ok(vip);
    // the server app needs a moment to listen after its sidecar is ready
    for (let i = 0; i < 50; i++) {
      const [r] = await mesh.fetch('client', `http://${vip}/`);
      if (r?.status === 200) break;
      await new Promise((res) => setTimeout(res, 100));
    }
  });
  after(async () => {
    await mesh?.stop();
  });

  it('captures the call and delivers it through both sidecars with Istio headers', async () => {
    const [r] = await mesh.fetch('client', `http://${vip}/hello?x=1`, { headers: { host: 'echo.demo.svc.cluster.local' } });
    assert.equal(r?.status, 200, JSON.stringify(r));
    const body = JSON.parse(r?.body ?? '{}') as { name: string; headers: Record<string, string>; remote: string; path: string };
    assert.match(body.name, /^echo-v1-/);
    assert.equal(body.path, '/hello?x=1');
    assert.match(body.remote, /^127\.0\.0\.6:/, 'the server sees the inbound sidecar from 127.0.0.6');
    assert.ok(body.headers['x-request-id'], 'x-request-id');
    assert.equal(body.headers['x-envoy-attempt-count'], '1');
    assert.equal(body.headers['x-envoy-decorator-operation'], 'echo.demo.svc.cluster.local:80/*');
    assert.ok(body.headers['x-envoy-peer-metadata'], 'x-envoy-peer-metadata');
    assert.match(body.headers['x-envoy-peer-metadata-id'] ?? '', /^sidecar~[\d.]+~client-.*\.demo~demo\.svc\.cluster\.local$/);
    assert.ok(r?.headers['x-envoy-upstream-service-time'] !== undefined);
  });

  it('writes an access log line on both sides in Istio TEXT format', async () => {
    await mesh.fetch('client', `http://${vip}/logged`, { headers: { host: 'echo.demo.svc.cluster.local', 'user-agent': 'e2e-agent' } });
    await new Promise((res) => setTimeout(res, 1500));
    const client = mesh.sidecarLog('client').split('\n').filter((l) => l.includes('"GET /logged HTTP/1.1"'));
    const server = mesh.sidecarLog('echo').split('\n').filter((l) => l.includes('"GET /logged HTTP/1.1"'));
    assert.equal(client.length, 1, mesh.sidecarLog('client'));
    assert.equal(server.length, 1, mesh.sidecarLog('echo'));
    assert.match(client[0] ?? '', /^\[\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\] "GET \/logged HTTP\/1\.1" 200 - via_upstream - "-" 0 \d+ \d+ \d+ "-" "e2e-agent" "[0-9a-f-]{36}" "echo\.demo\.svc\.cluster\.local" "[\d.]+:8080" outbound\|80\|\|echo\.demo\.svc\.cluster\.local [\d.]+:\d+ [\d.]+:80 [\d.]+:\d+ - default$/);
    assert.match(server[0] ?? '', / inbound\|8080\|\| 127\.0\.0\.6:\d+ [\d.]+:8080 [\d.]+:\d+ /);
  });

  it('runs the prebuilt sidecar bundle, as `tsmesh up` users get it (not the sources through tsx)', () => {
    for (const app of ['client', 'echo']) {
      const log = mesh.sidecarLog(app);
      assert.match(log, /connecting to/, log);
      assert.doesNotMatch(log, /running from the sources/, log);
    }
  });

  it('explains a failure it makes up: a port with no service is unmatched and passes through (connection refused)', async () => {
    const [r] = await mesh.fetch('client', `http://${vip}:81/`);
    assert.equal(r?.status, 0, 'nothing listens on the ClusterIP itself: the passthrough connection fails');
  });
});
