// Seed 000, the workload Sidecar part: in namespace istioinaction, a Sidecar for the sleep workload with
// REGISTRY_ONLY and egress hosts `istioinaction/*` lets sleep reach httpbin.istioinaction (which sees the
// request from 127.0.0.6, the inbound sidecar's source) and blocks httpbin.default (502 from block_all).
// Then `tsmesh down`'s cleanup removes everything even after the runtime was killed with SIGKILL.

import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { isMap, parseAllDocuments } from 'yaml';
import { loadString } from '../../src/config/loader.ts';
import { LocalMesh, readState, teardown } from '../../src/runtime/local-mesh.ts';
import { execInNetns, listLinks, listNetns } from '../../src/runtime/netns.ts';
import { freeSubnet, netnsSkipReason, runPrefix } from '../helpers/netns.ts';
import { istioPath } from '../helpers/shared.ts';
import { sh } from '../helpers/mesh.ts';
import type { Logger } from '../../src/common/log.ts';

const skip = netnsSkipReason();
const quiet: Logger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

async function namespaced(src: string, ns: string): Promise<string> {
  const docs = parseAllDocuments(await readFile(src, 'utf8'));
  return (Array.isArray(docs) ? docs : []).filter((d) => isMap(d.contents)).map((d) => {
    d.setIn(['metadata', 'namespace'], ns);
    return d.toString();
  }).join('---\n');
}

describe('seed 000: a workload Sidecar with REGISTRY_ONLY and egress istioinaction/*', { skip }, () => {
  let mesh: LocalMesh;
  let dir = '';
  let home = '';
  const prefix = runPrefix('y');
  const bridge = `${prefix}br`;
  let sleepNs = '';

  const curl = (url: string): Promise<{ status: string; body: string }> =>
    new Promise((resolve) => {
      const c = execInNetns(sleepNs, ['curl', '-s', '-m', '10', '-w', '\\n%{http_code}', url], { uid: 1000 });
      let out = '';
      c.stdout?.on('data', (d: Buffer) => (out += d.toString()));
      c.on('close', () => {
        const i = out.lastIndexOf('\n');
        resolve({ status: out.slice(i + 1), body: out.slice(0, i) });
      });
    });

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tsmesh-s0e-'));
    home = await mkdtemp(join(tmpdir(), 'tsmesh-home-'));
    const httpbin = istioPath('samples', 'httpbin', 'httpbin.yaml');
    await writeFile(join(dir, 'httpbin-default.yaml'), await namespaced(httpbin, 'default'));
    await writeFile(join(dir, 'httpbin-istioinaction.yaml'), await namespaced(httpbin, 'istioinaction'));
    await writeFile(join(dir, 'sleep.yaml'), await namespaced(istioPath('samples', 'sleep', 'sleep.yaml'), 'istioinaction'));
    await writeFile(join(dir, 'namespaces.yaml'), ['default', 'istioinaction'].map((n) => `apiVersion: v1\nkind: Namespace\nmetadata: {name: ${n}, labels: {istio-injection: enabled}}\n`).join('---\n'));
    const { base, cidr } = freeSubnet();
    mesh = new LocalMesh({ paths: [dir], podCIDR: cidr, gateway: `${base}.1`, serviceCIDR: '10.249.0.0/16', bridge, prefix, chainPrefix: 'TSMY', stateDir: home, xdsPort: 0, httpPort: 0, log: quiet });
    await mesh.start();
    sleepNs = readState(home)?.pods.find((p) => p.labels.app === 'sleep')?.netns ?? '';
    assert.ok(sleepNs);
    for (let i = 0; i < 100 && (await curl('http://httpbin.istioinaction:8000/ip')).status !== '200'; i++) await new Promise((r) => setTimeout(r, 100));
    const sidecar = 'apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {name: sleep, namespace: istioinaction}\nspec:\n  workloadSelector: {labels: {app: sleep}}\n  outboundTrafficPolicy: {mode: REGISTRY_ONLY}\n  egress:\n  - hosts: ["istioinaction/*"]\n';
    assert.equal(mesh.cp.store.apply(loadString(sidecar, 'sidecar.yaml').resources).accepted, true);
    await new Promise((r) => setTimeout(r, 1000));
  });
  after(async () => {
    await mesh?.stop();
    await rm(dir, { recursive: true, force: true });
    await rm(home, { recursive: true, force: true });
  });

  it('reaches httpbin.istioinaction, which sees the call from 127.0.0.6', async () => {
    const r = await curl('http://httpbin.istioinaction:8000/ip');
    assert.equal(r.status, '200');
    assert.match(r.body, /"origin":\s*"127\.0\.0\.6/);
  });

  it('blocks httpbin.default (not imported by the egress hosts, REGISTRY_ONLY): 502', async () => {
    assert.equal((await curl('http://httpbin.default:8000/ip')).status, '502');
  });

  it('cleanup removes every namespace, interface and rule even when the runtime was killed without stopping', async () => {
    // as after `kill -9` of the runtime: the kernel closes its sockets (the control plane is gone) but its pods,
    // bridge and rules stay behind until teardown
    await mesh.cp.stop();
    assert.ok((await listNetns()).some((n) => n.startsWith(prefix)));
    await teardown(bridge, home, prefix, 'TSMY');
    assert.deepEqual((await listNetns()).filter((n) => n.startsWith(prefix)), []);
    assert.deepEqual((await listLinks()).filter((l) => l.startsWith(prefix)), []);
    const rules = await sh(['iptables-save']);
    assert.ok(!rules.stdout.includes('TSMY'), 'no service-proxy chain left');
  });
});
