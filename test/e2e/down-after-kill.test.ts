// The real `tsmesh up` / `tsmesh down` commands with a state directory and names of this run only: a second `up`
// says the mesh runs; after `kill -9` of every process of the mesh (the runtime with its control plane, the
// sidecars, the applications) `down` removes every namespace, interface, iptables chain and state file; `up`
// works again, and after a `kill -9` of the runtime alone `down` also ends the sidecars and applications it left.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { isAlive, readState } from '../../src/runtime/state.ts';
import { listLinks, listNetns, runTool } from '../../src/runtime/netns.ts';
import { TSMESH_BIN } from '../../src/runtime/pod-runner.ts';
import { collect, freeSubnet, netnsSkipReason, runPrefix } from '../helpers/netns.ts';
import { istioPath } from '../helpers/shared.ts';
import { poll } from '../helpers/mesh.ts';

const skip = netnsSkipReason();
const CHAINS = 'TSMD';

describe('tsmesh down after kill -9 (the real CLI)', { skip }, () => {
  let dir = '';
  let home = '';
  const prefix = runPrefix('k');
  const bridge = `${prefix}br`;
  let flags: string[] = [];

  const tsmesh = (...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> =>
    collect(spawn(process.execPath, [TSMESH_BIN, ...args], { env: { ...process.env, TSMESH_HOME: home }, stdio: ['ignore', 'pipe', 'pipe'] }), 60_000);

  /** Everything of this run still on the machine. */
  const leftovers = async (): Promise<{ netns: string[]; links: string[]; chains: string[]; etcNetns: string[]; state: boolean }> => ({
    netns: (await listNetns()).filter((n) => n.startsWith(prefix)),
    links: (await listLinks()).filter((l) => l.startsWith(prefix)),
    chains: (await runTool(['iptables-save'])).stdout.split('\n').filter((l) => l.includes(CHAINS)),
    etcNetns: existsSync('/etc/netns') ? readdirSync('/etc/netns').filter((d) => d.startsWith(prefix)) : [],
    state: existsSync(join(home, 'state.json')),
  });
  const nothingLeft = { netns: [], links: [], chains: [], etcNetns: [], state: false };
  const cmdlines = new Map<number, string>();

  /** The processes of the mesh's pods (sidecars, applications, test hosts), by namespace. */
  const podPids = async (): Promise<number[]> => {
    const out: number[] = [];
    for (const ns of (await listNetns()).filter((n) => n.startsWith(prefix))) {
      out.push(...(await runTool(['ip', 'netns', 'pids', ns])).stdout.split(/\s+/).filter(Boolean).map(Number));
    }
    for (const pid of out) {
      try {
        cmdlines.set(pid, readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').trim());
      } catch {
        // already gone
      }
    }
    return out;
  };

  async function up(): Promise<{ runtime: number; pods: number[] }> {
    const r = await tsmesh('up', dir, ...flags);
    assert.equal(r.code, 0, `up failed: ${r.stderr}\n${r.stdout}`);
    assert.match(r.stdout, /mesh is up/);
    const s = readState(home) ?? assert.fail('no state');
    assert.equal(s.prefix, prefix);
    assert.equal(s.chainPrefix, CHAINS);
    assert.ok(s.pods.length === 1 && s.pods.every((p) => p.phase === 'Running' && p.sidecar), JSON.stringify(s.pods));
    const pods = await podPids();
    assert.ok(pods.length >= 2, `the sidecar and the application run: ${pods.join(' ')}`);
    const rules = await leftovers();
    assert.ok(rules.chains.length > 0 && rules.links.includes(bridge), 'the mesh made chains and a bridge');
    return { runtime: s.pid, pods };
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tsmesh-kill-'));
    home = await mkdtemp(join(tmpdir(), 'tsmesh-home-'));
    await copyFile(istioPath('samples', 'sleep', 'sleep.yaml'), join(dir, 'sleep.yaml'));
    await writeFile(join(dir, 'namespace.yaml'), 'apiVersion: v1\nkind: Namespace\nmetadata: {name: default, labels: {istio-injection: enabled}}\n');
    const { cidr } = freeSubnet();
    flags = ['--pod-cidr', cidr, '--service-cidr', '10.245.0.0/16', '--bridge', bridge, '--name-prefix', prefix, '--chain-prefix', CHAINS, '--xds-port', '0', '--http-port', '0'];
  });
  after(async () => {
    const s = readState(home);
    if (s && isAlive(s.pid)) process.kill(s.pid, 'SIGKILL');
    await tsmesh('down');
    await rm(dir, { recursive: true, force: true });
    await rm(home, { recursive: true, force: true });
  });

  it('a second up on a running mesh says so, and leaves the running one alone', async () => {
    const { runtime } = await up();
    const again = await tsmesh('up', dir, ...flags);
    assert.equal(again.code, 2);
    assert.match(again.stderr, new RegExp(`a mesh is already running \\(pid ${runtime}, .*run \`tsmesh down\` first`));
    assert.ok(isAlive(runtime));
    const status = await tsmesh('status');
    assert.equal(status.code, 0);
    assert.match(status.stdout, /pods: 1\/1 running/);
  });

  it('after kill -9 of every process of the mesh, down removes every namespace, interface, chain and state file', async () => {
    const s = readState(home) ?? assert.fail('the mesh of the previous test runs');
    const pods = await podPids();
    // the runtime first (it would restart the containers), then what it left in the pods
    process.kill(s.pid, 'SIGKILL');
    for (const pid of pods) process.kill(pid, 'SIGKILL');
    await poll('every process to die', () => ([s.pid, ...pods].some(isAlive) ? undefined : true));
    assert.notDeepEqual(await leftovers(), nothingLeft, 'a killed mesh leaves its namespaces and rules behind');
    const down = await tsmesh('down');
    assert.equal(down.code, 0, down.stderr);
    assert.deepEqual(await leftovers(), nothingLeft);
  });

  it('up works again; after kill -9 of the runtime alone, down also ends the sidecars and applications it left', async () => {
    const { runtime, pods } = await up();
    process.kill(runtime, 'SIGKILL');
    await poll('the runtime to die', () => (isAlive(runtime) ? undefined : true));
    assert.deepEqual(pods.filter((pid) => !isAlive(pid)).map((pid) => `${pid} ${cmdlines.get(pid) ?? ''}`), [], 'the pods outlive their runtime');
    const status = await tsmesh('status');
    assert.equal(status.code, 1);
    assert.match(status.stdout, /no mesh is running/);
    const down = await tsmesh('down');
    assert.equal(down.code, 0, down.stderr);
    assert.deepEqual(await leftovers(), nothingLeft);
    await poll('every pod process to be gone', () => (pods.some(isAlive) ? undefined : true));
  });

  it('a running mesh: get pods finds it through the state directory, and down stops it and cleans up', async () => {
    const { runtime, pods } = await up();
    const get = await tsmesh('get', 'pods');
    assert.equal(get.code, 0, get.stderr);
    assert.match(get.stdout, /^NAME\s+READY\s+STATUS\s+RESTARTS\s+IP\n/);
    assert.match(get.stdout, /\nsleep-\S+\s+2\/2\s+Running\s+0\s+10\.250\./);
    const svc = await tsmesh('get', 'svc');
    assert.equal(svc.code, 0, `the control plane's API (on a free port) is found in the state: ${svc.stderr}`);
    assert.match(svc.stdout, /sleep\s+Service/);
    const down = await tsmesh('down');
    assert.equal(down.code, 0, down.stderr);
    assert.match(down.stdout, /mesh stopped/);
    assert.deepEqual([runtime, ...pods].filter(isAlive).map((pid) => `${pid} ${cmdlines.get(pid) ?? ''}`), [], 'the runtime and every pod process are gone');
    assert.deepEqual(await leftovers(), nothingLeft);
  });
});
