// The local runtime's kube-proxy equivalent (M10): host iptables chains DNAT'ing ClusterIPs and ServiceEntry addresses over endpoints, masquerade, and a guard that keeps pod traffic on this machine.
// Throws MESH_ERR_RUNTIME_SERVICES on bad settings, a missing bridge or a rejected iptables-restore/sysctl, MESH_ERR_CAPTURE_UNAVAILABLE without root or iptables; a failed sync leaves the previous rules in place.

import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { isIPv4 } from 'node:net';
import { MeshError } from '../common/errors.ts';
import { cidrContains, formatIpv4, parseCidr, parseIpv4, type Cidr } from '../registry/ipam.ts';
import type { MeshService, Registry } from '../registry/types.ts';
import { autoAllocatedAddresses } from './dns.ts';
import { assertNetworkAdmin, runTool } from './netns.ts';

/** Every chain is named `<prefix>-...`; every rule in a built-in chain jumps to one of them. */
export const DEFAULT_CHAIN_PREFIX = 'TSMESH';
/** The packet mark meaning "masquerade on the way to the pod" (kube-proxy uses 0x4000; this bit is ours). */
export const DEFAULT_MASQUERADE_MARK = 0x100000;
/** iptables' limit on chain names. */
const MAX_CHAIN = 28;
const TOOLS = ['iptables-restore', 'iptables-save'] as const;

export interface ServiceProxyOptions {
  /** The pods' range (10.244.0.0/16 by default in the runtime). */
  podCIDR: string;
  /** The ClusterIP range (10.96.0.0/16 by default); auto-allocated ServiceEntry addresses come from it too. */
  serviceCIDR: string;
  /** The host bridge the pods hang on (tsmesh0). */
  bridge: string;
  /** Chain name prefix, default TSMESH (TSMESH-SERVICES, TSMESH-SVC-<hash>...): 2-13 letters, digits, '_'. */
  chainPrefix?: string;
  /** Addresses of this machine that endpoints may point at besides pod IPs (e.g. the bridge address, where the
   *  control plane listens). Endpoints anywhere else are never DNAT'ed to (that could send traffic off the machine). */
  localEndpoints?: readonly string[];
  /** Default 0x100000. */
  masqueradeMark?: number;
}

interface Settings {
  pod: Cidr;
  podText: string;
  svc: Cidr;
  svcText: string;
  bridge: string;
  prefix: string;
  local: Set<string>;
  mark: string;
}

const serr = (msg: string, cause?: unknown): MeshError => new MeshError('MESH_ERR_RUNTIME_SERVICES', msg, cause === undefined ? undefined : { cause });

function checkPrefix(prefix: string): void {
  if (!/^[A-Za-z][A-Za-z0-9_]{1,12}$/.test(prefix)) {
    throw serr(`bad chain prefix ${JSON.stringify(prefix)}: 2-13 letters, digits or '_', starting with a letter (chain names are limited to ${MAX_CHAIN} characters)`);
  }
}

function canonicalCidr(text: string, what: string): { cidr: Cidr; text: string } {
  let cidr: Cidr;
  try {
    cidr = parseCidr(text);
  } catch (err) {
    throw serr(`bad ${what} ${JSON.stringify(text)}: expected an IPv4 range such as 10.96.0.0/16`, err);
  }
  const bits = 32 - Math.log2(cidr.size);
  return { cidr, text: `${formatIpv4(cidr.base)}/${bits}` };
}

