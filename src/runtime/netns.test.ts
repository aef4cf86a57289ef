import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { isMeshError } from '../common/errors.ts';
import { collect, freeSubnet, netnsSkipReason, runPrefix } from '../../test/helpers/netns.ts';
import { REPO_ROOT } from '../../test/helpers/shared.ts';
import {
  DEFAULT_BRIDGE,
  DEFAULT_BRIDGE_ADDRESS,
  DEFAULT_POD_CIDR,
  attachToBridge,
  cleanupAll,
  createNetns,
  deleteNetns,
  ensureBridge,
  execInNetns,
  findTool,
  listLinks,
  listNetns,
  prefixLength,
  runTool,
  vethName,
} from './netns.ts';

const usage = (e: unknown): boolean => isMeshError(e) && e.code === 'MESH_ERR_CLI_USAGE';

describe('netns names and checks (no root needed)', () => {
  it('uses the registry defaults: 10.244.0.0/16, bridge tsmesh0 at 10.244.0.1', () => {
    assert.deepEqual([DEFAULT_POD_CIDR, DEFAULT_BRIDGE, DEFAULT_BRIDGE_ADDRESS], ['10.244.0.0/16', 'tsmesh0', '10.244.0.1']);
  });

  it('makes stable veth names that start with the prefix and fit 15 characters', () => {
    const a = vethName('tsm-123456c-', 'default/productpage-v1-abc');
    assert.ok(a.startsWith('tsm-123456c-') && a.length <= 15, a);
    assert.equal(vethName('tsm-123456c-', 'default/productpage-v1-abc'), a);
    assert.notEqual(vethName('tsmesh-', 'default/reviews-v1'), vethName('tsmesh-', 'default/reviews-v2'));
    assert.ok(vethName('tsmesh-', 'x').length <= 15);
    assert.throws(() => vethName('a-very-long-pfx', 'x'), usage);
  });

  it('parses the prefix length of a pod CIDR and rejects anything else', () => {
    assert.equal(prefixLength('10.244.0.0/16'), 16);
    assert.equal(prefixLength('10.250.7.0/24'), 24);
    for (const bad of ['10.244.0.0', '10.244.0.0/33', 'fd00::/64', 'x/8']) assert.throws(() => prefixLength(bad), usage, bad);
  });

  it('rejects unsafe names before running anything', async () => {
    await assert.rejects(createNetns('../etc'), usage);
    await assert.rejects(createNetns('a b'), usage);
    await assert.rejects(cleanupAll('ts'), usage, 'a short prefix could match namespaces that are not ours');
    await assert.rejects(attachToBridge({ netns: 'ok', hostVeth: 'name-longer-than-15', podIp: '10.244.1.2' }), usage);
  });

  it('finds tools in the sbin folders even when PATH lacks them', { skip: process.platform !== 'linux' }, () => {
    const saved = process.env.PATH;
    process.env.PATH = '/nonexistent';
    try {
      assert.equal(findTool('sh'), '/usr/bin/sh');
    } finally {
      process.env.PATH = saved;
    }
  });
});

