// The local runtime's cluster DNS: a view of the mesh's names (services, pods, ServiceEntry hosts, test hosts) and a UDP/TCP server answering from it; it never forwards upstream.
// Malformed packets are dropped, unknown names get NXDOMAIN, a failing view gets SERVFAIL; only startMeshDns throws (MESH_ERR_RUNTIME_DNS when it cannot listen).

import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { isIPv4, createServer as createTcpServer, type Server as TcpServer, type Socket as TcpSocket } from 'node:net';
import { MeshError } from '../common/errors.ts';
import { DEFAULT_DOMAIN, isWildcardHost } from '../registry/host.ts';
import { Allocator, parseCidr } from '../registry/ipam.ts';
import type { MeshService, Registry, Workload } from '../registry/types.ts';

/** The registry's default service range; ClusterIPs and auto-allocated ServiceEntry addresses come from it. */
export const DEFAULT_SERVICE_CIDR = '10.96.0.0/16';
/** Every answer's TTL: short, so a config change is seen within seconds. */
export const DNS_TTL_SECONDS = 5;

// ---------------------------------------------------------------------------------------------
// The view: names -> addresses, rebuilt by the runtime on every config change.

export interface DnsRecord {
  /** IPv4 addresses; empty = the name exists without an address (NOERROR, no answers). */
  a: readonly string[];
  /** Kubernetes ExternalName services: the name is an alias of this one. */
  cname?: string;
}

export interface DnsView {
  /** The cluster domain (cluster.local). */
  domain: string;
  /** Lower-case names without the trailing dot. */
  names: ReadonlyMap<string, DnsRecord>;
  /** IPv4 address -> name, for PTR queries (ClusterIPs and pods). */
  reverse: ReadonlyMap<string, string>;
}

export interface DnsViewOptions {
  /** The service range auto-allocated ServiceEntry addresses come from; default 10.96.0.0/16. */
  serviceCIDR?: string;
}

/** Name -> IPv4 of the runtime's external test hosts (e.g. httpbin.org served by a namespace of ours). */
export type ExternalHosts = ReadonlyMap<string, string> | Readonly<Record<string, string>>;

const normName = (n: string): string => n.toLowerCase().replace(/\.$/, '');

function externalsMap(externals: ExternalHosts): Map<string, string> {
  const entries = externals instanceof Map ? [...(externals as ReadonlyMap<string, string>).entries()] : Object.entries(externals as Readonly<Record<string, string>>);
  const out = new Map<string, string>();
  for (const [name, ip] of entries) if (isIPv4(ip) && name !== '') out.set(normName(name), ip);
  return out;
}

/** ServiceEntry hosts Istio's DNS auto-allocation would give an address: no addresses, not a wildcard, resolution not NONE. */
function autoAllocatable(s: MeshService): boolean {
  return s.origin === 'ServiceEntry' && s.addresses.length === 0 && !isWildcardHost(s.hostname) && s.resolution !== 'Passthrough';
}

/**
 * Addresses for ServiceEntry hosts that have none, as Istio's DNS auto-allocation does (ISTIO_META_DNS_AUTO_ALLOCATE):
 * the application can connect to the name and its sidecar captures the connection (and routes HTTP by Host header).
 * Istio takes them from 240.240.0.0/16; we take them from the service range so no address outside tsmesh's own ranges
 * is ever answered. Deterministic: a hash of the host, probing past every address already used by a service.
 * Hosts that are also Kubernetes service names are left out. Shared by the DNS view and the service proxy.
 */
export function autoAllocatedAddresses(registry: Registry, serviceCIDR: string = DEFAULT_SERVICE_CIDR): Map<string, string> {
  const alloc = new Allocator(parseCidr(serviceCIDR), [10]);
  const kubeNames = new Set<string>();
  for (const s of registry.services) {
    for (const a of s.addresses) alloc.reserve(a);
    if (s.origin === 'Kubernetes') kubeNames.add(s.hostname.toLowerCase());
  }
  const hosts = [...new Set(registry.services.filter(autoAllocatable).map((s) => s.hostname.toLowerCase()))].filter((h) => !kubeNames.has(h)).sort();
  const out = new Map<string, string>();
  for (const h of hosts) {
    try {
      out.set(h, alloc.allocate(`ServiceEntry/${h}`));
    } catch {
      break; // the range is full: the remaining hosts get no address (NODATA)
    }
  }
  return out;
}

