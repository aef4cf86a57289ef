// Linux network namespaces for local pods: namespace, bridge, veth pair, process spawning, cleanup by prefix.
// Throws MESH_ERR_CAPTURE_UNAVAILABLE off Linux, without root/CAP_NET_ADMIN or without iproute2; MESH_ERR_CAPTURE_APPLY when `ip` fails.

import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { accessSync, constants as fsConstants, readFileSync } from 'node:fs';
import { isIPv4 } from 'node:net';
import { delimiter, join } from 'node:path';
import { MeshError } from '../common/errors.ts';

/** Pod addresses of the local mesh (same default as the registry's podCIDR). */
export const DEFAULT_POD_CIDR = '10.244.0.0/16';
/** The host bridge every pod's veth is attached to. */
export const DEFAULT_BRIDGE = 'tsmesh0';
/** The bridge's address: every pod's default gateway. */
export const DEFAULT_BRIDGE_ADDRESS = '10.244.0.1';
/** Linux limit on interface names (IFNAMSIZ - 1). */
export const MAX_IFNAME = 15;

const INSTALL_HINT = 'install them with `apt-get install -y iptables iproute2` (Debian/Ubuntu) or `dnf install -y iptables iproute`';
const PRIVILEGE_HINT = 'run as root (e.g. with sudo), or in a container started with --privileged (CAP_NET_ADMIN and CAP_SYS_ADMIN)';

// ---------------------------------------------------------------------------------------------
// Host checks and running tools.

/** Absolute path of `name` in PATH or the sbin folders (which a non-login PATH may lack), or undefined. */
export function findTool(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/local/sbin', '/usr/sbin', '/sbin', '/usr/bin', '/bin'];
  for (const dir of dirs) {
    if (!dir) continue;
    const p = join(dir, name);
    try {
      accessSync(p, fsConstants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return undefined;
}

const CAP_NET_ADMIN = 12n;
const CAP_SYS_ADMIN = 21n;

/** Effective capabilities of this process (Linux), from /proc/self/status. */
function effectiveCaps(): bigint {
  try {
    const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    return m?.[1] ? BigInt(`0x${m[1]}`) : 0n;
  } catch {
    return 0n;
  }
}

/**
 * Throws MESH_ERR_CAPTURE_UNAVAILABLE saying what is missing when this process cannot manage network
 * namespaces and iptables: not Linux, no CAP_NET_ADMIN/CAP_SYS_ADMIN, or one of `tools` not installed.
 * `what` says what the caller was about to do.
 */
export function assertNetworkAdmin(what: string, tools: readonly string[] = ['ip']): void {
  if (process.platform !== 'linux') {
    throw new MeshError('MESH_ERR_CAPTURE_UNAVAILABLE', `${what} needs Linux (network namespaces and iptables); this is ${process.platform}: run tsmesh in a Linux VM or a privileged Linux container`);
  }
  const caps = effectiveCaps();
  const missing = [[CAP_NET_ADMIN, 'CAP_NET_ADMIN'], [CAP_SYS_ADMIN, 'CAP_SYS_ADMIN']].filter(([bit]) => ((caps >> (bit as bigint)) & 1n) === 0n).map(([, n]) => n);
  if (missing.length > 0) {
    throw new MeshError('MESH_ERR_CAPTURE_UNAVAILABLE', `${what} needs ${missing.join(' and ')} (uid ${process.getuid?.() ?? '?'} lacks them): ${PRIVILEGE_HINT}`);
  }
  const absent = tools.filter((t) => findTool(t) === undefined);
  if (absent.length > 0) {
    throw new MeshError('MESH_ERR_CAPTURE_UNAVAILABLE', `${what} needs ${absent.map((t) => `\`${t}\``).join(', ')}, not found in PATH or /usr/sbin: ${INSTALL_HINT}`);
  }
}

export interface ToolResult { code: number; stdout: string; stderr: string }

/**
 * Runs argv[0] (found with findTool) with optional stdin text and resolves to its output.
 * A non-zero exit throws MESH_ERR_CAPTURE_APPLY carrying the command and its stderr, unless `allowFail`.
 */
export function runTool(argv: readonly string[], opts: { input?: string; allowFail?: boolean } = {}): Promise<ToolResult> {
  const [cmd, ...args] = argv;
  const path = cmd === undefined ? undefined : findTool(cmd);
  if (cmd === undefined || path === undefined) {
    return Promise.reject(new MeshError('MESH_ERR_CAPTURE_UNAVAILABLE', `\`${cmd ?? ''}\` not found in PATH or /usr/sbin: ${INSTALL_HINT}`));
  }
  return new Promise((resolve, reject) => {
    const child = spawn(path, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', (err) => reject(new MeshError('MESH_ERR_CAPTURE_APPLY', `${argv.join(' ')}: ${err.message}`, { cause: err })));
    child.on('close', (code, signal) => {
      const res = { code: code ?? (signal ? 128 : 1), stdout, stderr };
      if (res.code !== 0 && !opts.allowFail) {
        reject(new MeshError('MESH_ERR_CAPTURE_APPLY', `\`${argv.join(' ')}\` failed (exit ${res.code}): ${stderr.trim() || stdout.trim() || 'no output'}`));
      } else {
        resolve(res);
      }
    });
    child.stdin.on('error', () => { /* the exit status reports it */ });
    child.stdin.end(opts.input ?? '');
  });
}

// ---------------------------------------------------------------------------------------------
// Names.

const NETNS_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

function checkNetnsName(name: string): void {
  if (!NETNS_NAME.test(name)) {
    throw new MeshError('MESH_ERR_CLI_USAGE', `bad network namespace name ${JSON.stringify(name)}: use 1-64 letters, digits, "_", "-", "." (starting with a letter or digit)`);
  }
}

function checkIfName(name: string): void {
  if (!/^[A-Za-z0-9_.-]+$/.test(name) || name.length > MAX_IFNAME) {
    throw new MeshError('MESH_ERR_CLI_USAGE', `bad interface name ${JSON.stringify(name)}: at most ${MAX_IFNAME} letters, digits, "_", "-", "."`);
  }
}

/**
 * A host-side veth name for `key` that starts with `prefix` and fits Linux's 15 characters
 * (prefix + a base-36 hash of the key). Throws MESH_ERR_CLI_USAGE when the prefix leaves fewer than 3.
 */
export function vethName(prefix: string, key: string): string {
  const room = MAX_IFNAME - prefix.length;
  if (room < 3) throw new MeshError('MESH_ERR_CLI_USAGE', `interface prefix ${JSON.stringify(prefix)} is too long: at most ${MAX_IFNAME - 3} characters`);
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193) >>> 0;
  const name = prefix + h.toString(36).padStart(7, '0').slice(-room);
  checkIfName(name);
  return name;
}

