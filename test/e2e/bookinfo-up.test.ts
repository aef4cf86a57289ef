// Seed 004 on the embedded mesh: Istio's own Bookinfo manifests and routing tasks
// (../shared/istio/samples/bookinfo, applied unchanged) run by the local runtime, every pod in its own
// network namespace with capture rules and a sidecar, DNS and the service proxy; the user-visible
// results of each task checked on the product page.

import assert from 'node:assert/strict';
import { copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadPaths } from '../../src/config/loader.ts';
import { LocalMesh } from '../../src/runtime/local-mesh.ts';
import { listLinks, listNetns } from '../../src/runtime/netns.ts';
import { freeSubnet, netnsSkipReason, runPrefix } from '../helpers/netns.ts';
import { istioPath } from '../helpers/shared.ts';
import type { Logger } from '../../src/common/log.ts';

const skip = netnsSkipReason();
const quiet: Logger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };
const task = (f: string): string => istioPath('samples', 'bookinfo', 'networking', f);

describe('seed 004: Bookinfo tasks on tsmesh up', { skip }, () => {
  let mesh: LocalMesh;
  let dir = '';
  let home = '';
  let page = '';
  const prefix = runPrefix('u');
  const bridge = `${prefix}br`;
  let cookie = '';

  async function apply(...files: string[]): Promise<void> {
    const loaded = await loadPaths(files);
    const r = mesh.cp.store.apply(loaded.resources, 'test', loaded.diagnostics);
    assert.equal(r.accepted, true, JSON.stringify(r.diagnostics));
    await new Promise((res) => setTimeout(res, 700)); // debounce + push + ACK
  }
  async function productpage(asJason = false): Promise<string> {
    const r = await fetch(page, { headers: asJason ? { cookie } : {}, signal: AbortSignal.timeout(20_000) });
    assert.equal(r.status, 200);
    return r.text();
  }
  const stars = (html: string): 'none' | 'black' | 'red' => (/color:\s*red/.test(html) ? 'red' : /color:\s*black/.test(html) ? 'black' : 'none');

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tsmesh-up-'));
    home = await mkdtemp(join(tmpdir(), 'tsmesh-home-'));
    await copyFile(istioPath('samples', 'bookinfo', 'platform', 'kube', 'bookinfo.yaml'), join(dir, 'bookinfo.yaml'));
    await writeFile(join(dir, 'namespace.yaml'), 'apiVersion: v1\nkind: Namespace\nmetadata: {name: default, labels: {istio-injection: enabled}}\n');
    const { base, cidr } = freeSubnet();
    mesh = new LocalMesh({ paths: [dir], podCIDR: cidr, gateway: `${base}.1`, serviceCIDR: '10.253.0.0/16', bridge, prefix, chainPrefix: 'TSMT', stateDir: home, xdsPort: 0, httpPort: 0, log: quiet });
    await mesh.start();
    const pp = mesh.cp.pushContext().registry.workloads.find((w) => w.labels.app === 'productpage');
    assert.ok(pp);
    page = `http://${pp.ip}:9080/productpage`;
    for (let i = 0; i < 100; i++) {
      try {
        if ((await fetch(page, { signal: AbortSignal.timeout(2000) })).status === 200) break;
      } catch {
        // the app is still starting
      }
      await new Promise((res) => setTimeout(res, 100));
    }
    const login = await fetch(`http://${pp.ip}:9080/login`, { method: 'POST', body: 'username=jason&passwd=', headers: { 'content-type': 'application/x-www-form-urlencoded' }, redirect: 'manual' });
    cookie = (login.headers.get('set-cookie') ?? '').split(';')[0] ?? '';
    assert.match(cookie, /=/, 'logging in as jason sets a session cookie (through both sidecars)');
  });
  after(async () => {
    await mesh?.stop();
    await rm(dir, { recursive: true, force: true });
    await rm(home, { recursive: true, force: true });
  });

  it('serves the product page through the sidecars, spread over reviews v1/v2/v3 without a VirtualService', async () => {
    const seen = new Set<string>();
    for (let i = 0; i < 30 && seen.size < 3; i++) seen.add(stars(await productpage()));
    assert.deepEqual([...seen].sort(), ['black', 'none', 'red']);
    assert.match(await productpage(), /William Shakespeare/);
  });

  it('routes everyone to v1 (virtual-service-all-v1)', async () => {
    await apply(task('destination-rule-all.yaml'), task('virtual-service-all-v1.yaml'));
    for (let i = 0; i < 8; i++) assert.equal(stars(await productpage()), 'none');
  });

  it('routes jason to v2 (reviews-test-v2): black stars for him only', async () => {
    await apply(task('virtual-service-reviews-test-v2.yaml'));
    for (let i = 0; i < 4; i++) assert.equal(stars(await productpage(true)), 'black');
    assert.equal(stars(await productpage()), 'none');
  });

  it('a 7 s ratings delay for jason makes productpage show the reviews error (3 s + one retry)', async () => {
    await apply(task('virtual-service-ratings-test-delay.yaml'));
    const t0 = Date.now();
    const html = await productpage(true);
    assert.match(html, /Sorry, product reviews are currently unavailable for this book/);
    assert.ok(Date.now() - t0 >= 5000, 'productpage waited for two tries of reviews');
  });

  it('an abort for jason shows "Ratings service is currently unavailable"', async () => {
    await apply(task('virtual-service-ratings-test-abort.yaml'));
    assert.match(await productpage(true), /Ratings service is currently unavailable/);
  });

  it('shifts 50/50 between v1 and v3, then 90/10 to v1 and v2, within tolerance over 200 requests', async () => {
    await apply(task('virtual-service-reviews-50-v3.yaml'));
    let red = 0;
    for (let i = 0; i < 200; i++) if (stars(await productpage()) === 'red') red++;
    assert.ok(Math.abs(red / 200 - 0.5) <= 0.12, `v3 share ${red / 200}`);
    await apply(task('virtual-service-reviews-90-10.yaml'));
    let black = 0;
    for (let i = 0; i < 200; i++) if (stars(await productpage()) === 'black') black++;
    assert.ok(Math.abs(black / 200 - 0.1) <= 0.07, `v2 share ${black / 200}`);
  });

  it('leaves no namespace or interface behind after stop', async () => {
    await mesh.stop();
    assert.deepEqual((await listNetns()).filter((n) => n.startsWith(prefix)), []);
    assert.deepEqual((await listLinks()).filter((l) => l.startsWith(prefix)), []);
  });
});
