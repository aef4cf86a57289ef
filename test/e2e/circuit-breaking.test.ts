// Connection-pool circuit breakers and outlier detection through a sidecar pair in real network
// namespaces: concurrent slow requests past maxConnections/http1MaxPendingRequests overflow with 503 UO
// and an x-tsmesh-error naming the DestinationRule; an endpoint that always answers 503 is ejected (the
// client sidecar's admin /clusters says failed_outlier_check) and traffic goes to the healthy one, and
// with a short baseEjectionTime it comes back.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { netnsSkipReason } from '../helpers/netns.ts';
import { APPS, poll, startTestMesh, type FetchResult, type TestMesh } from '../helpers/mesh.ts';

const skip = netnsSkipReason();
const SLOW = 'slow.demo.svc.cluster.local';
const POOL = 'pool.demo.svc.cluster.local';
const POOL_FAST = 'pool-fast.demo.svc.cluster.local';

const deployment = (name: string, labels: string, env = ''): string => `
apiVersion: apps/v1
kind: Deployment
metadata: {name: ${name}, namespace: demo}
spec:
  selector: {matchLabels: {${labels}}}
  template:
    metadata: {labels: {${labels}}}
    spec: {containers: [{name: echo, image: tsmesh/echo, ports: [{containerPort: 8080}]${env}}]}
`;

const service = (name: string, app: string): string => `
apiVersion: v1
kind: Service
metadata: {name: ${name}, namespace: demo}
spec:
  selector: {app: ${app}}
  ports: [{name: http, port: 80, targetPort: 8080}]
`;

const outlier = (host: string, baseEjectionTime: string): string => `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ${host}, namespace: demo}
spec:
  host: ${host}
  trafficPolicy:
    outlierDetection: {consecutive5xxErrors: 1, interval: 1s, baseEjectionTime: ${baseEjectionTime}, maxEjectionPercent: 100}
`;

const YAML = [
  service('slow', 'slow'),
  deployment('slow', 'app: slow'),
  `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: slow, namespace: demo}
spec:
  host: slow
  trafficPolicy:
    connectionPool:
      tcp: {maxConnections: 1}
      http: {http1MaxPendingRequests: 1, maxRequestsPerConnection: 1}
`,
  service('pool', 'pool'),
  service('pool-fast', 'pool'),
  deployment('pool-good', 'app: pool, version: good'),
  deployment('pool-bad', 'app: pool, version: bad', ', env: [{name: FAIL_ALL, value: "503"}]'),
  outlier('pool', '30s'),
  outlier('pool-fast', '1s'),
  deployment('client', 'app: client'),
].join('\n---\n');

const nameOf = (r: FetchResult): string => (r.status === 200 ? (JSON.parse(r.body) as { name: string }).name : `status ${r.status}`);