/** `10.244.1.7` -> `10-244-1-7`, the label Kubernetes uses in pod names (`10-244-1-7.ns.pod.cluster.local`). */
export const dashedIp = (ip: string): string => ip.replace(/\./g, '-');

/**
 * Builds the names pods can resolve (pure):
 * - `<svc>.<ns>.svc.<domain>` -> the ClusterIP; headless services -> their ready endpoints' pod IPs, plus
 *   `<hostname>.<svc>.<ns>.svc.<domain>` for their pods (spec.subdomain = the service, or StatefulSet pods);
 *   ExternalName services -> a CNAME.
 * - `<a-b-c-d>.<ns>.pod.<domain>` -> the pod's IP (only pods that exist).
 * - ServiceEntry hosts -> their IPv4 `addresses`; without addresses, the external test host of that name, else an
 *   auto-allocated address (see autoAllocatedAddresses); resolution NONE without addresses -> the name without address.
 * - every external test host name -> its IP (also when no ServiceEntry names it: the ALLOW_ANY case).
 * Wildcard ServiceEntry hosts are not answered.
 */
export function buildDnsView(registry: Registry, externals: ExternalHosts = new Map(), opts: DnsViewOptions = {}): DnsView {
  const domain = normName(registry.domain || DEFAULT_DOMAIN);
  const names = new Map<string, { a: string[]; cname?: string }>();
  const reverse = new Map<string, string>();
  const add = (name: string, ips: readonly string[], cname?: string): void => {
    const key = normName(name);
    let rec = names.get(key);
    if (!rec) names.set(key, (rec = { a: [] }));
    for (const ip of ips) if (isIPv4(ip) && !rec.a.includes(ip)) rec.a.push(ip);
    if (cname !== undefined && rec.cname === undefined) rec.cname = normName(cname);
  };
  const ext = externalsMap(externals);

  // Pods.
  for (const w of registry.workloads) {
    if (w.kind !== 'Pod' || !isIPv4(w.ip)) continue;
    const name = `${dashedIp(w.ip)}.${w.namespace}.pod.${domain}`;
    add(name, [w.ip]);
    if (!reverse.has(w.ip)) reverse.set(w.ip, name);
  }

  // Kubernetes Services.
  const kubeNames = new Set<string>();
  for (const s of registry.services) {
    if (s.origin !== 'Kubernetes') continue;
    kubeNames.add(s.hostname.toLowerCase());
    if (s.externalName !== undefined) {
      add(s.hostname, [], s.externalName);
    } else if (s.headless) {
      const ips: string[] = [];
      const pods = new Map<string, string>();
      const collect = (ip: string, w: Workload | undefined): void => {
        ips.push(ip);
        if (w?.kind !== 'Pod') return;
        const spec = w.podSpec;
        if (spec?.subdomain === s.name) pods.set(spec.hostname ?? w.name, ip);
        else if (w.owner?.kind === 'StatefulSet') pods.set(w.name, ip);
      };
      if (s.ports.length > 0) {
        for (const p of s.ports) for (const ep of registry.endpoints(s, p.port)) if (ep.healthy) collect(ep.address, ep.workload);
      } else if (s.selector && Object.keys(s.selector).length > 0) {
        for (const w of registry.workloadsMatching(s.namespace, s.selector)) collect(w.ip, w);
      }
      add(s.hostname, ips);
      for (const [host, ip] of pods) add(`${host}.${s.hostname}`, [ip]);
    } else {
      add(s.hostname, s.addresses);
      for (const ip of s.addresses) if (isIPv4(ip) && !reverse.has(ip)) reverse.set(ip, normName(s.hostname));
    }
  }

  // ServiceEntries.
  const auto = autoAllocatedAddresses(registry, opts.serviceCIDR ?? DEFAULT_SERVICE_CIDR);
  for (const s of registry.services) {
    if (s.origin !== 'ServiceEntry' || isWildcardHost(s.hostname)) continue;
    const host = s.hostname.toLowerCase();
    if (kubeNames.has(host)) continue; // the Kubernetes Service's ClusterIP answers
    const usable = s.addresses.filter((a) => isIPv4(a));
    if (usable.length > 0) add(host, usable);
    else if (s.addresses.length > 0) add(host, []); // only CIDR ranges: nothing to answer with
    else {
      const e = ext.get(host);
      const a = auto.get(host);
      add(host, e !== undefined ? [e] : a !== undefined ? [a] : []);
    }
  }

  // External test hosts not named by any ServiceEntry.
  for (const [name, ip] of ext) if (!names.has(name)) add(name, [ip]);

  return { domain, names, reverse };
}

