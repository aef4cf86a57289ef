import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { Resolver } from 'node:dns/promises';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { isMeshError } from '../common/errors.ts';
import { loadString } from '../config/loader.ts';
import { buildRegistry } from '../registry/registry.ts';
import type { Registry } from '../registry/types.ts';
import { findTool } from './netns.ts';
import { QTYPE, RCODE, answerQuery, autoAllocatedAddresses, buildDnsView, parseQuery, resolvConf, startMeshDns, type DnsView, type MeshDns } from './dns.ts';

const MANIFESTS = `
apiVersion: v1
kind: Pod
metadata: { name: reviews-v1, namespace: bookinfo, labels: { app: reviews, version: v1 } }
spec: { containers: [{ name: app, image: reviews }] }
status: { podIP: 10.244.1.11 }
---
apiVersion: v1
kind: Pod
metadata: { name: reviews-v2, namespace: bookinfo, labels: { app: reviews, version: v2 } }
spec: { containers: [{ name: app, image: reviews }] }
status: { podIP: 10.244.1.12 }
---
apiVersion: v1
kind: Service
metadata: { name: reviews, namespace: bookinfo }
spec: { clusterIP: 10.96.0.50, selector: { app: reviews }, ports: [{ name: http, port: 9080 }] }
---
apiVersion: v1
kind: Pod
metadata: { name: db-0, namespace: data, labels: { app: db } }
spec: { hostname: db-0, subdomain: db, containers: [{ name: db, image: db }] }
status: { podIP: 10.244.2.20 }
---
apiVersion: v1
kind: Pod
metadata: { name: db-1, namespace: data, labels: { app: db } }
spec: { hostname: db-1, subdomain: db, containers: [{ name: db, image: db }] }
status: { podIP: 10.244.2.21, conditions: [{ type: Ready, status: "False" }] }
---
apiVersion: v1
kind: Service
metadata: { name: db, namespace: data }
spec: { clusterIP: None, selector: { app: db }, ports: [{ name: tcp, port: 5432 }] }
---
apiVersion: v1
kind: Service
metadata: { name: ext, namespace: bookinfo }
spec: { type: ExternalName, externalName: httpbin.org }
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: httpbin, namespace: bookinfo }
spec: { hosts: [httpbin.org], ports: [{ number: 80, name: http, protocol: HTTP }], resolution: DNS, location: MESH_EXTERNAL }
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: partner, namespace: bookinfo }
spec: { hosts: [api.partner.test], addresses: [10.96.7.7, 192.168.0.0/16], ports: [{ number: 443, name: tls, protocol: TLS }], resolution: STATIC, endpoints: [{ address: 10.244.1.11 }] }
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: example, namespace: bookinfo }
spec: { hosts: [api.example.com, other.example.com], ports: [{ number: 80, name: http, protocol: HTTP }], resolution: DNS }
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: passthrough, namespace: bookinfo }
spec: { hosts: [none.example.com, "*.wild.test"], ports: [{ number: 80, name: http, protocol: HTTP }], resolution: NONE }
`;

function registry(text = MANIFESTS): Registry {
  const { resources, diagnostics } = loadString(text, 'dns.test.yaml');
  assert.deepEqual(diagnostics.filter((d) => d.severity === 'error'), []);
  return buildRegistry(resources);
}

const EXTERNALS = new Map([['httpbin.org', '10.244.9.9'], ['Only-External.test.', '10.244.9.10']]);

/** A query packet built by hand: id, name, type, optional EDNS OPT record. */
function query(name: string, qtype: number, opts: { id?: number; edns?: number; flags?: number; qdcount?: number } = {}): Buffer {
  const h = Buffer.alloc(12);
  h.writeUInt16BE(opts.id ?? 0x1234, 0);
  h.writeUInt16BE(opts.flags ?? 0x0100, 2);
  h.writeUInt16BE(opts.qdcount ?? 1, 4);
  h.writeUInt16BE(opts.edns !== undefined ? 1 : 0, 10);
  const labels = name.split('.').filter(Boolean).flatMap((l) => [Buffer.from([l.length]), Buffer.from(l)]);
  const tail = Buffer.alloc(4);
  tail.writeUInt16BE(qtype, 0);
  tail.writeUInt16BE(1, 2);
  const parts = [h, ...labels, Buffer.from([0]), tail];
  if (opts.edns !== undefined) {
    const opt = Buffer.alloc(11);
    opt.writeUInt16BE(QTYPE.OPT, 1);
    opt.writeUInt16BE(opts.edns, 3);
    parts.push(opt);
  }
  return Buffer.concat(parts);
}

