// Runs one pod on this machine: its own network namespace wired to the bridge with its IP, the capture
// rules (when it has a sidecar; at istio-init's place among the init containers, else before them), its init
// containers one after the other, each to exit 0 (a failed one follows the restartPolicy: restarted with
// back-off, or the pod fails), the sidecar as UID/GID 1337, then the application containers in order, each
// after the previous one's postStart hook returned (the sidecar's `tsmesh wait` holds the apps until it
// is ready; without a hook the runtime polls its readiness itself unless told not to). Containers that exit
// follow the pod's restartPolicy with Kubernetes' back-off; when every application container is done the
// sidecar is stopped and the pod is Succeeded or Failed. Stopping kills every process of the pod and removes
// its namespace and veth. Failures throw MeshError saying which step failed; a half-started pod is torn down;
// a pod still in its init containers after initWaitMs is returned as it is and a later failure marks it Failed.

import type { ChildProcess } from 'node:child_process';
import http from 'node:http';
import { appendFileSync, closeSync, mkdirSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureProxyBundle } from '../../scripts/proxy-bundle.mjs';
import { MeshError } from '../common/errors.ts';
import { applyCaptureRules } from '../inject/capture-apply.ts';
import { renderCaptureRules, type CaptureConfig } from '../inject/capture-rules.ts';
import { attachToBridge, createNetns, deleteLink, deleteNetns, execInNetns, vethName } from './netns.ts';
import type { ContainerState, PodState } from './state.ts';

export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const TSMESH_BIN = join(REPO_ROOT, 'bin', 'tsmesh');
export const PROXY_UID = 1337;

/**
 * Node flags the sidecar runs with (docs/proxy.md, "Memory"; workers of --concurrency N inherit them):
 * - a 1 MB young generation (semi-space): V8's grows to 16 MB under load, 32 MB held for good;
 * - the old generation's limit at 1.2x what survived the last full collection (V8's own floor of live + 8 MB still
 *   applies) instead of up to 4x: under load it otherwise fills with promoted garbage up to 40-60 MB;
 * - one V8 background thread instead of four (a sidecar has about one core; each thread keeps a malloc arena);
 * - no allocation-site pretenuring: V8 otherwise starts allocating the data path's per-request objects straight in
 *   the old generation (they survive a scavenge often enough to look long-lived); dead there until the next full
 *   collection, they keep whatever young objects they point to alive through the remembered set, so each scavenge
 *   promoted ~140 KB of one-request garbage and a full collection (pauses up to 10-30 ms) came every ~1.5 s at
 *   1000 requests/s. Without it: 2.4x fewer bytes promoted, fewer full collections, lower p99 and CPU.
 * TSMESH_PROXY_NODE_FLAGS replaces them (space-separated; set but empty: none).
 */
export const SIDECAR_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=1', '--heap-growing-percent=20', '--v8-pool-size=1', '--no-allocation-site-pretenuring'];

/** The sidecar's node flags: TSMESH_PROXY_NODE_FLAGS when set, else SIDECAR_NODE_FLAGS. */
export function sidecarNodeFlags(env: NodeJS.ProcessEnv = process.env): string[] {
  const override = env.TSMESH_PROXY_NODE_FLAGS;
  return override === undefined ? [...SIDECAR_NODE_FLAGS] : override.split(/\s+/).filter(Boolean);
}

/** The command line of a sidecar: node with the sidecar's flags (and `extraNodeFlags`, e.g. --cpu-prof), bin/tsmesh, `proxy` and `args`. */
export function sidecarArgv(args: readonly string[] = [], opts: { extraNodeFlags?: readonly string[]; env?: NodeJS.ProcessEnv } = {}): string[] {
  return [process.execPath, ...sidecarNodeFlags(opts.env), ...(opts.extraNodeFlags ?? []), TSMESH_BIN, 'proxy', ...args];
}
/** What startPod waits for the init containers before it returns a pod still initializing. */
export const DEFAULT_INIT_WAIT_MS = 60_000;

