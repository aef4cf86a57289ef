// A real mesh for end-to-end tests: the control plane in this process, and every pod of the given
// YAML in its own network namespace on a per-run bridge and /24, with the real capture rules, a real
// `tsmesh proxy` as UID 1337 and the application processes the test maps images to.
// Everything is named with a per-run prefix and removed by stop(), also after failures.

import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadString } from '../../src/config/loader.ts';
import { resourceKey } from '../../src/config/resource.ts';
import { ControlPlane } from '../../src/controlplane/server.ts';
import { DEFAULT_CAPTURE_CONFIG } from '../../src/inject/capture-rules.ts';
import { cleanupAll, ensureBridge, execInNetns } from '../../src/runtime/netns.ts';
import { sidecarArgv, startPod, type RunningPod } from '../../src/runtime/pod-runner.ts';
import type { Workload } from '../../src/registry/types.ts';
import type { Logger } from '../../src/common/log.ts';
import { freeSubnet, runPrefix } from './netns.ts';

const quiet: Logger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };
export const APPS = fileURLToPath(new URL('../fixtures/apps/', import.meta.url));

/** A client pod (image tsmesh/sleep: idles) in namespace demo, to run fetches from. */
export const CLIENT_YAML = `apiVersion: apps/v1
kind: Deployment
metadata: {name: client, namespace: demo}
spec:
  selector: {matchLabels: {app: client}}
  template:
    metadata: {labels: {app: client}}
    spec: {containers: [{name: client, image: tsmesh/sleep}]}`;

/** The echo Service of namespace demo: port 80 (http) to the pods' 8080. */
export const ECHO_SERVICE_YAML = `apiVersion: v1
kind: Service
metadata: {name: echo, namespace: demo}
spec:
  selector: {app: echo}
  ports: [{name: http, port: 80, targetPort: 8080}]`;

/** One echo pod (image tsmesh/echo on 8080) behind ECHO_SERVICE_YAML, labelled app=echo only. */
export const ECHO_DEPLOYMENT_YAML = `apiVersion: apps/v1
kind: Deployment
metadata: {name: echo, namespace: demo}
spec:
  selector: {matchLabels: {app: echo}}
  template:
    metadata: {labels: {app: echo}}
    spec: {containers: [{name: echo, image: tsmesh/echo, ports: [{containerPort: 8080}]}]}`;

export interface JobYamlOptions {
  backoffLimit?: number;
  restartPolicy?: 'Never' | 'OnFailure';
  /** Labels after `app: <name>`, as YAML flow entries: `sidecar.istio.io/inject: "false"`. */
  labels?: string;
  /** Pod annotations, as YAML flow entries. */
  annotations?: string;
  /** More lines of the Job's spec, indented two spaces: `  activeDeadlineSeconds: 1`. */
  spec?: string[];
}

/** A batch/v1 Job (in the manifest's default namespace) whose one container runs `command` with /bin/sh (image curlimages/curl). */
export function jobYaml(name: string, command: string, o: JobYamlOptions = {}): string {
  const labels = o.labels ? `, ${o.labels}` : '';
  const annotations = o.annotations ? `, annotations: {${o.annotations}}` : '';
  return `apiVersion: batch/v1
kind: Job
metadata: {name: ${name}}
spec:
  backoffLimit: ${o.backoffLimit ?? 0}
${(o.spec ?? []).map((l) => `${l}\n`).join('')}  template:
    metadata: {labels: {app: ${name}${labels}}${annotations}}
    spec:
      restartPolicy: ${o.restartPolicy ?? 'Never'}
      containers:
      - name: ${name}
        image: docker.io/curlimages/curl:8.16.0
        command: ["/bin/sh", "-c", ${JSON.stringify(command)}]
`;
}

export interface MeshOptions {
  yaml: string;
  /** image -> how to run it (argv; PORT etc. env). A container whose image is not here runs `sleep infinity`. */
  images: Record<string, { argv: string[]; env?: Record<string, string> }>;
  meshOverrides?: string[];
  /** Pods (by app label) that get no sidecar. */
  withoutSidecar?: string[];
  /** Arguments after `tsmesh proxy` for every sidecar (e.g. Istio's `sidecar --domain ... --concurrency 2`). */
  sidecarArgs?: string[];
}

