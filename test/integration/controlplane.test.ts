// The control plane as a user runs it: `tsmesh controlplane` over a directory of Istio's Bookinfo YAML,
// a real ADS client in productpage's place, `tsmesh apply` through the API, a rejected change that
// leaves the last good config serving, a watched file edit, proxy-status and live proxy-config.

import assert from 'node:assert/strict';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ControlPlane } from '../../src/controlplane/server.ts';
import { TYPE_URLS } from '../../src/xds/protos.ts';
import type { Logger } from '../../src/common/log.ts';
import { TestAdsClient, type Decoded } from '../helpers/ads-client.ts';
import { runCli } from '../helpers/cli.ts';
import { istioPath } from '../helpers/shared.ts';

const quiet: Logger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };
const bookinfo = (...p: string[]): string => istioPath('samples', 'bookinfo', ...p);

type Json = Record<string, unknown>;
/** The route action of the first route for `host` in route config "9080". */
function reviewsRoutes(rds: Decoded): Json[] {
  const rc = rds.resources.find((r) => r.name === '9080');
  const vh = (rc?.virtual_hosts as Json[] | undefined)?.find((v) => (v.domains as string[]).includes('reviews.default.svc.cluster.local'));
  assert.ok(vh, 'a virtual host for reviews');
  return vh.routes as Json[];
}

