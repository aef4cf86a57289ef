// Renders the sidecar's traffic-capture rules (the istio-iptables equivalent) in iptables-save form; pure.
// Bad flag or annotation values throw MESH_ERR_CAPTURE_CONFIG naming the flag/annotation and what is allowed.

import { isIPv4, isIPv6 } from 'node:net';
import { MeshError } from '../common/errors.ts';

/** How inbound traffic is captured; NONE means no capture rules at all (`sidecar.istio.io/interceptionMode: NONE`). */
export type InterceptionMode = 'REDIRECT' | 'TPROXY' | 'NONE';

/** The settings of istio-iptables, one field per flag. Ports are TCP port numbers; ranges are CIDRs. */
export interface CaptureConfig {
  /** -p: the sidecar's outbound capture listener (15001). */
  proxyPort: number;
  /** -z: the sidecar's inbound capture listener (15006). */
  inboundCapturePort: number;
  /** -e: the HBONE tunnel port that inbound capture never redirects (15008). */
  inboundTunnelPort: number;
  /** -u: the proxy's UID; its own traffic is never captured (1337). */
  proxyUid: number;
  /** -g: the proxy's GID; undefined means the same number as proxyUid. */
  proxyGid?: number | undefined;
  /** -m: REDIRECT is implemented; TPROXY is rejected by renderCaptureRules; NONE renders nothing. */
  mode: InterceptionMode;
  /** -i: outbound destinations redirected to the proxy: '*' (all) or CIDRs; [] redirects none. */
  includeOutboundIPRanges: '*' | readonly string[];
  /** -x: outbound destinations never redirected (checked before -i). */
  excludeOutboundIPRanges: readonly string[];
  /** -b: inbound ports redirected to the proxy: '*' (all but -d) or a list; [] captures no inbound traffic. */
  includeInboundPorts: '*' | readonly number[];
  /** -d: inbound ports never redirected (only used with -b '*'). */
  excludeInboundPorts: readonly number[];
  /** -o: outbound ports never redirected (TCP and UDP). */
  excludeOutboundPorts: readonly number[];
  /** -q: outbound TCP ports always redirected, whatever the destination. */
  includeOutboundPorts: readonly number[];
  /** -c: interfaces whose traffic is never captured. */
  excludeInterfaces: readonly string[];
}

/** The defaults of Istio's injection template: -p 15001 -z 15006 -u 1337 -m REDIRECT -i '*' -x "" -b '*' -d 15090,15021,15020. */
export const DEFAULT_CAPTURE_CONFIG: Readonly<CaptureConfig> = Object.freeze({
  proxyPort: 15001,
  inboundCapturePort: 15006,
  inboundTunnelPort: 15008,
  proxyUid: 1337,
  proxyGid: undefined,
  mode: 'REDIRECT',
  includeOutboundIPRanges: '*',
  excludeOutboundIPRanges: [],
  includeInboundPorts: '*',
  excludeInboundPorts: [15090, 15021, 15020],
  excludeOutboundPorts: [],
  includeOutboundPorts: [],
  excludeInterfaces: [],
});

/** Address that the sidecar's inbound passthrough binds to when it connects to the application. */
export const INBOUND_PASSTHROUGH_SOURCE = '127.0.0.6/32';
const HOST_LOOPBACK = '127.0.0.1/32';

// ---------------------------------------------------------------------------------------------
// Parsing and validating text values (flags and annotations share these; `what` names the source).

function bad(what: string, value: string, allowed: string, detail?: string): MeshError {
  const why = detail ? ` (${detail})` : '';
  return new MeshError('MESH_ERR_CAPTURE_CONFIG', `${what}: invalid value ${JSON.stringify(value)}${why}; allowed: ${allowed}`);
}

function entries(text: string): string[] {
  return text.split(',').map((s) => s.trim());
}

const PORTS_ALLOWED = 'a comma-separated list of ports 1-65535, or "" for none';

