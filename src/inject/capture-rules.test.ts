import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { isMeshError } from '../common/errors.ts';
import { istioPath } from '../../test/helpers/shared.ts';
import {
  CAPTURE_ANNOTATIONS as A,
  DEFAULT_CAPTURE_CONFIG,
  captureConfigFromPod,
  renderCaptureRules,
  type CaptureConfig,
} from './capture-rules.ts';

const cfg = (over: Partial<CaptureConfig> = {}): CaptureConfig => ({ ...DEFAULT_CAPTURE_CONFIG, ...over });
const lines = (text: string): string[] => text.trimEnd().split('\n');
const CNI_ONLY = ['-A ISTIO_OUTPUT -p tcp --dport 15020 -j RETURN', '-A ISTIO_OUTPUT -p udp --dport 15020 -j RETURN'];
const golden = readFileSync(istioPath('iptables', 'basic.txt.golden'), 'utf8');

// A tiny evaluator of the rendered nat rules for one locally generated TCP connection or one
// arriving packet, so tests assert what a user notices: where a connection ends up.
interface Packet { hook: 'OUTPUT' | 'PREROUTING'; dst: string; dport: number; src?: string; oif?: string; iif?: string; uid?: number; gid?: number; proto?: 'tcp' | 'udp' }
function ipInCidr(ip: string, cidr: string): boolean {
  const [base = '', bitsText = '32'] = cidr.split('/');
  const n = (s: string): number => s.split('.').reduce((acc, p) => acc * 256 + Number(p), 0);
  const bits = Number(bitsText);
  const mask = bits === 0 ? 0 : 2 ** 32 - 2 ** (32 - bits);
  const and = (x: number): number => Math.floor(x / 2 ** (32 - bits)) * 2 ** (32 - bits);
  return mask === 0 || and(n(ip)) === and(n(base));
}
function matches(tokens: string[], p: Packet): boolean {
  let neg = false;
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i] ?? '';
    if (t === '!') { neg = true; continue; }
    const v = tokens[i + 1] ?? '';
    let ok: boolean;
    switch (t) {
      case '-p': ok = (p.proto ?? 'tcp') === v; i++; break;
      case '--dport': ok = p.dport === Number(v); i++; break;
      case '-d': ok = ipInCidr(p.dst, v); i++; break;
      case '-s': ok = ipInCidr(p.src ?? '10.0.0.5', v); i++; break;
      case '-o': ok = (p.oif ?? 'eth0') === v; i++; break;
      case '-i': ok = (p.iif ?? 'eth0') === v; i++; break;
      case '-m': i++; continue;
      case '--uid-owner': ok = p.uid === Number(v); i++; break;
      case '--gid-owner': ok = p.gid === Number(v); i++; break;
      default: throw new Error(`evaluator does not know ${t}`);
    }
    if (ok === neg) return false;
    neg = false;
  }
  return true;
}
/** 'REDIRECT <port>' or 'ACCEPT' (not redirected). */
function verdict(rules: string, p: Packet): string {
  const chains = new Map<string, { match: string[]; target: string; rest: string[] }[]>();
  for (const line of lines(rules)) {
    if (!line.startsWith('-A ')) continue;
    const toks = line.split(' ');
    const j = toks.indexOf('-j');
    const chain = toks[1] ?? '';
    const list = chains.get(chain) ?? [];
    list.push({ match: toks.slice(2, j), target: toks[j + 1] ?? '', rest: toks.slice(j + 2) });
    chains.set(chain, list);
  }
  const run = (chain: string): string | undefined => {
    for (const r of chains.get(chain) ?? []) {
      if (!matches(r.match, p)) continue;
      if (r.target === 'RETURN') return chain === p.hook ? 'ACCEPT' : undefined;
      if (r.target === 'REDIRECT') return `REDIRECT ${r.rest[1]}`;
      const res = run(r.target);
      if (res !== undefined) return res;
    }
    return undefined;
  };
  return run(p.hook) ?? 'ACCEPT';
}
const app = { hook: 'OUTPUT', uid: 1000, gid: 1000 } as const;
const proxy = { hook: 'OUTPUT', uid: 1337, gid: 1337 } as const;

