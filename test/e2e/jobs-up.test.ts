// Container lifecycles on the embedded mesh, as kubectl shows them: a Job whose application calls a service
// through its sidecar and exits 0 completes (its sidecar exits too; STATUS Completed, never restarted), one whose
// command exits 1 fails (STATUS Error), a Deployment whose container keeps exiting is restarted with back-off
// (RESTARTS counts up, lastState keeps the exit code), and a postStart hook runs before the next container starts
// (the Job holds its application with holdApplicationUntilProxyStarts: its sidecar's `tsmesh wait` hook).

import assert from 'node:assert/strict';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { LocalMesh, readState, type PodState } from '../../src/runtime/local-mesh.ts';
import { runTool } from '../../src/runtime/netns.ts';
import { freeSubnet, netnsSkipReason, runPrefix } from '../helpers/netns.ts';
import { istioPath } from '../helpers/shared.ts';
import { getTable, runCli } from '../helpers/cli.ts';
import { jobYaml, poll } from '../helpers/mesh.ts';
import type { Logger } from '../../src/common/log.ts';

const skip = netnsSkipReason();
const quiet: Logger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

describe('Jobs finish, Deployments restart, postStart hooks run in order (tsmesh up)', { skip }, () => {
  let mesh: LocalMesh;
  let dir = '';
  let home = '';
  const prefix = runPrefix('j');
  const pod = (app: string): PodState => readState(home)?.pods.find((p) => p.labels.app === app) ?? assert.fail(`no pod ${app}`);
  /** `tsmesh get pods` as a user reads it: NAME -> its columns. */
  const table = (): ReturnType<typeof getTable> => getTable(['pods']);

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tsmesh-jobs-'));
    home = await mkdtemp(join(tmpdir(), 'tsmesh-home-'));
    process.env.TSMESH_HOME = home;
    await copyFile(istioPath('samples', 'httpbin', 'httpbin.yaml'), join(dir, 'httpbin.yaml'));
    await writeFile(join(dir, 'apps.yaml'), [
      'apiVersion: v1\nkind: Namespace\nmetadata: {name: default, labels: {istio-injection: enabled}}\n',
      jobYaml('fetch-ok', 'for i in $(seq 100); do curl -sS -f -m 10 http://httpbin:8000/get && exit 0; sleep 0.1; done; exit 1', { annotations: 'proxy.istio.io/config: \'{"holdApplicationUntilProxyStarts": true}\'' }),
      jobYaml('fetch-fail', 'echo giving up; exit 1'),
      `apiVersion: apps/v1
kind: Deployment
metadata: {name: crasher}
spec:
  selector: {matchLabels: {app: crasher}}
  template:
    metadata: {labels: {app: crasher, sidecar.istio.io/inject: "false"}}
    spec:
      containers:
      - {name: crasher, image: docker.io/curlimages/curl:8.16.0, command: ["/bin/sh", "-c", "echo crashing; exit 3"]}
`,
      `apiVersion: v1
kind: Pod
metadata: {name: hooks, labels: {app: hooks, sidecar.istio.io/inject: "false"}}
spec:
  containers:
  - name: first
    image: docker.io/curlimages/curl:8.16.0
    command: [/bin/sleep, infinity]
    securityContext: {runAsUser: 0}
    lifecycle: {postStart: {exec: {command: ["/bin/sh", "-c", "sleep 0.5; echo written by the hook > ${dir}/hook.txt"]}}}
  - name: second
    image: docker.io/curlimages/curl:8.16.0
    command: ["/bin/sh", "-c", "cat ${dir}/hook.txt; exec sleep infinity"]
    securityContext: {runAsUser: 0}
`,
    ].join('---\n'));
    const { base, cidr } = freeSubnet();
    mesh = new LocalMesh({ paths: [dir], podCIDR: cidr, gateway: `${base}.1`, serviceCIDR: '10.247.0.0/16', bridge: `${prefix}br`, prefix, chainPrefix: 'TSMJ', stateDir: home, xdsPort: 0, httpPort: 0, restartBackoffMs: 300, log: quiet });
    await mesh.start();
  });
  after(async () => {
    await mesh?.stop();
    delete process.env.TSMESH_HOME;
    await rm(dir, { recursive: true, force: true });
    await rm(home, { recursive: true, force: true });
  });

  it('a Job that calls a service through its sidecar and exits 0 completes, and its sidecar exits too', async () => {
    // httpbin starts beside it: the Job retries until the service answers, as a real Job would have to
    await poll('fetch-ok and its sidecar to finish', () => (pod('fetch-ok').containers.every((c) => c.state === 'terminated') ? true : undefined), 20_000);
    const p = pod('fetch-ok');
    assert.equal(p.phase, 'Succeeded', JSON.stringify(p));
    assert.equal(p.sidecar, true);
    const app = p.containers.find((c) => c.name === 'fetch-ok') ?? assert.fail();
    assert.deepEqual([app.state, app.exitCode, app.reason, app.restartCount], ['terminated', 0, 'Completed', 0]);
    assert.match(await readFile(app.log, 'utf8'), /"url": "http:\/\/httpbin:8000\/get"/, 'the application got httpbin\'s answer');
    const proxy = p.containers.find((c) => c.name === 'istio-proxy') ?? assert.fail();
    assert.deepEqual([proxy.state, proxy.reason], ['terminated', 'Completed']);
    assert.equal((await runTool(['ip', 'netns', 'pids', p.netns])).stdout.trim(), '', 'no process is left in the pod');
    const row = (await table()).get(p.name) ?? assert.fail();
    assert.deepEqual([row.READY, row.STATUS, row.RESTARTS], ['0/2', 'Completed', '0']);
  });

  it('a Job whose command exits 1 fails: STATUS Error, no restart, and no sidecar left running', async () => {
    await poll('fetch-fail and its sidecar to finish', () => (pod('fetch-fail').containers.every((c) => c.state === 'terminated') ? true : undefined), 20_000);
    const p = pod('fetch-fail');
    assert.equal(p.phase, 'Failed');
    const app = p.containers.find((c) => c.name === 'fetch-fail') ?? assert.fail();
    assert.deepEqual([app.state, app.exitCode, app.reason, app.restartCount], ['terminated', 1, 'Error', 0]);
    const row = (await table()).get(p.name) ?? assert.fail();
    assert.deepEqual([row.STATUS, row.RESTARTS], ['Error', '0']);
    const r = await runCli(['get', 'pods', p.name, '-o', 'json']);
    const status = (JSON.parse(r.stdout) as { status: { phase: string; containerStatuses: Array<{ name: string; state: { terminated?: { exitCode: number; reason: string } } }> } }).status;
    assert.equal(status.phase, 'Failed');
    assert.deepEqual(status.containerStatuses.find((c) => c.name === 'fetch-fail')?.state.terminated, { exitCode: 1, reason: 'Error' });
    assert.equal((await runTool(['ip', 'netns', 'pids', p.netns])).stdout.trim(), '', 'no process is left in the pod');
  });

  it('a Deployment container that exits is restarted (restartPolicy Always) and kubectl\'s columns show it', async () => {
    const p = await poll('crasher to restart twice', () => {
      const x = pod('crasher');
      return (x.containers[0]?.restartCount ?? 0) >= 2 ? x : undefined;
    }, 20_000);
    assert.equal(p.phase, 'Running', 'a Deployment\'s pod never completes');
    const c = p.containers[0] ?? assert.fail();
    assert.deepEqual(c.last, { exitCode: 3, reason: 'Error' });
    const row = (await table()).get(p.name) ?? assert.fail();
    assert.ok(Number(row.RESTARTS) >= 2, JSON.stringify(row));
    assert.ok(['CrashLoopBackOff', 'Error', 'Running'].includes(row.STATUS ?? ''), JSON.stringify(row));
    assert.match(await readFile(c.log, 'utf8'), /crashing\n(.|\n)*crashing\n(.|\n)*crashing/, 'each run logged to the same file');
  });

  it('a postStart hook finishes before the next container starts', async () => {
    const p = await poll('the second container to print', async () => {
      const log = pod('hooks').containers.find((c) => c.name === 'second')?.log;
      return log && (await readFile(log, 'utf8')).length > 0 ? pod('hooks') : undefined;
    });
    assert.equal(await readFile(p.containers.find((c) => c.name === 'second')?.log ?? '', 'utf8'), 'written by the hook\n');
    assert.equal((await table()).get('hooks')?.STATUS, 'Running');
  });
});