/** The line an init container that failed while the pod's outbound traffic was captured gets in its log and the runtime's. */
export function initCaptureHint(pod: Pick<PodRun, 'namespace' | 'name'>, container: string, exit: string): string {
  return (
    `init container ${container} of pod ${pod.namespace}/${pod.name} exited ${exit} while the pod's outbound traffic was captured and its sidecar ` +
    'not yet running: any connection it opened was redirected to the sidecar port 15001, where nothing listens yet (Istio\'s known ' +
    'limitation with application init containers). To let its traffic through, run it as the proxy\'s user ' +
    '(securityContext.runAsUser: 1337), or exclude its destinations with the pod annotations ' +
    'traffic.sidecar.istio.io/excludeOutboundIPRanges or traffic.sidecar.istio.io/excludeOutboundPorts.'
  );
}

/** Kubernetes' container restart back-off: the first restart is immediate, then 10 s, 20 s, ... up to 5 min. */
export const DEFAULT_RESTART_BACKOFF_MS = 10_000;
const MAX_RESTART_BACKOFF_MS = 300_000;
/** A container that ran this long without exiting starts its back-off afresh (the kubelet's reset). */
const BACKOFF_RESET_MS = 600_000;
const HOOK_TIMEOUT_MS = 120_000;

export type RestartPolicy = 'Always' | 'OnFailure' | 'Never';

export interface ContainerRun {
  name: string;
  argv: string[];
  env?: Record<string, string>;
  cwd?: string;
  uid?: number;
  /** lifecycle.postStart.exec.command: run in the pod after the container starts; the next container waits for it. */
  postStart?: string[];
}

/**
 * An init container. `builtin` marks Istio's own: `capture` (istio-init) installs the capture rules at its place in
 * the order, `validation` (istio-validation, CNI mode: the rules are in place before any init container) checks
 * nothing; neither runs a process (argv is ignored).
 */
export interface InitContainerRun extends ContainerRun {
  builtin?: 'capture' | 'validation';
}

export interface PodRun {
  name: string;
  namespace: string;
  ip: string;
  /** Network namespace name (≤ 15 chars is not required, but keep it short). */
  netns: string;
  containers: ContainerRun[];
  /** Run in order in the pod's namespace, each to exit 0, before the sidecar and the containers start. Without a
   *  `builtin: 'capture'` step the capture rules are installed before the first of them (as Istio's CNI plugin does). */
  initContainers?: InitContainerRun[];
  /** How long startPod waits for the init containers (default 60 s): a pod still initializing then is returned as
   *  it is (phase Pending) and goes on in the background; its sidecar and containers start when they succeed. */
  initWaitMs?: number;
  /** Where the runtime says what went wrong with a pod (an init container that failed under capture). */
  warn?: (message: string) => void;
  /** The sidecar's environment (POD_NAME...); absent = no sidecar, no capture. `postStart` is its lifecycle hook
   *  (holdApplicationUntilProxyStarts: `tsmesh wait`); without one the runtime polls its readiness before starting
   *  the applications unless `hold` is false. */
  sidecar?: { env: Record<string, string>; argv?: string[]; postStart?: string[]; hold?: boolean };
  capture?: CaptureConfig;
  /** DNS: written to /etc/netns/<netns>/resolv.conf, which `ip netns exec` mounts over /etc/resolv.conf. */
  resolvConf?: string;
  hostname?: string;
  /** What happens to a container that exits (Kubernetes' spec.restartPolicy). Unset: nothing (no restart, and the
   *  pod never completes: its sidecar keeps running), for callers that manage their processes themselves. */
  restartPolicy?: RestartPolicy;
  /** Base of the restart back-off (default 10 s): tests shorten it. */
  restartBackoffMs?: number;
  /** Called with the pod's status whenever a container starts, exits or restarts, and when the pod completes. */
  onChange?: (status: PodStatus) => void;
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

export interface PodStatus {
  /** Pending while the init containers run; Running until every application container is done for good; then
   *  Succeeded (all exited 0) or Failed (also: an init container failed under restartPolicy Never). */
  phase: PodState['phase'];
  containers: ContainerState[];
  initContainers: ContainerState[];
  /** Why the pod could not start after startPod returned (its sidecar never became ready...): it is then Failed. */
  error?: string;
}

export interface RunningPod {
  spec: PodRun;
  /** The current process of each container (replaced on restart). */
  processes: Map<string, ChildProcess>;
  logFile(container: string): string;
  status(): PodStatus;
  stop(): Promise<void>;
}

interface Slot {
  run: InitContainerRun;
  uid: number | undefined;
  sidecar: boolean;
  init: boolean;
  child?: ChildProcess;
  startedAt: number;
  state: ContainerState;
  timer?: NodeJS.Timeout;
}

/** Starts a container's process with its output appended straight to its log file (no pipe through the runtime:
 *  the pod keeps running and logging if the runtime dies). */
function startProcess(pod: PodRun, c: ContainerRun, logFile: string, uid?: number): ChildProcess {
  const fd = openSync(logFile, 'a');
  try {
    const child = execInNetns(pod.netns, c.argv, { env: containerEnv(pod, c), ...(c.cwd ? { cwd: c.cwd } : {}), ...(uid !== undefined ? { uid } : {}), detached: true, stdio: ['ignore', fd, fd] });
    child.on('error', (err) => appendFileSync(logFile, `tsmesh: cannot start ${c.name}: ${err.message}\n`));
    return child;
  } finally {
    closeSync(fd);
  }
}

function containerEnv(pod: PodRun, c: ContainerRun): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin', HOME: '/tmp', HOSTNAME: pod.hostname ?? pod.name, ...c.env };
}

