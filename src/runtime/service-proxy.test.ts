import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isMeshError } from '../common/errors.ts';
import { loadString } from '../config/loader.ts';
import { buildRegistry } from '../registry/registry.ts';
import type { Registry } from '../registry/types.ts';
import { autoAllocatedAddresses } from './dns.ts';
import { cleanupServiceRules, forwardGuardState, planServiceRules, renderServiceRules, serviceCleanupScript, syncServiceRules, type HostTables, type ServiceProxyOptions } from './service-proxy.ts';

const OPTS: ServiceProxyOptions = { podCIDR: '10.244.0.0/16', serviceCIDR: '10.96.0.0/16', bridge: 'tsmesh0', chainPrefix: 'TSMESH' };
const EMPTY: HostTables = {
  nat: '*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\nCOMMIT\n',
  filter: '*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n',
};

const pod = (name: string, ns: string, app: string, ip: string, ready = true): string => `
apiVersion: v1
kind: Pod
metadata: { name: ${name}, namespace: ${ns}, labels: { app: ${app} } }
spec: { containers: [{ name: app, image: x, ports: [{ name: http, containerPort: 8080 }] }] }
status: { podIP: ${ip}${ready ? '' : ', conditions: [{ type: Ready, status: "False" }]'} }
---`;

const MANIFESTS = [
  pod('web-1', 'shop', 'web', '10.244.1.2'),
  pod('web-2', 'shop', 'web', '10.244.1.3'),
  pod('web-3', 'shop', 'web', '10.244.1.4'),
  pod('web-4', 'shop', 'web', '10.244.1.5', false),
  pod('dns-1', 'shop', 'dns', '10.244.1.9'),
  `
apiVersion: v1
kind: Service
metadata: { name: web, namespace: shop }
spec: { clusterIP: 10.96.0.20, selector: { app: web }, ports: [{ name: http, port: 80, targetPort: http }, { name: admin, port: 9000, targetPort: 9001 }] }
---
apiVersion: v1
kind: Service
metadata: { name: dns, namespace: shop }
spec: { clusterIP: 10.96.0.53, selector: { app: dns }, ports: [{ name: dns, port: 53, protocol: UDP }] }
---
apiVersion: v1
kind: Service
metadata: { name: empty, namespace: shop }
spec: { clusterIP: 10.96.0.30, selector: { app: nothing }, ports: [{ name: http, port: 80 }] }
---
apiVersion: v1
kind: Service
metadata: { name: headless, namespace: shop }
spec: { clusterIP: None, selector: { app: web }, ports: [{ name: http, port: 80 }] }
---
apiVersion: v1
kind: Service
metadata: { name: ext, namespace: shop }
spec: { type: ExternalName, externalName: httpbin.org }
---
apiVersion: v1
kind: Service
metadata: { name: manual, namespace: shop }
spec: { clusterIP: 10.96.0.40, ports: [{ name: http, port: 80 }] }
---
apiVersion: v1
kind: Endpoints
metadata: { name: manual, namespace: shop }
subsets: [{ addresses: [{ ip: 10.244.1.2 }, { ip: 192.0.2.10 }, { ip: 10.244.0.1 }], ports: [{ name: http, port: 8080 }] }]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: legacy, namespace: shop }
spec: { hosts: [legacy.internal], addresses: [10.96.5.5], ports: [{ number: 5432, name: tcp, protocol: TCP }], resolution: STATIC, endpoints: [{ address: 10.244.1.3 }] }
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: auto, namespace: shop }
spec: { hosts: [auto.internal], ports: [{ number: 80, name: http, protocol: HTTP }], resolution: STATIC, endpoints: [{ address: 10.244.1.4, ports: { http: 8080 } }] }
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: httpbin, namespace: shop }
spec: { hosts: [httpbin.org], addresses: [10.96.6.6], ports: [{ number: 80, name: http, protocol: HTTP }], resolution: DNS }
`,
].join('\n');

function registry(text = MANIFESTS): Registry {
  const { resources, diagnostics } = loadString(text, 'service-proxy.test.yaml');
  assert.deepEqual(diagnostics.filter((d) => d.severity === 'error'), []);
  return buildRegistry(resources);
}