describe('renderCaptureRules', () => {
  it("equals Istio's CNI golden without its two CNI-only --dport 15020 ISTIO_OUTPUT lines, for the defaults", () => {
    const expected = lines(golden).filter((l) => !CNI_ONLY.includes(l));
    assert.equal(lines(golden).length - expected.length, 2, 'the golden still has the two CNI-only lines');
    assert.deepEqual(lines(renderCaptureRules(DEFAULT_CAPTURE_CONFIG)), expected);
    assert.ok(renderCaptureRules(DEFAULT_CAPTURE_CONFIG).endsWith('COMMIT\n'));
  });

  it('equals the whole CNI golden with -o 15020 (the port the CNI plugin adds)', () => {
    assert.equal(renderCaptureRules(cfg({ excludeOutboundPorts: [15020] })), golden);
  });

  it('renders -d in any order the same way (15090,15021,15020 as the injector writes it, or sorted)', () => {
    assert.equal(renderCaptureRules(cfg({ excludeInboundPorts: [15020, 15021, 15090, 15021] })), renderCaptureRules(DEFAULT_CAPTURE_CONFIG));
  });

  it('captures application traffic to 15001 and inbound traffic to 15006, but not the proxy, 127.0.0.1 or the exclusions', () => {
    const r = renderCaptureRules(DEFAULT_CAPTURE_CONFIG);
    assert.equal(verdict(r, { ...app, dst: '10.96.1.2', dport: 9080 }), 'REDIRECT 15001');
    assert.equal(verdict(r, { ...proxy, dst: '10.96.1.2', dport: 9080 }), 'ACCEPT');
    assert.equal(verdict(r, { ...proxy, uid: 0, dst: '10.96.1.2', dport: 9080 }), 'ACCEPT', 'GID 1337 alone is enough');
    assert.equal(verdict(r, { ...app, dst: '127.0.0.1', dport: 9080, oif: 'lo' }), 'ACCEPT');
    assert.equal(verdict(r, { ...app, dst: '10.244.0.7', dport: 9080, oif: 'lo' }), 'ACCEPT', 'an app calling its own pod IP');
    assert.equal(verdict(r, { ...proxy, dst: '10.244.0.7', dport: 9080, oif: 'lo' }), 'REDIRECT 15006', 'the proxy calling its own pod through a VIP');
    assert.equal(verdict(r, { ...proxy, dst: '10.244.0.7', dport: 15008, oif: 'lo' }), 'ACCEPT');
    assert.equal(verdict(r, { ...proxy, src: '127.0.0.6', dst: '10.244.0.7', dport: 9080, oif: 'lo' }), 'ACCEPT', 'inbound passthrough');
    assert.equal(verdict(r, { hook: 'PREROUTING', dst: '10.244.0.7', dport: 9080 }), 'REDIRECT 15006');
    for (const port of [15008, 15020, 15021, 15090]) assert.equal(verdict(r, { hook: 'PREROUTING', dst: '10.244.0.7', dport: port }), 'ACCEPT', `inbound ${port}`);
  });

  it('-x CIDRs return before the catch-all redirect (istio-iptables order)', () => {
    const r = lines(renderCaptureRules(cfg({ excludeOutboundIPRanges: ['1.1.0.0/16', '10.96.0.10/32', '2001:db8::/32'] })));
    const tail = r.slice(r.indexOf('-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN'));
    assert.deepEqual(tail, [
      '-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN',
      '-A ISTIO_OUTPUT -d 1.1.0.0/16 -j RETURN',
      '-A ISTIO_OUTPUT -d 10.96.0.10/32 -j RETURN',
      '-A ISTIO_OUTPUT -j ISTIO_REDIRECT',
      'COMMIT',
    ]);
    assert.equal(verdict(r.join('\n'), { ...app, dst: '1.1.3.4', dport: 443 }), 'ACCEPT');
    assert.equal(verdict(r.join('\n'), { ...app, dst: '1.2.3.4', dport: 443 }), 'REDIRECT 15001');
  });

  it('-i CIDRs redirect only those ranges (seed 004: includeIPRanges 10.0.0.1/24 lets httpbin.org bypass the sidecar)', () => {
    const text = renderCaptureRules(cfg({ includeOutboundIPRanges: ['10.0.0.1/24', '10.96.0.0/12'] }));
    const r = lines(text);
    assert.deepEqual(r.slice(-4), ['-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN', '-A ISTIO_OUTPUT -d 10.0.0.1/24 -j ISTIO_REDIRECT', '-A ISTIO_OUTPUT -d 10.96.0.0/12 -j ISTIO_REDIRECT', 'COMMIT']);
    assert.ok(!r.includes('-A ISTIO_OUTPUT -j ISTIO_REDIRECT'));
    assert.equal(verdict(text, { ...app, dst: '10.0.0.77', dport: 80 }), 'REDIRECT 15001');
    assert.equal(verdict(text, { ...app, dst: '10.100.1.1', dport: 80 }), 'REDIRECT 15001');
    assert.equal(verdict(text, { ...app, dst: '54.1.2.3', dport: 80 }), 'ACCEPT');
  });

  it("-i '' captures no outbound traffic; -b '' captures no inbound traffic", () => {
    const text = renderCaptureRules(cfg({ includeOutboundIPRanges: [], includeInboundPorts: [] }));
    assert.equal(verdict(text, { ...app, dst: '10.96.1.2', dport: 9080 }), 'ACCEPT');
    assert.equal(verdict(text, { hook: 'PREROUTING', dst: '10.244.0.7', dport: 9080 }), 'ACCEPT');
    assert.ok(!text.includes('-A PREROUTING'));
    assert.match(text, /^-N ISTIO_INBOUND$/m, 'chains exist even when unused, as istio-iptables makes them');
  });

  it('-b list redirects only those inbound ports, per port, ignoring -d', () => {
    const r = lines(renderCaptureRules(cfg({ includeInboundPorts: [32000, 31000] })));
    assert.deepEqual(r.filter((l) => l.startsWith('-A ISTIO_INBOUND') || l.startsWith('-A PREROUTING')), [
      '-A ISTIO_INBOUND -p tcp --dport 15008 -j RETURN',
      '-A PREROUTING -p tcp -j ISTIO_INBOUND',
      '-A ISTIO_INBOUND -p tcp --dport 32000 -j ISTIO_IN_REDIRECT',
      '-A ISTIO_INBOUND -p tcp --dport 31000 -j ISTIO_IN_REDIRECT',
    ]);
    const text = r.join('\n');
    assert.equal(verdict(text, { hook: 'PREROUTING', dst: '10.244.0.7', dport: 31000 }), 'REDIRECT 15006');
    assert.equal(verdict(text, { hook: 'PREROUTING', dst: '10.244.0.7', dport: 9080 }), 'ACCEPT');
  });

  it('-o ports return for TCP and UDP before anything else in ISTIO_OUTPUT; -q ports redirect even with -i ""', () => {
    const text = renderCaptureRules(cfg({ excludeOutboundPorts: [5432, 22], includeOutboundPorts: [3306], includeOutboundIPRanges: [] }));
    const r = lines(text);
    const out = r.filter((l) => l.startsWith('-A ISTIO_OUTPUT'));
    assert.deepEqual(out.slice(0, 4), [
      '-A ISTIO_OUTPUT -p tcp --dport 22 -j RETURN',
      '-A ISTIO_OUTPUT -p udp --dport 22 -j RETURN',
      '-A ISTIO_OUTPUT -p tcp --dport 5432 -j RETURN',
      '-A ISTIO_OUTPUT -p udp --dport 5432 -j RETURN',
    ]);
    assert.equal(out.at(-1), '-A ISTIO_OUTPUT -p tcp --dport 3306 -j ISTIO_REDIRECT');
    assert.equal(verdict(text, { ...app, dst: '10.96.1.2', dport: 3306 }), 'REDIRECT 15001');
    assert.equal(verdict(text, { ...app, dst: '10.96.1.2', dport: 80 }), 'ACCEPT');
    const all = renderCaptureRules(cfg({ excludeOutboundPorts: [5432] }));
    assert.equal(verdict(all, { ...app, dst: '10.96.1.2', dport: 5432 }), 'ACCEPT');
    assert.equal(verdict(all, { ...app, dst: '10.96.1.2', dport: 5433 }), 'REDIRECT 15001');
  });

  it('excludeInterfaces return first in PREROUTING and OUTPUT', () => {
    const r = lines(renderCaptureRules(cfg({ excludeInterfaces: ['not-istio-nic'] })));
    assert.deepEqual(r.slice(5, 8), ['-A PREROUTING -i not-istio-nic -j RETURN', '-A OUTPUT -o not-istio-nic -j RETURN', '-A ISTIO_INBOUND -p tcp --dport 15008 -j RETURN']);
    assert.equal(verdict(r.join('\n'), { ...app, dst: '10.96.1.2', dport: 80, oif: 'not-istio-nic' }), 'ACCEPT');
    assert.equal(verdict(r.join('\n'), { hook: 'PREROUTING', dst: '10.244.0.7', dport: 80, iif: 'not-istio-nic' }), 'ACCEPT');
  });

  it('a loopback range in -i drops the "app over lo is not captured" rules', () => {
    const text = renderCaptureRules(cfg({ includeOutboundIPRanges: ['127.1.2.3/32'] }));
    assert.ok(!text.includes('! --uid-owner'));
    assert.equal(verdict(text, { ...app, dst: '127.1.2.3', dport: 80, oif: 'lo' }), 'REDIRECT 15001');
  });

  it('uses -p, -z, -u and -g (gid defaults to uid)', () => {
    const text = renderCaptureRules(cfg({ proxyPort: 16001, inboundCapturePort: 16006, proxyUid: 2000 }));
    assert.match(text, /^-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 16001$/m);
    assert.match(text, /^-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 16006$/m);
    assert.match(text, /^-A ISTIO_OUTPUT -m owner --uid-owner 2000 -j RETURN$/m);
    assert.match(text, /^-A ISTIO_OUTPUT -m owner --gid-owner 2000 -j RETURN$/m);
    const g = renderCaptureRules(cfg({ proxyUid: 2000, proxyGid: 3000 }));
    assert.match(g, /--gid-owner 3000 -j RETURN$/m);
    assert.equal(verdict(g, { hook: 'OUTPUT', uid: 5, gid: 3000, dst: '10.1.1.1', dport: 80 }), 'ACCEPT');
  });

  it('rejects TPROXY with a clear error and renders nothing for NONE', () => {
    assert.throws(() => renderCaptureRules(cfg({ mode: 'TPROXY' })), (e: unknown) => isMeshError(e) && e.code === 'MESH_ERR_CAPTURE_CONFIG' && /TPROXY is not supported.*REDIRECT/.test(e.message));
    assert.equal(renderCaptureRules(cfg({ mode: 'NONE' })), '');
  });

  it('rejects out-of-range ports and malformed CIDRs', () => {
    assert.throws(() => renderCaptureRules(cfg({ proxyPort: 70000 })), /-p \(proxyPort\).*70000/);
    assert.throws(() => renderCaptureRules(cfg({ excludeOutboundIPRanges: ['10.0.0.0'] })), /-x .*"10.0.0.0"/);
  });
});

