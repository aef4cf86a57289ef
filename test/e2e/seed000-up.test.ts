// Seed 000 on the embedded mesh: the Sidecar's outboundTrafficPolicy and its precedence. A client pod
// calls an "external" host (httpbin.org, served by our httpbin app in a namespace of our own, outside
// the mesh, named by the mesh DNS): allowed under ALLOW_ANY, blocked (502 from block_all) by a
// root-namespace Sidecar with REGISTRY_ONLY, allowed again by a namespace Sidecar with ALLOW_ANY,
// and a workload Sidecar overrides the namespace's for its pods only.

import assert from 'node:assert/strict';
import { copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadString } from '../../src/config/loader.ts';
import { resourceKey } from '../../src/config/resource.ts';
import { LocalMesh, readState } from '../../src/runtime/local-mesh.ts';
import { execInNetns } from '../../src/runtime/netns.ts';
import { freeSubnet, netnsSkipReason, runPrefix } from '../helpers/netns.ts';
import { istioPath } from '../helpers/shared.ts';
import type { Logger } from '../../src/common/log.ts';

const skip = netnsSkipReason();
const quiet: Logger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };
const sidecar = (ns: string, mode: string, selector?: string): string =>
  `apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {name: ${selector ? 'sleep-only' : 'default'}, namespace: ${ns}}\nspec:\n${selector ? `  workloadSelector: {labels: {app: ${selector}}}\n` : ''}  outboundTrafficPolicy: {mode: ${mode}}\n`;

describe('seed 000: outboundTrafficPolicy precedence on tsmesh up', { skip }, () => {
  let mesh: LocalMesh;
  let dir = '';
  let home = '';
  const prefix = runPrefix('z');
  const pods: Record<string, string> = {};

  const curl = (app: string, path = '/get'): Promise<string> =>
    new Promise((resolve) => {
      const c = execInNetns(pods[app] ?? '', ['curl', '-s', '-m', '10', '-o', '/dev/null', '-w', '%{http_code}', `http://httpbin.org${path}`], { uid: 1000 });
      let out = '';
      c.stdout?.on('data', (d: Buffer) => (out += d.toString()));
      c.on('close', () => resolve(out));
    });
  async function apply(yaml: string): Promise<void> {
    assert.equal(mesh.cp.store.apply(loadString(yaml, 'sidecar.yaml').resources).accepted, true);
    await new Promise((r) => setTimeout(r, 800));
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tsmesh-s0-'));
    home = await mkdtemp(join(tmpdir(), 'tsmesh-home-'));
    await copyFile(istioPath('samples', 'sleep', 'sleep.yaml'), join(dir, 'sleep.yaml'));
    await writeFile(join(dir, 'curl.yaml'), (await import('node:fs')).readFileSync(istioPath('samples', 'curl', 'curl.yaml'), 'utf8'));
    await writeFile(join(dir, 'namespace.yaml'), 'apiVersion: v1\nkind: Namespace\nmetadata: {name: default, labels: {istio-injection: enabled}}\n');
    const { base, cidr } = freeSubnet();
    mesh = new LocalMesh({
      paths: [dir], podCIDR: cidr, gateway: `${base}.1`, serviceCIDR: '10.255.0.0/16', bridge: `${prefix}br`, prefix, chainPrefix: 'TSMZ', stateDir: home, xdsPort: 0, httpPort: 0, log: quiet,
      externalHosts: { 'httpbin.org': { image: 'docker.io/mccutchen/go-httpbin:v2.15.0', port: 80 } },
    });
    await mesh.start();
    for (const p of readState(home)?.pods ?? []) pods[p.labels.app ?? p.name] = p.netns;
    for (let i = 0; i < 100 && (await curl('sleep')) !== '200'; i++) await new Promise((r) => setTimeout(r, 100));
  });
  after(async () => {
    await mesh?.stop();
    await rm(dir, { recursive: true, force: true });
    await rm(home, { recursive: true, force: true });
  });

  it('ALLOW_ANY (the default): the external host is reachable through the PassthroughCluster', async () => {
    assert.equal(await curl('sleep'), '200');
    assert.equal(await curl('curl'), '200');
  });

  it('a root-namespace Sidecar with REGISTRY_ONLY blocks it for every namespace (502 from block_all)', async () => {
    await apply(sidecar('istio-system', 'REGISTRY_ONLY'));
    assert.equal(await curl('sleep'), '502');
    assert.equal(await curl('curl'), '502');
  });

  it('a namespace Sidecar with ALLOW_ANY overrides the root one', async () => {
    await apply(sidecar('default', 'ALLOW_ANY'));
    assert.equal(await curl('sleep'), '200');
  });

  it('namespace REGISTRY_ONLY plus a workload Sidecar with ALLOW_ANY allows it for that workload only', async () => {
    await apply(sidecar('default', 'REGISTRY_ONLY'));
    await apply(sidecar('default', 'ALLOW_ANY', 'sleep'));
    assert.equal(await curl('sleep'), '200');
    assert.equal(await curl('curl'), '502');
    const key = resourceKey(loadString(sidecar('default', 'ALLOW_ANY', 'sleep'), 'x').resources[0] ?? assert.fail());
    assert.ok(mesh.cp.store.get(key));
  });

  it('a ServiceEntry (resolution DNS) registers the host under REGISTRY_ONLY, and a 3 s VirtualService timeout gives 504 from /delay/5', async () => {
    await apply(`apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: httpbin-ext, namespace: default}
spec:
  hosts: [httpbin.org]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: DNS
  location: MESH_EXTERNAL
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: httpbin-ext, namespace: default}
spec:
  hosts: [httpbin.org]
  http:
  - timeout: 3s
    route:
    - destination: {host: httpbin.org}
`);
    assert.equal(await curl('curl'), '200', 'registered now: REGISTRY_ONLY lets it through');
    const t0 = Date.now();
    assert.equal(await curl('curl', '/delay/5'), '504');
    const took = Date.now() - t0;
    assert.ok(took >= 2900, `504 after ${took} ms`);
  });
});