describe('tsmesh controlplane', () => {
  let dir = '';
  let cp: ControlPlane;
  let api = '';
  let client: TestAdsClient;
  let podName = '';

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tsmesh-cp-'));
    await copyFile(bookinfo('platform', 'kube', 'bookinfo.yaml'), join(dir, 'bookinfo.yaml'));
    await copyFile(bookinfo('networking', 'destination-rule-reviews.yaml'), join(dir, 'dr.yaml'));
    await copyFile(bookinfo('networking', 'virtual-service-all-v1.yaml'), join(dir, 'vs.yaml'));
    cp = new ControlPlane({ configPaths: [dir], xdsAddress: '127.0.0.1:0', httpAddress: '127.0.0.1:0', log: quiet, debounce: { quietMs: 20, maxDelayMs: 200 } });
    await cp.start();
    api = `http://127.0.0.1:${cp.httpPort}`;
    const pp = cp.pushContext().registry.workloads.find((w) => w.labels.app === 'productpage');
    assert.ok(pp);
    podName = pp.name;
    client = new TestAdsClient(`127.0.0.1:${cp.xdsPort}`, { pod: pp.name, namespace: 'default', ip: pp.ip, labels: pp.labels });
  });
  after(async () => {
    client.close();
    await cp.stop();
    await rm(dir, { recursive: true, force: true });
  });

  let rds: Decoded;
  it('serves clusters, endpoints, listeners and routes computed from the files, and the proxy ACKs them', async () => {
    client.subscribe(TYPE_URLS.CLUSTER);
    const cds = await client.next(TYPE_URLS.CLUSTER);
    const names = cds.resources.map((c) => String(c.name));
    for (const n of ['outbound|9080||reviews.default.svc.cluster.local', 'outbound|9080|v1|reviews.default.svc.cluster.local', 'outbound|9080|v3|reviews.default.svc.cluster.local', 'BlackHoleCluster', 'PassthroughCluster']) {
      assert.ok(names.includes(n), `${n} in CDS`);
    }
    client.ack(cds);
    client.subscribe(TYPE_URLS.ENDPOINT, ['outbound|9080|v2|reviews.default.svc.cluster.local']);
    const eds = await client.next(TYPE_URLS.ENDPOINT);
    const lbs = ((eds.resources[0]?.endpoints as Json[])[0]?.lb_endpoints as Json[]) ?? [];
    assert.equal(lbs.length, 1, 'one reviews-v2 pod');
    client.ack(eds, ['outbound|9080|v2|reviews.default.svc.cluster.local']);
    client.subscribe(TYPE_URLS.LISTENER);
    const lds = await client.next(TYPE_URLS.LISTENER);
    const lnames = lds.resources.map((l) => String(l.name));
    assert.ok(lnames.includes('virtualOutbound') && lnames.includes('virtualInbound') && lnames.includes('0.0.0.0_9080'), lnames.join(','));
    client.ack(lds);
    client.subscribe(TYPE_URLS.ROUTE, ['9080']);
    rds = await client.next(TYPE_URLS.ROUTE);
    const action = reviewsRoutes(rds)[0]?.route as Json;
    assert.equal(action.cluster, 'outbound|9080|v1|reviews.default.svc.cluster.local');
    client.ack(rds, ['9080']);
  });

  it('shows the proxy SYNCED in proxy-status', async () => {
    let out = '';
    for (let i = 0; i < 50 && !/SYNCED\s+SYNCED\s+SYNCED\s+SYNCED/.test(out); i++) {
      out = (await runCli(['proxy-status', '--controlplane', api])).stdout;
      if (!/SYNCED\s+SYNCED\s+SYNCED\s+SYNCED/.test(out)) await new Promise((r) => setTimeout(r, 50));
    }
    assert.match(out, /^NAME\s+CLUSTER\s+CDS\s+LDS\s+EDS\s+RDS/);
    assert.match(out, new RegExp(`${podName}\\.default\\s+Kubernetes\\s+SYNCED\\s+SYNCED\\s+SYNCED\\s+SYNCED`));
  });

  it('pushes a VirtualService applied with tsmesh apply', async () => {
    const r = await runCli(['apply', '-f', bookinfo('networking', 'virtual-service-reviews-test-v2.yaml'), '--controlplane', api]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /virtualservice\/default\/reviews configured/);
    rds = await client.next(TYPE_URLS.ROUTE);
    const routes = reviewsRoutes(rds);
    const jason = routes.find((x) => JSON.stringify(x.match).includes('jason'));
    assert.equal((jason?.route as Json | undefined)?.cluster, 'outbound|9080|v2|reviews.default.svc.cluster.local');
    assert.equal((routes.at(-1)?.route as Json).cluster, 'outbound|9080|v1|reviews.default.svc.cluster.local');
    client.ack(rds, ['9080']);
  });

  it('rejects an invalid change with file:line errors and keeps the last good config', async () => {
    const bad = join(dir, '..', `bad-${process.pid}.yaml`);
    await writeFile(bad, 'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: reviews\nspec:\n  hosts: [reviews]\n  http:\n  - route:\n    - destination: {host: reviews, subset: v1}\n    timeout: 0s\n');
    try {
      const r = await runCli(['apply', '-f', bad, '--controlplane', api]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, new RegExp(`bad-${process.pid}\\.yaml:10:\\d+: VirtualService default/reviews: spec\\.http\\[0\\]\\.timeout: `));
      assert.match(r.stderr, /nothing was changed/);
    } finally {
      await rm(bad);
    }
    // still the good version: a config dump from the API has the jason route
    const live = await runCli(['proxy-config', 'cluster', `${podName}.default`, '--controlplane', api, '--fqdn', 'reviews']);
    assert.equal(live.code, 0, live.stderr);
    assert.match(live.stdout, /reviews\.default\.svc\.cluster\.local\s+9080\s+v2\s+outbound\s+EDS\s+reviews\.default/);
    assert.equal(client.pending(TYPE_URLS.ROUTE), 0, 'no push for a rejected change');
  });

  it('pushes an edit of a watched file', async () => {
    const text = await readFile(join(dir, 'dr.yaml'), 'utf8');
    await writeFile(join(dir, 'dr.yaml'), text.replace(/name: v3\n(\s+)labels:\n(\s+)version: v3/, 'name: v3\n$1labels:\n$2version: v3\n  - name: canary\n$1labels:\n$2version: v3'));
    for (;;) {
      const cds = await client.next(TYPE_URLS.CLUSTER);
      client.ack(cds);
      if (cds.resources.some((c) => c.name === 'outbound|9080|canary|reviews.default.svc.cluster.local')) break;
    }
  });

  it('keeps serving when a watched file becomes invalid', async () => {
    await writeFile(join(dir, 'vs.yaml'), 'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: productpage}\nspec:\n  hosts: [productpage]\n  http:\n  - route:\n    - destination: {host: productpage}\n      weight: -5\n');
    await new Promise((r) => setTimeout(r, 300));
    await cp.filesIdle();
    const vs = await runCli(['proxy-config', 'cluster', `${podName}.default`, '--controlplane', api, '--fqdn', 'productpage']);
    assert.equal(vs.code, 0);
    assert.ok(cp.store.get('networking.istio.io/VirtualService/default/productpage'), 'the last good productpage VirtualService is still served');
  });
});