function parsePort(text: string, what: string, whole: string): number {
  if (!/^\d{1,5}$/.test(text)) throw bad(what, whole, PORTS_ALLOWED, text === '' ? 'empty entry' : `"${text}" is not a port`);
  const n = Number(text);
  if (n < 1 || n > 65535) throw bad(what, whole, PORTS_ALLOWED, `${n} is out of range`);
  return n;
}

/** "80,8080" -> [80, 8080]; "" -> []. */
export function parsePortList(text: string, what: string): number[] {
  const t = text.trim();
  if (t === '') return [];
  return entries(t).map((p) => parsePort(p, what, text));
}

/** "*" or a port list (-b, includeInboundPorts). */
export function parsePortsOrAll(text: string, what: string): '*' | number[] {
  if (text.trim() === '*') return '*';
  try {
    return parsePortList(text, what);
  } catch {
    throw bad(what, text, `"*" or ${PORTS_ALLOWED}`);
  }
}

const CIDRS_ALLOWED = 'a comma-separated list of CIDRs such as 10.96.0.0/12,172.16.0.0/16, or "" for none';

/** True for "a.b.c.d/n" (n 0..32) or an IPv6 prefix "x::/n" (n 0..128). */
export function isCidr(text: string): boolean {
  const slash = text.indexOf('/');
  if (slash < 0) return false;
  const addr = text.slice(0, slash);
  const bitsText = text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(bitsText)) return false;
  const bits = Number(bitsText);
  if (isIPv4(addr)) return bits <= 32;
  if (isIPv6(addr)) return bits <= 128;
  return false;
}

/** "10.0.0.0/8,1.2.3.4/32" -> the list; "" -> []. */
export function parseCidrList(text: string, what: string): string[] {
  const t = text.trim();
  if (t === '') return [];
  return entries(t).map((c) => {
    if (!isCidr(c)) throw bad(what, text, CIDRS_ALLOWED, c === '' ? 'empty entry' : `"${c}" is not a CIDR`);
    return c;
  });
}

/** "*" or a CIDR list (-i, includeOutboundIPRanges). */
export function parseCidrsOrAll(text: string, what: string): '*' | string[] {
  if (text.trim() === '*') return '*';
  try {
    return parseCidrList(text, what);
  } catch {
    throw bad(what, text, `"*" or ${CIDRS_ALLOWED}`);
  }
}

const IFACES_ALLOWED = 'a comma-separated list of interface names (1-15 characters of letters, digits, "_", "-", ".", optionally ending in "+")';

/** "eth1,veth+" -> the list; "" -> []. */
export function parseInterfaceList(text: string, what: string): string[] {
  const t = text.trim();
  if (t === '') return [];
  return entries(t).map((name) => {
    if (!/^[A-Za-z0-9_.-]{1,14}\+?$|^[A-Za-z0-9_.-]{15}$/.test(name)) throw bad(what, text, IFACES_ALLOWED, name === '' ? 'empty entry' : `"${name}"`);
    return name;
  });
}

/** REDIRECT, TPROXY or NONE. */
export function parseInterceptionMode(text: string, what: string): InterceptionMode {
  const t = text.trim();
  if (t === 'REDIRECT' || t === 'TPROXY' || t === 'NONE') return t;
  throw bad(what, text, 'REDIRECT, TPROXY or NONE');
}

/** A numeric UID or GID. */
export function parseId(text: string, what: string): number {
  const t = text.trim();
  if (!/^\d{1,10}$/.test(t) || Number(t) > 4294967294) throw bad(what, text, 'a numeric id 0-4294967294');
  return Number(t);
}

/** A single port, 1-65535. */
export function parseSinglePort(text: string, what: string): number {
  return parsePort(text.trim(), what, text);
}

// ---------------------------------------------------------------------------------------------
// Pod annotations.

export const CAPTURE_ANNOTATIONS = {
  includeOutboundIPRanges: 'traffic.sidecar.istio.io/includeOutboundIPRanges',
  excludeOutboundIPRanges: 'traffic.sidecar.istio.io/excludeOutboundIPRanges',
  includeInboundPorts: 'traffic.sidecar.istio.io/includeInboundPorts',
  excludeInboundPorts: 'traffic.sidecar.istio.io/excludeInboundPorts',
  excludeOutboundPorts: 'traffic.sidecar.istio.io/excludeOutboundPorts',
  includeOutboundPorts: 'traffic.sidecar.istio.io/includeOutboundPorts',
  excludeInterfaces: 'traffic.sidecar.istio.io/excludeInterfaces',
  interceptionMode: 'sidecar.istio.io/interceptionMode',
  statusPort: 'status.sidecar.istio.io/port',
} as const;