function settings(opts: ServiceProxyOptions): Settings {
  const prefix = opts.chainPrefix ?? DEFAULT_CHAIN_PREFIX;
  checkPrefix(prefix);
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(opts.bridge)) throw serr(`bad bridge name ${JSON.stringify(opts.bridge)}: at most 15 letters, digits, '_', '-', '.'`);
  const pod = canonicalCidr(opts.podCIDR, 'pod CIDR');
  const svc = canonicalCidr(opts.serviceCIDR, 'service CIDR');
  if (pod.cidr.base < svc.cidr.base + svc.cidr.size && svc.cidr.base < pod.cidr.base + pod.cidr.size) {
    throw serr(`the service CIDR ${svc.text} overlaps the pod CIDR ${pod.text}: ClusterIPs must not be on the pods' link`);
  }
  const mark = opts.masqueradeMark ?? DEFAULT_MASQUERADE_MARK;
  if (!Number.isInteger(mark) || mark <= 0 || mark > 0xffffffff || (mark & (mark - 1)) !== 0) throw serr(`bad masquerade mark ${String(mark)}: one bit, e.g. 0x100000`);
  const local = new Set((opts.localEndpoints ?? []).filter((a) => isIPv4(a)));
  return { pod: pod.cidr, podText: pod.text, svc: svc.cidr, svcText: svc.text, bridge: opts.bridge, prefix, local, mark: `0x${mark.toString(16)}` };
}

// ---------------------------------------------------------------------------------------------
// The plan: which service ports, which endpoints (pure).

export interface EndpointPlan {
  /** `<prefix>-SEP-<hash>` */
  chain: string;
  address: string;
  port: number;
}

export interface ServicePortPlan {
  /** `<prefix>-SVC-<hash>` */
  chain: string;
  /** `namespace/name:port` (plus the host for ServiceEntries), used in rule comments. */
  label: string;
  /** The virtual addresses: ClusterIPs, or a ServiceEntry's addresses (its auto-allocated one when it has none). */
  addresses: string[];
  port: number;
  protocol: 'tcp' | 'udp';
  /** Ready endpoints, in a stable order; [] = rejected. */
  endpoints: EndpointPlan[];
}

export interface ServicePlan {
  ports: ServicePortPlan[];
  /** What was left out and why (endpoints outside the pod CIDR, duplicate address:port...). */
  skipped: string[];
}

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** `<prefix>-<kind>-<hash of key>`, cut to iptables' 28 characters (16 hash characters when the prefix allows). */
function chainName(prefix: string, kind: 'SVC' | 'SEP', key: string): string {
  const room = Math.min(16, MAX_CHAIN - prefix.length - kind.length - 2);
  const digest = createHash('sha256').update(key).digest();
  let out = '';
  for (let i = 0; out.length < room; i++) out += BASE32[(digest[i] ?? 0) & 31];
  return `${prefix}-${kind}-${out}`;
}

const ipNum = (ip: string): number => parseIpv4(ip) ?? 0;

/** The service ports the proxy serves, with their endpoints (pure). */
export function planServiceRules(registry: Registry, opts: ServiceProxyOptions): ServicePlan {
  const s = settings(opts);
  return plan(registry, s);
}