/** The resolv.conf a pod in `namespace` gets (Kubernetes' ClusterFirst policy), pointing at `nameserver` (port 53). */
export function resolvConf(namespace: string, nameserver: string, domain: string = DEFAULT_DOMAIN): string {
  return `nameserver ${nameserver}\nsearch ${namespace}.svc.${domain} svc.${domain} ${domain}\noptions ndots:5\n`;
}

// ---------------------------------------------------------------------------------------------
// Wire format (RFC 1035), by hand.

export const QTYPE = { A: 1, NS: 2, CNAME: 5, SOA: 6, PTR: 12, MX: 15, TXT: 16, AAAA: 28, SRV: 33, OPT: 41, ANY: 255 } as const;
export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;
const CLASS_IN = 1;
const CLASS_ANY = 255;
/** Without EDNS a UDP answer is at most 512 bytes; with EDNS we accept the client's size up to this. */
const EDNS_MAX_UDP = 1232;

export interface ParsedQuery {
  id: number;
  flags: number;
  opcode: number;
  /** The question exactly as received (name, type, class), echoed in the answer. */
  questionBytes: Buffer;
  name: string;
  qtype: number;
  qclass: number;
  /** Present when the query carried an EDNS OPT record: the client's UDP payload size. */
  ednsUdpSize?: number;
}

/** Reads a (possibly compressed) name at `off`; returns it and the offset after it. Throws on malformed input. */
function readName(buf: Buffer, start: number): { name: string; end: number } {
  const labels: string[] = [];
  let off = start;
  let end = -1;
  let jumps = 0;
  let length = 0;
  for (;;) {
    if (off >= buf.length) throw new Error('name runs past the packet');
    const len = buf[off] ?? 0;
    if (len === 0) {
      if (end < 0) end = off + 1;
      break;
    }
    if ((len & 0xc0) === 0xc0) {
      if (off + 1 >= buf.length) throw new Error('truncated pointer');
      if (++jumps > 20) throw new Error('compression loop');
      if (end < 0) end = off + 2;
      off = ((len & 0x3f) << 8) | (buf[off + 1] ?? 0);
      continue;
    }
    if ((len & 0xc0) !== 0) throw new Error('bad label type');
    if (off + 1 + len > buf.length) throw new Error('label runs past the packet');
    length += len + 1;
    if (length > 255) throw new Error('name too long');
    labels.push(buf.toString('latin1', off + 1, off + 1 + len));
    off += 1 + len;
  }
  return { name: labels.join('.'), end };
}

/** Parses a query; undefined for anything that is not a well-formed query (which the server drops). */
export function parseQuery(buf: Buffer): ParsedQuery | { id: number; flags: number; formErr: true } | undefined {
  if (buf.length < 12) return undefined;
  const id = buf.readUInt16BE(0);
  const flags = buf.readUInt16BE(2);
  if ((flags & 0x8000) !== 0) return undefined; // a response: never answer it (no reflection loops)
  const qd = buf.readUInt16BE(4);
  const an = buf.readUInt16BE(6);
  const ns = buf.readUInt16BE(8);
  const ar = buf.readUInt16BE(10);
  if (qd !== 1) return { id, flags, formErr: true };
  try {
    const q = readName(buf, 12);
    if (q.end + 4 > buf.length) return undefined;
    const qtype = buf.readUInt16BE(q.end);
    const qclass = buf.readUInt16BE(q.end + 2);
    const parsed: ParsedQuery = { id, flags, opcode: (flags >> 11) & 0xf, questionBytes: buf.subarray(12, q.end + 4), name: q.name, qtype, qclass };
    // EDNS: an OPT record among the additional records (only looked for in plain queries).
    let off = q.end + 4;
    if (an === 0 && ns === 0) {
      for (let i = 0; i < ar && off < buf.length; i++) {
        const rr = readName(buf, off);
        if (rr.end + 10 > buf.length) break;
        const type = buf.readUInt16BE(rr.end);
        const rdlen = buf.readUInt16BE(rr.end + 8);
        if (type === QTYPE.OPT) parsed.ednsUdpSize = Math.max(512, buf.readUInt16BE(rr.end + 2));
        off = rr.end + 10 + rdlen;
      }
    }
    return parsed;
  } catch {
    return undefined;
  }
}