interface Decoded { id: number; rcode: number; aa: boolean; tc: boolean; answers: Array<{ type: number; ttl: number; data: string }>; arcount: number }

/** Decodes our own answers (names in rdata are uncompressed; answer names may be pointers). */
function decode(buf: Buffer): Decoded {
  const skipName = (off: number): number => {
    for (;;) {
      const len = buf[off] ?? 0;
      if (len === 0) return off + 1;
      if ((len & 0xc0) === 0xc0) return off + 2;
      off += 1 + len;
    }
  };
  const readName = (off: number): string => {
    const labels: string[] = [];
    for (;;) {
      const len = buf[off] ?? 0;
      if (len === 0) return labels.join('.');
      labels.push(buf.toString('latin1', off + 1, off + 1 + len));
      off += 1 + len;
    }
  };
  const flags = buf.readUInt16BE(2);
  let off = skipName(12) + 4;
  const answers: Decoded['answers'] = [];
  for (let i = 0; i < buf.readUInt16BE(6); i++) {
    off = skipName(off);
    const type = buf.readUInt16BE(off);
    const ttl = buf.readUInt32BE(off + 4);
    const len = buf.readUInt16BE(off + 8);
    const rdata = buf.subarray(off + 10, off + 10 + len);
    answers.push({ type, ttl, data: type === QTYPE.A ? [...rdata].join('.') : readName(off + 10) });
    off += 10 + len;
  }
  return { id: buf.readUInt16BE(0), rcode: flags & 0xf, aa: (flags & 0x0400) !== 0, tc: (flags & 0x0200) !== 0, answers, arcount: buf.readUInt16BE(10) };
}

function ask(view: DnsView, name: string, qtype: number = QTYPE.A): Decoded {
  const out = answerQuery(query(name, qtype), view);
  assert.ok(out, `an answer for ${name}`);
  return decode(out);
}
const aOf = (d: Decoded): string[] => d.answers.filter((a) => a.type === QTYPE.A).map((a) => a.data).sort();

describe('buildDnsView (pure)', () => {
  const reg = registry();
  const view = buildDnsView(reg, EXTERNALS);

  it('maps service names to ClusterIPs and pods to their IPs', () => {
    assert.deepEqual(view.names.get('reviews.bookinfo.svc.cluster.local')?.a, ['10.96.0.50']);
    assert.deepEqual(view.names.get('10-244-1-11.bookinfo.pod.cluster.local')?.a, ['10.244.1.11']);
    assert.equal(view.reverse.get('10.96.0.50'), 'reviews.bookinfo.svc.cluster.local');
    assert.equal(view.reverse.get('10.244.1.12'), '10-244-1-12.bookinfo.pod.cluster.local');
  });

  it('answers headless services with their ready pods, and their pods by hostname', () => {
    assert.deepEqual(view.names.get('db.data.svc.cluster.local')?.a, ['10.244.2.20']);
    assert.deepEqual(view.names.get('db-0.db.data.svc.cluster.local')?.a, ['10.244.2.20']);
    assert.equal(view.names.get('db-1.db.data.svc.cluster.local'), undefined, 'a pod that is not ready is not published');
  });

  it('gives ServiceEntry hosts their addresses, else the external test host, else an auto-allocated service address', () => {
    assert.deepEqual(view.names.get('api.partner.test')?.a, ['10.96.7.7'], 'only plain IPv4 addresses, not CIDRs');
    assert.deepEqual(view.names.get('httpbin.org')?.a, ['10.244.9.9']);
    assert.deepEqual(view.names.get('only-external.test')?.a, ['10.244.9.10'], 'external test hosts resolve without a ServiceEntry');
    const auto = autoAllocatedAddresses(reg);
    const a = auto.get('api.example.com');
    const b = auto.get('other.example.com');
    assert.ok(a && b && a !== b, 'distinct addresses');
    for (const ip of [a, b]) assert.match(ip, /^10\.96\.\d+\.\d+$/);
    assert.ok(![...reg.services.flatMap((s) => s.addresses)].includes(a), 'never an address a service already has');
    assert.deepEqual(view.names.get('api.example.com')?.a, [a]);
    assert.deepEqual(autoAllocatedAddresses(registry()).get('api.example.com'), a, 'deterministic across builds');
    assert.equal(auto.has('httpbin.org'), true, 'allocation does not depend on the external hosts (the service proxy computes the same map)');
    assert.deepEqual(view.names.get('none.example.com')?.a, [], 'resolution NONE without addresses: the name exists, no address');
    assert.equal(view.names.get('a.wild.test'), undefined);
    assert.equal(view.names.get('*.wild.test'), undefined);
  });

  it('takes auto-allocated addresses from the given service range', () => {
    const v = buildDnsView(reg, {}, { serviceCIDR: '10.251.3.0/24' });
    assert.match(v.names.get('api.example.com')?.a[0] ?? '', /^10\.251\.3\.\d+$/);
    assert.deepEqual(v.names.get('httpbin.org')?.a.length, 1);
  });

  it('makes ExternalName services aliases', () => {
    assert.equal(view.names.get('ext.bookinfo.svc.cluster.local')?.cname, 'httpbin.org');
  });

  it('writes the resolv.conf Kubernetes gives a pod', () => {
    assert.equal(resolvConf('bookinfo', '10.244.0.1'), 'nameserver 10.244.0.1\nsearch bookinfo.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n');
  });
});