/** Ports the injection template always puts in -d: Envoy's Prometheus stats and the health port. */
const ALWAYS_EXCLUDED_INBOUND = [15090, 15021] as const;
const DEFAULT_STATUS_PORT = 15020;

/**
 * The capture settings for one pod, as Istio's injection template derives the istio-init arguments:
 * each annotation present replaces the matching default. With `excludeInboundPorts` set, -d becomes
 * 15090,15021,<annotation ports>,<status port> (the status port from `status.sidecar.istio.io/port`,
 * 15020 unless "0"). `includeInboundPorts` defaults to '*' (the template's value when unset, not the
 * container ports). Throws MESH_ERR_CAPTURE_CONFIG naming the annotation when a value is invalid.
 */
export function captureConfigFromPod(
  annotations: Readonly<Record<string, string | undefined>> | undefined,
  defaults: Readonly<CaptureConfig> = DEFAULT_CAPTURE_CONFIG,
): CaptureConfig {
  const a = annotations ?? {};
  const cfg: CaptureConfig = { ...defaults };
  const A = CAPTURE_ANNOTATIONS;
  const get = (name: string): string | undefined => (Object.hasOwn(a, name) ? a[name] : undefined);
  const v = {
    mode: get(A.interceptionMode),
    inclRanges: get(A.includeOutboundIPRanges),
    exclRanges: get(A.excludeOutboundIPRanges),
    inclIn: get(A.includeInboundPorts),
    exclIn: get(A.excludeInboundPorts),
    exclOut: get(A.excludeOutboundPorts),
    inclOut: get(A.includeOutboundPorts),
    ifaces: get(A.excludeInterfaces),
    status: get(A.statusPort),
  };
  if (v.mode !== undefined) cfg.mode = parseInterceptionMode(v.mode, `annotation ${A.interceptionMode}`);
  if (v.inclRanges !== undefined) cfg.includeOutboundIPRanges = parseCidrsOrAll(v.inclRanges, `annotation ${A.includeOutboundIPRanges}`);
  if (v.exclRanges !== undefined) cfg.excludeOutboundIPRanges = parseCidrList(v.exclRanges, `annotation ${A.excludeOutboundIPRanges}`);
  if (v.inclIn !== undefined) cfg.includeInboundPorts = parsePortsOrAll(v.inclIn, `annotation ${A.includeInboundPorts}`);
  let statusPort: number | undefined = DEFAULT_STATUS_PORT;
  if (v.status !== undefined) {
    statusPort = v.status.trim() === '0' ? undefined : parseSinglePort(v.status, `annotation ${A.statusPort}`);
  }
  if (v.exclIn !== undefined || v.status !== undefined) {
    const own = v.exclIn === undefined
      ? defaults.excludeInboundPorts.filter((p) => p !== DEFAULT_STATUS_PORT)
      : parsePortList(v.exclIn, `annotation ${A.excludeInboundPorts}`);
    cfg.excludeInboundPorts = unique([...ALWAYS_EXCLUDED_INBOUND, ...own, ...(statusPort === undefined ? [] : [statusPort])]);
  }
  if (v.exclOut !== undefined) cfg.excludeOutboundPorts = parsePortList(v.exclOut, `annotation ${A.excludeOutboundPorts}`);
  if (v.inclOut !== undefined) cfg.includeOutboundPorts = parsePortList(v.inclOut, `annotation ${A.includeOutboundPorts}`);
  if (v.ifaces !== undefined) cfg.excludeInterfaces = parseInterfaceList(v.ifaces, `annotation ${A.excludeInterfaces}`);
  return cfg;
}