function encodeName(name: string): Buffer {
  const parts: Buffer[] = [];
  for (const label of name.split('.').filter((l) => l !== '')) {
    const b = Buffer.from(label, 'latin1').subarray(0, 63);
    parts.push(Buffer.from([b.length]), b);
  }
  parts.push(Buffer.from([0]));
  return Buffer.concat(parts);
}

interface Rr { name: Buffer; type: number; rdata: Buffer }

function rrBytes(rr: Rr): Buffer {
  const fixed = Buffer.alloc(10);
  fixed.writeUInt16BE(rr.type, 0);
  fixed.writeUInt16BE(CLASS_IN, 2);
  fixed.writeUInt32BE(DNS_TTL_SECONDS, 4);
  fixed.writeUInt16BE(rr.rdata.length, 8);
  return Buffer.concat([rr.name, fixed, rr.rdata]);
}

const POINTER_TO_QNAME = Buffer.from([0xc0, 0x0c]);
const ipBytes = (ip: string): Buffer => Buffer.from(ip.split('.').map(Number));

function header(id: number, queryFlags: number, rcode: number, counts: [number, number, number, number], truncated = false): Buffer {
  const h = Buffer.alloc(12);
  h.writeUInt16BE(id, 0);
  // QR=1, the query's opcode and RD, AA=1 (we are the authority for every name we answer, and refuse to look
  // further), RA=1 so stub resolvers that insist on recursion (Go's lame-referral check) accept the answer.
  let flags = 0x8000 | (queryFlags & 0x7800) | 0x0400 | (queryFlags & 0x0100) | 0x0080 | (rcode & 0xf);
  if (truncated) flags |= 0x0200;
  h.writeUInt16BE(flags, 2);
  counts.forEach((c, i) => h.writeUInt16BE(c, 4 + 2 * i));
  return h;
}

function optRecord(): Buffer {
  const b = Buffer.alloc(11);
  b.writeUInt8(0, 0); // root name
  b.writeUInt16BE(QTYPE.OPT, 1);
  b.writeUInt16BE(EDNS_MAX_UDP, 3);
  // ttl (extended rcode, version, flags) and rdlen stay 0
  return b;
}

/** In-addr.arpa name -> IPv4, or undefined when it is not a full reverse name. */
function reverseToIp(name: string): string | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.in-addr\.arpa$/.exec(name);
  if (!m) return undefined;
  const ip = `${m[4]}.${m[3]}.${m[2]}.${m[1]}`;
  return isIPv4(ip) ? ip : undefined;
}

/**
 * The answer to one query packet (pure), or undefined when the packet must be dropped.
 * `maxSize` is the transport's limit (512 for UDP without EDNS; 65535 for TCP): a larger answer is sent
 * truncated (TC set, no records) so the client retries over TCP.
 */
