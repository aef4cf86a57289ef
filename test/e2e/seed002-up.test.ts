// Seed 002 on the embedded mesh: a shell pod in `default` sees bookinfo's endpoints until the Sidecar
// with egress `./*`, `istio-system/*` scopes it; its calls to reviews then leave the mesh unmatched
// (PassthroughCluster) and are still answered through the ClusterIP by the kube-proxy equivalent.

import assert from 'node:assert/strict';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { isMap, parseAllDocuments } from 'yaml';
import { loadString } from '../../src/config/loader.ts';
import { LocalMesh, readState } from '../../src/runtime/local-mesh.ts';
import { execInNetns } from '../../src/runtime/netns.ts';
import { freeSubnet, netnsSkipReason, runPrefix } from '../helpers/netns.ts';
import { istioPath } from '../helpers/shared.ts';
import { runCli } from '../helpers/cli.ts';
import type { Logger } from '../../src/common/log.ts';

const skip = netnsSkipReason();
const quiet: Logger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

async function namespaced(src: string, dst: string, ns: string): Promise<void> {
  const docs = parseAllDocuments(await readFile(src, 'utf8'));
  await writeFile(dst, (Array.isArray(docs) ? docs : []).filter((d) => isMap(d.contents)).map((d) => {
    d.setIn(['metadata', 'namespace'], ns);
    return d.toString();
  }).join('---\n'));
}

describe('seed 002: Sidecar egress scoping on tsmesh up', { skip }, () => {
  let mesh: LocalMesh;
  let dir = '';
  let home = '';
  let api = '';
  let shell = { name: '', netns: '' };
  const prefix = runPrefix('s');

  const curl = (url: string): Promise<{ code: number; out: string }> =>
    new Promise((resolve) => {
      const c = execInNetns(shell.netns, ['curl', '-s', '-m', '10', '-o', '/dev/null', '-w', '%{http_code}', url], { uid: 1000 });
      let out = '';
      c.stdout?.on('data', (d: Buffer) => (out += d.toString()));
      c.on('close', (code) => resolve({ code: code ?? 1, out }));
    });
  const endpoints = async (): Promise<string[]> => {
    const r = await runCli(['proxy-config', 'endpoint', `${shell.name}.default`, '--controlplane', api]);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout.trim().split('\n').slice(1).map((l) => l.split(/\s+/).at(-1) ?? '');
  };
  const sidecarLog = async (): Promise<string> => {
    const pod = readState(home)?.pods.find((p) => p.name === shell.name);
    const log = pod?.containers.find((c) => c.name === 'istio-proxy')?.log;
    return log ? readFile(log, 'utf8') : '';
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tsmesh-s2-'));
    home = await mkdtemp(join(tmpdir(), 'tsmesh-home-'));
    await namespaced(istioPath('samples', 'bookinfo', 'platform', 'kube', 'bookinfo.yaml'), join(dir, 'bookinfo.yaml'), 'bookinfo');
    await copyFile(istioPath('samples', 'sleep', 'sleep.yaml'), join(dir, 'sleep.yaml'));
    await writeFile(join(dir, 'namespaces.yaml'), 'apiVersion: v1\nkind: Namespace\nmetadata: {name: default, labels: {istio-injection: enabled}}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: bookinfo, labels: {istio-injection: enabled}}\n');
    const { base, cidr } = freeSubnet();
    mesh = new LocalMesh({ paths: [dir], podCIDR: cidr, gateway: `${base}.1`, serviceCIDR: '10.254.0.0/16', bridge: `${prefix}br`, prefix, chainPrefix: 'TSMS', stateDir: home, xdsPort: 0, httpPort: 0, meshOverrides: ['meshConfig.accessLogFile=/dev/stdout'], log: quiet });
    await mesh.start();
    api = `http://127.0.0.1:${mesh.cp.httpPort}`;
    const p = readState(home)?.pods.find((x) => x.labels.app === 'sleep');
    assert.ok(p);
    shell = { name: p.name, netns: p.netns };
    for (let i = 0; i < 100 && (await curl('http://reviews.bookinfo:9080/reviews/1')).out !== '200'; i++) await new Promise((r) => setTimeout(r, 100));
  });
  after(async () => {
    await mesh?.stop();
    await rm(dir, { recursive: true, force: true });
    await rm(home, { recursive: true, force: true });
  });

  it('before the Sidecar: the shell pod has bookinfo endpoints and its call goes through the mesh', async () => {
    const eps = await endpoints();
    assert.equal(eps.filter((c) => c === 'outbound|9080||reviews.bookinfo.svc.cluster.local').length, 3);
    assert.equal((await curl('http://reviews.bookinfo:9080/reviews/1')).out, '200');
    await new Promise((r) => setTimeout(r, 1200));
    assert.match(await sidecarLog(), /"GET \/reviews\/1 HTTP\/1\.1" 200 .* outbound\|9080\|\|reviews\.bookinfo\.svc\.cluster\.local /);
  });

  it('after the Sidecar ./* + istio-system/*: no bookinfo endpoints, and the call still works through the ClusterIP (passthrough)', async () => {
    const sidecar = 'apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {namespace: default, name: default}\nspec:\n  egress:\n  - hosts: ["./*", "istio-system/*"]\n';
    assert.equal(mesh.cp.store.apply(loadString(sidecar, 'sidecar.yaml').resources).accepted, true);
    await new Promise((r) => setTimeout(r, 1000));
    const eps = await endpoints();
    assert.ok(!eps.some((c) => c.includes('.bookinfo.')), eps.join('\n'));
    assert.equal((await curl('http://reviews.bookinfo:9080/reviews/2')).out, '200');
    await new Promise((r) => setTimeout(r, 1200));
    // no HTTP listener for 9080 any more: the connection is unmatched and passed through as TCP to the ClusterIP
    assert.match(await sidecarLog(), /"- - -" 0 - - - "-" \d+ \d+ \d+ - "-" "-" "-" "-" "10\.254\.\d+\.\d+:9080" PassthroughCluster /);
  });
});
