// Init containers on the embedded mesh, as Kubernetes runs them: in order in the pod's network namespace, each to
// exit 0 before the next, then the sidecar and the application (STATUS Init:N/M ... PodInitializing ... Running;
// `tsmesh logs -c <init>`). Their traffic as Istio treats it: with istio-init (last among the init containers)
// an init container's call reaches a mesh service; with Istio CNI the rules are in place first and the sidecar not
// running, so the call fails and its log says why and what to do; as UID 1337 it passes. A failed init container
// is restarted with back-off (Init:CrashLoopBackOff; the mesh starts without waiting for it forever), or under
// restartPolicy Never fails the pod and nothing else starts.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { kubeInjectText } from '../../src/inject/inject-manifest.ts';
import { LocalMesh, readState, type PodState } from '../../src/runtime/local-mesh.ts';
import { findTool, runTool } from '../../src/runtime/netns.ts';
import { freeSubnet, netnsSkipReason, runPrefix } from '../helpers/netns.ts';
import { runCli } from '../helpers/cli.ts';
import { poll } from '../helpers/mesh.ts';
import type { Logger } from '../../src/common/log.ts';

const skip = netnsSkipReason();
const node = process.execPath;
/** One call of the echo service: prints its answer, or says why it failed and exits 1 (the restart policy retries). */
const FETCH = "fetch('http://echo.default:8080/').then(async (r) => console.log('echo answered', r.status, (await r.text()).trim()), (e) => { console.log('fetch failed:', e.cause?.code ?? e.message); process.exit(1); })";
const sh = (script: string): string => JSON.stringify(['/bin/sh', '-c', script]);
const js = (script: string): string => JSON.stringify([node, '-e', script]);

/** A second free /24 of 10.250.0.0/16 (the ClusterIPs), beside the pods' one. */
function serviceSubnet(podBase: string): string {
  const used = execFileSync(findTool('ip') ?? 'ip', ['-4', '-o', 'addr', 'show'], { encoding: 'utf8' }) + execFileSync(findTool('ip') ?? 'ip', ['-4', 'route', 'show'], { encoding: 'utf8' });
  const n0 = Number(podBase.split('.')[2]);
  for (let i = 1; i < 250; i++) {
    const base = `10.250.${((n0 - 1 + i) % 250) + 1}`;
    if (!used.includes(`${base}.`)) return `${base}.0/24`;
  }
  throw new Error('no second free /24 in 10.250.0.0/16');
}

const deployment = (name: string, spec: string, labels = ''): string => `apiVersion: apps/v1
kind: Deployment
metadata: {name: ${name}}
spec:
  selector: {matchLabels: {app: ${name}}}
  template:
    metadata: {labels: {app: ${name}${labels}}}
    spec:
${spec.replace(/^/gm, '      ')}
`;