export function answerQuery(packet: Buffer, view: DnsView | undefined, maxSize = 512): Buffer | undefined {
  const q = parseQuery(packet);
  if (!q) return undefined;
  if ('formErr' in q) return header(q.id, q.flags, RCODE.FORMERR, [0, 0, 0, 0]);
  const opt = q.ednsUdpSize !== undefined ? optRecord() : undefined;
  const finish = (rcode: number, answers: Rr[]): Buffer => {
    const limit = maxSize === 512 && q.ednsUdpSize !== undefined ? Math.min(q.ednsUdpSize, EDNS_MAX_UDP) : maxSize;
    const ar = opt ? 1 : 0;
    const body = answers.map(rrBytes);
    const full = Buffer.concat([header(q.id, q.flags, rcode, [1, answers.length, 0, ar]), q.questionBytes, ...body, ...(opt ? [opt] : [])]);
    if (full.length <= limit) return full;
    return Buffer.concat([header(q.id, q.flags, rcode, [1, 0, 0, ar], true), q.questionBytes, ...(opt ? [opt] : [])]);
  };
  if (q.opcode !== 0 || (q.qclass !== CLASS_IN && q.qclass !== CLASS_ANY)) return finish(RCODE.NOTIMP, []);
  if (!view) return finish(RCODE.SERVFAIL, []);
  const name = normName(q.name);

  const ptrIp = reverseToIp(name);
  if (ptrIp !== undefined) {
    const target = view.reverse.get(ptrIp);
    if (target === undefined) return finish(RCODE.NXDOMAIN, []);
    return finish(RCODE.NOERROR, q.qtype === QTYPE.PTR || q.qtype === QTYPE.ANY ? [{ name: POINTER_TO_QNAME, type: QTYPE.PTR, rdata: encodeName(target) }] : []);
  }

  const rec = view.names.get(name);
  if (!rec) return finish(RCODE.NXDOMAIN, []);
  const answers: Rr[] = [];
  const wantsA = q.qtype === QTYPE.A || q.qtype === QTYPE.ANY;
  if (rec.cname !== undefined) {
    // An alias: the CNAME answers every type; A queries also get the target's addresses when we know them.
    answers.push({ name: POINTER_TO_QNAME, type: QTYPE.CNAME, rdata: encodeName(rec.cname) });
    if (wantsA) {
      const target = view.names.get(rec.cname);
      for (const ip of target?.a ?? []) answers.push({ name: encodeName(rec.cname), type: QTYPE.A, rdata: ipBytes(ip) });
    }
  } else if (wantsA) {
    for (const ip of rec.a) answers.push({ name: POINTER_TO_QNAME, type: QTYPE.A, rdata: ipBytes(ip) });
  }
  // AAAA and every other type of a known name: NOERROR without answers (NODATA); glibc and Envoy accept it.
  return finish(RCODE.NOERROR, answers);
}

// ---------------------------------------------------------------------------------------------
// The server.

export interface MeshDnsOptions {
  /** Address to listen on, e.g. the bridge address (what pods' resolv.conf names) or 127.0.0.1 in tests. */
  address: string;
  /** Default 53 (resolv.conf cannot name another port); 0 picks a free one (tests). */
  port?: number;
  /** The current view; called for every query, so the runtime swaps the view by returning a new one. */
  records: () => DnsView;
  /** Also serve DNS over TCP on the same port (for truncated answers); default true. */
  tcp?: boolean;
  /** Problems while serving (a failing view, socket errors); the server keeps running. */
  onError?: (err: Error) => void;
}

export interface MeshDnsStats {
  queries: number;
  dropped: number;
}

export interface MeshDns {
  readonly address: string;
  readonly port: number;
  readonly stats: MeshDnsStats;
  close(): Promise<void>;
}

function bindUdp(address: string, port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const sock = createSocket({ type: 'udp4' });
    const onError = (err: Error): void => {
      sock.close();
      reject(err);
    };
    sock.once('error', onError);
    sock.bind({ address, port, exclusive: true }, () => {
      sock.off('error', onError);
      resolve(sock);
    });
  });
}

function bindTcp(address: string, port: number, onConn: (s: TcpSocket) => void): Promise<TcpServer> {
  return new Promise((resolve, reject) => {
    const srv = createTcpServer(onConn);
    srv.once('error', reject);
    srv.listen({ host: address, port, exclusive: true }, () => {
      srv.off('error', reject);
      resolve(srv);
    });
  });
}

