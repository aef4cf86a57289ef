// The local runtime's cluster services in real network namespaces (root): the kube-proxy equivalent spreads a
// ClusterIP over two server pods for a client pod without a sidecar, follows a re-sync, rejects service ports without
// endpoints at once, and never forwards pod traffic anywhere but to pods; the mesh DNS answers glibc through the
// search path of a pod's resolv.conf. Everything is in ranges and names of this run (bridge in a free 10.250.x.0/24,
// services in 10.251.y.0/24, a "sink" namespace of ours at 10.252.y.0/30) and removed afterwards, even on failure.

import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadString } from '../../../src/config/loader.ts';
import { buildRegistry } from '../../../src/registry/registry.ts';
import type { Registry } from '../../../src/registry/types.ts';
import { buildDnsView, resolvConf, startMeshDns, type DnsView, type MeshDns } from '../../../src/runtime/dns.ts';
import { attachToBridge, cleanupAll, createNetns, ensureBridge, execInNetns, findTool, listLinks, listNetns, runTool, vethName } from '../../../src/runtime/netns.ts';
import { cleanupServiceRules, syncServiceRules, type ServiceProxyOptions } from '../../../src/runtime/service-proxy.ts';
import { collect, freeSubnet, netnsSkipReason, runPrefix } from '../../helpers/netns.ts';
import { REPO_ROOT } from '../../helpers/shared.ts';

const skip = netnsSkipReason(['ip', 'iptables-restore', 'iptables-save', 'getent']);
const fixture = (name: string): string => fileURLToPath(new URL(name, import.meta.url));
const IP_FORWARD = '/proc/sys/net/ipv4/ip_forward';

/** A /24 (or the given prefix length) at `<first>.<n>.0` that no host address or route mentions; n near `hint`. */
function freeRange(first: string, hint: number, bits = 24): { base: string; cidr: string } {
  const ip = findTool('ip') ?? 'ip';
  const used = execFileSync(ip, ['-4', '-o', 'addr', 'show'], { encoding: 'utf8' }) + execFileSync(ip, ['-4', 'route', 'show'], { encoding: 'utf8' });
  for (let i = 0; i < 250; i++) {
    const n = ((hint + i) % 250) + 1;
    const base = `${first}.${n}`;
    if (!used.includes(`${base}.`)) return { base, cidr: `${base}.0/${bits}` };
  }
  throw new Error(`no free range in ${first}.0.0/16`);
}

