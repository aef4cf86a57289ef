// `tsmesh up` runs the istio-proxy container's own arguments: Istio's sleep, injected beforehand with
// `--concurrency 2` in its istio-proxy args (as Istio's injector writes it for ProxyConfig concurrency 2), gets a
// sidecar with two worker processes that carry its calls to httpbin; httpbin, injected by the runtime without a
// concurrency, gets a single-process sidecar.

import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { isMap, parseAllDocuments } from 'yaml';
import { kubeInjectText } from '../../src/inject/inject-manifest.ts';
import { LocalMesh, readState, type PodState } from '../../src/runtime/local-mesh.ts';
import { execInNetns } from '../../src/runtime/netns.ts';
import { freeSubnet, netnsSkipReason, runPrefix } from '../helpers/netns.ts';
import { istioPath } from '../helpers/shared.ts';
import { poll } from '../helpers/mesh.ts';
import type { Logger } from '../../src/common/log.ts';

const skip = netnsSkipReason();
const quiet: Logger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

function run(netns: string, argv: string[]): Promise<string> {
  return new Promise((resolve) => {
    const c = execInNetns(netns, argv, { uid: 1000 });
    let out = '';
    c.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    c.on('close', () => resolve(out));
  });
}

describe('tsmesh up: ProxyConfig concurrency 2 runs a sidecar with two workers', { skip, timeout: 120_000 }, () => {
  let mesh: LocalMesh;
  let dir = '';
  let home = '';
  const prefix = runPrefix('w');
  const pod = (app: string): PodState => readState(home)?.pods.find((p) => p.labels.app === app) ?? assert.fail(`no ${app} pod`);

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tsmesh-conc-'));
    home = await mkdtemp(join(tmpdir(), 'tsmesh-home-'));
    const sample = istioPath('samples', 'sleep', 'sleep.yaml');
    const docs = parseAllDocuments(kubeInjectText(await readFile(sample, 'utf8'), sample, {}).text);
    const sleep = (Array.isArray(docs) ? docs : []).filter((d) => isMap(d.contents)).map((d) => {
      d.setIn(['metadata', 'namespace'], 'conc');
      if (d.get('kind') === 'Deployment') {
        const containers = d.getIn(['spec', 'template', 'spec', 'containers']) as { items: Array<{ get(k: string): unknown; toJSON(): unknown }> };
        const proxy = containers.items.find((c) => c.get('name') === 'istio-proxy');
        assert.ok(proxy, 'kube-inject added istio-proxy');
        const args = (proxy.get('args') as { add(v: unknown): void });
        args.add('--concurrency');
        args.add('2');
      }
      return d.toString();
    }).join('---\n');
    assert.match(sleep, /- --concurrency\n\s+- "2"/);
    assert.doesNotMatch(sleep, /"concurrency"/, 'PROXY_CONFIG does not ask for it: the argument alone does');
    await writeFile(join(dir, 'sleep.yaml'), sleep);
    await writeFile(join(dir, 'httpbin.yaml'), await readFile(istioPath('samples', 'httpbin', 'httpbin.yaml'), 'utf8'));
    await writeFile(join(dir, 'namespace.yaml'), 'apiVersion: v1\nkind: Namespace\nmetadata: {name: default, labels: {istio-injection: enabled}}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: conc}\n');
    const { base, cidr } = freeSubnet();
    mesh = new LocalMesh({ paths: [dir], podCIDR: cidr, gateway: `${base}.1`, serviceCIDR: '10.252.0.0/16', bridge: `${prefix}br`, prefix, chainPrefix: 'TSMW', stateDir: home, xdsPort: 0, httpPort: 0, log: quiet });
    await mesh.start();
  });
  after(async () => {
    await mesh?.stop();
    await rm(dir, { recursive: true, force: true });
    await rm(home, { recursive: true, force: true });
  });

  it('the sleep sidecar has two workers and carries calls to httpbin; httpbin\'s has none', async () => {
    const info = async (app: string): Promise<{ command_line_options?: { concurrency: number }; workers?: Array<{ pid: number; state: string }> }> =>
      JSON.parse(await run(pod(app).netns, [process.execPath, '-e', 'fetch("http://127.0.0.1:15000/server_info").then((r) => r.text()).then((t) => process.stdout.write(t))'])) as never;
    const sleep = await info('sleep');
    assert.equal(sleep.command_line_options?.concurrency, 2);
    assert.deepEqual(sleep.workers?.map((w) => w.state), ['ready', 'ready']);
    assert.equal((await info('httpbin')).workers, undefined, 'no concurrency asked: one process');
    const code = await poll('httpbin to answer through the sleep sidecar', async () => {
      const c = await run(pod('sleep').netns, ['curl', '-s', '-m', '10', '-o', '/dev/null', '-w', '%{http_code}', 'http://httpbin.default:8000/get']);
      return c === '200' ? c : undefined;
    }, 15_000, 200);
    assert.equal(code, '200');
  });
});
