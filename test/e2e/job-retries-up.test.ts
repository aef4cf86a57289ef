// Job retries on the embedded mesh, as the Job controller does them: a Job whose container fails twice and then
// succeeds gets a new pod (a new name) after each failure with back-off and ends Complete, its failed pods still
// listed (STATUS Error); a Job with backoffLimit 1 that always fails gets exactly 2 pods and ends Failed with
// BackoffLimitExceeded, no process left; under restartPolicy OnFailure the restarts count against backoffLimit (the
// pod is killed); activeDeadlineSeconds fails the Job with DeadlineExceeded. `tsmesh get jobs` shows them kubectl-style, -o json in Kubernetes' shape.

import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { LocalMesh, readState, type PodState } from '../../src/runtime/local-mesh.ts';
import { runTool } from '../../src/runtime/netns.ts';
import { freeSubnet, netnsSkipReason, runPrefix } from '../helpers/netns.ts';
import { getTable, runCli } from '../helpers/cli.ts';
import { jobYaml, poll } from '../helpers/mesh.ts';
import type { Logger } from '../../src/common/log.ts';

const skip = netnsSkipReason();
const NO_SIDECAR = 'sidecar.istio.io/inject: "false"';
const quiet: Logger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

describe('Job retries with backoffLimit (tsmesh up)', { skip }, () => {
  let mesh: LocalMesh;
  let dir = '';
  let home = '';
  const prefix = runPrefix('r');
  const pods = (job: string): PodState[] => readState(home)?.pods.filter((p) => p.owner === `Job/${job}`) ?? [];
  type JobJson = { kind: string; status: { active?: number; succeeded?: number; failed?: number; conditions?: Array<{ type: string; status: string; reason?: string }> } };
  const jobJson = async (name: string): Promise<JobJson> => {
    const r = await runCli(['get', 'job', name, '-o', 'json']);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as JobJson;
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tsmesh-jobretry-'));
    home = await mkdtemp(join(tmpdir(), 'tsmesh-home-'));
    // the containers run as uid 1000: they count their attempts in this directory
    await chmod(dir, 0o777);
    process.env.TSMESH_HOME = home;
    await writeFile(join(dir, 'apps.yaml'), [
      'apiVersion: v1\nkind: Namespace\nmetadata: {name: default, labels: {istio-injection: enabled}}\n',
      // the third attempt succeeds; each pod has its sidecar, which exits with it
      jobYaml('third-time', `echo x >> ${dir}/attempts; n=$(wc -l < ${dir}/attempts); echo attempt $n; [ $n -ge 3 ]`, { backoffLimit: 6 }),
      jobYaml('always-fails', 'echo failing; exit 2', { backoffLimit: 1, labels: NO_SIDECAR }),
      jobYaml('on-failure', 'echo failing; exit 3', { backoffLimit: 1, labels: NO_SIDECAR, restartPolicy: 'OnFailure' }),
      jobYaml('too-long', 'exec sleep 60', { backoffLimit: 6, labels: NO_SIDECAR, spec: ['  activeDeadlineSeconds: 1'] }),
      jobYaml('wide', 'exit 0', { backoffLimit: 6, labels: NO_SIDECAR, spec: ['  completions: 3', '  parallelism: 2'] }),
    ].join('---\n'));
    const { base, cidr } = freeSubnet();
    mesh = new LocalMesh({ paths: [dir], podCIDR: cidr, gateway: `${base}.1`, serviceCIDR: '10.247.0.0/16', bridge: `${prefix}br`, prefix, chainPrefix: 'TSMR', stateDir: home, xdsPort: 0, httpPort: 0, restartBackoffMs: 200, jobBackoffMs: 200, log: quiet });
    await mesh.start();
  });
  after(async () => {
    await mesh?.stop();
    delete process.env.TSMESH_HOME;
    await rm(dir, { recursive: true, force: true });
    await rm(home, { recursive: true, force: true });
  });

  it('a Job that fails twice and then succeeds ends Complete with 3 pods: 2 Error, 1 Completed', async () => {
    await poll('third-time to complete', () => (readState(home)?.jobs?.find((j) => j.name === 'third-time')?.conditions.length ? true : undefined), 20_000);
    const ps = pods('third-time');
    assert.equal(ps.length, 3, JSON.stringify(ps.map((p) => [p.name, p.phase])));
    assert.deepEqual(ps.map((p) => p.phase), ['Failed', 'Failed', 'Succeeded']);
    assert.equal(new Set(ps.map((p) => p.name)).size, 3, 'each pod has its own name');
    for (const p of ps) assert.match(p.name, /^third-time-[a-z0-9]{5}$/);
    assert.equal((await readFile(join(dir, 'attempts'), 'utf8')).split('\n').filter(Boolean).length, 3);
    const rows = await getTable(['pods']);
    assert.deepEqual(ps.map((p) => rows.get(p.name)?.STATUS), ['Error', 'Error', 'Completed']);
    const last = ps[2] ?? assert.fail();
    assert.equal(last.sidecar, true);
    assert.equal((await runTool(['ip', 'netns', 'pids', last.netns])).stdout.trim(), '', 'no process is left in the pod');
    const jobs = await getTable(['jobs']);
    assert.deepEqual([jobs.get('third-time')?.STATUS, jobs.get('third-time')?.COMPLETIONS], ['Complete', '1/1']);
    const j = await jobJson('third-time');
    assert.equal(j.kind, 'Job');
    assert.deepEqual([j.status.succeeded, j.status.failed, j.status.active], [1, 2, undefined]);
    assert.deepEqual(j.status.conditions?.map((c) => [c.type, c.status]), [['Complete', 'True']]);
  });

  it('a Job with backoffLimit 1 that always fails has exactly 2 pods and ends Failed (BackoffLimitExceeded)', async () => {
    await poll('always-fails to fail', () => (readState(home)?.jobs?.find((j) => j.name === 'always-fails')?.conditions.length ? true : undefined), 20_000);
    // no third pod comes later
    await new Promise((r) => setTimeout(r, 600));
    const ps = pods('always-fails');
    assert.deepEqual(ps.map((p) => p.phase), ['Failed', 'Failed'], JSON.stringify(ps.map((p) => [p.name, p.phase])));
    const rows = await getTable(['pods']);
    assert.deepEqual(ps.map((p) => rows.get(p.name)?.STATUS), ['Error', 'Error']);
    const jobs = await getTable(['job']);
    assert.deepEqual([jobs.get('always-fails')?.STATUS, jobs.get('always-fails')?.COMPLETIONS], ['Failed', '0/1']);
    const j = await jobJson('always-fails');
    assert.deepEqual([j.status.failed, j.status.succeeded, j.status.active], [2, undefined, undefined]);
    assert.deepEqual(j.status.conditions?.map((c) => [c.type, c.status, c.reason]), [['Failed', 'True', 'BackoffLimitExceeded']]);
    for (const p of ps) assert.equal((await runTool(['ip', 'netns', 'pids', p.netns]).catch(() => ({ stdout: '' }))).stdout.trim(), '', `no process is left in ${p.name}`);
  });

  it('restartPolicy OnFailure: restarts past backoffLimit kill the pod and fail the Job', async () => {
    await poll('on-failure to fail', () => (readState(home)?.jobs?.find((j) => j.name === 'on-failure')?.conditions.length ? true : undefined), 20_000);
    const ps = pods('on-failure');
    assert.equal(ps.length, 1, 'the container restarts in place: no new pod');
    const p = ps[0] ?? assert.fail();
    assert.equal(p.phase, 'Failed');
    assert.ok((p.containers[0]?.restartCount ?? 0) >= 2, JSON.stringify(p.containers));
    const j = await jobJson('on-failure');
    assert.deepEqual(j.status.conditions?.map((c) => [c.type, c.reason]), [['Failed', 'BackoffLimitExceeded']]);
    // the runtime stopped the pod: its processes are killed and its namespace removed
    await poll('the pod to be stopped', async () => (!(await runTool(['ip', 'netns', 'list'])).stdout.split('\n').some((l) => l.split(' ')[0] === p.netns) ? true : undefined), 5_000);
  });

  it('activeDeadlineSeconds: a Job still running then fails with DeadlineExceeded and its pod is killed', async () => {
    await poll('too-long to fail', () => (readState(home)?.jobs?.find((j) => j.name === 'too-long')?.conditions.length ? true : undefined), 20_000);
    const ps = pods('too-long');
    assert.deepEqual(ps.map((p) => [p.phase, p.reason]), [['Failed', 'DeadlineExceeded']]);
    const j = await jobJson('too-long');
    assert.deepEqual(j.status.conditions?.map((c) => [c.type, c.reason]), [['Failed', 'DeadlineExceeded']]);
    assert.equal((await getTable(['jobs'])).get('too-long')?.STATUS, 'Failed');
    const p = ps[0] ?? assert.fail();
    // the runtime stopped the pod: its processes are killed and its namespace removed
    await poll('the pod to be stopped', async () => (!(await runTool(['ip', 'netns', 'list'])).stdout.split('\n').some((l) => l.split(' ')[0] === p.netns) ? true : undefined), 5_000);
  });

  it('a Job asking for more completions or parallelism runs one pod, completes after it, and carries the warning `up` prints', async () => {
    await poll('wide to complete', () => (readState(home)?.jobs?.find((j) => j.name === 'wide')?.conditions.length ? true : undefined), 20_000);
    const j = readState(home)?.jobs?.find((x) => x.name === 'wide') ?? assert.fail();
    assert.match(j.warning ?? '', /asks for completions 3 and parallelism 2: the local runtime runs one completion with parallelism 1/);
    assert.deepEqual(pods('wide').map((p) => p.phase), ['Succeeded']);
    assert.deepEqual([(await getTable(['jobs'])).get('wide')?.STATUS, (await getTable(['jobs'])).get('wide')?.COMPLETIONS], ['Complete', '1/1']);
  });
});
