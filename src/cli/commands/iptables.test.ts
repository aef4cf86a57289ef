import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import { main, type CommandIO } from '../main.ts';
import { istioPath } from '../../../test/helpers/shared.ts';
import { netnsSkipReason, runPrefix } from '../../../test/helpers/netns.ts';
import { cleanupAll, createNetns } from '../../runtime/netns.ts';
import { readNatRules } from '../../inject/capture-apply.ts';

async function tsmesh(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: CommandIO = { out: (t) => (out += t.endsWith('\n') ? t : t + '\n'), err: (t) => (err += t + '\n') };
  const code = await main(['iptables', ...args], io);
  return { code, out, err };
}

const golden = readFileSync(istioPath('iptables', 'basic.txt.golden'), 'utf8');
const withoutCniLines = golden
  .split('\n')
  .filter((l) => l !== '-A ISTIO_OUTPUT -p tcp --dport 15020 -j RETURN' && l !== '-A ISTIO_OUTPUT -p udp --dport 15020 -j RETURN')
  .join('\n');

describe('tsmesh iptables', () => {
  it('prints the default capture rules (the golden without its CNI-only lines) with no flags', async () => {
    const r = await tsmesh();
    assert.equal(r.code, 0);
    assert.equal(r.out, withoutCniLines);
  });

  it("takes istio-iptables' own arguments, as the injector writes them into istio-init", async () => {
    const r = await tsmesh('-p', '15001', '-z', '15006', '-u', '1337', '-m', 'REDIRECT', '-i', '*', '-x', '', '-b', '*', '-d', '15090,15021,15020');
    assert.equal(r.out, withoutCniLines);
    assert.equal((await tsmesh('-o', '15020')).out, golden, 'the CNI plugin adds -o 15020');
  });

  it('accepts the long flag names too', async () => {
    const short = await tsmesh('-i', '10.96.0.0/12', '-x', '10.96.0.10/32', '-b', '9080', '-q', '3306', '-o', '22', '-u', '2000', '-g', '3000', '-c', 'eth9', '-p', '16001', '-z', '16006', '-e', '16008');
    const long = await tsmesh('--istio-service-cidr', '10.96.0.0/12', '--istio-service-exclude-cidr', '10.96.0.10/32', '--istio-inbound-ports', '9080',
      '--istio-outbound-ports', '3306', '--istio-local-outbound-ports-exclude', '22', '--proxy-uid', '2000', '--proxy-gid', '3000',
      '--istio-exclude-interfaces', 'eth9', '--envoy-port', '16001', '--inbound-capture-port', '16006', '--inbound-tunnel-port', '16008');
    assert.equal(short.code, 0, short.err);
    assert.equal(long.out, short.out);
    for (const line of ['-A ISTIO_OUTPUT -d 10.96.0.0/12 -j ISTIO_REDIRECT', '-A ISTIO_OUTPUT -d 10.96.0.10/32 -j RETURN', '-A ISTIO_INBOUND -p tcp --dport 9080 -j ISTIO_IN_REDIRECT',
      '-A ISTIO_OUTPUT -p tcp --dport 3306 -j ISTIO_REDIRECT', '-A ISTIO_OUTPUT -p udp --dport 22 -j RETURN', '-A ISTIO_OUTPUT -m owner --gid-owner 3000 -j RETURN',
      '-A PREROUTING -i eth9 -j RETURN', '-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 16001', '-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 16006', '-A ISTIO_INBOUND -p tcp --dport 16008 -j RETURN']) {
      assert.ok(short.out.split('\n').includes(line), `missing ${line}`);
    }
  });

  it('exits 2 with the flag and what is allowed for bad values, TPROXY and unknown flags', async () => {
    const cases: [string[], RegExp][] = [
      [['-b', '80,x'], /-b \(--istio-inbound-ports\): invalid value "80,x".*allowed: "\*" or a comma-separated list of ports/],
      [['-x', '*'], /-x \(--istio-service-exclude-cidr\).*allowed: a comma-separated list of CIDRs/],
      [['-p', '0'], /-p \(--envoy-port\).*out of range/],
      [['-m', 'TPROXY'], /TPROXY is not supported.*REDIRECT/],
      [['-m', 'NONE'], /istio-iptables has no NONE/],
      [['--bogus'], /Unknown option '--bogus'/],
      [['--cleanup'], /--cleanup needs --netns/],
    ];
    for (const [args, re] of cases) {
      const r = await tsmesh(...args);
      assert.equal(r.code, 2, args.join(' '));
      assert.equal(r.out, '');
      assert.match(r.err, re);
    }
  });

  it('prints only, with --dry-run, even when --netns is given', async () => {
    const r = await tsmesh('--dry-run', '--netns', 'tsm-never-created');
    assert.equal(r.code, 0);
    assert.equal(r.out, withoutCniLines);
  });
});

describe('tsmesh iptables --netns (root)', { skip: netnsSkipReason(['ip', 'iptables-restore', 'iptables-save']), timeout: 60_000 }, () => {
  const prefix = runPrefix('i');
  const ns = `${prefix}pod`;
  after(async () => {
    await cleanupAll(prefix);
  });

  it('applies the rules in the namespace and --cleanup removes them', async () => {
    await cleanupAll(prefix);
    await createNetns(ns);
    const applied = await tsmesh('--netns', ns, '-x', '10.96.0.10/32');
    assert.equal(applied.code, 0, applied.err);
    assert.equal(applied.out.trim(), `applied 19 capture rules in network namespace ${ns}`);
    const saved = await readNatRules(ns);
    assert.match(saved, /^-A OUTPUT -j ISTIO_OUTPUT$/m);
    assert.match(saved, /^-A ISTIO_OUTPUT -d 10\.96\.0\.10\/32 -j RETURN$/m);
    assert.match(saved, /^-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001$/m);
    const removed = await tsmesh('--netns', ns, '--cleanup');
    assert.equal(removed.out.trim(), `removed the capture rules from network namespace ${ns}`);
    assert.doesNotMatch(await readNatRules(ns), /ISTIO/);
    assert.equal((await tsmesh('--network-namespace', ns, '--cleanup-only')).out.trim(), `no capture rules in network namespace ${ns}`);
  });

  it('fails with exit 1 and the tool output when the namespace does not exist', async () => {
    const r = await tsmesh('--netns', `${prefix}missing`);
    assert.equal(r.code, 1);
    assert.match(r.err, /Cannot open network namespace/);
  });
});