/** istio-iptables' flags: long name -> short letter. */
export const IPTABLES_FLAGS = {
  'envoy-port': 'p',
  'inbound-capture-port': 'z',
  'inbound-tunnel-port': 'e',
  'proxy-uid': 'u',
  'proxy-gid': 'g',
  'istio-inbound-interception-mode': 'm',
  'istio-inbound-ports': 'b',
  'istio-local-exclude-ports': 'd',
  'istio-service-cidr': 'i',
  'istio-service-exclude-cidr': 'x',
  'istio-outbound-ports': 'q',
  'istio-local-outbound-ports-exclude': 'o',
  'istio-exclude-interfaces': 'c',
} as const;
export type IptablesFlag = keyof typeof IPTABLES_FLAGS;

/**
 * Capture settings from istio-iptables flag values (text as typed; absent flags keep `base`).
 * Throws MESH_ERR_CAPTURE_CONFIG naming the flag (`-b (--istio-inbound-ports)`) and what is allowed.
 */
export function captureConfigFromFlags(
  flags: Readonly<Partial<Record<IptablesFlag, string>>>,
  base: Readonly<CaptureConfig> = DEFAULT_CAPTURE_CONFIG,
): CaptureConfig {
  const cfg: CaptureConfig = { ...base };
  const what = (f: IptablesFlag): string => `-${IPTABLES_FLAGS[f]} (--${f})`;
  const each = <K extends IptablesFlag>(f: K, apply: (text: string, name: string) => void): void => {
    const text = flags[f];
    if (text !== undefined) apply(text, what(f));
  };
  each('envoy-port', (t, n) => (cfg.proxyPort = parseSinglePort(t, n)));
  each('inbound-capture-port', (t, n) => (cfg.inboundCapturePort = parseSinglePort(t, n)));
  each('inbound-tunnel-port', (t, n) => (cfg.inboundTunnelPort = parseSinglePort(t, n)));
  each('proxy-uid', (t, n) => (cfg.proxyUid = parseId(t, n)));
  each('proxy-gid', (t, n) => (cfg.proxyGid = parseId(t, n)));
  each('istio-inbound-interception-mode', (t, n) => {
    const mode = parseInterceptionMode(t, n);
    if (mode === 'NONE') throw bad(n, t, 'REDIRECT or TPROXY (istio-iptables has no NONE; the injector skips istio-init instead)');
    cfg.mode = mode;
  });
  each('istio-inbound-ports', (t, n) => (cfg.includeInboundPorts = parsePortsOrAll(t, n)));
  each('istio-local-exclude-ports', (t, n) => (cfg.excludeInboundPorts = parsePortList(t, n)));
  each('istio-service-cidr', (t, n) => (cfg.includeOutboundIPRanges = parseCidrsOrAll(t, n)));
  each('istio-service-exclude-cidr', (t, n) => (cfg.excludeOutboundIPRanges = parseCidrList(t, n)));
  each('istio-outbound-ports', (t, n) => (cfg.includeOutboundPorts = parsePortList(t, n)));
  each('istio-local-outbound-ports-exclude', (t, n) => (cfg.excludeOutboundPorts = parsePortList(t, n)));
  each('istio-exclude-interfaces', (t, n) => (cfg.excludeInterfaces = parseInterfaceList(t, n)));
  return cfg;
}

function unique<T>(xs: readonly T[]): T[] {
  return [...new Set(xs)];
}

// ---------------------------------------------------------------------------------------------
// Rendering.

interface Rule { chain: string; params: string }

const BUILTIN = new Set(['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING', 'RETURN', 'ACCEPT', 'DROP', 'REJECT', 'REDIRECT', 'DNAT', 'SNAT', 'MASQUERADE', 'MARK', 'TPROXY']);

function checkPort(n: number, what: string): void {
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw bad(what, String(n), 'a port 1-65535');
}