const usage = (e: unknown): boolean => isMeshError(e) && e.code === 'MESH_ERR_RUNTIME_SERVICES';

describe('planServiceRules (pure)', () => {
  const reg = registry();
  const plan = planServiceRules(reg, OPTS);
  const byLabel = new Map(plan.ports.map((p) => [p.label, p]));

  it('serves ClusterIP ports over ready endpoints at their target ports', () => {
    const http = byLabel.get('shop/web:http');
    assert.ok(http);
    assert.deepEqual(http.addresses, ['10.96.0.20']);
    assert.equal(http.protocol, 'tcp');
    assert.deepEqual(http.endpoints.map((e) => `${e.address}:${e.port}`), ['10.244.1.2:8080', '10.244.1.3:8080', '10.244.1.4:8080'], 'named targetPort resolved, the unready pod left out');
    assert.deepEqual(byLabel.get('shop/web:admin')?.endpoints.map((e) => e.port), [9001, 9001, 9001]);
    assert.equal(byLabel.get('shop/dns:dns')?.protocol, 'udp');
    assert.deepEqual(byLabel.get('shop/empty:http')?.endpoints, []);
  });

  it('leaves out headless and ExternalName services and ServiceEntries the sidecar resolves', () => {
    assert.ok(![...byLabel.keys()].some((l) => l.startsWith('shop/headless') || l.startsWith('shop/ext:') || l.includes('httpbin.org')));
  });

  it('never DNATs to an address outside the pod CIDR unless it is a local endpoint', () => {
    assert.deepEqual(byLabel.get('shop/manual:http')?.endpoints.map((e) => e.address), ['10.244.0.1', '10.244.1.2'], 'the bridge address is inside the pod CIDR');
    assert.ok(plan.skipped.some((s) => s.includes('192.0.2.10:8080') && s.includes('outside the pod CIDR')));
    const strict = planServiceRules(reg, { ...OPTS, podCIDR: '10.244.1.0/24' });
    assert.deepEqual(strict.ports.find((p) => p.label === 'shop/manual:http')?.endpoints.map((e) => e.address), ['10.244.1.2']);
    const local = planServiceRules(reg, { ...OPTS, podCIDR: '10.244.1.0/24', localEndpoints: ['10.244.0.1'] });
    assert.deepEqual(local.ports.find((p) => p.label === 'shop/manual:http')?.endpoints.map((e) => e.address), ['10.244.0.1', '10.244.1.2']);
  });

  it('serves STATIC ServiceEntries at their addresses, or at the address the DNS auto-allocated', () => {
    const legacy = byLabel.get('shop/legacy legacy.internal:tcp');
    assert.deepEqual(legacy?.addresses, ['10.96.5.5']);
    assert.deepEqual(legacy?.endpoints.map((e) => `${e.address}:${e.port}`), ['10.244.1.3:5432']);
    const auto = byLabel.get('shop/auto auto.internal:http');
    assert.deepEqual(auto?.addresses, [autoAllocatedAddresses(reg, OPTS.serviceCIDR).get('auto.internal')]);
    assert.deepEqual(auto?.endpoints.map((e) => `${e.address}:${e.port}`), ['10.244.1.4:8080']);
  });

  it('names chains deterministically within 28 characters', () => {
    const again = planServiceRules(registry(), OPTS);
    assert.deepEqual(again.ports.map((p) => p.chain), plan.ports.map((p) => p.chain));
    for (const p of plan.ports) {
      assert.match(p.chain, /^TSMESH-SVC-[A-Z2-7]{16}$/);
      for (const e of p.endpoints) assert.match(e.chain, /^TSMESH-SEP-[A-Z2-7]{16}$/);
    }
    const long = planServiceRules(reg, { ...OPTS, chainPrefix: 'TSMT123456789' });
    for (const p of long.ports) assert.ok(p.chain.length <= 28, p.chain);
    assert.equal(new Set(plan.ports.map((p) => p.chain)).size, plan.ports.length);
  });

  it('rejects bad settings with MESH_ERR_RUNTIME_SERVICES', () => {
    assert.throws(() => planServiceRules(reg, { ...OPTS, chainPrefix: 'tsmesh-x' }), usage);
    assert.throws(() => planServiceRules(reg, { ...OPTS, chainPrefix: 'A' }), usage);
    assert.throws(() => planServiceRules(reg, { ...OPTS, serviceCIDR: '10.244.5.0/24' }), usage, 'overlap');
    assert.throws(() => planServiceRules(reg, { ...OPTS, podCIDR: 'nope' }), usage);
    assert.throws(() => planServiceRules(reg, { ...OPTS, bridge: 'a bridge' }), usage);
    assert.throws(() => planServiceRules(reg, { ...OPTS, masqueradeMark: 3 }), usage);
  });
});