function plan(registry: Registry, s: Settings): ServicePlan {
  const auto = autoAllocatedAddresses(registry, s.svcText);
  const ports: ServicePortPlan[] = [];
  const skipped: string[] = [];
  const taken = new Set<string>();
  const virtualAddresses = (svc: MeshService): string[] => {
    if (svc.origin === 'Kubernetes') return svc.headless || svc.externalName !== undefined ? [] : svc.addresses.filter((a) => isIPv4(a));
    // ServiceEntries: only STATIC-style ones (endpoints we can DNAT to); DNS/NONE are the sidecar's business.
    if (svc.resolution !== 'ClientSideLB') return [];
    const plain = svc.addresses.filter((a) => isIPv4(a));
    if (plain.length > 0) return plain;
    const a = svc.addresses.length === 0 ? auto.get(svc.hostname.toLowerCase()) : undefined;
    return a !== undefined ? [a] : [];
  };
  for (const svc of registry.services) {
    const addresses = virtualAddresses(svc);
    if (addresses.length === 0) continue;
    const name = svc.origin === 'Kubernetes' ? `${svc.namespace}/${svc.name}` : `${svc.namespace}/${svc.name} ${svc.hostname}`;
    for (const sp of svc.ports) {
      const protocol = sp.protocol === 'UDP' ? 'udp' : 'tcp';
      const label = `${name}:${sp.name || sp.port}`;
      const own = addresses.filter((a) => {
        const k = `${a}:${sp.port}/${protocol}`;
        if (taken.has(k)) {
          skipped.push(`${label}: ${k} is already served by another service`);
          return false;
        }
        taken.add(k);
        return true;
      });
      if (own.length === 0) continue;
      const key = `${svc.origin}/${svc.namespace}/${svc.name}/${svc.hostname}:${sp.port}/${protocol}`;
      const seen = new Set<string>();
      const endpoints: EndpointPlan[] = [];
      for (const ep of registry.endpoints(svc, sp.port)) {
        if (!ep.healthy) continue;
        const target = `${ep.address}:${ep.port}`;
        if (!isIPv4(ep.address) || !Number.isInteger(ep.port) || ep.port < 1 || ep.port > 65535) {
          skipped.push(`${label}: endpoint ${target} is not an IPv4 address and port`);
          continue;
        }
        if (!cidrContains(s.pod, ep.address) && !s.local.has(ep.address)) {
          skipped.push(`${label}: endpoint ${target} is outside the pod CIDR ${s.podText}; never forwarded to`);
          continue;
        }
        if (seen.has(target)) continue;
        seen.add(target);
        endpoints.push({ chain: chainName(s.prefix, 'SEP', `${key}>${target}`), address: ep.address, port: ep.port });
      }
      endpoints.sort((a, b) => ipNum(a.address) - ipNum(b.address) || a.port - b.port);
      ports.push({ chain: chainName(s.prefix, 'SVC', key), label, addresses: own, port: sp.port, protocol, endpoints });
    }
  }
  return { ports, skipped };
}

// ---------------------------------------------------------------------------------------------
// Rendering (pure): one iptables-restore --noflush script, both tables.

/** The current host tables, as `iptables-save -t nat` and `-t filter` print them. */
export interface HostTables {
  nat: string;
  filter: string;
}

const BUILTIN = new Set(['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING']);

/** Chains named `<prefix>-...` declared in an iptables-save table. */
function ownChains(save: string, prefix: string): string[] {
  const out: string[] = [];
  for (const line of save.split('\n')) {
    const m = /^:(\S+) /.exec(line.trim());
    if (m?.[1]?.startsWith(`${prefix}-`)) out.push(m[1]);
  }
  return out;
}

/** Rules of built-in chains that jump into `<prefix>-...` chains, as printed (`-A CHAIN ...`). */
function ownJumps(save: string, prefix: string): string[] {
  return save
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => {
      const m = /^-A (\S+) .*-j (\S+)$/.exec(l);
      return m !== null && BUILTIN.has(m[1] ?? '') && (m[2] ?? '').startsWith(`${prefix}-`);
    });
}

const GUARD_STATE = /bridge (\S+) forwarding was ([01])/;

/** The bridge and its forwarding value before tsmesh turned it on, read back from the guard rule's comment. */
export function forwardGuardState(filterSave: string, chainPrefix: string = DEFAULT_CHAIN_PREFIX): { bridge: string; was: '0' | '1' } | undefined {
  for (const l of ownJumps(filterSave, chainPrefix)) {
    if (!l.startsWith('-A FORWARD ')) continue;
    const m = GUARD_STATE.exec(l);
    if (m?.[1] && (m[2] === '0' || m[2] === '1')) return { bridge: m[1], was: m[2] };
  }
  return undefined;
}

const comment = (text: string): string => `-m comment --comment "${text.replace(/[^A-Za-z0-9._:/ >*=(),-]/g, '_').slice(0, 200)}"`;

/**
 * The iptables-restore --noflush script that makes the host's rules match `plan` in one transaction per table:
 * every tsmesh chain is declared (which flushes it) and refilled, the built-in chains' jumps are replaced, and chains
 * no longer needed are deleted, so a re-sync never leaves a moment without rules. `forwardingWas` is recorded in the
 * FORWARD guard's comment the first time (later syncs keep the recorded value) so cleanup can restore it.
 */