describe('captureConfigFromPod', () => {
  it('returns the defaults without annotations (includeInboundPorts "*", as the injection template)', () => {
    assert.deepEqual(captureConfigFromPod(undefined), { ...DEFAULT_CAPTURE_CONFIG });
    assert.equal(captureConfigFromPod({ unrelated: 'x' }).includeInboundPorts, '*');
  });

  it('honours every traffic.sidecar.istio.io annotation', () => {
    const c = captureConfigFromPod({
      [A.includeOutboundIPRanges]: '10.0.0.1/24, 10.96.0.0/12',
      [A.excludeOutboundIPRanges]: '10.96.0.10/32',
      [A.includeInboundPorts]: '9080,9443',
      [A.excludeInboundPorts]: '8081',
      [A.excludeOutboundPorts]: '5432',
      [A.includeOutboundPorts]: '3306',
      [A.excludeInterfaces]: 'eth1,veth+',
      [A.interceptionMode]: 'REDIRECT',
    });
    assert.deepEqual(c.includeOutboundIPRanges, ['10.0.0.1/24', '10.96.0.0/12']);
    assert.deepEqual(c.excludeOutboundIPRanges, ['10.96.0.10/32']);
    assert.deepEqual(c.includeInboundPorts, [9080, 9443]);
    assert.deepEqual(c.excludeInboundPorts, [15090, 15021, 8081, 15020], 'the template keeps 15090,15021 and appends the status port');
    assert.deepEqual(c.excludeOutboundPorts, [5432]);
    assert.deepEqual(c.includeOutboundPorts, [3306]);
    assert.deepEqual(c.excludeInterfaces, ['eth1', 'veth+']);
    const text = renderCaptureRules(c);
    assert.equal(verdict(text, { ...app, dst: '10.96.0.10', dport: 53 }), 'ACCEPT');
    assert.equal(verdict(text, { ...app, dst: '10.96.0.11', dport: 80 }), 'REDIRECT 15001');
    assert.equal(verdict(text, { ...app, dst: '93.184.216.34', dport: 80 }), 'ACCEPT');
  });

  it('"*" and "" are allowed where Istio allows them; status port 0 drops 15020', () => {
    assert.deepEqual(captureConfigFromPod({ [A.includeOutboundIPRanges]: '' }).includeOutboundIPRanges, []);
    assert.equal(captureConfigFromPod({ [A.includeOutboundIPRanges]: '*' }).includeOutboundIPRanges, '*');
    assert.deepEqual(captureConfigFromPod({ [A.includeInboundPorts]: '' }).includeInboundPorts, []);
    assert.deepEqual(captureConfigFromPod({ [A.statusPort]: '0' }).excludeInboundPorts, [15090, 15021]);
    assert.deepEqual(captureConfigFromPod({ [A.statusPort]: '15030' }).excludeInboundPorts, [15090, 15021, 15030]);
    assert.equal(captureConfigFromPod({ [A.interceptionMode]: 'NONE' }).mode, 'NONE');
  });

  it('names the annotation and what is allowed when a value is invalid', () => {
    const cases: [string, string, RegExp][] = [
      [A.includeOutboundIPRanges, '10.0.0.0', /includeOutboundIPRanges.*"10.0.0.0".*allowed: "\*" or a comma-separated list of CIDRs/],
      [A.excludeOutboundIPRanges, '*', /excludeOutboundIPRanges.*allowed: a comma-separated list of CIDRs/],
      [A.includeInboundPorts, '80,http', /includeInboundPorts.*allowed: "\*" or a comma-separated list of ports/],
      [A.excludeInboundPorts, '99999', /excludeInboundPorts.*99999 is out of range/],
      [A.excludeOutboundPorts, '80,', /excludeOutboundPorts.*empty entry/],
      [A.includeOutboundPorts, 'x', /includeOutboundPorts/],
      [A.excludeInterfaces, 'a-name-longer-than-15', /excludeInterfaces.*interface names/],
      [A.interceptionMode, 'redirect', /interceptionMode.*REDIRECT, TPROXY or NONE/],
    ];
    for (const [name, value, re] of cases) {
      assert.throws(() => captureConfigFromPod({ [name]: value }), (e: unknown) => {
        assert.ok(isMeshError(e) && e.code === 'MESH_ERR_CAPTURE_CONFIG', `${name}: ${String(e)}`);
        assert.match(e.message, re);
        assert.ok(e.message.includes(`annotation ${name}`), e.message);
        return true;
      });
    }
  });
});