describe('answerQuery (wire format, pure)', () => {
  const view = buildDnsView(registry(), EXTERNALS);

  it('answers A with the id, the question echoed, AA and a 5 s TTL; names are case-insensitive', () => {
    const d = ask(view, 'Reviews.Bookinfo.SVC.cluster.local');
    assert.equal(d.id, 0x1234);
    assert.equal(d.rcode, RCODE.NOERROR);
    assert.ok(d.aa);
    assert.deepEqual(aOf(d), ['10.96.0.50']);
    assert.equal(d.answers[0]?.ttl, 5);
    assert.deepEqual(aOf(ask(view, 'reviews.bookinfo.svc.cluster.local.')), ['10.96.0.50']);
  });

  it('NODATA for AAAA and other types of known names, NXDOMAIN for unknown ones', () => {
    for (const t of [QTYPE.AAAA, QTYPE.MX, QTYPE.TXT, QTYPE.SRV]) {
      const d = ask(view, 'reviews.bookinfo.svc.cluster.local', t);
      assert.equal(d.rcode, RCODE.NOERROR);
      assert.equal(d.answers.length, 0);
    }
    assert.equal(ask(view, 'reviews.svc.cluster.local').rcode, RCODE.NXDOMAIN);
    assert.equal(ask(view, 'example.org').rcode, RCODE.NXDOMAIN, 'no upstream: names outside the mesh do not exist');
    assert.equal(ask(view, 'example.org', QTYPE.AAAA).rcode, RCODE.NXDOMAIN);
  });

  it('answers CNAME plus the target address for ExternalName services', () => {
    const d = ask(view, 'ext.bookinfo.svc.cluster.local');
    assert.deepEqual(d.answers.map((a) => [a.type, a.data]), [[QTYPE.CNAME, 'httpbin.org'], [QTYPE.A, '10.244.9.9']]);
  });

  it('answers PTR for ClusterIPs and pods', () => {
    assert.deepEqual(ask(view, '50.0.96.10.in-addr.arpa', QTYPE.PTR).answers.map((a) => a.data), ['reviews.bookinfo.svc.cluster.local']);
    assert.equal(ask(view, '1.2.3.4.in-addr.arpa', QTYPE.PTR).rcode, RCODE.NXDOMAIN);
  });

  it('drops malformed packets and responses, FORMERR for several questions, NOTIMP for other opcodes', () => {
    const good = query('reviews.bookinfo.svc.cluster.local', QTYPE.A);
    assert.equal(answerQuery(Buffer.alloc(0), view), undefined);
    assert.equal(answerQuery(good.subarray(0, 11), view), undefined);
    assert.equal(answerQuery(good.subarray(0, good.length - 3), view), undefined, 'truncated question');
    const loop = Buffer.concat([good.subarray(0, 12), Buffer.from([0xc0, 12, 0, 1, 0, 1])]);
    assert.equal(answerQuery(loop, view), undefined, 'compression loop');
    const badLabel = Buffer.concat([good.subarray(0, 12), Buffer.from([0x80, 0, 0, 1, 0, 1])]);
    assert.equal(answerQuery(badLabel, view), undefined);
    const response = Buffer.from(good);
    response.writeUInt16BE(0x8100, 2);
    assert.equal(answerQuery(response, view), undefined, 'never answers a response');
    for (let i = 0; i < 200; i++) {
      const junk = Buffer.from(Array.from({ length: (i % 60) + 1 }, (_, j) => (i * 31 + j * 17) & 255));
      answerQuery(junk, view); // must not throw
    }
    assert.equal(decode(answerQuery(query('a.b', QTYPE.A, { qdcount: 2 }), view) ?? Buffer.alloc(12)).rcode, RCODE.FORMERR);
    assert.equal(decode(answerQuery(query('a.b', QTYPE.A, { flags: 0x1000 }), view) ?? Buffer.alloc(12)).rcode, RCODE.NOTIMP);
    assert.equal(decode(answerQuery(good, undefined) ?? Buffer.alloc(12)).rcode, RCODE.SERVFAIL, 'no view: SERVFAIL');
  });

  it('truncates over 512 bytes (TC) unless EDNS allows more, and echoes OPT', () => {
    const many = Array.from({ length: 40 }, (_, i) => `10.244.3.${i + 2}`);
    const big: DnsView = { domain: 'cluster.local', names: new Map([['big.ns.svc.cluster.local', { a: many }]]), reverse: new Map() };
    const udp = decode(answerQuery(query('big.ns.svc.cluster.local', QTYPE.A), big) ?? Buffer.alloc(12));
    assert.ok(udp.tc);
    assert.equal(udp.answers.length, 0);
    const tcp = decode(answerQuery(query('big.ns.svc.cluster.local', QTYPE.A), big, 65535) ?? Buffer.alloc(12));
    assert.equal(tcp.answers.length, 40);
    const edns = decode(answerQuery(query('big.ns.svc.cluster.local', QTYPE.A, { edns: 4096 }), big) ?? Buffer.alloc(12));
    assert.equal(edns.tc, false);
    assert.equal(edns.answers.length, 40);
    assert.equal(edns.arcount, 1, 'OPT echoed');
    const parsed = parseQuery(query('x.y', QTYPE.A, { edns: 1400 }));
    assert.ok(parsed && !('formErr' in parsed) && parsed.ednsUdpSize === 1400);
  });
});