export interface TestMesh {
  cp: ControlPlane;
  pods: Map<string, { workload: Workload; run: RunningPod }>;
  pod(app: string): { workload: Workload; run: RunningPod };
  /** Runs argv in the pod's network namespace (as `uid`, default 1000), resolving with its output. */
  exec(app: string, argv: string[], uid?: number): Promise<{ code: number; stdout: string; stderr: string }>;
  /**
   * GETs through test/fixtures/apps/fetch.mjs inside the pod; one parsed result per response, in order.
   * `concurrency` keeps that many requests in flight (each on its own connection); `h2` uses cleartext
   * HTTP/2 with prior knowledge (results then carry the trailers).
   */
  fetch(app: string, url: string, opts?: FetchOptions): Promise<FetchResult[]>;
  sidecarLog(app: string): string;
  /**
   * Waits (bounded) until the pod's sidecar has logged at least `count` (default 1) access log lines for
   * requests whose path is exactly `path`, and returns them parsed (Istio's TEXT format).
   */
  accessLog(app: string, path: string, opts?: { count?: number; timeoutMs?: number }): Promise<AccessLogEntry[]>;
  /** The pod's IP. */
  ip(app: string): string;
  /** A service's first ClusterIP, by FQDN (throws when it has none). */
  vip(fqdn: string): string;
  /** Applies Istio/Kubernetes YAML to the running control plane (throws when rejected); sidecars get the push. */
  apply(yaml: string): void;
  /** Removes the resources of this YAML (matched by kind, namespace and name) from the running control plane. */
  remove(yaml: string): void;
  stop(): Promise<void>;
}

export interface FetchOptions {
  headers?: Record<string, string>;
  count?: number;
  concurrency?: number;
  h2?: boolean;
  /** Per-request client timeout in ms (default 30000); a timed-out request has error "client timeout". */
  timeoutMs?: number;
}

export interface FetchResult {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** Milliseconds from sending the request to the end of the response (measured in the pod). */
  ms: number;
  trailers?: Record<string, string>;
  error?: string;
}

/** The fields of one access log line in Istio's TEXT format that tests look at. */
export interface AccessLogEntry {
  method: string;
  path: string;
  protocol: string;
  code: number;
  flags: string;
  details: string;
  requestId: string;
  authority: string;
  upstreamHost: string;
  cluster: string;
  upstreamLocal: string;
  downstreamLocal: string;
  downstreamRemote: string;
  route: string;
  raw: string;
}