function listenError(address: string, port: number, err: unknown): MeshError {
  const e = err as NodeJS.ErrnoException;
  const hint =
    e.code === 'EADDRINUSE' ? 'another DNS server holds it (`ss -lunp` shows which)'
      : e.code === 'EADDRNOTAVAIL' ? 'the address is not assigned to this machine (is the bridge up?)'
        : e.code === 'EACCES' ? 'ports below 1024 need root or CAP_NET_BIND_SERVICE'
          : 'see the cause';
  return new MeshError('MESH_ERR_RUNTIME_DNS', `mesh DNS cannot listen on ${address}:${port}: ${e.message}; ${hint}`, { cause: err });
}

/**
 * Starts the mesh DNS server on UDP (and TCP) `address:port`. Answers only from `records()`; a name it does not
 * know gets NXDOMAIN, never a forwarded query. Rejects with MESH_ERR_RUNTIME_DNS when it cannot listen.
 */
export async function startMeshDns(opts: MeshDnsOptions): Promise<MeshDns> {
  if (!isIPv4(opts.address)) throw new MeshError('MESH_ERR_RUNTIME_DNS', `mesh DNS: bad listen address ${JSON.stringify(opts.address)}: expected an IPv4 address`);
  const wanted = opts.port ?? 53;
  const stats: MeshDnsStats = { queries: 0, dropped: 0 };
  const report = (err: unknown): void => {
    try {
      opts.onError?.(err instanceof Error ? err : new Error(String(err)));
    } catch {
      // a failing error handler must not stop the server
    }
  };
  const currentView = (): DnsView | undefined => {
    try {
      return opts.records();
    } catch (err) {
      report(err);
      return undefined; // SERVFAIL
    }
  };
  const answer = (msg: Buffer, maxSize: number): Buffer | undefined => {
    stats.queries++;
    try {
      const out = answerQuery(msg, currentView(), maxSize);
      if (!out) stats.dropped++;
      return out;
    } catch (err) {
      stats.dropped++;
      report(err);
      return undefined;
    }
  };

  const tcpConns = new Set<TcpSocket>();
  const onTcp = (conn: TcpSocket): void => {
    tcpConns.add(conn);
    let buf = Buffer.alloc(0);
    conn.setTimeout(10_000, () => conn.destroy());
    conn.on('error', () => conn.destroy());
    conn.on('close', () => tcpConns.delete(conn));
    conn.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 2) {
        const len = buf.readUInt16BE(0);
        if (buf.length < 2 + len) break;
        const msg = buf.subarray(2, 2 + len);
        buf = buf.subarray(2 + len);
        const out = answer(msg, 65535);
        if (!out) {
          conn.destroy(); // malformed: drop the connection
          return;
        }
        const len2 = Buffer.alloc(2);
        len2.writeUInt16BE(out.length);
        conn.write(Buffer.concat([len2, out]));
      }
      if (buf.length > 2 + 65535) conn.destroy();
    });
  };

  let udp: Socket | undefined;
  let tcp: TcpServer | undefined;
  const withTcp = opts.tcp ?? true;
  // With port 0 the UDP port is picked first and TCP must get the same number; retry when it is taken.
  for (let attempt = 0; ; attempt++) {
    try {
      udp = await bindUdp(opts.address, wanted);
    } catch (err) {
      throw listenError(opts.address, wanted, err);
    }
    const port = udp.address().port;
    if (!withTcp) break;
    try {
      tcp = await bindTcp(opts.address, port, onTcp);
      break;
    } catch (err) {
      udp.close();
      udp = undefined;
      if (wanted !== 0 || attempt >= 10) throw listenError(opts.address, port, err);
    }
  }
  const sock = udp;
  const port = sock.address().port;
  sock.on('error', (err) => report(err));
  sock.on('message', (msg: Buffer, rinfo: RemoteInfo) => {
    const out = answer(msg, 512);
    if (out) sock.send(out, rinfo.port, rinfo.address, (err) => err && report(err));
  });

  let closed: Promise<void> | undefined;
  return {
    address: opts.address,
    port,
    stats,
    close(): Promise<void> {
      closed ??= (async () => {
        for (const c of tcpConns) c.destroy();
        await Promise.all([
          new Promise<void>((r) => sock.close(() => r())),
          new Promise<void>((r) => (tcp ? tcp.close(() => r()) : r())),
        ]);
      })();
      return closed;
    },
  };
}
