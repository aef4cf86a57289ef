// The embedded default (`tsmesh up`): the control plane, a bridge with DNS and the service proxy, and
// every pod of the manifests in its own network namespace — injected by the same function as the
// webhook, with capture rules, a sidecar (UID 1337) and its application processes. Reconciles pods
// when config changes; writes its state to one directory for the CLI; removes everything on stop.

import { mkdirSync, rmSync, writeFileSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { logger, type Logger } from '../common/log.ts';
import { MeshError } from '../common/errors.ts';
import { listYamlFiles } from '../config/loader.ts';
import { ControlPlane } from '../controlplane/server.ts';
import { injectPod, injectionDecision, podCaptureConfig, type PodTemplate } from '../inject/inject.ts';
import { resolveContainerEnv } from '../inject/inject-env.ts';
import type { Workload } from '../registry/types.ts';
import { buildDnsView, resolvConf, startMeshDns, type MeshDns, DEFAULT_SERVICE_CIDR } from './dns.ts';
import { containerCommand, loadExternalHosts, loadImageMappings, type ImageCommand } from './images.ts';
import { cleanupAll, ensureBridge, DEFAULT_BRIDGE, DEFAULT_BRIDGE_ADDRESS, DEFAULT_POD_CIDR } from './netns.ts';
import { startPod, TSMESH_BIN, type ContainerRun, type RunningPod } from './pod-runner.ts';
import { cleanupServiceRules, syncServiceRules } from './service-proxy.ts';

export const STATE_DIR = process.env.TSMESH_HOME ?? '/var/run/tsmesh';
export const RUNTIME_PREFIX = 'tsm-m-';

export interface LocalMeshOptions {
  paths: string[];
  podCIDR?: string;
  serviceCIDR?: string;
  bridge?: string;
  gateway?: string;
  meshOverrides?: string[];
  stateDir?: string;
  log?: Logger;
  /** Ports of the control plane: xDS on the bridge address, the HTTP API on 127.0.0.1. */
  xdsPort?: number;
  httpPort?: number;
  /** Names of namespaces and interfaces (default tsm-m-), and of the iptables chains (default TSMESH): tests isolate with their own. */
  prefix?: string;
  chainPrefix?: string;
  /** DNS port on the bridge address (default 53). */
  dnsPort?: number;
  /** "External" hosts for tests and demos (e.g. httpbin.org): run in namespaces of our own outside the mesh,
   *  on the bridge, with names served by the mesh DNS. Nothing ever leaves this machine. */
  externalHosts?: Record<string, ExternalHostSpec>;
}

export interface ExternalHostSpec {
  /** An image of the mapping files, or a command. */
  image?: string;
  command?: string[];
  port: number;
  env?: Record<string, string>;
}

export interface PodState {
  name: string;
  namespace: string;
  ip: string;
  netns: string;
  phase: 'Pending' | 'Running' | 'Failed';
  sidecar: boolean;
  containers: Array<{ name: string; log: string; pid?: number }>;
  message?: string;
  owner?: string;
  labels: Record<string, string>;
}

export interface MeshState {
  pid: number;
  startedAt: string;
  ready: boolean;
  bridge: string;
  gateway: string;
  podCIDR: string;
  serviceCIDR: string;
  controlplane: { xds: string; http: string };
  logDir: string;
  pods: PodState[];
  error?: string;
}

export function readState(dir = STATE_DIR): MeshState | undefined {
  try {
    return JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8')) as MeshState;
  } catch {
    return undefined;
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Manifests of a folder as kubectl reads it (not recursive); files are taken as they are. */
export async function manifestFiles(paths: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (const p of paths) {
    const all = await listYamlFiles(p);
    const top = all.filter((f) => f === p || f.slice(p.length).replace(/^\/+/, '').split('/').length === 1);
    out.push(...top.filter((f) => !f.endsWith('tsmesh.local.yaml')));
  }
  return out;
}

export class LocalMesh {
  #cp?: ControlPlane;
  readonly log: Logger;
  readonly #opts: Required<Pick<LocalMeshOptions, 'podCIDR' | 'serviceCIDR' | 'bridge' | 'gateway' | 'stateDir'>> & LocalMeshOptions;
  readonly #pods = new Map<string, { state: PodState; run?: RunningPod }>();
  #images: Map<string, ImageCommand> = new Map();
  #dns?: MeshDns;
  readonly #externals: RunningPod[] = [];
  #reconciling: Promise<void> = Promise.resolve();
  #again = false;
  #ready = false;
  #stopped = false;
  #error: string | undefined;

  constructor(opts: LocalMeshOptions) {
    this.#opts = {
      ...opts,
      podCIDR: opts.podCIDR ?? DEFAULT_POD_CIDR,
      serviceCIDR: opts.serviceCIDR ?? DEFAULT_SERVICE_CIDR,
      bridge: opts.bridge ?? DEFAULT_BRIDGE,
      gateway: opts.gateway ?? DEFAULT_BRIDGE_ADDRESS,
      stateDir: opts.stateDir ?? STATE_DIR,
    };
    this.log = opts.log ?? logger('up');
  }

  get cp(): ControlPlane {
    if (!this.#cp) throw new MeshError('MESH_ERR_RUNTIME_POD', 'the local mesh is not started');
    return this.#cp;
  }

  get logDir(): string {
    return join(this.#opts.stateDir, 'logs');
  }

  async start(): Promise<void> {
    const o = this.#opts;
    mkdirSync(this.logDir, { recursive: true });
    this.#images = loadImageMappings(o.paths);
    await ensureBridge({ name: o.bridge, address: o.gateway, cidr: o.podCIDR });
    const files = await manifestFiles(o.paths);
    // the control plane serves and watches exactly these files (and whatever `tsmesh apply` adds)
    this.#cp = new ControlPlane({
      configPaths: files,
      xdsAddress: `${o.gateway}:${o.xdsPort ?? 15010}`,
      httpAddress: `127.0.0.1:${o.httpPort ?? 15014}`,
      registry: { podCIDR: o.podCIDR, serviceCIDR: o.serviceCIDR },
      meshOverrides: o.meshOverrides ?? [],
      log: logger('controlplane'),
    });
    await this.cp.start();
    const externals = new Map<string, string>([['istiod.istio-system.svc.cluster.local', o.gateway]]);
    await this.#startExternalHosts(externals);
    this.#dns = await startMeshDns({ address: o.gateway, port: o.dnsPort ?? 53, records: () => buildDnsView(this.cp.pushContext().registry, externals, { serviceCIDR: o.serviceCIDR }) });
    this.cp.store.onChange(() => this.#schedule());
    this.#schedule();
    await this.#reconciling;
    this.#ready = true;
    this.#writeState();
  }

  /** Starts each external test host in its own namespace (no sidecar) at the top of the pod range. */
  async #startExternalHosts(externals: Map<string, string>): Promise<void> {
    const o = this.#opts;
    const used = new Set(this.cp.pushContext().registry.workloads.map((w) => w.ip));
    const [base, bitsText] = o.podCIDR.split('/') as [string, string];
    const start = ipToInt(base) + 2 ** (32 - Number(bitsText)) - 2; // the last usable address, going down
    let n = 0;
    let i = 0;
    const declared = o.externalHosts ?? Object.fromEntries(loadExternalHosts(o.paths));
    for (const [name, spec] of Object.entries(declared)) {
      let ip = intToIp(start - n++);
      while (used.has(ip)) ip = intToIp(start - n++);
      const mapped = spec.image ? this.#images.get(spec.image) : undefined;
      const argv = spec.command ?? mapped?.command;
      if (!argv) throw new MeshError('MESH_ERR_RUNTIME_POD', `external host ${name}: no command and no mapping for image "${spec.image ?? ''}"`);
      const netns = `${this.#prefix}x${(i++).toString(36)}`;
      const run = await startPod(
        { name, namespace: 'external', ip, netns, hostname: name, containers: [{ name: 'app', argv, env: { ...(mapped?.env ?? {}), ...(spec.env ?? {}), PORT: String(spec.port) }, ...(mapped?.cwd ? { cwd: mapped.cwd } : {}) }] },
        { bridge: o.bridge, cidr: o.podCIDR, gateway: o.gateway, prefix: this.#prefix, logDir: this.logDir },
      );
      this.#externals.push(run);
      externals.set(name, ip);
    }
  }

  #schedule(): void {
    this.#again = true;
    this.#reconciling = this.#reconciling.then(async () => {
      while (this.#again && !this.#stopped) {
        this.#again = false;
        try {
          await this.#reconcile();
          this.#error = undefined;
        } catch (err) {
          this.#error = (err as Error).message;
          this.log.error('reconcile failed', { error: this.#error });
        }
        this.#writeState();
      }
    });
  }

  async #reconcile(): Promise<void> {
    const o = this.#opts;
    const push = this.cp.pushContext();
    await syncServiceRules(push.registry, { podCIDR: o.podCIDR, serviceCIDR: o.serviceCIDR, bridge: o.bridge, localEndpoints: [o.gateway], ...(o.chainPrefix ? { chainPrefix: o.chainPrefix } : {}) });
    const want = new Map<string, Workload>();
    for (const w of push.registry.workloads) if (w.kind === 'Pod') want.set(`${w.namespace}/${w.name}`, w);
    for (const [key, p] of this.#pods) {
      if (want.has(key)) continue;
      await p.run?.stop();
      this.#pods.delete(key);
    }
    const starts: Array<Promise<void>> = [];
    let index = 0;
    for (const [key, w] of want) {
      if (this.#pods.has(key)) continue;
      const netns = `${this.#prefix}${(Date.now() % 100000).toString(36)}${(index++).toString(36)}`;
      const state: PodState = { name: w.name, namespace: w.namespace, ip: w.ip, netns, phase: 'Pending', sidecar: false, containers: [], labels: w.labels, ...(w.owner ? { owner: `${w.owner.kind}/${w.owner.name}` } : {}) };
      this.#pods.set(key, { state });
      starts.push(this.#startPod(w, state));
    }
    await Promise.all(starts);
  }

  async #startPod(w: Workload, state: PodState): Promise<void> {
    const o = this.#opts;
    const push = this.cp.pushContext();
    try {
      const nsLabels = push.registry.namespaces.get(w.namespace)?.labels ?? {};
      const decision = injectionDecision({ labels: w.labels, annotations: w.annotations, namespace: w.namespace, hostNetwork: w.podSpec?.hostNetwork }, nsLabels);
      let template: PodTemplate = { metadata: { name: w.name, namespace: w.namespace, labels: { ...w.labels }, annotations: { ...w.annotations } }, spec: w.podSpec ?? { containers: [] } };
      if (decision.inject) template = injectPod(template, { namespace: w.namespace, workloadName: w.owner?.name ?? w.name, ownerKind: w.owner?.kind ?? 'Pod', meshConfig: push.mesh, discoveryAddress: `${o.gateway}:${this.cp.xdsPort}` });
      const status = { podIP: w.ip, hostIP: o.gateway, nodeName: 'tsmesh' };
      const containers: ContainerRun[] = [];
      let sidecarEnv: Record<string, string> | undefined;
      for (const c of template.spec?.containers ?? []) {
        const env = resolveContainerEnv(c, template, status);
        if (c.name === 'istio-proxy' && decision.inject) {
          sidecarEnv = { ...env, XDS_ADDRESS: `${o.gateway}:${this.cp.xdsPort}`, TSMESH_LOG_LEVEL: process.env.TSMESH_LOG_LEVEL ?? 'info' };
          continue;
        }
        const cmd = containerCommand(c, this.#images, w.annotations);
        containers.push({ name: c.name, argv: cmd.argv, env: { ...cmd.env, ...env }, ...(cmd.cwd ? { cwd: cmd.cwd } : {}), uid: c.securityContext?.runAsUser ?? 1000 });
      }
      const capture = decision.inject ? podCaptureConfig(template) : undefined;
      state.sidecar = sidecarEnv !== undefined;
      const run = await startPod(
        {
          name: w.name,
          namespace: w.namespace,
          ip: w.ip,
          netns: state.netns,
          containers,
          hostname: w.name,
          resolvConf: resolvConf(w.namespace, o.gateway),
          ...(sidecarEnv ? { sidecar: { env: sidecarEnv, argv: [process.execPath, TSMESH_BIN, 'proxy'] }, ...(capture ? { capture } : {}) } : {}),
        },
        { bridge: o.bridge, cidr: o.podCIDR, gateway: o.gateway, prefix: this.#prefix, logDir: this.logDir },
      );
      const entry = this.#pods.get(`${w.namespace}/${w.name}`);
      if (entry) entry.run = run;
      state.phase = 'Running';
      state.containers = [...run.processes.entries()].map(([name, p]) => ({ name, log: run.logFile(name), ...(p.pid !== undefined ? { pid: p.pid } : {}) }));
      for (const [name, p] of run.processes) {
        p.on('exit', (code) => {
          if (this.#stopped) return;
          if (name !== 'istio-proxy' && w.owner?.kind === 'Job') {
            // a Job's pod is done when its application exits: its sidecar exits too
            const proxy = run.processes.get('istio-proxy');
            if (proxy?.pid) try { process.kill(-proxy.pid, 'SIGTERM'); } catch { /* gone */ }
          }
          state.message = `${name} exited (${code ?? 'signal'})`;
          this.#writeState();
        });
      }
    } catch (err) {
      state.phase = 'Failed';
      state.message = (err as Error).message;
      this.log.error(`pod ${w.namespace}/${w.name} failed`, { error: state.message });
    }
  }

  #writeState(): void {
    const o = this.#opts;
    const s: MeshState = {
      pid: process.pid,
      startedAt: new Date().toISOString(),
      ready: this.#ready,
      bridge: o.bridge,
      gateway: o.gateway,
      podCIDR: o.podCIDR,
      serviceCIDR: o.serviceCIDR,
      controlplane: { xds: `${o.gateway}:${this.#cp?.xdsPort ?? 0}`, http: `http://127.0.0.1:${this.#cp?.httpPort ?? 0}` },
      logDir: this.logDir,
      pods: [...this.#pods.values()].map((p) => p.state),
      ...(this.#error ? { error: this.#error } : {}),
    };
    mkdirSync(o.stateDir, { recursive: true });
    writeFileSync(join(o.stateDir, 'state.json.tmp'), JSON.stringify(s, null, 2));
    writeFileSync(join(o.stateDir, 'state.json'), JSON.stringify(s, null, 2));
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    await this.#reconciling.catch(() => undefined);
    await this.#cp?.stop().catch(() => undefined);
    await Promise.all([...this.#pods.values()].map(async (p) => { await p.run?.stop().catch(() => undefined); }));
    await Promise.all(this.#externals.map((r) => r.stop().catch(() => undefined)));
    await this.#dns?.close();
    await teardown(this.#opts.bridge, this.#opts.stateDir, this.#prefix, this.#opts.chainPrefix);
  }

  get #prefix(): string {
    return this.#opts.prefix ?? RUNTIME_PREFIX;
  }
}

/** Removes every namespace, interface, rule and state file the runtime made; works after a kill -9. */
export async function teardown(bridge = DEFAULT_BRIDGE, stateDir = STATE_DIR, prefix = RUNTIME_PREFIX, chainPrefix?: string): Promise<void> {
  await cleanupServiceRules(chainPrefix).catch(() => undefined);
  await cleanupAll(prefix, [bridge]);
  try {
    for (const d of (await import('node:fs')).readdirSync('/etc/netns')) if (d.startsWith(prefix)) rmSync(join('/etc/netns', d), { recursive: true, force: true });
  } catch {
    /* no /etc/netns */
  }
  if (existsSync(join(stateDir, 'state.json'))) rmSync(join(stateDir, 'state.json'), { force: true });
  rmSync(join(stateDir, 'state.json.tmp'), { force: true });
}

export function assertNotRunning(stateDir = STATE_DIR): void {
  const s = readState(stateDir);
  if (s && isAlive(s.pid)) throw new MeshError('MESH_ERR_CLI_USAGE', `a mesh is already running (pid ${s.pid}, started ${s.startedAt}); run \`tsmesh down\` first`);
}

function ipToInt(ip: string): number {
  return ip.split('.').reduce((n, x) => n * 256 + Number(x), 0);
}

function intToIp(n: number): string {
  return [24, 16, 8, 0].map((s) => (n >>> s) & 255).join('.');
}