const ACCESS_LOG_LINE = /^\[[^\]]+\] "(\S+) (\S+) (\S+)" (\d+) (\S+) (\S+) \S+ "[^"]*" \d+ \d+ \S+ \S+ "[^"]*" "[^"]*" "([^"]*)" "([^"]*)" "([^"]*)" (\S+) (\S+) (\S+) (\S+) \S+ (\S+)$/;

/** Parses an access log line in Istio's TEXT format; undefined for other lines (the proxy's own log). */
export function parseAccessLog(line: string): AccessLogEntry | undefined {
  const m = ACCESS_LOG_LINE.exec(line);
  if (!m) return undefined;
  const [, method = '', path = '', protocol = '', code = '0', flags = '', details = '', requestId = '', authority = '', upstreamHost = '', cluster = '', upstreamLocal = '', downstreamLocal = '', downstreamRemote = '', route = ''] = m;
  return { method, path, protocol, code: Number(code), flags, details, requestId, authority, upstreamHost, cluster, upstreamLocal, downstreamLocal, downstreamRemote, route, raw: line };
}

/** Polls `fn` every `everyMs` until it returns something other than undefined; throws naming `what` after `timeoutMs`. */
export async function poll<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, timeoutMs = 15_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export async function startTestMesh(opts: MeshOptions): Promise<TestMesh> {
  const prefix = runPrefix('e');
  const { base, cidr } = freeSubnet();
  const gateway = `${base}.1`;
  const bridge = `${prefix}br`;
  const logDir = mkdtempSync(join(tmpdir(), 'tsmesh-e2e-'));
  const cp = new ControlPlane({ xdsAddress: '0.0.0.0:0', httpAddress: '127.0.0.1:0', log: quiet, registry: { podCIDR: cidr }, meshOverrides: opts.meshOverrides ?? [], debounce: { quietMs: 20, maxDelayMs: 200 } });
  const pods = new Map<string, { workload: Workload; run: RunningPod }>();
  const running: RunningPod[] = [];
  const stop = async (): Promise<void> => {
    // the control plane first: its ADS streams end while the sidecars are alive to close their side
    await cp.stop().catch(() => undefined);
    await Promise.all(running.map((r) => r.stop().catch(() => undefined)));
    await cleanupAll(prefix, [bridge]).catch(() => undefined);
    rmSync(logDir, { recursive: true, force: true });
  };
  try {
    const loaded = loadString(opts.yaml, 'mesh.yaml');
    const result = cp.store.apply(loaded.resources, 'test', loaded.diagnostics);
    if (!result.accepted) throw new Error(`test mesh YAML rejected: ${result.diagnostics.map((d) => d.message).join('; ')}`);
    await cp.start();
    await ensureBridge({ name: bridge, address: gateway, cidr });
    const push = cp.pushContext();
    let i = 0;
    for (const w of push.registry.workloads) {
      if (w.kind !== 'Pod') continue;
      const app = w.labels.app ?? w.name;
      const sidecar = !(opts.withoutSidecar ?? []).includes(app);
      const containers = (w.podSpec?.containers ?? []).map((c) => {
        const img = opts.images[c.image ?? ''];
        const env: Record<string, string> = { POD_NAME: w.name, POD_NAMESPACE: w.namespace, INSTANCE_IP: w.ip };
        for (const e of c.env ?? []) if (e.value !== undefined) env[e.name] = e.value;
        return { name: c.name, argv: img?.argv ?? ['sleep', 'infinity'], env: { ...env, ...(img?.env ?? {}) }, uid: 1000 };
      });
      const run = await startPod(
        {
          name: w.name,
          namespace: w.namespace,
          ip: w.ip,
          netns: `${prefix}${i++}`,
          containers,
          hostname: w.name,
          ...(sidecar
            ? {
                capture: { ...DEFAULT_CAPTURE_CONFIG },
                sidecar: {
                  env: {
                    POD_NAME: w.name,
                    POD_NAMESPACE: w.namespace,
                    INSTANCE_IP: w.ip,
                    SERVICE_ACCOUNT: w.serviceAccount,
                    ISTIO_METAJSON_LABELS: JSON.stringify(w.labels),
                    XDS_ADDRESS: `${gateway}:${cp.xdsPort}`,
                    TSMESH_LOG_LEVEL: process.env.TSMESH_TEST_SIDECAR_LOG_LEVEL ?? 'info',
                  },
                  ...(opts.sidecarArgs ? { argv: sidecarArgv(opts.sidecarArgs) } : {}),
                },
              }
            : {}),
        },
        { bridge, cidr, gateway, prefix, logDir },
      );
      running.push(run);
      // by app label (the first pod of that app) and, for versioned apps, by `app-version` too
      if (!pods.has(app)) pods.set(app, { workload: w, run });
      if (w.labels.version) pods.set(`${app}-${w.labels.version}`, { workload: w, run });
    }
  } catch (err) {
    await stop();
    throw err;
  }
  const pod = (app: string): { workload: Workload; run: RunningPod } => {
    const p = pods.get(app);
    if (!p) throw new Error(`no pod with app=${app}; pods: ${[...pods.keys()].join(', ')}`);
    return p;
  };
  const exec = (app: string, argv: string[], uid = 1000): Promise<{ code: number; stdout: string; stderr: string }> =>
    new Promise((resolve) => {
      const child = execInNetns(pod(app).run.spec.netns, argv, { uid });
      let stdout = '';
      let stderr = '';
      child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
    });
  const readLog = (app: string): string => {
    try {
      return readFileSync(pod(app).run.logFile('istio-proxy'), 'utf8');
    } catch {
      return '';
    }
  };
  return {
    cp,
    pods,
    pod,
    exec,
    async fetch(app, url, o = {}) {
      const argv = [process.execPath, join(APPS, 'fetch.mjs'), url, '-n', String(o.count ?? 1)];
      if (o.concurrency !== undefined) argv.push('-c', String(o.concurrency));
      if (o.h2) argv.push('--h2');
      if (o.timeoutMs !== undefined) argv.push('-t', String(o.timeoutMs));
      for (const [k, v] of Object.entries(o.headers ?? {})) argv.push('-H', `${k}: ${v}`);
      const r = await exec(app, argv);
      if (r.code !== 0) throw new Error(`fetch in ${app} failed: ${r.stderr}`);
      return r.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as FetchResult);
    },
    async accessLog(app, path, o = {}) {
      const want = o.count ?? 1;
      const read = (): AccessLogEntry[] => readLog(app).split('\n').map(parseAccessLog).filter((e): e is AccessLogEntry => e !== undefined && e.path === path);
      return poll(`${want} access log line(s) for ${path} in ${app}'s sidecar`, () => {
        const lines = read();
        return lines.length >= want ? lines : undefined;
      }, o.timeoutMs ?? 10_000).catch((err: Error) => {
        throw new Error(`${err.message}; found: ${JSON.stringify(read().map((e) => e.raw))}`);
      });
    },
    ip: (app) => pod(app).workload.ip,
    vip(fqdn) {
      const address = cp.pushContext().registry.service(fqdn)[0]?.addresses[0];
      if (!address) throw new Error(`service ${fqdn} has no ClusterIP`);
      return address;
    },
    apply(yaml) {
      const loaded = loadString(yaml, 'live.yaml');
      const result = cp.store.apply(loaded.resources, 'test', loaded.diagnostics);
      if (!result.accepted) throw new Error(`YAML rejected: ${result.diagnostics.map((d) => d.message).join('; ')}`);
    },
    remove(yaml) {
      const loaded = loadString(yaml, 'live.yaml');
      cp.store.delete(loaded.resources.map((r) => resourceKey(r)));
    },
    sidecarLog: readLog,
    stop,
  };
}

/** Runs a command on the host and resolves with its output (for iptables-save and friends). */
export function sh(argv: string[]): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve) => execFile(argv[0] ?? '', argv.slice(1), (err, stdout) => resolve({ code: err ? 1 : 0, stdout })));
}
