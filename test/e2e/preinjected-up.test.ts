// Manifests injected beforehand (`tsmesh kube-inject`, as for `kubectl apply`) run on the embedded mesh in
// namespaces without an injection label: with istio-init (the runtime installs the rules its arguments ask
// for), and CNI-style with `--cni` (istio-validation, no NET_ADMIN; the runtime installs the rules from the
// pod's capture annotations, as Istio's CNI plugin does on a node). Either way the pod gets its sidecar and its
// outbound calls go through it.

import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { isMap, parseAllDocuments } from 'yaml';
import { kubeInjectText } from '../../src/inject/inject-manifest.ts';
import { LocalMesh, readState, type PodState } from '../../src/runtime/local-mesh.ts';
import { execInNetns, runTool } from '../../src/runtime/netns.ts';
import { freeSubnet, netnsSkipReason, runPrefix } from '../helpers/netns.ts';
import { istioPath } from '../helpers/shared.ts';
import { parseAccessLog, poll } from '../helpers/mesh.ts';
import type { Logger } from '../../src/common/log.ts';

const skip = netnsSkipReason();
const quiet: Logger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

/** The sample's documents moved to namespace `ns`, then injected as `tsmesh kube-inject [--cni]` prints them. */
async function injected(sample: string, ns: string, cni: boolean): Promise<string> {
  const docs = parseAllDocuments(await readFile(sample, 'utf8'));
  const text = (Array.isArray(docs) ? docs : []).filter((d) => isMap(d.contents)).map((d) => {
    d.setIn(['metadata', 'namespace'], ns);
    return d.toString();
  }).join('---\n');
  return kubeInjectText(text, sample, { cni }).text;
}

describe('pods injected beforehand by kube-inject (istio-init, and CNI mode) on tsmesh up', { skip }, () => {
  let mesh: LocalMesh;
  let dir = '';
  let home = '';
  const prefix = runPrefix('c');
  const pod = (ns: string): PodState => readState(home)?.pods.find((p) => p.namespace === ns) ?? assert.fail(`no pod in ${ns}`);
  const curl = (ns: string, url: string): Promise<string> =>
    new Promise((resolve) => {
      const c = execInNetns(pod(ns).netns, ['curl', '-s', '-m', '10', '-o', '/dev/null', '-w', '%{http_code}', url], { uid: 1000 });
      let out = '';
      c.stdout?.on('data', (d: Buffer) => (out += d.toString()));
      c.on('close', () => resolve(out));
    });

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tsmesh-preinj-'));
    home = await mkdtemp(join(tmpdir(), 'tsmesh-home-'));
    const sleep = istioPath('samples', 'sleep', 'sleep.yaml');
    await writeFile(join(dir, 'httpbin.yaml'), await injected(istioPath('samples', 'httpbin', 'httpbin.yaml'), 'default', false));
    await writeFile(join(dir, 'sleep-init.yaml'), await injected(sleep, 'init', false));
    await writeFile(join(dir, 'sleep-cni.yaml'), await injected(sleep, 'cni', true));
    await writeFile(join(dir, 'namespaces.yaml'), ['init', 'cni'].map((n) => `apiVersion: v1\nkind: Namespace\nmetadata: {name: ${n}}\n`).join('---\n'));
    const { base, cidr } = freeSubnet();
    mesh = new LocalMesh({ paths: [dir], podCIDR: cidr, gateway: `${base}.1`, serviceCIDR: '10.246.0.0/16', bridge: `${prefix}br`, prefix, chainPrefix: 'TSMC', stateDir: home, xdsPort: 0, httpPort: 0, meshOverrides: ['meshConfig.accessLogFile=/dev/stdout'], log: quiet });
    await mesh.start();
  });
  after(async () => {
    await mesh?.stop();
    await rm(dir, { recursive: true, force: true });
    await rm(home, { recursive: true, force: true });
  });

  it('the manifests are what kube-inject prints: istio-init for one, istio-validation and capture annotations for the other', async () => {
    assert.match(await readFile(join(dir, 'sleep-init.yaml'), 'utf8'), /name: istio-init/);
    const cni = await readFile(join(dir, 'sleep-cni.yaml'), 'utf8');
    assert.doesNotMatch(cni, /istio-init|NET_ADMIN/);
    assert.match(cni, /name: istio-validation/);
    assert.match(cni, /sidecar\.istio\.io\/interceptionMode: REDIRECT/);
  });

  for (const ns of ['init', 'cni']) {
    it(`${ns}: the pod runs its sidecar, the runtime installed the capture rules, and calls go through the sidecar`, async () => {
      const p = pod(ns);
      assert.equal(p.phase, 'Running');
      assert.equal(p.sidecar, true);
      assert.deepEqual(p.containers.map((c) => c.name).sort(), ['istio-proxy', 'sleep']);
      const nat = (await runTool(['ip', 'netns', 'exec', p.netns, 'iptables-save', '-t', 'nat'])).stdout;
      assert.match(nat, /-A ISTIO_OUTPUT .*-j ISTIO_REDIRECT/);
      assert.match(nat, /-A ISTIO_INBOUND -p tcp -m tcp --dport 15020 -j RETURN/);
      // only the CNI plugin leaves outbound 15020 alone (the two lines of basic.txt.golden istio-init lacks)
      const outbound15020 = /-A ISTIO_OUTPUT -p tcp -m tcp --dport 15020 -j RETURN/;
      if (ns === 'cni') assert.match(nat, outbound15020);
      else assert.doesNotMatch(nat, outbound15020);
      assert.equal(await poll('httpbin to answer', async () => ((await curl(ns, 'http://httpbin.default:8000/get')) === '200' ? '200' : undefined), 15_000, 200), '200');
      const file = p.containers.find((c) => c.name === 'istio-proxy')?.log ?? assert.fail();
      const out = await poll('the client sidecar\'s access log line', async () => (await readFile(file, 'utf8')).split('\n').map(parseAccessLog).find((e) => e?.path === '/get' && e.code === 200));
      assert.equal(out.cluster, 'outbound|8000||httpbin.default.svc.cluster.local');
    });
  }
});