function checkConfig(cfg: CaptureConfig): void {
  checkPort(cfg.proxyPort, '-p (proxyPort)');
  checkPort(cfg.inboundCapturePort, '-z (inboundCapturePort)');
  checkPort(cfg.inboundTunnelPort, '-e (inboundTunnelPort)');
  for (const [n, what] of [[cfg.proxyUid, '-u (proxyUid)'], [cfg.proxyGid ?? cfg.proxyUid, '-g (proxyGid)']] as const) {
    if (!Number.isInteger(n) || n < 0 || n > 4294967294) throw bad(what, String(n), 'a numeric id 0-4294967294');
  }
  const ports: [readonly number[] | '*', string][] = [
    [cfg.includeInboundPorts, '-b (includeInboundPorts)'],
    [cfg.excludeInboundPorts, '-d (excludeInboundPorts)'],
    [cfg.excludeOutboundPorts, '-o (excludeOutboundPorts)'],
    [cfg.includeOutboundPorts, '-q (includeOutboundPorts)'],
  ];
  for (const [list, what] of ports) if (list !== '*') for (const p of list) checkPort(p, what);
  const ranges: [readonly string[] | '*', string][] = [
    [cfg.includeOutboundIPRanges, '-i (includeOutboundIPRanges)'],
    [cfg.excludeOutboundIPRanges, '-x (excludeOutboundIPRanges)'],
  ];
  for (const [list, what] of ranges) {
    if (list === '*') continue;
    for (const c of list) if (!isCidr(c)) throw bad(what, c, CIDRS_ALLOWED);
  }
  if ((cfg.excludeOutboundIPRanges as readonly string[] | '*') === '*') throw bad('-x (excludeOutboundIPRanges)', '*', CIDRS_ALLOWED);
  parseInterfaceList(cfg.excludeInterfaces.join(','), '-c (excludeInterfaces)');
}

const isV4Cidr = (c: string): boolean => isIPv4(c.slice(0, c.indexOf('/')));

/**
 * The IPv4 nat rules istio-iptables installs for `cfg`, in iptables-save form (`* nat`, `-N` lines for
 * the ISTIO_* chains, `-A` rules, `COMMIT`), in istio-iptables' order. IPv6 CIDRs in -i/-x are skipped
 * (no ip6tables rules are rendered). Exclusion ports (-d, -o) are emitted sorted and without
 * duplicates: RETURN rules commute, and this makes the flags' `-d 15090,15021,15020` and the CNI's
 * `15020,15021,15090` render the same text. mode NONE renders ''. Throws MESH_ERR_CAPTURE_CONFIG for
 * TPROXY (not implemented) and for out-of-range values.
 */
