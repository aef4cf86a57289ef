// `tsmesh proxy-config endpoint|cluster` computed offline from files: seed 002's experiment on the
// command line (a pod in `default` sees bookinfo's endpoints until a Sidecar scopes it), and the
// outputs a user reads (columns, cluster names, json, filters, errors).

import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile, copyFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { isMap, parseAllDocuments } from 'yaml';
import { istioPath } from './helpers/shared.ts';
import { runCli } from './helpers/cli.ts';

let dir = '';

/** Writes Istio's sample into `file` with every document put in `namespace` (kubectl apply -n). */
async function writeNamespaced(src: string, file: string, namespace: string): Promise<void> {
  const docs = parseAllDocuments(await readFile(src, 'utf8'));
  const out = (Array.isArray(docs) ? docs : []).filter((d) => isMap(d.contents)).map((d) => {
    d.setIn(['metadata', 'namespace'], namespace);
    return d.toString();
  });
  await writeFile(file, out.join('---\n'));
}

const endpointClusters = (stdout: string): string[] => stdout.trim().split('\n').slice(1).map((l) => l.split(/\s+/).at(-1) ?? '');

describe('proxy-config computed offline (seed 002)', () => {
  let curlPod = '';
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tsmesh-pc-'));
    await writeNamespaced(istioPath('samples', 'bookinfo', 'platform', 'kube', 'bookinfo.yaml'), join(dir, 'bookinfo.yaml'), 'bookinfo');
    await copyFile(istioPath('samples', 'curl', 'curl.yaml'), join(dir, 'curl.yaml'));
    await copyFile(new URL('./fixtures/scope/istio-system.yaml', import.meta.url), join(dir, 'istio-system.yaml'));
    const r = await runCli(['proxy-config', 'endpoint', 'nosuchpod', '-f', dir]);
    assert.equal(r.code, 1);
    curlPod = /curl-[a-z0-9]+-[a-z0-9]+/.exec(r.stderr)?.[0] ?? '';
    assert.ok(curlPod, `the error lists the pods that exist: ${r.stderr}`);
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('shows bookinfo endpoints to a default-namespace pod without a Sidecar', async () => {
    const r = await runCli(['proxy-config', 'endpoint', curlPod, '-f', dir]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^ENDPOINT\s+STATUS\s+OUTLIER CHECK\s+CLUSTER\n/);
    const clusters = endpointClusters(r.stdout);
    assert.equal(clusters.filter((c) => c === 'outbound|9080||reviews.bookinfo.svc.cluster.local').length, 3, 'reviews v1, v2, v3');
    assert.ok(clusters.includes('outbound|9080||details.bookinfo.svc.cluster.local'));
    assert.ok(clusters.includes('outbound|15010||istiod.istio-system.svc.cluster.local'));
    assert.match(r.stdout, /10\.244\.\d+\.\d+:9080\s+HEALTHY\s+OK\s+outbound\|9080\|\|details\.bookinfo\.svc\.cluster\.local/);
  });

  it('hides bookinfo after the Sidecar with egress ./* and istio-system/*', async () => {
    const file = join(dir, 'sidecar.yaml');
    await writeFile(file, 'apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {namespace: default, name: default}\nspec:\n  egress:\n  - hosts: ["./*", "istio-system/*"]\n');
    try {
      const r = await runCli(['proxy-config', 'endpoint', `${curlPod}.default`, '-f', dir]);
      assert.equal(r.code, 0, r.stderr);
      const clusters = endpointClusters(r.stdout);
      assert.ok(!clusters.some((c) => c.includes('.bookinfo.')), r.stdout);
      assert.ok(clusters.some((c) => c.includes('.istio-system.')));
      assert.ok(clusters.includes('outbound|80||curl.default.svc.cluster.local'));
      const c = await runCli(['proxy-config', 'cluster', curlPod, '-f', dir, '--fqdn', 'bookinfo']);
      assert.equal(c.stdout.trim().split('\n').length, 1, 'only the header: no bookinfo cluster');
    } finally {
      await rm(file);
    }
  });

  it('lists subset clusters with their DestinationRule and filters by port', async () => {
    const productpage = (await runCli(['proxy-config', 'endpoint', 'x', '-n', 'bookinfo', '-f', dir])).stderr.match(/productpage-v1-[a-z0-9]+-[a-z0-9]+/)?.[0] ?? '';
    const file = join(dir, 'dr.yaml');
    await writeNamespaced(istioPath('samples', 'bookinfo', 'networking', 'destination-rule-reviews.yaml'), file, 'bookinfo');
    try {
      const r = await runCli(['proxy-config', 'cluster', `${productpage}.bookinfo`, '-f', dir, '--fqdn', 'reviews']);
      assert.equal(r.code, 0, r.stderr);
      const rows = r.stdout.trim().split('\n').slice(1).map((l) => l.split(/\s{2,}/));
      assert.deepEqual(rows.map((x) => x[2]), ['-', 'v1', 'v2', 'v3']);
      assert.ok(rows.every((x) => x[5] === 'reviews.bookinfo' && x[4] === 'EDS'));
      const ep = await runCli(['proxy-config', 'endpoint', `${productpage}.bookinfo`, '-f', dir, '--cluster', 'outbound|9080|v2|reviews.bookinfo.svc.cluster.local', '-o', 'json']);
      const json = JSON.parse(ep.stdout) as Array<{ clusterName: string; endpoints: Array<{ lbEndpoints: unknown[] }> }>;
      assert.equal(json.length, 1);
      assert.equal(json[0]?.endpoints[0]?.lbEndpoints.length, 1, 'only the v2 pod');
    } finally {
      await rm(file);
    }
  });

  it('refuses bad arguments with a usage error', async () => {
    assert.equal((await runCli(['proxy-config', 'listeners-or-what', 'x'])).code, 2);
    assert.equal((await runCli(['proxy-config', 'endpoint', curlPod, '-f', dir, '--port', '0'])).code, 2);
  });
});
