// DNS clusters with a fake resolver and a fake clock: STRICT_DNS makes a host of every address and
// follows changes every dns_refresh_rate (V4_ONLY asks for IPv4), a failed lookup keeps the last
// addresses, LOGICAL_DNS uses the first address, and a request reaches a server through a name.

import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { FakeClock } from './clock.ts';
import { createClusterManager, type Resolver, type UpstreamClusterManager } from './cluster-manager.ts';
import { endpoint, get, http1Server, readBody, until, type TestServer } from './test-support.ts';

const managers: UpstreamClusterManager[] = [];
const servers: TestServer[] = [];
after(async () => {
  await Promise.all(managers.map((m) => m.close()));
  await Promise.all(servers.map((s) => s.close()));
});

function fakeDns(answers: Record<string, string[] | Error>): { resolver: Resolver; calls: Array<[string, number]>; answers: Record<string, string[] | Error> } {
  const calls: Array<[string, number]> = [];
  return {
    calls,
    answers,
    resolver: async (name, family) => {
      calls.push([name, family]);
      const a = answers[name];
      if (!a) throw new Error(`ENOTFOUND ${name}`);
      if (a instanceof Error) throw a;
      return a;
    },
  };
}

function dnsCluster(name: string, type: 'STRICT_DNS' | 'LOGICAL_DNS', eps: Array<Record<string, unknown>>, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { name, type, connect_timeout: '1s', dns_lookup_family: 'V4_ONLY', load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: eps }] }, ...extra };
}

const keys = (m: UpstreamClusterManager, name: string): string[] => m.get(name)!.hosts.map((h) => h.key).sort();

describe('DNS clusters', () => {
  it('STRICT_DNS: every address is a host, re-resolved every dns_refresh_rate; a failure keeps the last answer', async () => {
    const clock = new FakeClock();
    const dns = fakeDns({ 'api.example.com': ['10.0.0.1', '10.0.0.2'] });
    const m = createClusterManager({ clock, dns: dns.resolver });
    managers.push(m);
    m.setClusters([dnsCluster('ext', 'STRICT_DNS', [endpoint('api.example.com', 443), endpoint('10.9.9.9', 80)], { dns_refresh_rate: '5s' })]);
    await m.ready();
    assert.deepEqual(keys(m, 'ext'), ['10.0.0.1:443', '10.0.0.2:443', '10.9.9.9:80']);
    assert.deepEqual(dns.calls, [['api.example.com', 4]]);
    assert.equal(m.describe()[0]?.hosts.find((h) => h.key === '10.0.0.1:443')?.hostname, 'api.example.com');
    const kept = m.get('ext')!.hosts.find((h) => h.key === '10.0.0.2:443');

    dns.answers['api.example.com'] = ['10.0.0.2', '10.0.0.3'];
    clock.advance(4999);
    assert.equal(dns.calls.length, 1);
    clock.advance(1);
    await until(() => keys(m, 'ext').includes('10.0.0.3:443'));
    assert.deepEqual(keys(m, 'ext'), ['10.0.0.2:443', '10.0.0.3:443', '10.9.9.9:80']);
    assert.equal(m.get('ext')!.hosts.find((h) => h.key === '10.0.0.2:443'), kept, 'an address that stays keeps its host (and pool)');

    dns.answers['api.example.com'] = new Error('SERVFAIL');
    clock.advance(5000);
    await until(() => dns.calls.length === 3);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(keys(m, 'ext'), ['10.0.0.2:443', '10.0.0.3:443', '10.9.9.9:80']);
  });

  it('LOGICAL_DNS uses the first address only', async () => {
    const dns = fakeDns({ 'db.example.com': ['10.1.0.7', '10.1.0.8'] });
    const m = createClusterManager({ clock: new FakeClock(), dns: dns.resolver });
    managers.push(m);
    m.setClusters([dnsCluster('db', 'LOGICAL_DNS', [endpoint('db.example.com', 5432)])]);
    await m.ready();
    assert.deepEqual(keys(m, 'db'), ['10.1.0.7:5432']);
  });

  it('a request reaches the server its name resolves to', async () => {
    const s = await http1Server((req, res) => res.end(`host header ${req.headers.host}`));
    servers.push(s);
    const m = createClusterManager({ dns: fakeDns({ 'app.test': ['127.0.0.1'] }).resolver });
    managers.push(m);
    m.setClusters([dnsCluster('app', 'STRICT_DNS', [endpoint('app.test', s.port)])]);
    await m.ready();
    const c = m.get('app')!;
    const res = await c.request(c.chooseHost({})!, get('/', { host: 'app.test' }));
    assert.equal(await readBody(res), 'host header app.test');
  });
});