export function renderServiceRules(plan: ServicePlan, opts: ServiceProxyOptions, current: HostTables, forwardingWas: '0' | '1'): string {
  const s = settings(opts);
  const P = s.prefix;
  const was = forwardGuardState(current.filter, P)?.was ?? forwardingWas;

  // ---- nat ----
  const natChains = [`${P}-SERVICES`, `${P}-POSTROUTING`, `${P}-MARK-MASQ`];
  const natRules: string[] = [
    `-I PREROUTING 1 -i ${s.bridge} ${comment(`${P} service portals for pods`)} -j ${P}-SERVICES`,
    `-I OUTPUT 1 -d ${s.svcText} ${comment(`${P} service portals for this host`)} -j ${P}-SERVICES`,
    `-I POSTROUTING 1 ${comment(`${P} masquerade service traffic`)} -j ${P}-POSTROUTING`,
    `-A ${P}-MARK-MASQ -j MARK --or-mark ${s.mark}`,
    `-A ${P}-POSTROUTING -m mark ! --mark ${s.mark}/${s.mark} -j RETURN`,
    `-A ${P}-POSTROUTING -j MARK --xor-mark ${s.mark}`,
    // Without br_netfilter a pod's reply to another pod never passes the host, so service traffic is
    // masqueraded to the bridge address: the reply comes back through the host and is un-DNAT'ed there.
    `-A ${P}-POSTROUTING -o ${s.bridge} ${comment(`${P} service traffic leaves from the bridge address`)} -j MASQUERADE`,
  ];
  // ---- filter ----
  const filterChains = [`${P}-FORWARD`, `${P}-OUTPUT`, `${P}-SERVICES`];
  const reject = (proto: 'tcp' | 'udp' | 'any'): string => (proto === 'tcp' ? '-j REJECT --reject-with tcp-reset' : '-j REJECT --reject-with icmp-port-unreachable');
  const filterRules: string[] = [
    `-I FORWARD 1 ${comment(`${P} pod traffic stays on this machine (bridge ${s.bridge} forwarding was ${was})`)} -j ${P}-FORWARD`,
    `-I OUTPUT 1 -d ${s.svcText} ${comment(`${P} unknown service ports fail fast`)} -j ${P}-OUTPUT`,
    `-A ${P}-FORWARD -j ${P}-SERVICES`,
    `-A ${P}-FORWARD -d ${s.svcText} -p tcp ${comment(`${P} no such service port`)} ${reject('tcp')}`,
    `-A ${P}-FORWARD -d ${s.svcText} ${comment(`${P} no such service port`)} ${reject('any')}`,
    // The guard: after DNAT, nothing from a pod may be forwarded anywhere but to a pod.
    `-A ${P}-FORWARD -s ${s.podText} ! -d ${s.podText} ${comment(`${P} pod traffic never leaves this machine`)} -j DROP`,
    `-A ${P}-FORWARD -i ${s.bridge} ! -o ${s.bridge} ${comment(`${P} nothing from the bridge leaves through another interface`)} -j DROP`,
    `-A ${P}-FORWARD ! -i ${s.bridge} -o ${s.bridge} ${comment(`${P} nothing from another interface reaches the pods`)} -j DROP`,
    `-A ${P}-FORWARD -i ${s.bridge} -o ${s.bridge} ${comment(`${P} pod to pod through the host`)} -j ACCEPT`,
    `-A ${P}-OUTPUT -j ${P}-SERVICES`,
    `-A ${P}-OUTPUT -p tcp ${comment(`${P} no such service port`)} ${reject('tcp')}`,
    `-A ${P}-OUTPUT ${comment(`${P} no such service port`)} ${reject('any')}`,
  ];

  for (const sp of plan.ports) {
    const dport = `-p ${sp.protocol} -m ${sp.protocol} --dport ${sp.port}`;
    if (sp.endpoints.length === 0) {
      for (const a of sp.addresses) filterRules.push(`-A ${P}-SERVICES -d ${a}/32 ${comment(`${sp.label} has no endpoints`)} ${dport} ${reject(sp.protocol)}`);
      continue;
    }
    natChains.push(sp.chain);
    for (const a of sp.addresses) natRules.push(`-A ${P}-SERVICES -d ${a}/32 ${comment(`${sp.label} service address`)} ${dport} -j ${sp.chain}`);
    natRules.push(`-A ${sp.chain} ${comment(sp.label)} -j ${P}-MARK-MASQ`);
    const n = sp.endpoints.length;
    sp.endpoints.forEach((ep, i) => {
      natChains.push(ep.chain);
      const pick = i < n - 1 ? ` -m statistic --mode random --probability ${(1 / (n - i)).toFixed(10)}` : '';
      natRules.push(`-A ${sp.chain} ${comment(`${sp.label} -> ${ep.address}:${ep.port}`)}${pick} -j ${ep.chain}`);
      natRules.push(`-A ${ep.chain} ${comment(sp.label)} -p ${sp.protocol} -j DNAT --to-destination ${ep.address}:${ep.port}`);
    });
  }

  const table = (name: string, save: string, chains: string[], rules: string[]): string[] => {
    const want = new Set(chains);
    const stale = ownChains(save, P).filter((c) => !want.has(c));
    return [
      `*${name}`,
      ...[...chains, ...stale].map((c) => `:${c} - [0:0]`),
      ...ownJumps(save, P).map((l) => `-D ${l.slice(3)}`),
      ...rules,
      ...stale.map((c) => `-X ${c}`),
      'COMMIT',
    ];
  };
  // filter first: the guard is in place before any DNAT can send pod traffic into FORWARD.
  return [...table('filter', current.filter, filterChains, filterRules), ...table('nat', current.nat, natChains, natRules), ''].join('\n');
}