describe('circuit breaking and outlier detection through a sidecar pair', { skip, timeout: 120_000 }, () => {
  let mesh: TestMesh;
  const get = (host: string, path: string, opts: { count?: number; concurrency?: number } = {}): Promise<FetchResult[]> =>
    mesh.fetch('client', `http://${mesh.vip(host)}${path}`, { ...opts, headers: { host } });
  /** The health_flags the client sidecar's admin /clusters shows for `podApp`'s endpoint in `host`'s cluster. */
  const healthFlags = async (host: string, podApp: string): Promise<string> => {
    const r = await mesh.exec('client', ['curl', '-s', 'http://127.0.0.1:15000/clusters'], 0);
    const line = `outbound|80||${host}::${mesh.ip(podApp)}:8080::health_flags::`;
    const found = r.stdout.split('\n').find((l) => l.startsWith(line));
    assert.ok(found, `no ${line} in /clusters:\n${r.stdout.split('\n').filter((l) => l.includes(host)).join('\n')}`);
    return found.slice(line.length);
  };

  before(async () => {
    mesh = await startTestMesh({
      yaml: YAML,
      images: { 'tsmesh/echo': { argv: [process.execPath, join(APPS, 'echo.mjs')], env: { PORT: '8080' } } },
      meshOverrides: ['meshConfig.accessLogFile=/dev/stdout'],
    });
    await poll('the slow app answering', async () => ((await get(SLOW, '/'))[0]?.status === 200 ? true : undefined));
    await poll('the good pool app answering', async () => ((await get(POOL_FAST, '/'))[0]?.status === 200 ? true : undefined));
  });
  after(async () => {
    await mesh?.stop();
  });

  it('overflows concurrent requests past the connection pool with 503 UO', async () => {
    const results = await get(SLOW, '/delay/500', { count: 10, concurrency: 10 });
    assert.equal(results.length, 10);
    const ok = results.filter((r) => r.status === 200);
    const overflow = results.filter((r) => r.status === 503);
    assert.equal(ok.length + overflow.length, 10, JSON.stringify(results.map((r) => [r.status, r.error])));
    assert.ok(ok.length >= 1, 'the requests within the limits are served');
    assert.ok(overflow.length >= 1, 'the requests beyond the limits overflow');
    for (const r of overflow) {
      assert.match(r.headers['x-tsmesh-error'] ?? '', /^UO circuit breaker open on cluster "outbound\|80\|\|slow\.demo\.svc\.cluster\.local": max_\w+ \(1\) reached.*DestinationRule demo\/slow/, r.headers['x-tsmesh-error']);
      assert.equal(r.body, 'upstream connect error or disconnect/reset before headers. reset reason: overflow');
    }
    const logged = await mesh.accessLog('client', '/delay/500', { count: 10 });
    assert.equal(logged.filter((e) => e.code === 503 && e.flags === 'UO').length, overflow.length, logged.map((e) => e.raw).join('\n'));
    assert.equal(logged.filter((e) => e.code === 200 && e.flags === '-').length, ok.length);
  });

  it('ejects the endpoint that always fails and sends everything to the healthy one', async () => {
    // Istio's default retry policy retries a 503 on another host, so the client sees 200s throughout
    const warm = await get(POOL, '/', { count: 6 });
    assert.deepEqual(warm.map((r) => r.status), [200, 200, 200, 200, 200, 200]);
    assert.equal(await healthFlags(POOL, 'pool-bad'), '/failed_outlier_check');
    assert.equal(await healthFlags(POOL, 'pool-good'), 'healthy');
    const before = (await mesh.accessLog('pool-bad', '/', { count: 0 })).length;
    const after = await get(POOL, '/?after=ejection', { count: 20 });
    assert.deepEqual(new Set(after.map(nameOf)), new Set([mesh.pod('pool-good').workload.name]));
    assert.equal((await mesh.accessLog('pool-bad', '/', { count: 0 })).length, before, 'the ejected endpoint got no more requests');
  });

  it('returns an ejected endpoint after baseEjectionTime', async () => {
    // start from a healthy host (an earlier request may have ejected it already), then eject it
    await poll('pool-bad healthy in pool-fast', async () => ((await healthFlags(POOL_FAST, 'pool-bad')) === 'healthy' ? true : undefined), 10_000, 100);
    const before = Date.now();
    await poll('pool-bad ejected from pool-fast', async () => {
      await get(POOL_FAST, '/', { count: 2 });
      return (await healthFlags(POOL_FAST, 'pool-bad')) === '/failed_outlier_check' ? true : undefined;
    }, 5000);
    await poll('pool-bad back in pool-fast', async () => ((await healthFlags(POOL_FAST, 'pool-bad')) === 'healthy' ? true : undefined), 10_000, 50);
    assert.ok(Date.now() - before >= 900, `ejected and returned within ${Date.now() - before} ms, less than the 1 s base ejection time`);
    // back in rotation: it gets requests again (and is ejected again at once)
    await get(POOL_FAST, '/?fast', { count: 4 });
    await mesh.accessLog('pool-bad', '/?fast');
  });
});