describe('startMeshDns (real sockets on 127.0.0.1)', () => {
  let server: MeshDns;
  let view = buildDnsView(registry(), EXTERNALS);
  const resolver = new Resolver({ timeout: 2000, tries: 1 });
  const errors: Error[] = [];

  before(async () => {
    server = await startMeshDns({ address: '127.0.0.1', port: 0, records: () => view, onError: (e) => errors.push(e) });
    resolver.setServers([`127.0.0.1:${server.port}`]);
  });
  after(async () => {
    await server.close();
    await server.close(); // idempotent
  });

  it("answers Node's resolver (c-ares): A, NODATA for AAAA, NXDOMAIN outside the mesh", async () => {
    assert.deepEqual(await resolver.resolve4('reviews.bookinfo.svc.cluster.local'), ['10.96.0.50']);
    assert.deepEqual(await resolver.resolve4('httpbin.org'), ['10.244.9.9']);
    const ttl = await resolver.resolve4('httpbin.org', { ttl: true });
    assert.equal(ttl[0]?.ttl, 5);
    await assert.rejects(resolver.resolve6('reviews.bookinfo.svc.cluster.local'), { code: 'ENODATA' });
    await assert.rejects(resolver.resolve4('www.example.org'), { code: 'ENOTFOUND' });
    await assert.rejects(resolver.resolveMx('reviews.bookinfo.svc.cluster.local'), { code: 'ENODATA' });
    assert.deepEqual(await resolver.reverse('10.96.0.50'), ['reviews.bookinfo.svc.cluster.local']);
  });

  it('serves the view the runtime currently returns', async () => {
    const before = view;
    view = buildDnsView(registry(MANIFESTS.replace('clusterIP: 10.96.0.50', 'clusterIP: 10.96.0.51')), EXTERNALS);
    try {
      assert.deepEqual(await resolver.resolve4('reviews.bookinfo.svc.cluster.local'), ['10.96.0.51']);
    } finally {
      view = before;
    }
  });

  it('survives garbage datagrams and keeps answering', async () => {
    const sock = createSocket('udp4');
    const payloads = [Buffer.alloc(0), Buffer.from('hello'), Buffer.alloc(600, 0xff), Buffer.from([0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12])];
    for (const p of payloads) await new Promise<void>((r) => sock.send(p, server.port, '127.0.0.1', () => r()));
    sock.close();
    assert.deepEqual(await resolver.resolve4('reviews.bookinfo.svc.cluster.local'), ['10.96.0.50']);
    assert.ok(server.stats.dropped >= payloads.length);
    assert.deepEqual(errors, []);
  });

  it('answers over TCP with the 2-byte length prefix', async () => {
    const q = query('db.data.svc.cluster.local', QTYPE.A, { id: 77 });
    const len = Buffer.alloc(2);
    len.writeUInt16BE(q.length);
    const reply = await new Promise<Buffer>((resolve, reject) => {
      const c = connect(server.port, '127.0.0.1', () => c.end(Buffer.concat([len, q])));
      const chunks: Buffer[] = [];
      c.on('data', (d: Buffer) => chunks.push(d));
      c.on('end', () => resolve(Buffer.concat(chunks)));
      c.on('error', reject);
    });
    assert.equal(reply.readUInt16BE(0), reply.length - 2);
    const d = decode(reply.subarray(2));
    assert.equal(d.id, 77);
    assert.deepEqual(aOf(d), ['10.244.2.20']);
  });

  it('answers SERVFAIL when the view cannot be built, and reports it', async () => {
    const bad = await startMeshDns({ address: '127.0.0.1', port: 0, tcp: false, records: () => { throw new Error('no view yet'); }, onError: (e) => errors.push(e) });
    try {
      const r = new Resolver({ timeout: 2000, tries: 1 });
      r.setServers([`127.0.0.1:${bad.port}`]);
      await assert.rejects(r.resolve4('reviews.bookinfo.svc.cluster.local'), { code: 'ESERVFAIL' });
      assert.ok(errors.some((e) => e.message === 'no view yet'));
      errors.length = 0;
    } finally {
      await bad.close();
    }
  });

  it('rejects with MESH_ERR_RUNTIME_DNS when the port is taken or the address is not ours', async () => {
    await assert.rejects(startMeshDns({ address: '127.0.0.1', port: server.port, records: () => view }), (e) => isMeshError(e) && e.code === 'MESH_ERR_RUNTIME_DNS' && /EADDRINUSE/.test(e.message));
    await assert.rejects(startMeshDns({ address: 'localhost', records: () => view }), (e) => isMeshError(e) && e.code === 'MESH_ERR_RUNTIME_DNS');
  });

  it('answers the real dig when it is installed (UDP with EDNS, and +tcp)', { skip: findTool('dig') === undefined ? 'dig is not installed' : false }, async () => {
    const dig = findTool('dig') ?? 'dig';
    // Asynchronously: the server runs in this process.
    const run = (...args: string[]): Promise<string> =>
      new Promise((resolve) => execFile(dig, ['@127.0.0.1', '-p', String(server.port), '+tries=1', '+time=2', ...args], (_err, stdout) => resolve(stdout)));
    assert.match(await run('reviews.bookinfo.svc.cluster.local', 'A'), /status: NOERROR[\s\S]*reviews\.bookinfo\.svc\.cluster\.local\.\s+5\s+IN\s+A\s+10\.96\.0\.50/);
    assert.match(await run('+tcp', 'db.data.svc.cluster.local', 'A'), /status: NOERROR[\s\S]*IN\s+A\s+10\.244\.2\.20/);
    assert.match(await run('nope.example.org', 'A'), /status: NXDOMAIN/);
    assert.match(await run('reviews.bookinfo.svc.cluster.local', 'AAAA'), /status: NOERROR[\s\S]*ANSWER: 0/);
  });
});