/** The iptables-restore script removing every `<prefix>-` chain and every built-in rule jumping to one; '' when none. */
export function serviceCleanupScript(current: HostTables, chainPrefix: string = DEFAULT_CHAIN_PREFIX): string {
  checkPrefix(chainPrefix);
  const out: string[] = [];
  for (const [name, save] of [['filter', current.filter], ['nat', current.nat]] as const) {
    const chains = ownChains(save, chainPrefix);
    const jumps = ownJumps(save, chainPrefix);
    if (chains.length === 0 && jumps.length === 0) continue;
    out.push(`*${name}`, ...jumps.map((l) => `-D ${l.slice(3)}`), ...chains.map((c) => `-F ${c}`), ...chains.map((c) => `-X ${c}`), 'COMMIT');
  }
  return out.length === 0 ? '' : `${out.join('\n')}\n`;
}

// ---------------------------------------------------------------------------------------------
// Applying.

async function readTables(): Promise<HostTables> {
  const nat = await runTool(['iptables-save', '-t', 'nat']);
  const filter = await runTool(['iptables-save', '-t', 'filter']);
  return { nat: nat.stdout, filter: filter.stdout };
}

async function restore(script: string): Promise<void> {
  try {
    await runTool(['iptables-restore', '--noflush'], { input: script });
  } catch (err) {
    throw serr(`iptables-restore rejected the service rules: ${(err as Error).message}`, err);
  }
}

const forwardingPath = (bridge: string): string => `/proc/sys/net/ipv4/conf/${bridge}/forwarding`;

function readForwarding(bridge: string): '0' | '1' {
  return readFileSync(forwardingPath(bridge), 'utf8').trim() === '0' ? '0' : '1';
}

function writeForwarding(bridge: string, value: '0' | '1'): void {
  try {
    writeFileSync(forwardingPath(bridge), value);
  } catch (err) {
    throw serr(`cannot set net.ipv4.conf.${bridge}.forwarding=${value}: ${(err as Error).message}`, err);
  }
}

export interface SyncReport {
  servicePorts: number;
  endpoints: number;
  /** Service ports without endpoints (rejected). */
  rejected: number;
  skipped: string[];
  /** True when this sync turned forwarding on for the bridge. */
  enabledForwarding: boolean;
}

let queue: Promise<unknown> = Promise.resolve();
/** Syncs and cleanups run one at a time in this process (each reads the tables, then rewrites them). */
function serialized<T>(fn: () => Promise<T>): Promise<T> {
  const run = queue.then(fn, fn);
  queue = run.catch(() => undefined);
  return run;
}

