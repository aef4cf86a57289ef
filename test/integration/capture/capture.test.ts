// Real capture in a network namespace (root): the default rules redirect an application's outbound call to
// 15001 and inbound calls to 15006, the listener reads the original destination with SO_ORIGINAL_DST,
// and the proxy's own UID and 127.0.0.1 are left alone. Everything is named tsm-<pid>c- and removed after.

import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { createServer, connect, type Server } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { applyCaptureRules, readNatRules, removeCaptureRules } from '../../../src/inject/capture-apply.ts';
import { DEFAULT_CAPTURE_CONFIG, renderCaptureRules } from '../../../src/inject/capture-rules.ts';
import { attachToBridge, cleanupAll, createNetns, ensureBridge, execInNetns, listLinks, listNetns, runTool, vethName } from '../../../src/runtime/netns.ts';
import { collect, freeSubnet, jsonLines, netnsSkipReason, runPrefix } from '../../helpers/netns.ts';
import { REPO_ROOT } from '../../helpers/shared.ts';

const skip = netnsSkipReason(['ip', 'iptables-restore', 'iptables-save', 'ip6tables-restore', 'setpriv']);
const serverScript = fileURLToPath(new URL('./od-server.ts', import.meta.url));
const clientScript = fileURLToPath(new URL('./od-client.ts', import.meta.url));
const NOBODY = 65534;
const PROXY_UID = 1337;

interface Conn { event: string; listener?: number; originalDst?: { address: string; port: number; family: number }; error?: string }
interface ClientResult { reply?: string; error?: string; uid?: number }

