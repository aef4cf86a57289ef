// Seed 000, the last experiment: a Sidecar ingress listener with captureMode NONE and a bind address. The
// sidecar binds <pod IP>:9080 itself (bind_to_port, no redirection: the pod excludes 9080 from inbound
// capture) and hands requests to the app's defaultEndpoint 127.0.0.1:8080; the same port at another address
// of the pod is not served by that listener.

import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadString } from '../../src/config/loader.ts';
import { LocalMesh, readState, type PodState } from '../../src/runtime/local-mesh.ts';
import { execInNetns, runTool } from '../../src/runtime/netns.ts';
import { freeSubnet, netnsSkipReason, runPrefix } from '../helpers/netns.ts';
import { parseAccessLog, poll } from '../helpers/mesh.ts';
import type { Logger } from '../../src/common/log.ts';

const skip = netnsSkipReason();
const quiet: Logger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

const MANIFESTS = `apiVersion: v1
kind: Namespace
metadata: {name: default, labels: {istio-injection: enabled}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: server}
spec:
  selector: {matchLabels: {app: server}}
  template:
    metadata:
      labels: {app: server}
      annotations: {traffic.sidecar.istio.io/excludeInboundPorts: "9080"}
    spec:
      containers:
      - {name: httpbin, image: docker.io/mccutchen/go-httpbin:v2.15.0, ports: [{containerPort: 8080}]}
---
apiVersion: v1
kind: Pod
metadata: {name: client, labels: {app: client, sidecar.istio.io/inject: "false"}}
spec:
  containers:
  - {name: client, image: docker.io/curlimages/curl:8.16.0, command: [/bin/sleep, infinity]}
`;

describe('seed 000: an ingress listener with captureMode NONE and a bind address', { skip }, () => {
  let mesh: LocalMesh;
  let dir = '';
  let home = '';
  const prefix = runPrefix('b');
  let server: PodState;
  let client: PodState;
  let other = '';

  const curl = (url: string): Promise<{ status: string; body: string }> =>
    new Promise((resolve) => {
      const c = execInNetns(client.netns, ['curl', '-s', '-m', '5', '-w', '\\n%{http_code}', url], { uid: 1000 });
      let out = '';
      c.stdout?.on('data', (d: Buffer) => (out += d.toString()));
      c.on('close', () => {
        const i = out.lastIndexOf('\n');
        resolve({ status: out.slice(i + 1), body: out.slice(0, i) });
      });
    });

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tsmesh-s0b-'));
    home = await mkdtemp(join(tmpdir(), 'tsmesh-home-'));
    await writeFile(join(dir, 'apps.yaml'), MANIFESTS);
    const { base, cidr } = freeSubnet();
    mesh = new LocalMesh({ paths: [dir], podCIDR: cidr, gateway: `${base}.1`, serviceCIDR: '10.248.0.0/16', bridge: `${prefix}br`, prefix, chainPrefix: 'TSMB', stateDir: home, xdsPort: 0, httpPort: 0, meshOverrides: ['meshConfig.accessLogFile=/dev/stdout'], log: quiet });
    await mesh.start();
    const pods = readState(home)?.pods ?? [];
    server = pods.find((p) => p.labels.app === 'server') ?? assert.fail('no server pod');
    client = pods.find((p) => p.labels.app === 'client') ?? assert.fail('no client pod');
    assert.equal(server.sidecar, true);
    // a second address of the server pod, on its eth0, from this run's /24
    const used = new Set(pods.map((p) => p.ip));
    for (let n = 250; n > 1 && other === ''; n--) if (!used.has(`${base}.${n}`)) other = `${base}.${n}`;
    await runTool(['ip', '-n', server.netns, 'addr', 'add', `${other}/24`, 'dev', 'eth0']);
    const sidecar = `apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: server, namespace: default}
spec:
  workloadSelector: {labels: {app: server}}
  ingress:
  - port: {number: 9080, protocol: HTTP, name: http}
    bind: ${server.ip}
    defaultEndpoint: 127.0.0.1:8080
    captureMode: NONE
`;
    assert.equal(mesh.cp.store.apply(loadString(sidecar, 'sidecar.yaml').resources).accepted, true);
    await poll('the bound listener to serve', async () => ((await curl(`http://${server.ip}:9080/ip`)).status === '200' ? true : undefined), 15_000, 200);
  });
  after(async () => {
    await mesh?.stop();
    await rm(dir, { recursive: true, force: true });
    await rm(home, { recursive: true, force: true });
  });

  it('a request to bind:port reaches the app through the sidecar, from 127.0.0.1 (the defaultEndpoint is loopback)', async () => {
    const r = await curl(`http://${server.ip}:9080/ip`);
    assert.equal(r.status, '200');
    assert.match(r.body, /"origin":\s*"127\.0\.0\.1/);
    const log = await readFile(server.containers.find((c) => c.name === 'istio-proxy')?.log ?? assert.fail(), 'utf8');
    const entry = log.split('\n').map(parseAccessLog).find((e) => e?.path === '/ip' && e.cluster === 'inbound|9080||');
    assert.ok(entry, `the sidecar logged the request on its inbound|9080|| cluster:\n${log.slice(-2000)}`);
    assert.equal(entry.code, 200);
    assert.equal(entry.upstreamHost, '127.0.0.1:8080');
    assert.equal(entry.downstreamLocal, `${server.ip}:9080`);
  });

  it('the same port at another address of the pod is not served by that listener', async () => {
    const r = await curl(`http://${other}:9080/ip`);
    assert.equal(r.status, '000', `connection refused, got ${r.status} ${r.body}`);
    // while the app itself answers at that address (its own port, no sidecar involved)
    assert.equal((await curl(`http://${other}:8080/ip`)).status, '200');
  });

  it('the sidecar does not take the port on every address (no wildcard listener at 0.0.0.0:9080)', async () => {
    const ss = await runTool(['ip', 'netns', 'exec', server.netns, 'ss', '-Hltn', 'sport = :9080']);
    const locals = ss.stdout.trim().split('\n').filter(Boolean).map((l) => l.trim().split(/\s+/)[3]);
    assert.deepEqual(locals, [`${server.ip}:9080`]);
  });
});
