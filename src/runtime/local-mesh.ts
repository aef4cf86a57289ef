// The embedded default (`tsmesh up`): the control plane, a bridge with DNS and the service proxy, and
// every pod of the manifests in its own network namespace — injected by the same function as the
// webhook, with capture rules, a sidecar (UID 1337) and its application processes. Reconciles pods
// when config changes; replaces a Job's failed pods as the Job controller does (back-off, backoffLimit,
// activeDeadlineSeconds); writes its state to one directory for the CLI; removes everything on stop.

import { mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { logger, type Logger } from '../common/log.ts';
import { MeshError } from '../common/errors.ts';
import { listYamlFiles } from '../config/loader.ts';
import { ControlPlane } from '../controlplane/server.ts';
import { INIT_CONTAINER_NAME, INJECT_KEYS, PROXY_CONTAINER_NAME, VALIDATION_CONTAINER_NAME, injectPod, injectionDecision, isInjected, podCaptureConfig, type PodTemplate } from '../inject/inject.ts';
import { CAPTURE_ANNOTATIONS, type CaptureConfig } from '../inject/capture-rules.ts';
import { resolveContainerEnv } from '../inject/inject-env.ts';
import { proxyCommandArgs } from '../inject/inject-sidecar.ts';
import type { Workload } from '../registry/types.ts';
import { buildDnsView, resolvConf, startMeshDns, type MeshDns, DEFAULT_SERVICE_CIDR } from './dns.ts';
import { containerCommand, loadExternalHosts, loadImageMappings, type ImageCommand } from './images.ts';
import { cleanupAll, ensureBridge, DEFAULT_BRIDGE, DEFAULT_BRIDGE_ADDRESS, DEFAULT_POD_CIDR } from './netns.ts';
import { sidecarArgv, startPod, type ContainerRun, type InitContainerRun, type PodStatus, type RestartPolicy, type RunningPod } from './pod-runner.ts';
import { jobBackoffDelay, jobFinished, jobPodName, jobSpecOf, jobSupportWarning, type JobState } from './job.ts';
import { notStartedText } from './pod-status.ts';
import { cleanupServiceRules, DEFAULT_CHAIN_PREFIX, syncServiceRules } from './service-proxy.ts';
import { stateDir, type MeshState, type PodState } from './state.ts';

export { assertNotRunning, isAlive, readState, stateDir, type ContainerState, type MeshState, type PodState } from './state.ts';
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
  /** Base of the container restart back-off (default 10 s, as the kubelet). */
  restartBackoffMs?: number;
  /** Base of the Job controller's back-off before a failed pod is replaced (default 10 s, doubled each time, capped at 6 min). */
  jobBackoffMs?: number;
  /** How long starting a pod waits for its init containers (default 60 s); a pod still in them then keeps trying
   *  in the background while the mesh reports ready (`tsmesh up` names it with its state). */
  initWaitMs?: number;
}

export interface ExternalHostSpec {
  /** An image of the mapping files, or a command. */
  image?: string;
  command?: string[];
  port: number;
  env?: Record<string, string>;
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
  readonly #pods = new Map<string, PodEntry>();
  /** Jobs by namespace/name: their status and what the runtime does for them (timers, which pods were counted). */
  readonly #jobs = new Map<string, JobRun>();
  #seq = 0;
  #images: Map<string, ImageCommand> = new Map();
  #dns?: MeshDns;
  readonly #externals: RunningPod[] = [];
  #reconciling: Promise<void> = Promise.resolve();
  #again = false;
  #ready = false;
  #stopped = false;
  readonly #startedAt = new Date().toISOString();
  #error: string | undefined;