describe('capture rules in a real network namespace', { skip, timeout: 120_000 }, () => {
  const prefix = runPrefix('c');
  const bridge = `${prefix}br`;
  const ns = `${prefix}pod`;
  let gw = '';
  let podIp = '';
  let server: ChildProcess | undefined;
  let conns: ReturnType<typeof jsonLines<Conn>>;
  let hostServer: Server | undefined;
  const hostSeen: string[] = [];

  async function call(host: string, port: number, uid: number): Promise<ClientResult> {
    const child = execInNetns(ns, [process.execPath, '--import', 'tsx', clientScript, host, String(port)], { uid, cwd: REPO_ROOT });
    const { stdout, stderr } = await collect(child);
    const last = stdout.trim().split('\n').at(-1) ?? '';
    try {
      return JSON.parse(last) as ClientResult;
    } catch {
      throw new Error(`client printed no result: ${stdout} ${stderr}`);
    }
  }
  const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 300));

  before(async () => {
    await cleanupAll(prefix);
    const { base, cidr } = freeSubnet();
    gw = `${base}.1`;
    podIp = `${base}.2`;
    await ensureBridge({ name: bridge, address: gw, cidr });
    await createNetns(ns);
    await attachToBridge({ netns: ns, hostVeth: vethName(prefix, ns), podIp, cidr, gateway: gw, bridge });
    await applyCaptureRules(ns, renderCaptureRules(DEFAULT_CAPTURE_CONFIG));
    // The "real" destination outside the pod: a server on the host's bridge address.
    hostServer = createServer((s) => {
      hostSeen.push(`${s.localAddress ?? ''}:${s.localPort ?? ''}`);
      s.on('error', () => undefined);
      s.end('hello from host');
    });
    await new Promise<void>((resolve, reject) => {
      hostServer?.once('error', reject).listen(9080, gw, () => resolve());
    });
    // The "sidecar": runs as UID 1337 like istio-proxy, listens on 15001 and 15006.
    server = execInNetns(ns, [process.execPath, '--import', 'tsx', serverScript, '15001', '15006', ':::15011'], { uid: PROXY_UID, cwd: REPO_ROOT });
    conns = jsonLines<Conn>(server);
    await conns.waitFor((l) => l.event === 'ready');
  });

  after(async () => {
    server?.kill('SIGKILL');
    await new Promise<void>((r) => (hostServer ? hostServer.close(() => r()) : r()));
    const report = await cleanupAll(prefix);
    assert.ok(report.namespaces.includes(ns), 'cleanup found the namespace');
    assert.deepEqual((await listNetns()).filter((n) => n.startsWith(prefix)), []);
    assert.deepEqual((await listLinks()).filter((l) => l.startsWith(prefix)), []);
  });

  it('redirects an application call to an address with no listener to 15001, which reads the original destination', async () => {
    const target = gw.replace(/\.1$/, '.99');
    const res = await call(target, 9080, NOBODY);
    assert.equal(res.uid, NOBODY);
    assert.equal(res.reply, 'hello from 15001');
    const conn = await conns.waitFor((l) => l.event === 'conn' && l.originalDst?.address === target);
    assert.equal(conn.listener, 15001);
    assert.deepEqual(conn.originalDst, { address: target, port: 9080, family: 4 });
  });

  it('redirects the application but not the proxy (UID 1337) when both call the same destination', async () => {
    const before = hostSeen.length;
    const app = await call(gw, 9080, NOBODY);
    assert.equal(app.reply, 'hello from 15001');
    const conn = await conns.waitFor((l) => l.event === 'conn' && l.originalDst?.address === gw);
    assert.deepEqual(conn.originalDst, { address: gw, port: 9080, family: 4 });
    assert.equal(hostSeen.length, before, 'the redirected call never reached the host');

    const proxied = conns.lines.length;
    const proxy = await call(gw, 9080, PROXY_UID);
    assert.equal(proxy.uid, PROXY_UID);
    assert.equal(proxy.reply, 'hello from host');
    assert.deepEqual(hostSeen.slice(before), [`${gw}:9080`]);
    await settle();
    assert.equal(conns.lines.length, proxied, '15001 saw no connection from UID 1337');
  });

  it('leaves 127.0.0.1 alone (connection refused, nothing reaches 15001)', async () => {
    const seen = conns.lines.length;
    const res = await call('127.0.0.1', 9080, NOBODY);
    assert.equal(res.error, 'ECONNREFUSED');
    await settle();
    assert.equal(conns.lines.length, seen);
  });

  it('redirects inbound calls to the pod IP to 15006 with their original destination, except excluded ports', async () => {
    const reply = (port: number): Promise<string> =>
      new Promise((resolve, reject) => {
        let data = '';
        const s = connect({ host: podIp, port });
        s.setEncoding('utf8').on('data', (d: string) => (data += d)).on('end', () => resolve(data)).on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
        s.setTimeout(8000, () => reject(new Error('inbound call timed out')));
      });
    assert.equal(await reply(9080), 'hello from 15006');
    const conn = await conns.waitFor((l) => l.event === 'conn' && l.listener === 15006);
    assert.deepEqual(conn.originalDst, { address: podIp, port: 9080, family: 4 });
    assert.equal(await reply(15021), 'ECONNREFUSED', '15021 (health) is excluded from inbound capture');
  });

  it('reads IPv6 and IPv4-mapped original destinations on a dual-stack listener', async () => {
    const v6 = `fd00:250:${gw.split('.')[2] ?? '0'}::`;
    await runTool(['ip', '-n', ns, 'addr', 'add', `${v6}2/64`, 'dev', 'eth0', 'nodad']);
    const mapped = gw.replace(/\.1$/, '.98');
    await runTool(['ip', 'netns', 'exec', ns, 'iptables-restore', '--noflush'], { input: `*nat\n-I OUTPUT 1 -p tcp -d ${mapped}/32 -j REDIRECT --to-ports 15011\nCOMMIT\n` });
    await runTool(['ip', 'netns', 'exec', ns, 'ip6tables-restore', '--noflush'], { input: `*nat\n-A OUTPUT -p tcp -d ${v6}99/128 -j REDIRECT --to-ports 15011\nCOMMIT\n` });
    assert.equal((await call(`${v6}99`, 9443, NOBODY)).reply, 'hello from 15011');
    const c6 = await conns.waitFor((l) => l.event === 'conn' && l.listener === 15011 && l.originalDst?.family === 6);
    assert.deepEqual(c6.originalDst, { address: `${v6}99`, port: 9443, family: 6 });
    assert.equal((await call(mapped, 8443, NOBODY)).reply, 'hello from 15011');
    const c4 = await conns.waitFor((l) => l.event === 'conn' && l.listener === 15011 && l.originalDst?.family === 4);
    assert.deepEqual(c4.originalDst, { address: mapped, port: 8443, family: 4 });
  });

  it('applies again without duplicating rules, and removeCaptureRules restores direct traffic', async () => {
    await applyCaptureRules(ns, renderCaptureRules(DEFAULT_CAPTURE_CONFIG));
    const saved = await readNatRules(ns);
    assert.equal(saved.split('\n').filter((l) => l === '-A OUTPUT -j ISTIO_OUTPUT').length, 1, saved);
    assert.equal(await removeCaptureRules(ns), true);
    assert.doesNotMatch(await readNatRules(ns), /ISTIO/);
    assert.equal(await removeCaptureRules(ns), false, 'nothing left to remove');
    const before = hostSeen.length;
    const res = await call(gw, 9080, NOBODY);
    assert.equal(res.reply, 'hello from host');
    assert.equal(hostSeen.length, before + 1);
  });
});