describe('init containers on tsmesh up', { skip }, () => {
  let mesh: LocalMesh;
  let dir = '';
  let home = '';
  const warnings: string[] = [];
  const log: Logger = { debug: () => undefined, info: () => undefined, warn: (m) => void warnings.push(m), error: (m) => void warnings.push(m) };
  const prefix = runPrefix('i');
  const pod = (app: string): PodState => readState(home)?.pods.find((p) => p.labels.app === app) ?? assert.fail(`no pod ${app}`);
  const status = async (ns: string, name: string): Promise<string> => {
    const r = await runCli(['get', 'pods', '-n', ns]);
    assert.equal(r.code, 0, r.stderr);
    const row = r.stdout.split('\n').find((l) => l.startsWith(`${name} `)) ?? assert.fail(`no row ${name}: ${r.stdout}`);
    return row.trim().split(/\s+/)[2] ?? '';
  };
  const logs = async (ns: string, name: string, container: string): Promise<string> => {
    const r = await runCli(['logs', name, '-n', ns, '-c', container]);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout.replace(/\n$/, '');
  };
  let startedInMs = 0;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tsmesh-init-'));
    home = await mkdtemp(join(tmpdir(), 'tsmesh-home-'));
    await chmod(dir, 0o777); // the containers run as UID 1000
    process.env.TSMESH_HOME = home;
    const out = join(dir, 'init.txt');
    const fetcher = (name: string, securityContext = ''): string =>
      deployment(name, `initContainers:\n- {name: fetch, image: node:20, command: ${js(FETCH)}${securityContext}}\ncontainers:\n- {name: app, image: node:20, command: [/bin/sleep, infinity]}`);
    await writeFile(join(dir, 'apps.yaml'), [
      'apiVersion: v1\nkind: Namespace\nmetadata: {name: default, labels: {istio-injection: enabled}}\n',
      'apiVersion: v1\nkind: Namespace\nmetadata: {name: cni}\n',
      'apiVersion: v1\nkind: Service\nmetadata: {name: echo}\nspec: {selector: {app: echo}, ports: [{name: http, port: 8080}]}\n',
      deployment('echo', `containers:\n- {name: echo, image: node:20, command: ${js("require('http').createServer((q, s) => s.end('echo ok\\n')).listen(8080)")}, ports: [{containerPort: 8080}]}`, ', sidecar.istio.io/inject: "false"'),
      deployment('web', [
        'initContainers:',
        `- {name: first, image: busybox, command: ${sh(`echo first >> ${out}; echo wrote first`)}}`,
        `- {name: second, image: busybox, command: ${sh(`echo second >> ${out}; echo wrote second`)}}`,
        'containers:',
        `- {name: web, image: node:20, command: ${js(`require('http').createServer((q, s) => s.end(require('fs').readFileSync(${JSON.stringify(out)}))).listen(8080)`)}, ports: [{containerPort: 8080}]}`,
      ].join('\n')),
      // injected here (istio-init): the init container runs before the capture rules
      fetcher('direct'),
      `apiVersion: v1
kind: Pod
metadata: {name: never, labels: {app: never, sidecar.istio.io/inject: "false"}}
spec:
  restartPolicy: Never
  initContainers:
  - {name: setup, image: busybox, command: ${sh('echo setting up; exit 2')}}
  containers:
  - {name: app, image: busybox, command: ${sh(`touch ${dir}/never-started; exec sleep infinity`)}}
`,
    ].join('---\n'));
    // injected beforehand for Istio CNI: the rules are there before any init container runs
    const cni = [fetcher('captured'), fetcher('as-proxy', ', securityContext: {runAsUser: 1337}')].map((d) => d.replace('metadata: {name: ', 'metadata: {namespace: cni, name: ')).join('---\n');
    await writeFile(join(dir, 'cni.yaml'), kubeInjectText(cni, 'cni.yaml', { cni: true }).text);
    const { base, cidr } = freeSubnet();
    mesh = new LocalMesh({ paths: [dir], podCIDR: cidr, gateway: `${base}.1`, serviceCIDR: serviceSubnet(base), bridge: `${prefix}br`, prefix, chainPrefix: 'TSMI', stateDir: home, xdsPort: 0, httpPort: 0, restartBackoffMs: 300, initWaitMs: 4000, log });
    const t0 = Date.now();
    await mesh.start();
    startedInMs = Date.now() - t0;
  });
  after(async () => {
    await mesh?.stop();
    delete process.env.TSMESH_HOME;
    await rm(dir, { recursive: true, force: true });
    await rm(home, { recursive: true, force: true });
  });

  it('runs the init containers in order before the sidecar and the application, each with its own log', async () => {
    const p = await poll('web to run', () => (pod('web').containers.every((c) => c.state === 'running') ? pod('web') : undefined), 15_000);
    assert.equal(p.phase, 'Running');
    assert.deepEqual(p.initContainers?.map((c) => [c.name, c.state, c.exitCode, c.reason, c.ready]), [
      ['first', 'terminated', 0, 'Completed', true],
      ['second', 'terminated', 0, 'Completed', true],
      ['istio-init', 'terminated', 0, 'Completed', true],
    ]);
    const body = await poll('web to answer', async () => {
      const r = await fetch(`http://${p.ip}:8080/`).catch(() => undefined);
      return r?.status === 200 ? r.text() : undefined;
    });
    assert.equal(body, 'first\nsecond\n', 'both init containers ran, once each, in order');
    assert.equal(await status('default', p.name), 'Running');
    assert.equal(await logs('default', p.name, 'first'), 'wrote first');
    assert.equal(await logs('default', p.name, 'second'), 'wrote second');
    assert.match(await logs('default', p.name, 'istio-init'), /installed the capture rules/);
    const json = JSON.parse((await runCli(['get', 'pods', p.name, '-o', 'json'])).stdout) as { spec: { initContainers: Array<{ name: string }> }; status: { initContainerStatuses: Array<{ name: string; ready: boolean; state: unknown }> } };
    assert.deepEqual(json.spec.initContainers.map((c) => c.name), ['first', 'second', 'istio-init']);
    assert.deepEqual(json.status.initContainerStatuses[0], { name: 'first', ready: true, restartCount: 0, state: { terminated: { exitCode: 0, reason: 'Completed' } } });
  });

  it('with istio-init (last, as Istio\'s injector orders it) an init container reaches a mesh service', async () => {
    const p = await poll('direct to run', () => (pod('direct').phase === 'Running' && pod('direct').containers.every((c) => c.state === 'running') ? pod('direct') : undefined), 15_000);
    assert.deepEqual(p.initContainers?.map((c) => c.name), ['fetch', 'istio-init']);
    assert.match(await logs('default', p.name, 'fetch'), /echo answered 200 echo ok/);
  });

  it('with Istio CNI an init container\'s call is captured before the sidecar runs: it fails, and its log and the runtime\'s say why and what to do', async () => {
    const p = await poll('captured to back off', () => ((pod('captured').initContainers?.find((c) => c.name === 'fetch')?.restartCount ?? 0) >= 1 ? pod('captured') : undefined), 15_000);
    assert.equal(p.phase, 'Pending');
    assert.deepEqual(p.initContainers?.map((c) => c.name), ['istio-validation', 'fetch']);
    assert.ok(p.containers.every((c) => c.state === 'waiting' && c.reason === 'PodInitializing'), JSON.stringify(p.containers));
    const text = await logs('cni', p.name, 'fetch');
    assert.match(text, /fetch failed: ECONNREFUSED/);
    assert.match(text, /tsmesh: init container fetch of pod cni\/captured-\S+ exited 1 while the pod's outbound traffic was captured and its sidecar not yet running/);
    assert.match(text, /securityContext\.runAsUser: 1337/);
    assert.match(text, /traffic\.sidecar\.istio\.io\/excludeOutboundIPRanges or traffic\.sidecar\.istio\.io\/excludeOutboundPorts/);
    assert.equal(warnings.filter((w) => w.startsWith(`init container fetch of pod cni/${p.name} exited 1`)).length, 1, 'the runtime\'s log says it once');
    assert.ok(['Init:CrashLoopBackOff', 'Init:Error', 'Init:1/2'].includes(await status('cni', p.name)));
    await poll('STATUS Init:CrashLoopBackOff', async () => ((await status('cni', p.name)) === 'Init:CrashLoopBackOff' ? true : undefined), 10_000, 50);
  });

  it('the mesh started without waiting for the pod stuck in init for ever, and named it with its state', () => {
    assert.ok(startedInMs < 15_000, `start took ${startedInMs} ms`);
    const line = warnings.find((w) => w.startsWith('pod cni/captured-'));
    assert.match(line ?? '', /is still initializing: Init:(CrashLoopBackOff|Error|1\/2) \(init container fetch, .*see `tsmesh logs captured-\S+ -n cni -c fetch`/, warnings.join('\n'));
  });

  it('the same init container as UID 1337 (securityContext.runAsUser) passes the capture and the pod runs', async () => {
    const p = await poll('as-proxy to run', () => (pod('as-proxy').containers.every((c) => c.state === 'running') ? pod('as-proxy') : undefined), 15_000);
    assert.equal(p.phase, 'Running');
    assert.match(await logs('cni', p.name, 'fetch'), /echo answered 200 echo ok/);
    assert.equal(await status('cni', p.name), 'Running');
  });

  it('restartPolicy Never: a failed init container fails the pod and the application never starts', async () => {
    const p = await poll('never to fail', () => (pod('never').phase === 'Failed' ? pod('never') : undefined), 10_000);
    const setup = p.initContainers?.find((c) => c.name === 'setup') ?? assert.fail();
    assert.deepEqual([setup.state, setup.exitCode, setup.reason, setup.restartCount], ['terminated', 2, 'Error', 0]);
    assert.deepEqual(p.containers.map((c) => [c.name, c.state]), [['app', 'waiting']]);
    assert.equal(await status('default', 'never'), 'Init:Error');
    assert.equal(await logs('default', 'never', 'setup'), 'setting up', 'no capture here, so no capture hint');
    assert.equal(existsSync(join(dir, 'never-started')), false);
    assert.equal(await readFile(p.containers[0]?.log ?? '', 'utf8'), '');
    assert.equal((await runTool(['ip', 'netns', 'pids', p.netns])).stdout.trim(), '', 'no process is left in the pod');
  });
});