/** "10.244.0.0/16" -> 16; throws MESH_ERR_CLI_USAGE when not an IPv4 CIDR. */
export function prefixLength(cidr: string): number {
  const [addr, bits] = cidr.split('/');
  const n = Number(bits);
  if (!addr || !isIPv4(addr) || !/^\d{1,2}$/.test(bits ?? '') || n > 32) {
    throw new MeshError('MESH_ERR_CLI_USAGE', `bad CIDR ${JSON.stringify(cidr)}: expected an IPv4 range such as ${DEFAULT_POD_CIDR}`);
  }
  return n;
}

// ---------------------------------------------------------------------------------------------
// Namespaces, bridge, veth.

/** Names of the existing network namespaces (`ip netns list`). */
export async function listNetns(): Promise<string[]> {
  assertNetworkAdmin('listing network namespaces');
  const { stdout } = await runTool(['ip', 'netns', 'list']);
  return stdout.split('\n').map((l) => l.trim().split(/\s+/)[0] ?? '').filter((n) => n !== '');
}

/** Creates network namespace `name` with loopback up. Fails with MESH_ERR_CAPTURE_APPLY if it exists. */
export async function createNetns(name: string): Promise<void> {
  checkNetnsName(name);
  assertNetworkAdmin(`creating network namespace ${name}`);
  await runTool(['ip', 'netns', 'add', name]);
  try {
    await runTool(['ip', '-n', name, 'link', 'set', 'lo', 'up']);
  } catch (err) {
    await runTool(['ip', 'netns', 'del', name], { allowFail: true });
    throw err;
  }
}