  constructor(opts: LocalMeshOptions) {
    this.#opts = {
      ...opts,
      podCIDR: opts.podCIDR ?? DEFAULT_POD_CIDR,
      serviceCIDR: opts.serviceCIDR ?? DEFAULT_SERVICE_CIDR,
      bridge: opts.bridge ?? DEFAULT_BRIDGE,
      gateway: opts.gateway ?? DEFAULT_BRIDGE_ADDRESS,
      stateDir: opts.stateDir ?? stateDir(),
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
    const wantJobs = new Set<string>();
    for (const w of push.registry.workloads) {
      if (w.kind !== 'Pod') continue;
      if (w.owner?.kind === 'Job') {
        // the Job controller's pods: one at a time (the first the registry names), replaced by the runtime when it fails
        const jobKey = `${w.namespace}/${w.owner.name}`;
        if (wantJobs.has(jobKey)) continue;
        wantJobs.add(jobKey);
        if (this.#jobs.has(jobKey)) continue;
      }
      want.set(`${w.namespace}/${w.name}`, w);
    }
    for (const [key, j] of this.#jobs) {
      if (wantJobs.has(key)) continue;
      clearTimeout(j.timer);
      clearTimeout(j.deadline);
      this.#jobs.delete(key);
    }
    for (const [key, p] of this.#pods) {
      if (want.has(key) || (p.job && this.#jobs.has(p.job))) continue;
      await p.run?.stop();
      this.#pods.delete(key);
    }
    const starts: Array<Promise<void>> = [];
    let index = 0;
    for (const [key, w] of want) {
      if (this.#pods.has(key)) continue;
      const netns = `${this.#prefix}${(Date.now() % 100000).toString(36)}${(index++).toString(36)}`;
      const state: PodState = { name: w.name, namespace: w.namespace, ip: w.ip, netns, phase: 'Pending', sidecar: false, containers: [], labels: w.labels, ...(w.owner ? { owner: `${w.owner.kind}/${w.owner.name}` } : {}) };
      const entry: PodEntry = { state };
      if (w.owner?.kind === 'Job') entry.job = this.#newJob(w);
      this.#pods.set(key, entry);
      entry.started = this.#startPod(w, state);
      starts.push(entry.started);
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
      // A pod injected here, or before (kube-inject output, with istio-init or CNI-style annotations): its
      // istio-proxy container is the sidecar, and the runtime installs the capture rules istio-init or the CNI
      // plugin would (istio-init and istio-validation themselves are not run).
      const meshed = decision.inject || (isInjected(template) && (template.spec?.containers ?? []).some((c) => c.name === PROXY_CONTAINER_NAME));
      const status = { podIP: w.ip, hostIP: o.gateway, nodeName: 'tsmesh' };
      const containers: ContainerRun[] = [];
      let sidecar: { env: Record<string, string>; postStart?: string[] } | undefined;
      // the istio-proxy container's own arguments (`proxy sidecar ... --concurrency N`): tsmesh proxy accepts Istio's
      let sidecarArgs = ['proxy'];
      for (const c of template.spec?.containers ?? []) {
        const env = resolveContainerEnv(c, template, status);
        const postStart = c.lifecycle?.postStart?.exec?.command;
        if (c.name === PROXY_CONTAINER_NAME && meshed) {
          sidecarArgs = proxyCommandArgs(c, env);
          sidecar = { env: { ...env, XDS_ADDRESS: `${o.gateway}:${this.cp.xdsPort}`, TSMESH_LOG_LEVEL: process.env.TSMESH_LOG_LEVEL ?? 'info' }, ...(postStart?.length ? { postStart } : {}) };
          continue;
        }
        const cmd = containerCommand(c, this.#images, w.annotations);
        containers.push({ name: c.name, argv: cmd.argv, env: { ...cmd.env, ...env }, ...(cmd.cwd ? { cwd: cmd.cwd } : {}), uid: runAsUser(c, template), ...(postStart?.length ? { postStart } : {}) });
      }
      // init containers in the pod's order, built as the containers are; Istio's own are done by the runtime itself:
      // istio-init installs the capture rules where it stands (Istio's injector puts it last, so application init
      // containers run before the capture), istio-validation (CNI) finds them installed before any init container
      const initContainers: InitContainerRun[] = [];
      for (const c of template.spec?.initContainers ?? []) {
        if (meshed && (c.name === INIT_CONTAINER_NAME || c.name === VALIDATION_CONTAINER_NAME)) {
          initContainers.push({ name: c.name, argv: [], builtin: c.name === INIT_CONTAINER_NAME ? 'capture' : 'validation' });
          continue;
        }
        if (c.name === INIT_CONTAINER_NAME || c.name === VALIDATION_CONTAINER_NAME) continue;
        const cmd = containerCommand(c, this.#images, w.annotations);
        initContainers.push({ name: c.name, argv: cmd.argv, env: { ...cmd.env, ...resolveContainerEnv(c, template, status) }, ...(cmd.cwd ? { cwd: cmd.cwd } : {}), uid: runAsUser(c, template) });
      }
      const capture = meshed ? cniDefaults(template, podCaptureConfig(template)) : undefined;
      const restartPolicy = restartPolicyOf(w);
      state.sidecar = sidecar !== undefined;
      state.restartPolicy = restartPolicy;
      const started: { run?: RunningPod } = {};
      const update = (st: PodStatus | undefined = started.run?.status()): void => {
        // a pod killed because its Job failed keeps the status the runtime gave it
        if (!st || this.#pods.get(`${w.namespace}/${w.name}`)?.killed) return;
        state.phase = st.phase;
        state.containers = st.containers;
        if (st.initContainers.length > 0) state.initContainers = st.initContainers;
        if (st.error) {
          state.reason = 'StartError';
          state.message = st.error;
        }
        this.#jobPodChanged(`${w.namespace}/${w.name}`);
        this.#writeState();
      };
      const run = await startPod(
        {
          name: w.name,
          namespace: w.namespace,
          ip: w.ip,
          netns: state.netns,
          containers,
          ...(initContainers.length ? { initContainers } : {}),
          ...(o.initWaitMs !== undefined ? { initWaitMs: o.initWaitMs } : {}),
          warn: (message) => this.log.warn(message, { pod: `${w.namespace}/${w.name}` }),
          hostname: w.name,
          resolvConf: resolvConf(w.namespace, o.gateway),
          restartPolicy,
          ...(o.restartBackoffMs !== undefined ? { restartBackoffMs: o.restartBackoffMs } : {}),
          onChange: (st) => update(st),
          ...(sidecar ? { sidecar: { ...sidecar, argv: sidecarArgv(sidecarArgs.slice(1)), hold: !holdDisabled(template.metadata?.annotations) }, ...(capture ? { capture } : {}) } : {}),
        },
        { bridge: o.bridge, cidr: o.podCIDR, gateway: o.gateway, prefix: this.#prefix, logDir: this.logDir },
      );
      started.run = run;
      const entry = this.#pods.get(`${w.namespace}/${w.name}`);
      if (entry) entry.run = run;
      if (entry?.killed) await run.stop();
      else update();
      const stuck = notStartedText(state);
      if (stuck) this.log.warn(stuck);
    } catch (err) {
      state.phase = 'Failed';
      state.reason = 'StartError';
      state.message = (err as Error).message;
      this.log.error(`pod ${w.namespace}/${w.name} failed`, { error: state.message });
      this.#jobPodChanged(`${w.namespace}/${w.name}`);
    }
  }

  /** Starts tracking the Job of its first pod `w`: its spec, status and activeDeadlineSeconds. Returns its key. */
  #newJob(w: Workload): string {
    const owner = w.owner?.name ?? w.name;
    const key = `${w.namespace}/${owner}`;
    const spec = jobSpecOf(w.source?.spec);
    const warning = jobSupportWarning(w.namespace, owner, spec);
    if (warning) this.log.warn(warning);
    const labels: Record<string, string> = {};
    for (const [k, v] of Object.entries(w.source?.metadata.labels ?? {})) labels[k] = String(v);
    const state: JobState = { name: owner, namespace: w.namespace, labels, ...spec, startTime: new Date().toISOString(), active: 1, succeeded: 0, failed: 0, conditions: [], pods: [w.name], ...(warning ? { warning } : {}) };
    const job: JobRun = { state, template: w, counted: new Set() };
    if (spec.activeDeadlineSeconds !== undefined) {
      job.deadline = setTimeout(() => this.#failJob(job, 'DeadlineExceeded', 'Job was active longer than specified deadline'), spec.activeDeadlineSeconds * 1000);
    }
    this.#jobs.set(key, job);
    return key;
  }

  /** The Job controller's part when a Job's pod changed: count it once it succeeded or failed, replace a failed one
   *  after the back-off or fail the Job past its backoffLimit (restarts of an OnFailure pod count too). */
  #jobPodChanged(podKey: string): void {
    const entry = this.#pods.get(podKey);
    const job = entry?.job ? this.#jobs.get(entry.job) : undefined;
    if (!entry || !job || entry.killed || jobFinished(job.state) || job.counted.has(podKey)) return;
    const j = job.state;
    const phase = entry.state.phase;
    if (phase === 'Succeeded') {
      job.counted.add(podKey);
      j.active = Math.max(0, j.active - 1);
      j.succeeded++;
      this.#endJob(job, { type: 'Complete', status: 'True', lastTransitionTime: new Date().toISOString() });
      return;
    }
    if (phase === 'Failed') {
      job.counted.add(podKey);
      j.active = Math.max(0, j.active - 1);
      j.failed++;
      if (j.failed > j.backoffLimit) {
        this.#failJob(job, 'BackoffLimitExceeded', 'Job has reached the specified backoff limit');
        return;
      }
      const delay = jobBackoffDelay(j.failed, this.#opts.jobBackoffMs);
      this.log.info(`Job ${j.namespace}/${j.name}: pod ${entry.state.name} failed (${j.failed}/${j.backoffLimit + 1} allowed); a new pod in ${delay} ms`);
      job.timer = setTimeout(() => {
        if (this.#stopped) return;
        this.#reconciling = this.#reconciling.then(() => this.#replaceJobPod(job, podKey)).catch((err: unknown) => this.log.error('job retry failed', { error: (err as Error).message }));
      }, delay);
      return;
    }
    // restartPolicy OnFailure: the pod's restarts count against backoffLimit
    const restarts = entry.state.containers.filter((c) => c.name !== PROXY_CONTAINER_NAME).reduce((n, c) => n + (c.restartCount ?? 0), 0);
    if (entry.state.restartPolicy === 'OnFailure' && j.failed + restarts > j.backoffLimit) this.#failJob(job, 'BackoffLimitExceeded', 'Job has reached the specified backoff limit');
  }

  /** A new pod for the Job in place of the failed one at `failedKey` (whose namespace and address it takes over; its status stays listed). */
  async #replaceJobPod(job: JobRun, failedKey: string): Promise<void> {
    if (this.#stopped || jobFinished(job.state) || this.#jobs.get(`${job.state.namespace}/${job.state.name}`) !== job) return;
    const old = this.#pods.get(failedKey);
    await old?.started;
    await old?.run?.stop().catch(() => undefined);
    const w = job.template;
    const name = jobPodName(job.state.name, new Set([...this.#pods.values()].map((p) => p.state.name)));
    const netns = `${this.#prefix}${(Date.now() % 100000).toString(36)}r${(this.#seq++).toString(36)}`;
    const state: PodState = { name, namespace: w.namespace, ip: w.ip, netns, phase: 'Pending', sidecar: false, containers: [], labels: w.labels, owner: `Job/${job.state.name}` };
    const entry: PodEntry = { state, job: `${job.state.namespace}/${job.state.name}` };
    this.#pods.set(`${w.namespace}/${name}`, entry);
    job.state.pods.push(name);
    job.state.active++;
    this.#writeState();
    entry.started = this.#startPod({ ...w, name }, state);
    await entry.started;
  }

  /** Ends the Job Failed with `reason`: its pods still running are killed (and listed Failed). */
  #failJob(job: JobRun, reason: string, message: string): void {
    if (jobFinished(job.state)) return;
    for (const [key, entry] of this.#pods) {
      if (entry.job !== `${job.state.namespace}/${job.state.name}` || job.counted.has(key)) continue;
      if (entry.state.phase === 'Succeeded' || entry.state.phase === 'Failed') continue;
      job.counted.add(key);
      entry.killed = true;
      entry.state.phase = 'Failed';
      entry.state.reason = reason;
      for (const c of entry.state.containers) {
        if (c.state === 'terminated') continue;
        Object.assign(c, { state: 'terminated', reason: 'Error', exitCode: 137, ready: false });
        delete c.pid;
      }
      job.state.active = Math.max(0, job.state.active - 1);
      job.state.failed++;
      void (async () => {
        await entry.started;
        await entry.run?.stop().catch(() => undefined);
      })();
    }
    this.log.warn(`Job ${job.state.namespace}/${job.state.name} failed: ${reason} (${message})`);
    this.#endJob(job, { type: 'Failed', status: 'True', reason, message, lastTransitionTime: new Date().toISOString() });
  }

  #endJob(job: JobRun, condition: JobState['conditions'][number]): void {
    clearTimeout(job.timer);
    clearTimeout(job.deadline);
    job.state.conditions.push(condition);
    if (condition.type === 'Complete') job.state.completionTime = condition.lastTransitionTime;
    this.#writeState();
  }

  #writeState(): void {
    if (this.#stopped) return;
    const o = this.#opts;
    const s: MeshState = {
      pid: process.pid,
      startedAt: this.#startedAt,
      ready: this.#ready,
      bridge: o.bridge,
      gateway: o.gateway,
      podCIDR: o.podCIDR,
      serviceCIDR: o.serviceCIDR,
      prefix: this.#prefix,
      chainPrefix: o.chainPrefix ?? DEFAULT_CHAIN_PREFIX,
      controlplane: { xds: `${o.gateway}:${this.#cp?.xdsPort ?? 0}`, http: `http://127.0.0.1:${this.#cp?.httpPort ?? 0}` },
      logDir: this.logDir,
      pods: [...this.#pods.values()].map((p) => p.state),
      jobs: [...this.#jobs.values()].map((j) => j.state),
      ...(this.#error ? { error: this.#error } : {}),
    };
    mkdirSync(o.stateDir, { recursive: true });
    // write-then-rename: a reader never sees half a file
    writeFileSync(join(o.stateDir, 'state.json.tmp'), JSON.stringify(s, null, 2));
    renameSync(join(o.stateDir, 'state.json.tmp'), join(o.stateDir, 'state.json'));
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    for (const j of this.#jobs.values()) {
      clearTimeout(j.timer);
      clearTimeout(j.deadline);
    }
    await this.#reconciling.catch(() => undefined);
    await Promise.all([...this.#pods.values()].map((p) => p.started ?? Promise.resolve()));
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

interface PodEntry {
  state: PodState;
  run?: RunningPod;
  /** The start under way or done (#startPod never throws). */
  started?: Promise<void>;
  /** namespace/name of the Job that owns the pod. */
  job?: string;
  /** Killed by the runtime because its Job failed (its status says so; nothing updates it any more). */
  killed?: boolean;
}

interface JobRun {
  state: JobState;
  /** The workload of the Job's first pod: replacements are made from it (another name, the same address). */
  template: Workload;
  /** Pods already counted as succeeded or failed. */
  counted: Set<string>;
  timer?: NodeJS.Timeout;
  deadline?: NodeJS.Timeout;
}

/** Removes every namespace, interface, rule and state file the runtime made; works after a kill -9. */
export async function teardown(bridge = DEFAULT_BRIDGE, dir = stateDir(), prefix = RUNTIME_PREFIX, chainPrefix?: string): Promise<void> {
  await cleanupServiceRules(chainPrefix).catch(() => undefined);
  await cleanupAll(prefix, [bridge]);
  try {
    for (const d of readdirSync('/etc/netns')) if (d.startsWith(prefix)) rmSync(join('/etc/netns', d), { recursive: true, force: true });
  } catch {
    /* no /etc/netns */
  }
  rmSync(join(dir, 'state.json'), { force: true });
  rmSync(join(dir, 'state.json.tmp'), { force: true });
}

/**
 * A pod without istio-init (injected for CNI) gets its rules from its annotations, as Istio's CNI plugin installs
 * them on the node: that plugin also keeps outbound 15020 uncaptured unless the pod says otherwise.
 */
function cniDefaults(pod: PodTemplate, capture: CaptureConfig | undefined): CaptureConfig | undefined {
  if (!capture || (pod.spec?.initContainers ?? []).some((c) => c.name === INIT_CONTAINER_NAME)) return capture;
  if (pod.metadata?.annotations?.[CAPTURE_ANNOTATIONS.excludeOutboundPorts] !== undefined) return capture;
  return { ...capture, excludeOutboundPorts: [...new Set([...capture.excludeOutboundPorts, 15020])] };
}

/** The uid of a container's process: its securityContext.runAsUser, else the pod's, else 1000 (images' usual non-root user). */
function runAsUser(c: { securityContext?: { runAsUser?: number } }, pod: PodTemplate): number {
  return c.securityContext?.runAsUser ?? pod.spec?.securityContext?.runAsUser ?? 1000;
}

/** Kubernetes' spec.restartPolicy of a pod (Always by default; a Job's pods never restart unless OnFailure). */
function restartPolicyOf(w: Workload): RestartPolicy {
  const p = w.podSpec?.restartPolicy;
  if (p === 'Always' || p === 'OnFailure' || p === 'Never') return p;
  return w.owner?.kind === 'Job' ? 'Never' : 'Always';
}

/** True when the pod's proxy.istio.io/config says holdApplicationUntilProxyStarts: false (the runtime's default is to hold). */
function holdDisabled(annotations: Record<string, string> | undefined): boolean {
  const text = annotations?.[INJECT_KEYS.proxyConfig];
  if (!text) return false;
  try {
    const v = parseYaml(text) as { holdApplicationUntilProxyStarts?: unknown } | null;
    return v?.holdApplicationUntilProxyStarts === false;
  } catch {
    return false;
  }
}

function ipToInt(ip: string): number {
  return ip.split('.').reduce((n, x) => n * 256 + Number(x), 0);
}

function intToIp(n: number): string {
  return [24, 16, 8, 0].map((s) => (n >>> s) & 255).join('.');
}
