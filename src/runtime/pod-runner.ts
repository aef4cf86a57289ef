// Runs one pod on this machine: its own network namespace wired to the bridge with its IP, the capture
// rules (when it has a sidecar), the sidecar as UID/GID 1337, then the application containers once the
// sidecar is ready. Stopping kills every process of the pod and removes its namespace and veth.
// Failures throw MeshError saying which step failed; a half-started pod is torn down.

import type { ChildProcess } from 'node:child_process';
import http from 'node:http';
import { mkdirSync, rmSync, writeFileSync, createWriteStream, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MeshError } from '../common/errors.ts';
import { applyCaptureRules } from '../inject/capture-apply.ts';
import { renderCaptureRules, type CaptureConfig } from '../inject/capture-rules.ts';
import { attachToBridge, createNetns, deleteLink, deleteNetns, execInNetns, vethName } from './netns.ts';

export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const TSMESH_BIN = join(REPO_ROOT, 'bin', 'tsmesh');
export const PROXY_UID = 1337;

export interface ContainerRun {
  name: string;
  argv: string[];
  env?: Record<string, string>;
  cwd?: string;
  uid?: number;
}

export interface PodRun {
  name: string;
  namespace: string;
  ip: string;
  /** Network namespace name (≤ 15 chars is not required, but keep it short). */
  netns: string;
  containers: ContainerRun[];
  /** The sidecar's environment (POD_NAME...); absent = no sidecar, no capture. */
  sidecar?: { env: Record<string, string>; argv?: string[] };
  capture?: CaptureConfig;
  /** DNS: written to /etc/netns/<netns>/resolv.conf, which `ip netns exec` mounts over /etc/resolv.conf. */
  resolvConf?: string;
  hostname?: string;
}

export interface NetworkSettings {
  bridge: string;
  cidr: string;
  gateway: string;
  /** Prefix of every interface name this runtime creates (cleanup by prefix). */
  prefix: string;
  /** Where container logs go: <logDir>/<namespace>_<pod>_<container>.log */
  logDir: string;
}

export interface RunningPod {
  spec: PodRun;
  processes: Map<string, ChildProcess>;
  logFile(container: string): string;
  stop(): Promise<void>;
}

function startProcess(pod: PodRun, net: NetworkSettings, c: ContainerRun, uid?: number): { child: ChildProcess; log: WriteStream; file: string } {
  const file = join(net.logDir, `${pod.namespace}_${pod.name}_${c.name}.log`);
  const log = createWriteStream(file, { flags: 'a' });
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin', HOME: '/tmp', HOSTNAME: pod.hostname ?? pod.name, ...c.env };
  const child = execInNetns(pod.netns, c.argv, { env, ...(c.cwd ? { cwd: c.cwd } : {}), ...(uid !== undefined ? { uid } : {}), detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout?.pipe(log, { end: false });
  child.stderr?.pipe(log, { end: false });
  child.on('error', (err) => log.write(`tsmesh: cannot start ${c.name}: ${err.message}\n`));
  return { child, log, file };
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    try {
      child.kill(signal);
    } catch {
      /* gone */
    }
  }
}

async function waitExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return true;
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), ms);
    child.once('exit', () => {
      clearTimeout(t);
      resolve(true);
    });
  });
}

/** One GET of the sidecar's readiness endpoint on a fresh connection (no pooled socket outlives the pod); 0 when unreachable. */
function probeReady(ip: string): Promise<number> {
  return new Promise((resolve) => {
    const req = http.get({ host: ip, port: 15021, path: '/healthz/ready', agent: false, timeout: 1000, headers: { connection: 'close' } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(0));
  });
}

/** Polls http://<ip>:15021/healthz/ready until 200 (the sidecar applied its first full config). */
export async function waitSidecarReady(ip: string, child: ChildProcess, timeoutMs = 30_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new MeshError('MESH_ERR_RUNTIME_POD', `the sidecar at ${ip} exited (${child.exitCode ?? child.signalCode}) before it was ready`);
    if ((await probeReady(ip)) === 200) return;
    if (Date.now() > until) throw new MeshError('MESH_ERR_RUNTIME_POD', `the sidecar at ${ip} was not ready within ${timeoutMs} ms (is the control plane reachable?)`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function startPod(pod: PodRun, net: NetworkSettings): Promise<RunningPod> {
  mkdirSync(net.logDir, { recursive: true });
  const hostVeth = vethName(net.prefix, `${pod.namespace}/${pod.name}`);
  const processes = new Map<string, ChildProcess>();
  const logs: WriteStream[] = [];
  const files = new Map<string, string>();
  const stop = async (): Promise<void> => {
    for (const p of processes.values()) killGroup(p, 'SIGTERM');
    for (const p of processes.values()) if (!(await waitExit(p, 2000))) killGroup(p, 'SIGKILL');
    for (const l of logs) l.end();
    await deleteNetns(pod.netns).catch(() => undefined);
    await deleteLink(hostVeth).catch(() => undefined);
    rmSync(`/etc/netns/${pod.netns}`, { recursive: true, force: true });
  };
  try {
    await createNetns(pod.netns);
    await attachToBridge({ netns: pod.netns, hostVeth, podIp: pod.ip, cidr: net.cidr, gateway: net.gateway, bridge: net.bridge });
    if (pod.resolvConf || pod.hostname) {
      mkdirSync(`/etc/netns/${pod.netns}`, { recursive: true });
      if (pod.resolvConf) writeFileSync(`/etc/netns/${pod.netns}/resolv.conf`, pod.resolvConf);
      writeFileSync(`/etc/netns/${pod.netns}/hosts`, `127.0.0.1\tlocalhost\n${pod.ip}\t${pod.hostname ?? pod.name}\n`);
    }
    if (pod.sidecar && pod.capture) await applyCaptureRules(pod.netns, renderCaptureRules(pod.capture));
    if (pod.sidecar) {
      const argv = pod.sidecar.argv ?? [process.execPath, TSMESH_BIN, 'proxy'];
      const s = startProcess(pod, net, { name: 'istio-proxy', argv, env: pod.sidecar.env }, PROXY_UID);
      processes.set('istio-proxy', s.child);
      logs.push(s.log);
      files.set('istio-proxy', s.file);
      await waitSidecarReady(pod.ip, s.child);
    }
    for (const c of pod.containers) {
      const s = startProcess(pod, net, c, c.uid);
      processes.set(c.name, s.child);
      logs.push(s.log);
      files.set(c.name, s.file);
    }
  } catch (err) {
    await stop();
    throw err instanceof MeshError ? err : new MeshError('MESH_ERR_RUNTIME_POD', `pod ${pod.namespace}/${pod.name}: ${(err as Error).message}`, { cause: err });
  }
  return { spec: pod, processes, logFile: (c) => files.get(c) ?? '', stop };
}