/** Kills every process still in namespace `name` (SIGKILL) and deletes it; a missing namespace is fine. */
export async function deleteNetns(name: string): Promise<void> {
  checkNetnsName(name);
  assertNetworkAdmin(`deleting network namespace ${name}`);
  const pids = await runTool(['ip', 'netns', 'pids', name], { allowFail: true });
  if (pids.code === 0) {
    for (const pid of pids.stdout.split(/\s+/).filter((p) => /^\d+$/.test(p))) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  const res = await runTool(['ip', 'netns', 'del', name], { allowFail: true });
  if (res.code !== 0 && !/No such file|does not exist/i.test(res.stderr)) {
    throw new MeshError('MESH_ERR_CAPTURE_APPLY', `\`ip netns del ${name}\` failed: ${res.stderr.trim()}`);
  }
}

/** Names of the host's network interfaces (without @peer suffixes). */
export async function listLinks(): Promise<string[]> {
  assertNetworkAdmin('listing network interfaces');
  const { stdout } = await runTool(['ip', '-o', 'link', 'show']);
  return stdout.split('\n').map((l) => /^\d+:\s+([^:@\s]+)/.exec(l)?.[1] ?? '').filter((n) => n !== '');
}

/** Deletes host interface `name` (a veth deletes its peer too); a missing interface is fine. */
export async function deleteLink(name: string): Promise<void> {
  checkIfName(name);
  assertNetworkAdmin(`deleting interface ${name}`);
  const res = await runTool(['ip', 'link', 'del', name], { allowFail: true });
  if (res.code !== 0 && !/Cannot find device|does not exist/i.test(res.stderr)) {
    throw new MeshError('MESH_ERR_CAPTURE_APPLY', `\`ip link del ${name}\` failed: ${res.stderr.trim()}`);
  }
}

export interface BridgeOptions {
  /** Interface name, default tsmesh0. */
  name?: string;
  /** The bridge's own address (the pods' gateway), default 10.244.0.1. */
  address?: string;
  /** The pod CIDR the address belongs to, default 10.244.0.0/16. */
  cidr?: string;
}

/** Creates the host bridge if missing, gives it its address (idempotent) and brings it up. */
export async function ensureBridge(opts: BridgeOptions = {}): Promise<void> {
  const name = opts.name ?? DEFAULT_BRIDGE;
  const address = opts.address ?? DEFAULT_BRIDGE_ADDRESS;
  const bits = prefixLength(opts.cidr ?? DEFAULT_POD_CIDR);
  checkIfName(name);
  if (!isIPv4(address)) throw new MeshError('MESH_ERR_CLI_USAGE', `bad bridge address ${JSON.stringify(address)}: expected an IPv4 address`);
  assertNetworkAdmin(`creating bridge ${name}`);
  if (!(await listLinks()).includes(name)) await runTool(['ip', 'link', 'add', name, 'type', 'bridge']);
  await runTool(['ip', 'addr', 'replace', `${address}/${bits}`, 'dev', name]);
  await runTool(['ip', 'link', 'set', name, 'up']);
}

export interface AttachOptions {
  /** The pod's network namespace (already created). */
  netns: string;
  /** Host-side veth name, e.g. from vethName(prefix, podKey). */
  hostVeth: string;
  /** The pod's address. */
  podIp: string;
  /** The pod CIDR (gives the prefix length), default 10.244.0.0/16. */
  cidr?: string;
  /** Default gateway inside the pod (the bridge address), default 10.244.0.1. */
  gateway?: string;
  /** Bridge to attach the host side to, default tsmesh0. */
  bridge?: string;
  /** Interface name inside the pod, default eth0. */
  ifname?: string;
}

/**
 * Wires a namespace to the bridge: a veth pair (host side on the bridge, `eth0` inside), the pod IP,
 * both ends up, default route via the gateway. On failure the veth is removed again.
 */
export async function attachToBridge(opts: AttachOptions): Promise<void> {
  const ifname = opts.ifname ?? 'eth0';
  const bits = prefixLength(opts.cidr ?? DEFAULT_POD_CIDR);
  const gateway = opts.gateway ?? DEFAULT_BRIDGE_ADDRESS;
  const bridge = opts.bridge ?? DEFAULT_BRIDGE;
  checkNetnsName(opts.netns);
  checkIfName(opts.hostVeth);
  checkIfName(ifname);
  if (!isIPv4(opts.podIp)) throw new MeshError('MESH_ERR_CLI_USAGE', `bad pod IP ${JSON.stringify(opts.podIp)}: expected an IPv4 address`);
  assertNetworkAdmin(`attaching ${opts.netns} to bridge ${bridge}`);
  await runTool(['ip', 'link', 'add', opts.hostVeth, 'type', 'veth', 'peer', 'name', ifname, 'netns', opts.netns]);
  try {
    await runTool(['ip', 'link', 'set', opts.hostVeth, 'master', bridge]);
    await runTool(['ip', 'link', 'set', opts.hostVeth, 'up']);
    await runTool(['ip', '-n', opts.netns, 'addr', 'add', `${opts.podIp}/${bits}`, 'dev', ifname]);
    await runTool(['ip', '-n', opts.netns, 'link', 'set', ifname, 'up']);
    await runTool(['ip', '-n', opts.netns, 'route', 'replace', 'default', 'via', gateway, 'dev', ifname]);
  } catch (err) {
    await runTool(['ip', 'link', 'del', opts.hostVeth], { allowFail: true });
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------
// Processes.

export interface ExecOptions {
  /** Run as this UID (the sidecar runs as 1337); default: this process's. */
  uid?: number;
  /** Run with this GID; default: the uid when uid is given. */
  gid?: number;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  stdio?: StdioOptions;
  /** Start in its own process group, so the caller can kill it with everything it started. */
  detached?: boolean;
}

/**
 * Spawns argv inside network namespace `ns` (via `ip netns exec`, which also bind-mounts
 * /etc/netns/<ns>/* such as resolv.conf), dropping to uid/gid with `setpriv` when asked.
 * A missing namespace shows as the child's non-zero exit and its stderr.
 */
export function execInNetns(ns: string, argv: readonly string[], opts: ExecOptions = {}): ChildProcess {
  checkNetnsName(ns);
  if (argv.length === 0) throw new MeshError('MESH_ERR_CLI_USAGE', 'execInNetns: empty command');
  const tools = opts.uid !== undefined || opts.gid !== undefined ? ['ip', 'setpriv'] : ['ip'];
  assertNetworkAdmin(`running ${argv[0] ?? ''} in network namespace ${ns}`, tools);
  const drop: string[] = [];
  if (opts.uid !== undefined || opts.gid !== undefined) {
    const uid = opts.uid ?? process.getuid?.() ?? 0;
    const gid = opts.gid ?? opts.uid ?? process.getgid?.() ?? 0;
    drop.push(findTool('setpriv') ?? 'setpriv', `--reuid=${uid}`, `--regid=${gid}`, '--clear-groups', '--');
  }
  return spawn(findTool('ip') ?? 'ip', ['netns', 'exec', ns, ...drop, ...argv], {
    env: opts.env ?? process.env,
    ...(opts.cwd !== undefined ? { cwd: opts.cwd } : {}),
    stdio: opts.stdio ?? 'pipe',
    detached: opts.detached ?? false,
  });
}

// ---------------------------------------------------------------------------------------------
// Cleanup.

export interface CleanupReport { namespaces: string[]; links: string[] }

/**
 * Removes everything named with `prefix`: namespaces (after killing the processes inside) and host
 * interfaces (veths, a bridge named with the prefix), plus `extraLinks` (e.g. the tsmesh0 bridge).
 * Safe to run after a crash and to run twice. Refuses prefixes shorter than 3 characters.
 */
export async function cleanupAll(prefix: string, extraLinks: readonly string[] = []): Promise<CleanupReport> {
  if (prefix.length < 3) throw new MeshError('MESH_ERR_CLI_USAGE', `cleanup prefix ${JSON.stringify(prefix)} is too short: at least 3 characters`);
  assertNetworkAdmin(`cleaning up ${prefix}*`);
  const namespaces = (await listNetns()).filter((n) => n.startsWith(prefix));
  for (const ns of namespaces) await deleteNetns(ns);
  const links = (await listLinks()).filter((l) => l.startsWith(prefix) || extraLinks.includes(l));
  for (const l of links) await deleteLink(l);
  return { namespaces, links };
}