describe('network namespaces on this machine (root)', { skip: netnsSkipReason(['ip', 'setpriv']), timeout: 120_000 }, () => {
  const prefix = runPrefix('n');
  const bridge = `${prefix}br`;
  const nsA = `${prefix}a`;
  const nsB = `${prefix}b`;
  let base = '';
  let cidr = '';
  let hostServer: Server | undefined;

  const inNs = async (ns: string, argv: string[], opts: { uid?: number; gid?: number } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> =>
    collect(execInNetns(ns, argv, { ...opts, cwd: REPO_ROOT }));

  before(async () => {
    await cleanupAll(prefix);
    ({ base, cidr } = freeSubnet());
    await ensureBridge({ name: bridge, address: `${base}.1`, cidr });
    await ensureBridge({ name: bridge, address: `${base}.1`, cidr }); // idempotent
    for (const [ns, ip] of [[nsA, `${base}.2`], [nsB, `${base}.3`]] as const) {
      await createNetns(ns);
      await attachToBridge({ netns: ns, hostVeth: vethName(prefix, ns), podIp: ip, cidr, gateway: `${base}.1`, bridge });
    }
  });

  after(async () => {
    await new Promise<void>((r) => (hostServer ? hostServer.close(() => r()) : r()));
    await cleanupAll(prefix);
  });

  it('creates namespaces with loopback up, the pod IP on eth0 and a default route via the bridge', async () => {
    assert.ok((await listNetns()).includes(nsA));
    const lo = await runTool(['ip', '-n', nsA, '-o', 'link', 'show', 'lo']);
    assert.match(lo.stdout, /[<,]UP[,>]/);
    const addr = await runTool(['ip', '-n', nsA, '-4', '-o', 'addr', 'show', 'eth0']);
    assert.match(addr.stdout, new RegExp(`inet ${base.replace(/\./g, '\\.')}\\.2/24`));
    const route = await runTool(['ip', '-n', nsA, 'route', 'show', 'default']);
    assert.match(route.stdout, new RegExp(`default via ${base.replace(/\./g, '\\.')}\\.1 dev eth0`));
    await assert.rejects(createNetns(nsA), (e: unknown) => isMeshError(e) && e.code === 'MESH_ERR_CAPTURE_APPLY' && /exists/i.test(e.message));
  });

  it('lets pods reach each other over the bridge, and the host at the bridge address', async () => {
    const server = execInNetns(nsA, [process.execPath, '-e', `require('net').createServer(s => s.end('pong from a')).listen(8080, '${base}.2', () => console.log('ready'))`]);
    try {
      await new Promise<void>((resolve, reject) => {
        server.stdout?.once('data', () => resolve());
        server.once('exit', (c) => reject(new Error(`server exited ${c}`)));
      });
      const script = (host: string, port: number): string =>
        `const s=require('net').connect(${port},'${host}');let d='';s.on('data',x=>d+=x).on('end',()=>console.log(d)).on('error',e=>console.log(e.code))`;
      assert.equal((await inNs(nsB, [process.execPath, '-e', script(`${base}.2`, 8080)])).stdout.trim(), 'pong from a');
      hostServer = createServer((s) => s.end('pong from host'));
      await new Promise<void>((r) => hostServer?.listen(8081, `${base}.1`, () => r()));
      assert.equal((await inNs(nsB, [process.execPath, '-e', script(`${base}.1`, 8081)])).stdout.trim(), 'pong from host');
    } finally {
      server.kill('SIGKILL');
    }
  });

  it('runs processes as another UID/GID (the sidecar runs as 1337)', async () => {
    assert.equal((await inNs(nsA, ['id', '-u'], { uid: 1337 })).stdout.trim(), '1337');
    assert.equal((await inNs(nsA, ['id', '-g'], { uid: 1337 })).stdout.trim(), '1337', 'gid defaults to the uid');
    assert.equal((await inNs(nsA, ['id', '-G'], { uid: 1337, gid: 2000 })).stdout.trim(), '2000', 'no supplementary groups kept');
    assert.equal((await inNs(nsA, ['id', '-u'])).stdout.trim(), '0');
    const missing = await collect(execInNetns(`${prefix}missing`, ['true']));
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /Cannot open network namespace/);
  });

  it('cleanupAll removes namespaces, veths, the bridge and processes left behind by a crash', async () => {
    const crashed = `${prefix}crash`;
    await createNetns(crashed);
    await attachToBridge({ netns: crashed, hostVeth: vethName(prefix, crashed), podIp: `${base}.9`, cidr, gateway: `${base}.1`, bridge });
    const orphan = execInNetns(crashed, ['sleep', '600'], { detached: true, stdio: 'ignore' });
    orphan.unref();
    const pid = orphan.pid ?? -1;
    await new Promise((r) => setTimeout(r, 200));
    const report = await cleanupAll(prefix);
    assert.deepEqual([...report.namespaces].sort(), [nsA, nsB, crashed].sort());
    assert.ok(report.links.includes(bridge), `bridge removed: ${report.links.join(',')}`);
    assert.deepEqual((await listNetns()).filter((n) => n.startsWith(prefix)), []);
    assert.deepEqual((await listLinks()).filter((l) => l.startsWith(prefix)), []);
    await new Promise((r) => setTimeout(r, 100));
    assert.throws(() => process.kill(pid, 0), 'the process inside the namespace is gone');
    await deleteNetns(crashed); // deleting a missing namespace is fine
    assert.deepEqual(await cleanupAll(prefix), { namespaces: [], links: [] }, 'running it twice is fine');
  });
});

describe('without privileges', { skip: netnsSkipReason(['ip', 'setpriv']) }, () => {
  it('says what is missing and how to run tsmesh', async () => {
    const code = `import('./src/runtime/netns.ts').then(m => m.createNetns('tsm-x')).catch(e => console.log(JSON.stringify({ code: e.code, message: e.message })))`;
    const child = spawn(findTool('setpriv') ?? 'setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '--', process.execPath, '--import', 'tsx', '-e', code], { cwd: REPO_ROOT });
    const { stdout } = await collect(child);
    const err = JSON.parse(stdout.trim()) as { code: string; message: string };
    assert.equal(err.code, 'MESH_ERR_CAPTURE_UNAVAILABLE');
    assert.match(err.message, /needs CAP_NET_ADMIN and CAP_SYS_ADMIN/);
    assert.match(err.message, /run as root.*--privileged/);
  });
});