describe('cluster services on the machine (real namespaces, iptables, DNS)', { skip, timeout: 180_000 }, () => {
  const prefix = runPrefix('k');
  const chainPrefix = `TSMT${process.pid % 1000000}`;
  const bridge = `${prefix}br`;
  const sinkVeth = `${prefix}sk`;
  const ns = { s1: `${prefix}s1`, s2: `${prefix}s2`, client: `${prefix}cl`, sink: `${prefix}sink` };
  const ip = { gw: '', s1: '', s2: '', client: '', echo: '', empty: '', unknown: '', sinkHost: '', sink: '' };
  let podCIDR = '';
  let serviceCIDR = '';
  let opts: ServiceProxyOptions;
  const procs: ChildProcess[] = [];
  let sinkOut = '';
  let dns: MeshDns | undefined;
  let view: DnsView | undefined;
  const ipForwardBefore = readFileSync(IP_FORWARD, 'utf8').trim();
  const tmp = join(tmpdir(), `${prefix}manifests`);

  function manifests(withS2: boolean): string {
    const pod = (name: string, app: string, podIp: string): string => `apiVersion: v1
kind: Pod
metadata: { name: ${name}, namespace: demo, labels: { app: ${app} } }
spec: { containers: [{ name: app, image: node, ports: [{ name: http, containerPort: 8080 }] }] }
status: { podIP: ${podIp} }
---
`;
    return `${pod('s1', 'echo', ip.s1)}${withS2 ? pod('s2', 'echo', ip.s2) : ''}${pod('client', 'client', ip.client)}apiVersion: v1
kind: Service
metadata: { name: echo, namespace: demo }
spec: { clusterIP: ${ip.echo}, selector: { app: echo }, ports: [{ name: http, port: 80, targetPort: http }] }
---
apiVersion: v1
kind: Service
metadata: { name: empty, namespace: demo }
spec: { clusterIP: ${ip.empty}, selector: { app: nobody }, ports: [{ name: http, port: 80, targetPort: 8080 }] }
`;
  }
  const registryOf = (text: string): Registry => buildRegistry(loadString(text, 'services.test.yaml').resources, { podCIDR, serviceCIDR });

  async function httpLoop(url: string, count: number, timeoutMs = 3000): Promise<{ counts: Record<string, number>; errors: Array<{ code: string; ms: number }> }> {
    const child = execInNetns(ns.client, [process.execPath, '--import', 'tsx', fixture('./http-loop.ts'), url, String(count), String(timeoutMs)], { cwd: REPO_ROOT });
    const { stdout, stderr } = await collect(child, 120_000);
    const last = stdout.trim().split('\n').at(-1) ?? '';
    try {
      return JSON.parse(last) as { counts: Record<string, number>; errors: Array<{ code: string; ms: number }> };
    } catch {
      throw new Error(`http-loop printed no result: ${stdout} ${stderr}`);
    }
  }

  async function startServer(netns: string, args: string[]): Promise<ChildProcess> {
    const child = execInNetns(netns, [process.execPath, '--import', 'tsx', fixture('./servers.ts'), ...args], { cwd: REPO_ROOT });
    procs.push(child);
    let out = '';
    child.stdout?.setEncoding('utf8');
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`server ${args.join(' ')} in ${netns} not ready: ${out}`)), 20_000);
      child.stdout?.on('data', (d: string) => {
        out += d;
        if (out.includes('ready')) {
          clearTimeout(t);
          resolve();
        }
      });
      child.once('exit', (code) => reject(new Error(`server in ${netns} exited ${String(code)}`)));
    });
    return child;
  }

  /** Packets counted by the guard rule (FORWARD: from the pod CIDR to anything else -> DROP). */
  async function guardPackets(): Promise<number> {
    const { stdout } = await runTool(['iptables-save', '-c', '-t', 'filter']);
    const line = stdout.split('\n').find((l) => l.includes(`-A ${chainPrefix}-FORWARD -s ${podCIDR} ! -d ${podCIDR} `) && l.endsWith('-j DROP'));
    assert.ok(line, `guard rule present:\n${stdout}`);
    return Number(/^\[(\d+):/.exec(line)?.[1] ?? 'NaN');
  }

  const bridgeForwarding = (): string => readFileSync(`/proc/sys/net/ipv4/conf/${bridge}/forwarding`, 'utf8').trim();

  before(async () => {
    await cleanupServiceRules(chainPrefix);
    await cleanupAll(prefix);
    const pods = freeSubnet();
    const hint = Number(pods.base.split('.')[2]);
    const svc = freeRange('10.251', hint);
    const sink = freeRange('10.252', hint, 30);
    podCIDR = pods.cidr;
    serviceCIDR = svc.cidr;
    ip.gw = `${pods.base}.1`;
    ip.s1 = `${pods.base}.11`;
    ip.s2 = `${pods.base}.12`;
    ip.client = `${pods.base}.20`;
    ip.echo = `${svc.base}.20`;
    ip.empty = `${svc.base}.30`;
    ip.unknown = `${svc.base}.99`;
    ip.sinkHost = `${sink.base}.1`;
    ip.sink = `${sink.base}.2`;
    opts = { podCIDR, serviceCIDR, bridge, chainPrefix };

    await ensureBridge({ name: bridge, address: ip.gw, cidr: podCIDR });
    for (const [key, podIp] of [['s1', ip.s1], ['s2', ip.s2], ['client', ip.client]] as const) {
      await createNetns(ns[key]);
      await attachToBridge({ netns: ns[key], hostVeth: vethName(prefix, ns[key]), podIp, cidr: podCIDR, gateway: ip.gw, bridge });
    }
    // The sink: a namespace of ours outside the pod and service ranges, reachable from the host by a veth.
    await createNetns(ns.sink);
    await runTool(['ip', 'link', 'add', sinkVeth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns.sink]);
    await runTool(['ip', 'addr', 'add', `${ip.sinkHost}/30`, 'dev', sinkVeth]);
    await runTool(['ip', 'link', 'set', sinkVeth, 'up']);
    await runTool(['ip', '-n', ns.sink, 'addr', 'add', `${ip.sink}/30`, 'dev', 'eth0']);
    await runTool(['ip', '-n', ns.sink, 'link', 'set', 'eth0', 'up']);

    await startServer(ns.s1, ['http', '8080', 's1']);
    await startServer(ns.s2, ['http', '8080', 's2']);
    const sinkProc = await startServer(ns.sink, ['tcp', '9000']);
    sinkProc.stdout?.on('data', (d: string) => (sinkOut += d));
  });

  after(async () => {
    for (const p of procs) p.kill('SIGKILL');
    await dns?.close();
    const errors: unknown[] = [];
    await cleanupServiceRules(chainPrefix).catch((e: unknown) => errors.push(e));
    await cleanupAll(prefix).catch((e: unknown) => errors.push(e));
    for (const n of Object.values(ns)) rmSync(`/etc/netns/${n}`, { recursive: true, force: true });
    rmSync(tmp, { recursive: true, force: true });
    assert.deepEqual(errors, []);
    const save = (await runTool(['iptables-save'])).stdout;
    assert.ok(!save.includes(chainPrefix) && !save.includes(bridge), `no rule of this run left:\n${save}`);
    assert.deepEqual((await listNetns()).filter((n) => n.startsWith(prefix)), []);
    assert.deepEqual((await listLinks()).filter((l) => l.startsWith(prefix)), []);
    assert.equal(readFileSync(IP_FORWARD, 'utf8').trim(), ipForwardBefore, 'net.ipv4.ip_forward as before');
  });

  it('installs the guard before turning forwarding on, for the bridge only', async () => {
    assert.equal(bridgeForwarding(), '0', 'a new bridge does not forward');
    const report = await syncServiceRules(registryOf(manifests(true)), opts);
    assert.equal(report.enabledForwarding, true);
    assert.deepEqual([report.servicePorts, report.endpoints, report.rejected], [2, 2, 1]);
    assert.equal(bridgeForwarding(), '1');
    assert.equal(readFileSync(IP_FORWARD, 'utf8').trim(), ipForwardBefore, 'the global switch is not touched');
    const save = (await runTool(['iptables-save'])).stdout;
    assert.match(save, new RegExp(`-A FORWARD .*forwarding was 0.* -j ${chainPrefix}-FORWARD`));
    assert.match(save, new RegExp(`-A PREROUTING -i ${bridge} .*-j ${chainPrefix}-SERVICES`));
  });

  it('spreads ~40 requests to the ClusterIP over both servers, for a client without a sidecar', async () => {
    const r = await httpLoop(`http://${ip.echo}/`, 40);
    assert.deepEqual(r.errors, []);
    const s1 = r.counts.s1 ?? 0;
    const s2 = r.counts.s2 ?? 0;
    assert.equal(s1 + s2, 40, JSON.stringify(r.counts));
    assert.ok(s1 >= 8 && s2 >= 8, `both answer a fair share: ${JSON.stringify(r.counts)}`);
  });

  it('after a re-sync without s2 only s1 answers; re-syncs under load lose no request', async () => {
    const one = registryOf(manifests(false));
    const two = registryOf(manifests(true));
    const load = httpLoop(`http://${ip.echo}/`, 60);
    for (let i = 0; i < 6; i++) {
      const report = await syncServiceRules(i % 2 === 0 ? one : two, opts);
      assert.equal(report.enabledForwarding, false);
      await new Promise((r) => setTimeout(r, 100));
    }
    const during = await load;
    assert.deepEqual(during.errors, [], 'no window without rules');
    await syncServiceRules(one, opts);
    const r = await httpLoop(`http://${ip.echo}/`, 20);
    assert.deepEqual(r, { counts: { s1: 20 }, errors: [] });
  });

  it('fails fast for a service without endpoints, an unknown port and an unknown ClusterIP', async () => {
    for (const url of [`http://${ip.empty}/`, `http://${ip.echo}:81/`, `http://${ip.unknown}/`]) {
      const r = await httpLoop(url, 1, 5000);
      assert.equal(r.errors.length, 1, `${url}: ${JSON.stringify(r)}`);
      assert.equal(r.errors[0]?.code, 'ECONNREFUSED', url);
      assert.ok((r.errors[0]?.ms ?? 9999) < 1000, `${url} refused at once (${r.errors[0]?.ms ?? '?'} ms)`);
    }
  });

  it('drops pod traffic to an address outside the pod CIDR (a namespace of ours) and counts it', async () => {
    // The host itself reaches the sink: the route exists, so only the guard can stop the pod.
    await new Promise<void>((resolve, reject) => {
      const c = connect(9000, ip.sink, () => c.end());
      c.setTimeout(5000, () => c.destroy(new Error('the host cannot reach the sink')));
      c.resume();
      c.on('close', () => resolve());
      c.on('error', reject);
    });
    const hostConns = sinkOut.split('\n').filter((l) => l.startsWith('conn')).length;
    assert.equal(hostConns, 1);
    const before = await guardPackets();
    const r = await httpLoop(`http://${ip.sink}:9000/`, 1, 1500);
    assert.equal(r.errors.length, 1, JSON.stringify(r));
    assert.equal(r.errors[0]?.code, 'TIMEOUT', 'dropped, not answered');
    assert.ok((await guardPackets()) > before, 'the guard counted the packets');
    assert.equal(sinkOut.split('\n').filter((l) => l.startsWith('conn')).length, hostConns, 'the sink never saw the pod');
  });

  it('resolves names through the mesh DNS with glibc and the pod resolv.conf search path', async () => {
    view = buildDnsView(registryOf(manifests(false)), new Map([['httpbin.org', ip.s1]]), { serviceCIDR });
    dns = await startMeshDns({ address: ip.gw, port: 53, records: () => view as DnsView });
    mkdirSync(`/etc/netns/${ns.client}`, { recursive: true });
    writeFileSync(`/etc/netns/${ns.client}/resolv.conf`, resolvConf('demo', ip.gw));
    const getent = async (...args: string[]): Promise<{ code: number | null; stdout: string }> => collect(execInNetns(ns.client, [findTool('getent') ?? 'getent', ...args]));
    for (const name of ['echo', 'echo.demo', 'echo.demo.svc', 'echo.demo.svc.cluster.local']) {
      const r = await getent('hosts', name);
      assert.equal(r.code, 0, name);
      assert.match(r.stdout, new RegExp(`^${ip.echo.replace(/\./g, '\\.')}\\s+echo\\.demo\\.svc\\.cluster\\.local`), `${name}: ${r.stdout}`);
    }
    assert.match((await getent('ahostsv4', 'httpbin.org')).stdout, new RegExp(`^${ip.s1.replace(/\./g, '\\.')}\\s`), 'external test host');
    assert.match((await getent('hosts', `${ip.s1.replace(/\./g, '-')}.demo.pod.cluster.local`)).stdout, new RegExp(ip.s1.replace(/\./g, '\\.')));
    assert.equal((await getent('hosts', 'nothing.example.org')).code, 2, 'names outside the mesh do not exist');
    assert.equal((await getent('hosts', 'echo.other')).code, 2);
    // An application using the name: DNS, then the ClusterIP through the service proxy.
    const r = await httpLoop('http://echo/', 3);
    assert.deepEqual(r, { counts: { s1: 3 }, errors: [] });
    assert.ok(dns.stats.queries > 0);
  });

  it('cleans up everything after kill -9 of the process that made the rules, from another process', async () => {
    await cleanupServiceRules(chainPrefix);
    assert.equal(bridgeForwarding(), '0', 'forwarding restored');
    assert.ok(!(await runTool(['iptables-save'])).stdout.includes(chainPrefix));

    mkdirSync(tmp, { recursive: true });
    const file = join(tmp, 'manifests.yaml');
    writeFileSync(file, manifests(true));
    const child = spawn(process.execPath, ['--import', 'tsx', fixture('./sync-child.ts'), file, JSON.stringify(opts)], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    procs.push(child);
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    for (let i = 0; i < 300 && !out.includes('synced'); i++) {
      if (child.exitCode !== null) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(out.includes('synced'), `child synced: ${err}`);
    child.kill('SIGKILL');
    assert.equal(bridgeForwarding(), '1');
    assert.equal((await httpLoop(`http://${ip.echo}/`, 2)).errors.length, 0, 'its rules work');

    const report = await cleanupServiceRules(chainPrefix);
    assert.deepEqual(report.forwarding, { bridge, restored: '0' });
    assert.ok(report.chains.length >= 6 && report.jumps === 5, JSON.stringify(report));
    assert.equal(bridgeForwarding(), '0');
    assert.ok(!(await runTool(['iptables-save'])).stdout.includes(chainPrefix), 'no chain or rule left');
    assert.deepEqual(await cleanupServiceRules(chainPrefix), { chains: [], jumps: 0 }, 'idempotent');
    assert.equal(readFileSync(IP_FORWARD, 'utf8').trim(), ipForwardBefore);
  });
});