/** argv of a hook: `tsmesh ...` (and Istio's `pilot-agent ...`, e.g. `pilot-agent wait`) run this tsmesh. */
export function hookArgv(argv: readonly string[]): string[] {
  const [cmd, ...rest] = argv;
  if (cmd === 'tsmesh' || cmd === 'pilot-agent') return [process.execPath, TSMESH_BIN, ...rest];
  return [...argv];
}

/** Runs a postStart exec hook in the pod as the container's user; throws MESH_ERR_RUNTIME_POD with its output when it fails. */
async function runHook(pod: PodRun, c: ContainerRun, uid: number | undefined, argv: readonly string[]): Promise<void> {
  const child = execInNetns(pod.netns, hookArgv(argv), { env: containerEnv(pod, c), ...(c.cwd ? { cwd: c.cwd } : {}), ...(uid !== undefined ? { uid } : {}), detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (out += d));
  const timer = setTimeout(() => killGroup(child, 'SIGKILL'), HOOK_TIMEOUT_MS);
  const code = await new Promise<number>((resolve) => {
    child.on('error', (err) => {
      out += err.message;
      resolve(127);
    });
    child.on('close', (c, sig) => resolve(c ?? (sig ? 128 : 1)));
  });
  clearTimeout(timer);
  if (code !== 0) {
    throw new MeshError('MESH_ERR_RUNTIME_POD', `pod ${pod.namespace}/${pod.name}: the postStart hook of container ${c.name} (${argv.join(' ')}) failed with exit ${code}: ${out.trim().split('\n').slice(-3).join(' | ') || 'no output'}`);
  }
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

/** The delay before restart number `restarts + 1`: none for the first, then base, 2·base, ... capped at 5 min. */
export function restartDelay(restarts: number, ranForMs: number, baseMs = DEFAULT_RESTART_BACKOFF_MS): number {
  if (restarts === 0 || ranForMs >= BACKOFF_RESET_MS) return 0;
  return Math.min(baseMs * 2 ** (restarts - 1), MAX_RESTART_BACKOFF_MS);
}

export async function startPod(pod: PodRun, net: NetworkSettings): Promise<RunningPod> {
  mkdirSync(net.logDir, { recursive: true });
  const hostVeth = vethName(net.prefix, `${pod.namespace}/${pod.name}`);
  const processes = new Map<string, ChildProcess>();
  const files = new Map<string, string>();
  const slots: Slot[] = [];
  const initSlots: Slot[] = [];
  const policy: RestartPolicy = pod.restartPolicy ?? 'Never';
  const lifecycle = pod.restartPolicy !== undefined;
  const inits = pod.initContainers ?? [];
  let stopping = false;
  let finished: PodStatus['phase'] | undefined;
  let started = false;
  let initialized = inits.length === 0;
  let captured = false;
  let error: string | undefined;
  /** Wakes the init sequence from a back-off when the pod stops. */
  const sleeps = new Set<() => void>();
  const status = (): PodStatus => ({
    phase: finished ?? (initialized ? 'Running' : 'Pending'),
    containers: slots.map((s) => structuredClone(s.state)),
    initContainers: initSlots.map((s) => structuredClone(s.state)),
    ...(error ? { error } : {}),
  });
  const changed = (): void => {
    if (!stopping) pod.onChange?.(status());
  };

  const stop = async (): Promise<void> => {
    stopping = true;
    for (const s of [...initSlots, ...slots]) clearTimeout(s.timer);
    for (const wake of sleeps) wake();
    for (const p of processes.values()) killGroup(p, 'SIGTERM');
    for (const p of processes.values()) if (!(await waitExit(p, 2000))) killGroup(p, 'SIGKILL');
    await deleteNetns(pod.netns).catch(() => undefined);
    await deleteLink(hostVeth).catch(() => undefined);
    rmSync(`/etc/netns/${pod.netns}`, { recursive: true, force: true });
  };

  const logOf = (name: string): string => {
    let file = files.get(name);
    if (!file) {
      file = join(net.logDir, `${pod.namespace}_${pod.name}_${name}.log`);
      appendFileSync(file, '');
      files.set(name, file);
    }
    return file;
  };

  /** Every application container is terminated for good: the pod is done, and so is its sidecar. */
  const maybeFinish = (): void => {
    const apps = slots.filter((s) => !s.sidecar);
    if (!lifecycle || finished || apps.length === 0 || apps.some((s) => s.state.state !== 'terminated')) return;
    finished = apps.every((s) => s.state.exitCode === 0) ? 'Succeeded' : 'Failed';
    for (const s of slots) if (s.sidecar && s.child) killGroup(s.child, 'SIGTERM');
  };

  /** Records a container's exit in its state (terminated, exit code or signal, Completed or Error). */
  const terminated = (slot: Slot, code: number | null, signal: NodeJS.Signals | null): void => {
    const st = slot.state;
    st.state = 'terminated';
    st.ready = false;
    delete st.pid;
    if (code !== null) st.exitCode = code;
    else delete st.exitCode;
    if (signal) st.signal = signal;
    else delete st.signal;
    // a sidecar stopped because the applications are done completed its job, whatever its exit status
    st.reason = code === 0 || (finished && slot.sidecar) ? 'Completed' : 'Error';
  };

  /** Before a restart: lastState keeps this exit; the state waits (CrashLoopBackOff) when there is a delay. Returns the delay. */
  const backOff = (slot: Slot): number => {
    const st = slot.state;
    const delay = restartDelay(st.restartCount, Date.now() - slot.startedAt, pod.restartBackoffMs);
    st.last = { ...(st.exitCode !== undefined ? { exitCode: st.exitCode } : {}), ...(st.signal ? { signal: st.signal } : {}), reason: st.reason ?? 'Error' };
    if (delay > 0) {
      st.state = 'waiting';
      st.reason = 'CrashLoopBackOff';
    }
    return delay;
  };

  const onExit = (slot: Slot, child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void => {
    if (stopping || slot.child !== child || slot.init) return;
    terminated(slot, code, signal);
    const failed = code !== 0;
    // a sidecar that dies before it was ready fails the pod's start instead (startPod throws)
    const restart = !finished && !(slot.sidecar && !started) && (policy === 'Always' || (policy === 'OnFailure' && failed));
    if (restart) {
      const delay = backOff(slot);
      slot.timer = setTimeout(() => void restartSlot(slot), delay);
    } else {
      maybeFinish();
    }
    changed();
  };

  const launch = (slot: Slot): ChildProcess => {
    const child = startProcess(pod, slot.run, logOf(slot.run.name), slot.uid);
    slot.child = child;
    slot.startedAt = Date.now();
    processes.set(slot.run.name, child);
    const st = slot.state;
    st.state = 'running';
    // an init container is ready once it completed (Kubernetes' initContainerStatuses[].ready)
    st.ready = !slot.init;
    delete st.reason;
    delete st.exitCode;
    delete st.signal;
    if (child.pid !== undefined) st.pid = child.pid;
    child.on('exit', (code, signal) => onExit(slot, child, code, signal));
    return child;
  };

  const restartSlot = async (slot: Slot): Promise<void> => {
    if (stopping || finished) return;
    slot.state.restartCount++;
    const child = launch(slot);
    changed();
    if (!slot.run.postStart) return;
    try {
      await runHook(pod, slot.run, slot.uid, slot.run.postStart);
    } catch (err) {
      // as the kubelet: a failed postStart hook kills the container, which then follows the restart policy
      appendFileSync(logOf(slot.run.name), `tsmesh: ${(err as Error).message}\n`);
      killGroup(child, 'SIGKILL');
    }
  };

  const addSlot = (run: InitContainerRun, uid: number | undefined, kind: 'app' | 'sidecar' | 'init'): Slot => {
    // the containers (init ones included) of a pod with init containers wait with the kubelet's PodInitializing
    const reason = inits.length === 0 ? 'ContainerCreating' : 'PodInitializing';
    const slot: Slot = { run, uid, sidecar: kind === 'sidecar', init: kind === 'init', startedAt: Date.now(), state: { name: run.name, log: '', state: 'waiting', reason, restartCount: 0, ready: false } };
    logOf(run.name);
    slot.state.log = files.get(run.name) ?? '';
    (kind === 'init' ? initSlots : slots).push(slot);
    return slot;
  };

  const installCapture = async (): Promise<void> => {
    if (!pod.sidecar || !pod.capture || captured) return;
    await applyCaptureRules(pod.netns, renderCaptureRules(pod.capture));
    captured = true;
  };

  const sleep = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(t);
        sleeps.delete(done);
        resolve();
      };
      const t = setTimeout(done, ms);
      sleeps.add(done);
    });

  /** Runs one init container until it exits 0 (true), or the pod fails or stops (false). */
  const runInit = async (slot: Slot): Promise<boolean> => {
    const name = slot.run.name;
    for (;;) {
      if (stopping) return false;
      if (slot.run.builtin) {
        // Istio's own init containers: the runtime does their work (the rules of istio-iptables) in place of a process
        if (slot.run.builtin === 'capture') await installCapture();
        appendFileSync(logOf(name), slot.run.builtin === 'capture' ? 'tsmesh: the runtime installed the capture rules (istio-init\'s iptables) in the pod\'s network namespace\n' : 'tsmesh: the capture rules are in place (installed with the pod\'s network, as the Istio CNI plugin does)\n');
        terminated(slot, 0, null);
        slot.state.ready = true;
        changed();
        return true;
      }
      const child = launch(slot);
      changed();
      const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.once('exit', (c, s) => resolve([c, s])));
      if (stopping) return false;
      terminated(slot, code, signal);
      if (code === 0) {
        slot.state.ready = true;
        changed();
        return true;
      }
      if (captured && slot.uid !== PROXY_UID) {
        const hint = initCaptureHint(pod, name, code !== null ? String(code) : `on ${signal ?? 'a signal'}`);
        appendFileSync(logOf(name), `tsmesh: ${hint}\n`);
        // the runtime's log says it once per container, not at every restart
        if (slot.state.restartCount === 0) pod.warn?.(hint);
      }
      // Kubernetes: a failed init container is restarted until it succeeds, unless the pod's restartPolicy is Never
      if (policy === 'Never') {
        finished = 'Failed';
        changed();
        return false;
      }
      const delay = backOff(slot);
      changed();
      await sleep(delay);
      slot.state.restartCount++;
    }
  };

  /** The init containers in order, then the capture rules if no istio-init step installed them. */
  const initialize = async (): Promise<boolean> => {
    for (const slot of initSlots) if (!(await runInit(slot))) return false;
    await installCapture();
    initialized = true;
    changed();
    return !stopping;
  };

  let sidecarSlot: Slot | undefined;
  /** The sidecar (held until ready), then the application containers in order, each after its postStart hook. */
  const startContainers = async (): Promise<void> => {
    if (sidecarSlot && pod.sidecar) {
      const slot = sidecarSlot;
      const run = slot.run;
      const child = launch(slot);
      changed();
      if (run.postStart) await runHook(pod, run, PROXY_UID, run.postStart);
      else if (pod.sidecar.hold !== false) await waitSidecarReady(pod.ip, child);
      if (slot.state.state !== 'running') throw new MeshError('MESH_ERR_RUNTIME_POD', `pod ${pod.namespace}/${pod.name}: the sidecar exited (${slot.state.exitCode ?? slot.state.signal ?? '?'}) while starting; see ${slot.state.log}`);
    }
    started = true;
    for (const slot of slots) {
      if (finished || stopping) break;
      if (slot.sidecar) continue;
      launch(slot);
      changed();
      if (slot.run.postStart) await runHook(pod, slot.run, slot.uid, slot.run.postStart);
    }
  };
  const wrap = (err: unknown): MeshError => (err instanceof MeshError ? err : new MeshError('MESH_ERR_RUNTIME_POD', `pod ${pod.namespace}/${pod.name}: ${(err as Error).message}`, { cause: err }));

  let init: Promise<boolean>;
  let timer: NodeJS.Timeout | undefined;
  try {
    await createNetns(pod.netns);
    await attachToBridge({ netns: pod.netns, hostVeth, podIp: pod.ip, cidr: net.cidr, gateway: net.gateway, bridge: net.bridge });
    if (pod.resolvConf || pod.hostname) {
      mkdirSync(`/etc/netns/${pod.netns}`, { recursive: true });
      if (pod.resolvConf) writeFileSync(`/etc/netns/${pod.netns}/resolv.conf`, pod.resolvConf);
      writeFileSync(`/etc/netns/${pod.netns}/hosts`, `127.0.0.1\tlocalhost\n${pod.ip}\t${pod.hostname ?? pod.name}\n`);
    }
    // without istio-init among the init containers, the rules are there before any of them runs (Istio CNI)
    if (!inits.some((c) => c.builtin === 'capture')) await installCapture();
    for (const c of inits) addSlot(c, c.builtin ? undefined : c.uid, 'init');
    if (pod.sidecar) {
      // the sidecar runs the prebuilt bundle (rebuilt here when a source changed since), as `tsmesh up` users get it;
      // when it cannot be built, bin/tsmesh says why in the sidecar's log and runs the sources (as it does when this
      // process has TSMESH_PROXY_FROM_SOURCE=1, passed on)
      await ensureProxyBundle();
      const env = { ...pod.sidecar.env, ...(process.env.TSMESH_PROXY_FROM_SOURCE ? { TSMESH_PROXY_FROM_SOURCE: process.env.TSMESH_PROXY_FROM_SOURCE } : {}) };
      const run: ContainerRun = { name: 'istio-proxy', argv: pod.sidecar.argv ?? sidecarArgv(), env, ...(pod.sidecar.postStart ? { postStart: pod.sidecar.postStart } : {}) };
      sidecarSlot = addSlot(run, PROXY_UID, 'sidecar');
    }
    for (const c of pod.containers) addSlot(c, c.uid, 'app');
    // the sidecar is listed first, as before
    if (sidecarSlot) slots.unshift(...slots.splice(slots.indexOf(sidecarSlot), 1));
    init = initialize();
    // a failure of the init sequence itself (the capture rules could not be installed) fails the start
    init.catch(() => undefined);
    const waitMs = pod.initWaitMs ?? DEFAULT_INIT_WAIT_MS;
    const inTime = inits.length === 0 || (await Promise.race([init.then(() => true), new Promise<false>((r) => (timer = setTimeout(() => r(false), waitMs)))]));
    clearTimeout(timer);
    if (inTime) {
      if (await init) await startContainers();
    } else {
      // still initializing: returned as it is; the rest follows in the background and a failure there fails the pod
      void init
        .then(async (ok) => {
          if (ok) await startContainers();
        })
        .catch(async (err: unknown) => {
          if (stopping) return;
          error = wrap(err).message;
          finished = 'Failed';
          pod.warn?.(error);
          await stop();
          pod.onChange?.(status());
        });
    }
  } catch (err) {
    clearTimeout(timer);
    await stop();
    throw wrap(err);
  }
  return {
    spec: pod,
    processes,
    logFile: (c) => files.get(c) ?? '',
    status,
    stop,
  };
}