describe('renderServiceRules (pure)', () => {
  const reg = registry();
  const plan = planServiceRules(reg, OPTS);
  const script = renderServiceRules(plan, OPTS, EMPTY, '0');
  const lines = script.split('\n');
  const web = plan.ports.find((p) => p.label === 'shop/web:http');
  assert.ok(web);

  it('writes filter then nat, each one transaction', () => {
    assert.deepEqual(lines.filter((l) => l.startsWith('*') || l === 'COMMIT'), ['*filter', 'COMMIT', '*nat', 'COMMIT']);
  });

  it("jumps from PREROUTING (pods' bridge), OUTPUT (service range) and POSTROUTING", () => {
    assert.ok(lines.includes('-I PREROUTING 1 -i tsmesh0 -m comment --comment "TSMESH service portals for pods" -j TSMESH-SERVICES'));
    assert.ok(lines.includes('-I OUTPUT 1 -d 10.96.0.0/16 -m comment --comment "TSMESH service portals for this host" -j TSMESH-SERVICES'));
    assert.ok(lines.some((l) => l.startsWith('-I POSTROUTING 1 ') && l.endsWith('-j TSMESH-POSTROUTING')));
  });

  it('spreads a service port over its endpoints with kube-proxy probabilities, then DNATs', () => {
    assert.ok(lines.includes(`-A TSMESH-SERVICES -d 10.96.0.20/32 -m comment --comment "shop/web:http service address" -p tcp -m tcp --dport 80 -j ${web.chain}`));
    const picks = lines.filter((l) => l.startsWith(`-A ${web.chain} `) && l.includes('-SEP-'));
    assert.equal(picks.length, 3);
    assert.match(picks[0] ?? '', /--probability 0\.3333333333 -j TSMESH-SEP-/);
    assert.match(picks[1] ?? '', /--probability 0\.5000000000 -j TSMESH-SEP-/);
    assert.doesNotMatch(picks[2] ?? '', /statistic/);
    assert.ok(lines.includes(`-A ${web.chain} -m comment --comment "shop/web:http" -j TSMESH-MARK-MASQ`), 'service traffic is marked for masquerade');
    const first = web.endpoints[0];
    assert.ok(first && lines.includes(`-A ${first.chain} -m comment --comment "shop/web:http" -p tcp -j DNAT --to-destination 10.244.1.2:8080`));
    assert.ok(lines.some((l) => l.includes('-p udp -m udp --dport 53')));
  });

  it('rejects ports without endpoints in the filter table', () => {
    assert.ok(lines.includes('-A TSMESH-SERVICES -d 10.96.0.30/32 -m comment --comment "shop/empty:http has no endpoints" -p tcp -m tcp --dport 80 -j REJECT --reject-with tcp-reset'));
    assert.ok(!lines.some((l) => l.includes('10.96.0.30') && l.includes('DNAT')));
  });

  it('installs the guard: pod traffic only to pods, forwarding state recorded', () => {
    assert.ok(lines.includes('-I FORWARD 1 -m comment --comment "TSMESH pod traffic stays on this machine (bridge tsmesh0 forwarding was 0)" -j TSMESH-FORWARD'));
    const fwd = lines.filter((l) => l.startsWith('-A TSMESH-FORWARD '));
    const drop = fwd.findIndex((l) => l.startsWith('-A TSMESH-FORWARD -s 10.244.0.0/16 ! -d 10.244.0.0/16 ') && l.endsWith('-j DROP'));
    assert.ok(drop > 0);
    assert.ok(fwd.findIndex((l) => l.includes('-j ACCEPT')) > drop, 'nothing is accepted before the drop');
    assert.ok(fwd.slice(0, drop).every((l) => l.includes('REJECT') || l.endsWith('-j TSMESH-SERVICES')), 'only rejects (answered by the host) come before it');
    assert.deepEqual(forwardGuardState(script.replace(/^-I FORWARD 1 /m, '-A FORWARD '), 'TSMESH'), { bridge: 'tsmesh0', was: '0' });
  });

  it('on re-sync replaces the jumps, keeps the recorded forwarding value and deletes chains no longer used', () => {
    const staleSep = 'TSMESH-SEP-AAAAAAAAAAAAAAAA';
    const current: HostTables = {
      nat: EMPTY.nat.replace('COMMIT', [':TSMESH-SERVICES - [0:0]', `:${staleSep} - [0:0]`, '-A PREROUTING -i tsmesh0 -m comment --comment "TSMESH service portals for pods" -j TSMESH-SERVICES', 'COMMIT'].join('\n')),
      filter: EMPTY.filter.replace('COMMIT', [':TSMESH-FORWARD - [0:0]', '-A FORWARD -m comment --comment "TSMESH pod traffic stays on this machine (bridge tsmesh0 forwarding was 0)" -j TSMESH-FORWARD', 'COMMIT'].join('\n')),
    };
    const again = renderServiceRules(plan, OPTS, current, '1').split('\n');
    assert.ok(again.includes('-D PREROUTING -i tsmesh0 -m comment --comment "TSMESH service portals for pods" -j TSMESH-SERVICES'));
    assert.ok(again.includes('-D FORWARD -m comment --comment "TSMESH pod traffic stays on this machine (bridge tsmesh0 forwarding was 0)" -j TSMESH-FORWARD'));
    assert.ok(again.some((l) => l.startsWith('-I FORWARD 1 ') && l.includes('forwarding was 0')), 'the value from before tsmesh, not the current 1');
    assert.ok(again.includes(`:${staleSep} - [0:0]`) && again.includes(`-X ${staleSep}`));
    assert.ok(again.indexOf(`-X ${staleSep}`) > again.lastIndexOf(`:${staleSep} - [0:0]`));
  });

  it('a cleanup script removes exactly the prefix\'s chains and jumps', () => {
    const saved: HostTables = {
      nat: EMPTY.nat.replace('COMMIT', [':TSMESH-SERVICES - [0:0]', ':TSMESH2-SERVICES - [0:0]', ':KUBE-SERVICES - [0:0]', '-A PREROUTING -i tsmesh0 -m comment --comment "x" -j TSMESH-SERVICES', '-A PREROUTING -j TSMESH2-SERVICES', '-A OUTPUT -j KUBE-SERVICES', 'COMMIT'].join('\n')),
      filter: EMPTY.filter,
    };
    assert.equal(serviceCleanupScript(saved, 'TSMESH'), '*nat\n-D PREROUTING -i tsmesh0 -m comment --comment "x" -j TSMESH-SERVICES\n-F TSMESH-SERVICES\n-X TSMESH-SERVICES\nCOMMIT\n');
    assert.equal(serviceCleanupScript(EMPTY, 'TSMESH'), '');
    assert.throws(() => serviceCleanupScript(EMPTY, 'T'), usage);
  });
});

describe('syncServiceRules / cleanupServiceRules argument checks', () => {
  it('reject (not throw) bad settings before touching the host', async () => {
    const reg = registry();
    await assert.rejects(syncServiceRules(reg, { ...OPTS, chainPrefix: 'bad-prefix' }), usage);
    await assert.rejects(syncServiceRules(reg, { ...OPTS, serviceCIDR: OPTS.podCIDR }), usage);
    await assert.rejects(cleanupServiceRules('x'), usage);
  });
});