/**
 * Makes the host's service rules match `registry` (call it on every config change). The first sync installs the
 * FORWARD guard (pod traffic may only go to pods), verifies it is in the kernel, and only then turns on forwarding for
 * the bridge alone (net.ipv4.conf.<bridge>.forwarding=1; the global net.ipv4.ip_forward is never touched), which pod ->
 * ClusterIP -> pod needs. Later syncs swap the chains' content atomically. Pods reach the DNS server and the control
 * plane at the bridge address directly (host INPUT, no forwarding, no NAT).
 */
export async function syncServiceRules(registry: Registry, opts: ServiceProxyOptions): Promise<SyncReport> {
  const s = settings(opts);
  assertNetworkAdmin('syncing the service proxy rules', TOOLS);
  return await serialized(async () => {
    if (!existsSync(forwardingPath(s.bridge))) throw serr(`bridge ${s.bridge} does not exist (create it before syncing the service rules)`);
    const p = plan(registry, s);
    const current = await readTables();
    await restore(renderServiceRules(p, opts, current, readForwarding(s.bridge)));
    let enabledForwarding = false;
    if (readForwarding(s.bridge) !== '1') {
      const after = await readTables();
      const guard = new RegExp(`^-A ${s.prefix}-FORWARD -s ${s.podText.replace(/\./g, '\\.')} ! -d ${s.podText.replace(/\./g, '\\.')} .*-j DROP$`, 'm');
      if (!guard.test(after.filter) || !forwardGuardState(after.filter, s.prefix)) {
        throw serr(`the FORWARD guard for ${s.podText} is not in the kernel after iptables-restore; forwarding stays off`);
      }
      writeForwarding(s.bridge, '1');
      enabledForwarding = true;
    }
    return {
      servicePorts: p.ports.length,
      endpoints: p.ports.reduce((n, sp) => n + sp.endpoints.length, 0),
      rejected: p.ports.filter((sp) => sp.endpoints.length === 0).length,
      skipped: p.skipped,
      enabledForwarding,
    };
  });
}

export interface ServiceCleanupReport {
  /** The chains removed (table/chain). */
  chains: string[];
  /** Built-in chain rules removed. */
  jumps: number;
  /** The bridge whose forwarding was set back, when tsmesh had turned it on. */
  forwarding?: { bridge: string; restored: '0' | '1' };
}

/**
 * Removes every rule and chain named with `chainPrefix` from the host, after setting the bridge's forwarding back to
 * the value recorded in the guard's comment (before the guard goes). Works from a fresh process after a crash or
 * `kill -9` (all state is read back from iptables-save) and is idempotent.
 */
export async function cleanupServiceRules(chainPrefix: string = DEFAULT_CHAIN_PREFIX): Promise<ServiceCleanupReport> {
  checkPrefix(chainPrefix);
  assertNetworkAdmin('removing the service proxy rules', TOOLS);
  return await serialized(async () => {
    const current = await readTables();
    const report: ServiceCleanupReport = { chains: [], jumps: 0 };
    const guard = forwardGuardState(current.filter, chainPrefix);
    if (guard && existsSync(forwardingPath(guard.bridge)) && readForwarding(guard.bridge) !== guard.was) {
      writeForwarding(guard.bridge, guard.was);
      report.forwarding = { bridge: guard.bridge, restored: guard.was };
    }
    const script = serviceCleanupScript(current, chainPrefix);
    if (script === '') return report;
    report.chains = [...ownChains(current.filter, chainPrefix).map((c) => `filter/${c}`), ...ownChains(current.nat, chainPrefix).map((c) => `nat/${c}`)];
    report.jumps = ownJumps(current.filter, chainPrefix).length + ownJumps(current.nat, chainPrefix).length;
    await restore(script);
    const left = await readTables();
    if (serviceCleanupScript(left, chainPrefix) !== '') throw serr(`tsmesh rules with prefix ${chainPrefix} are still present after cleanup`);
    return report;
  });
}