export function renderCaptureRules(cfg: Readonly<CaptureConfig>): string {
  if (cfg.mode === 'NONE') return '';
  if (cfg.mode === 'TPROXY') {
    throw new MeshError('MESH_ERR_CAPTURE_CONFIG', '-m (interception mode): TPROXY is not supported by tsmesh; use REDIRECT (the default)');
  }
  if (cfg.mode !== 'REDIRECT') throw bad('-m (interception mode)', String(cfg.mode), 'REDIRECT, TPROXY or NONE');
  checkConfig(cfg);

  const rules: Rule[] = [];
  const add = (chain: string, ...params: string[]): void => {
    rules.push({ chain, params: params.join(' ') });
  };
  const tunnel = String(cfg.inboundTunnelPort);
  const uid = String(cfg.proxyUid);
  const gid = String(cfg.proxyGid ?? cfg.proxyUid);
  const sortedUnique = (ps: readonly number[]): number[] => unique(ps).sort((x, y) => x - y);
  const includeRanges = cfg.includeOutboundIPRanges === '*' ? '*' : cfg.includeOutboundIPRanges.filter(isV4Cidr);
  const includesLoopback = includeRanges !== '*' && includeRanges.some((c) => c.startsWith('127.'));

  for (const iface of cfg.excludeInterfaces) {
    add('PREROUTING', '-i', iface, '-j', 'RETURN');
    add('OUTPUT', '-o', iface, '-j', 'RETURN');
  }
  add('ISTIO_INBOUND', '-p', 'tcp', '--dport', tunnel, '-j', 'RETURN');
  add('ISTIO_REDIRECT', '-p', 'tcp', '-j', 'REDIRECT', '--to-ports', String(cfg.proxyPort));
  add('ISTIO_IN_REDIRECT', '-p', 'tcp', '-j', 'REDIRECT', '--to-ports', String(cfg.inboundCapturePort));

  const inbound = cfg.includeInboundPorts;
  if (inbound === '*' || inbound.length > 0) {
    add('PREROUTING', '-p', 'tcp', '-j', 'ISTIO_INBOUND');
    if (inbound === '*') {
      for (const p of sortedUnique(cfg.excludeInboundPorts)) add('ISTIO_INBOUND', '-p', 'tcp', '--dport', String(p), '-j', 'RETURN');
      add('ISTIO_INBOUND', '-p', 'tcp', '-j', 'ISTIO_IN_REDIRECT');
    } else {
      for (const p of inbound) add('ISTIO_INBOUND', '-p', 'tcp', '--dport', String(p), '-j', 'ISTIO_IN_REDIRECT');
    }
  }

  add('OUTPUT', '-j', 'ISTIO_OUTPUT');
  for (const p of sortedUnique(cfg.excludeOutboundPorts)) {
    add('ISTIO_OUTPUT', '-p', 'tcp', '--dport', String(p), '-j', 'RETURN');
    add('ISTIO_OUTPUT', '-p', 'udp', '--dport', String(p), '-j', 'RETURN');
  }
  add('ISTIO_OUTPUT', '-o', 'lo', '-s', INBOUND_PASSTHROUGH_SOURCE, '-j', 'RETURN');
  for (const [kind, id] of [['--uid-owner', uid], ['--gid-owner', gid]] as const) {
    // The proxy calling its own pod through a VIP comes back in through inbound capture.
    add('ISTIO_OUTPUT', '-o', 'lo', '!', '-d', HOST_LOOPBACK, '-p', 'tcp', '!', '--dport', tunnel, '-m', 'owner', kind, id, '-j', 'ISTIO_IN_REDIRECT');
    // An application calling itself over loopback is not captured (unless -i names a loopback range).
    if (!includesLoopback) add('ISTIO_OUTPUT', '-o', 'lo', '-m', 'owner', '!', kind, id, '-j', 'RETURN');
    // Everything else the proxy sends goes out as is: no loops.
    add('ISTIO_OUTPUT', '-m', 'owner', kind, id, '-j', 'RETURN');
  }
  add('ISTIO_OUTPUT', '-d', HOST_LOOPBACK, '-j', 'RETURN');
  for (const cidr of cfg.excludeOutboundIPRanges.filter(isV4Cidr)) add('ISTIO_OUTPUT', '-d', cidr, '-j', 'RETURN');
  for (const p of cfg.includeOutboundPorts) add('ISTIO_OUTPUT', '-p', 'tcp', '--dport', String(p), '-j', 'ISTIO_REDIRECT');
  if (includeRanges === '*') add('ISTIO_OUTPUT', '-j', 'ISTIO_REDIRECT');
  else for (const cidr of includeRanges) add('ISTIO_OUTPUT', '-d', cidr, '-j', 'ISTIO_REDIRECT');

  return toRestore(rules);
}

/** iptables-restore text for the nat table: `-N` for every non-built-in chain, in order of first use. */
function toRestore(rules: readonly Rule[]): string {
  const chains: string[] = [];
  const note = (c: string): void => {
    if (!BUILTIN.has(c) && !chains.includes(c)) chains.push(c);
  };
  for (const r of rules) note(r.chain);
  for (const r of rules) {
    const m = / -j (\S+)/.exec(` ${r.params}`);
    if (m?.[1]) note(m[1]);
  }
  const lines = ['* nat', ...chains.map((c) => `-N ${c}`), ...rules.map((r) => `-A ${r.chain} ${r.params}`), 'COMMIT'];
  return lines.join('\n') + '\n';
}

/** Names of the chains renderCaptureRules creates (removeCaptureRules deletes exactly these). */
export const CAPTURE_CHAINS = ['ISTIO_INBOUND', 'ISTIO_REDIRECT', 'ISTIO_IN_REDIRECT', 'ISTIO_OUTPUT'] as const;
