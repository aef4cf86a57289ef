// Traffic routing through a sidecar pair in real network namespaces: a VirtualService splits traffic
// between two versions (DestinationRule subsets) 80/20, then 50/50 applied live, and the shares the
// client sees stay within ±10 points over 400 requests; a header match sends `end-user: jason` to v2.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { netnsSkipReason } from '../helpers/netns.ts';
import { APPS, poll, startTestMesh, type FetchResult, type TestMesh, CLIENT_YAML, ECHO_SERVICE_YAML } from '../helpers/mesh.ts';

const skip = netnsSkipReason();
const HOST = 'echo.demo.svc.cluster.local';
// ±10 points is 4 standard deviations of a 50/50 split over 400 requests: a true split never fails it
const SAMPLE = 400;

const deployment = (version: string): string => `
apiVersion: apps/v1
kind: Deployment
metadata: {name: echo-${version}, namespace: demo}
spec:
  selector: {matchLabels: {app: echo, version: ${version}}}
  template:
    metadata: {labels: {app: echo, version: ${version}}}
    spec: {containers: [{name: echo, image: tsmesh/echo, ports: [{containerPort: 8080}]}]}
`;

const YAML = `
${ECHO_SERVICE_YAML}
---
${deployment('v1')}
---
${deployment('v2')}
---
${CLIENT_YAML}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: echo, namespace: demo}
spec:
  host: echo
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
`;

const split = (v1: number, v2: number): string => `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: echo, namespace: demo}
spec:
  hosts: [echo]
  http:
  - match: [{headers: {end-user: {exact: jason}}}]
    route: [{destination: {host: echo, subset: v2}}]
  - route:
    - {destination: {host: echo, subset: v1}, weight: ${v1}}
    - {destination: {host: echo, subset: v2}, weight: ${v2}}
`;

/** The version that answered each request (pod names are echo-v1-..., echo-v2-...). */
function versions(results: FetchResult[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of results) {
    assert.equal(r.status, 200, JSON.stringify(r));
    const name = (JSON.parse(r.body) as { name: string }).name;
    const v = /^echo-(v\d)-/.exec(name)?.[1] ?? name;
    out[v] = (out[v] ?? 0) + 1;
  }
  return out;
}

describe('routing and weights through a sidecar pair', { skip, timeout: 120_000 }, () => {
  let mesh: TestMesh;
  let vip = '';
  const get = (n: number, headers: Record<string, string> = {}): Promise<FetchResult[]> => mesh.fetch('client', `http://${vip}/`, { count: n, headers: { host: HOST, ...headers } });
  /** Waits until the client sidecar holds a route with these weights (the push has landed). */
  const routeWeights = async (v1: number, v2: number): Promise<void> => {
    await poll(`route weights ${v1}/${v2} in the client sidecar`, async () => {
      const r = await mesh.exec('client', ['curl', '-s', 'http://127.0.0.1:15000/config_dump'], 0);
      const dump = r.stdout.replace(/\s+/g, '');
      return dump.includes(`"name":"outbound|80|v1|${HOST}","weight":${v1}`) && dump.includes(`"name":"outbound|80|v2|${HOST}","weight":${v2}`) ? true : undefined;
    });
  };

  before(async () => {
    mesh = await startTestMesh({ yaml: YAML, images: { 'tsmesh/echo': { argv: [process.execPath, join(APPS, 'echo.mjs')], env: { PORT: '8080' } } } });
    vip = mesh.vip(HOST);
    // both versions listening
    await poll('both versions answering', async () => {
      const seen = versions((await get(10)).filter((r) => r.status === 200));
      return seen.v1 && seen.v2 ? true : undefined;
    });
  });
  after(async () => {
    await mesh?.stop();
  });

  it('splits 80/20 between the subsets', async () => {
    mesh.apply(split(80, 20));
    await routeWeights(80, 20);
    const seen = versions(await get(SAMPLE));
    const v1 = ((seen.v1 ?? 0) / SAMPLE) * 100;
    assert.ok(Math.abs(v1 - 80) <= 10, `v1 share ${v1}% (want 80 ± 10): ${JSON.stringify(seen)}`);
    assert.equal((seen.v1 ?? 0) + (seen.v2 ?? 0), SAMPLE, JSON.stringify(seen));
  });

  it('sends end-user: jason to v2 only', async () => {
    const seen = versions(await get(30, { 'end-user': 'jason' }));
    assert.deepEqual(seen, { v2: 30 });
  });

  it('moves to 50/50 when the VirtualService changes live', async () => {
    mesh.apply(split(50, 50));
    await routeWeights(50, 50);
    const seen = versions(await get(SAMPLE));
    const v1 = ((seen.v1 ?? 0) / SAMPLE) * 100;
    assert.ok(Math.abs(v1 - 50) <= 10, `v1 share ${v1}% (want 50 ± 10): ${JSON.stringify(seen)}`);
  });
});
