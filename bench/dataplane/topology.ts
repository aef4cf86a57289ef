// The data-plane benchmark's machine set-up: a per-run bridge and /24 in 10.250.0.0/16; a tsmesh client pod and origin pod (network namespaces, Istio's capture rules, real `tsmesh proxy` sidecars from an in-process control plane); a plain client/server namespace pair on the same bridge for the direct, nginx and HAProxy chains; the origin in both server namespaces; every process pinned with taskset. A failed step tears down what was made and throws; stop() removes every namespace, interface and process, also after failures.

import { execFileSync, type ChildProcess } from 'node:child_process';
import { chmodSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadString } from '../../src/config/loader.ts';
import { ControlPlane } from '../../src/controlplane/server.ts';
import type { Logger } from '../../src/common/log.ts';
import { DEFAULT_CAPTURE_CONFIG } from '../../src/inject/capture-rules.ts';
import { attachToBridge, cleanupAll, createNetns, ensureBridge, execInNetns, findTool, vethName } from '../../src/runtime/netns.ts';
import { sidecarArgv, startPod, type RunningPod } from '../../src/runtime/pod-runner.ts';
import { haproxyProxy, nginxOrigin, nginxProxy, PORTS } from './configs.ts';

export const CHAINS = ['direct', 'tsmesh', 'nginx', 'haproxy'] as const;
export type Chain = (typeof CHAINS)[number];
export type ProxyKind = Exclude<Chain, 'direct'>;

export const HOST = 'origin.bench.svc.cluster.local';
const HERE = import.meta.dirname;
export const TSX = import.meta.resolve('tsx');

/** Where a client in the chain's client namespace sends each protocol. */
export interface ChainTarget {
  netns: string;
  h1: { host: string; port: number };
  h2: { host: string; port: number };
  grpc: { host: string; port: number };
  tcp: { host: string; port: number };
}

export interface Pinning {
  /** CPU list for the load generator and the origin. */
  load: string;
  /** CPU list for every proxy (both sides of a pair). */
  proxies: string;
}

export interface TopologyOptions {
  pin: Pinning;
  /** Which proxy pairs to start. */
  proxies: readonly ProxyKind[];
  /** Extra arguments for `tsmesh proxy` (e.g. --concurrency 1 where supported). */
  sidecarArgs: string[];
  /** Node flags for the sidecars (e.g. --cpu-prof). */
  sidecarNodeFlags: string[];
  log: (msg: string) => void;
}

export interface Topology {
  dir: string;
  prefix: string;
  subnet: string;
  targets: Record<Chain, ChainTarget>;
  /** The pid of each side of each proxy pair (the process whose tree is measured). */
  pids: Partial<Record<ProxyKind, { client: number; server: number }>>;
  /** Why a protocol cannot run through a chain (e.g. nginx without its stream module). */
  unsupported: Partial<Record<Chain, Partial<Record<'tcp' | 'grpc' | 'h2', string>>>>;
  /** A directory each tsmesh sidecar writes --cpu-prof files to (when asked). */
  profileDirs: { client: string; server: string };
  stop(opts?: { profileWaitMs?: number }): Promise<void>;
}

const quiet: Logger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

/** A /24 in 10.250.0.0/16 that no interface or route of this machine uses yet (pid-derived start, so parallel runs differ). */
function freeSubnet(): string {
  const ip = findTool('ip') ?? 'ip';
  const used = execFileSync(ip, ['-4', '-o', 'addr', 'show'], { encoding: 'utf8' }) + execFileSync(ip, ['-4', 'route', 'show'], { encoding: 'utf8' });
  const start = (process.pid * 13) % 250;
  for (let i = 0; i < 250; i++) {
    const base = `10.250.${((start + i) % 250) + 1}`;
    if (!used.includes(`${base}.`)) return base;
  }
  throw new Error('no free /24 in 10.250.0.0/16');
}

const MESH_YAML = `apiVersion: v1
kind: Service
metadata: {name: origin, namespace: bench}
spec:
  selector: {app: origin}
  ports:
  - {name: http, port: ${PORTS.origin.h1}, targetPort: ${PORTS.origin.h1}}
  - {name: http2, port: ${PORTS.origin.h2}, targetPort: ${PORTS.origin.h2}}
  - {name: grpc, port: ${PORTS.origin.grpc}, targetPort: ${PORTS.origin.grpc}}
  - {name: tcp, port: ${PORTS.origin.tcp}, targetPort: ${PORTS.origin.tcp}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: origin, namespace: bench}
spec:
  selector: {matchLabels: {app: origin}}
  template:
    metadata: {labels: {app: origin}}
    spec: {containers: [{name: origin, image: bench/origin}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: client, namespace: bench}
spec:
  selector: {matchLabels: {app: client}}
  template:
    metadata: {labels: {app: client}}
    spec: {containers: [{name: client, image: bench/client}]}
`;

/** True when Debian's nginx stream module (package libnginx-mod-stream) is installed. */
export function nginxStreamAvailable(): boolean {
  return existsSync('/usr/lib/nginx/modules/ngx_stream_module.so');
}

export async function startTopology(o: TopologyOptions): Promise<Topology> {
  const prefix = `tsb-${process.pid % 1_000_000}-`;
  const base = freeSubnet();
  const cidr = `${base}.0/24`;
  const gateway = `${base}.1`;
  const bridge = `${prefix}br`;
  const dir = mkdtempSync(join(tmpdir(), 'tsmesh-bench-'));
  chmodSync(dir, 0o755);
  const logDir = join(dir, 'logs');
  mkdirSync(logDir);
  const profileDirs = { client: join(dir, 'prof-client'), server: join(dir, 'prof-server') };
  for (const d of Object.values(profileDirs)) {
    mkdirSync(d);
    chmodSync(d, 0o777); // the sidecars run as UID 1337
  }
  const taskset = findTool('taskset') ?? 'taskset';
  const nginx = findTool('nginx') ?? '/usr/sbin/nginx';
  const haproxy = findTool('haproxy') ?? '/usr/sbin/haproxy';
  const children: ChildProcess[] = [];
  const pods: RunningPod[] = [];
  const plainNs = { client: `${prefix}pc`, server: `${prefix}ps` };
  const plainIp = { client: `${base}.200`, server: `${base}.201` };
  // pods from .2-.126, service VIPs from .130-.190: never the plain pair's .200/.201
  const cp = new ControlPlane({
    xdsAddress: `${gateway}:0`, httpAddress: '127.0.0.1:0', log: quiet,
    registry: { podCIDR: `${base}.0/25`, serviceCIDR: `${base}.128/26` }, debounce: { quietMs: 20, maxDelayMs: 200 },
  });
  let cpStarted = false;
  const stream = nginxStreamAvailable();

  const spawnIn = (ns: string, name: string, argv: string[]): ChildProcess => {
    const fd = openSync(join(logDir, `${name}.log`), 'a');
    const child = execInNetns(ns, argv, { detached: true, stdio: ['ignore', fd, fd] });
    closeSync(fd);
    child.on('error', () => undefined);
    children.push(child);
    return child;
  };
  const nginxArgv = (name: string, conf: string, cpus: string): string[] => {
    const prefixDir = join(dir, name);
    mkdirSync(prefixDir, { recursive: true });
    const file = join(prefixDir, 'nginx.conf');
    writeFileSync(file, conf);
    return [taskset, '-c', cpus, nginx, '-p', `${prefixDir}/`, '-e', join(prefixDir, 'startup.log'), '-c', file, '-g', 'daemon off;'];
  };
  const originArgv = (): string[] => [taskset, '-c', o.pin.load, process.execPath, '--import', TSX, join(HERE, 'origin.ts'), String(PORTS.origin.grpc), String(PORTS.origin.tcp)];

  const stop = async (opts: { profileWaitMs?: number } = {}): Promise<void> => {
    if (opts.profileWaitMs) {
      // a sidecar under --cpu-prof writes its profile on a clean exit: SIGTERM and wait for it first
      const sidecars = pods.map((p) => p.processes.get('istio-proxy')).filter((c): c is ChildProcess => c !== undefined && c.exitCode === null && c.signalCode === null);
      for (const c of sidecars) c.kill('SIGTERM');
      await Promise.all(sidecars.map((c) => new Promise<void>((resolve) => {
        const t = setTimeout(resolve, opts.profileWaitMs);
        c.once('exit', () => {
          clearTimeout(t);
          resolve();
        });
      })));
    }
    if (cpStarted) await cp.stop().catch(() => undefined);
    await Promise.all(pods.map((p) => p.stop().catch(() => undefined)));
    for (const c of children) {
      if (c.pid === undefined || c.exitCode !== null || c.signalCode !== null) continue;
      try {
        process.kill(-c.pid, 'SIGTERM');
      } catch {
        // gone
      }
    }
    await new Promise((r) => setTimeout(r, 300));
    for (const c of children) {
      if (c.pid === undefined || c.exitCode !== null || c.signalCode !== null) continue;
      try {
        process.kill(-c.pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    // deletes the namespaces (killing anything left inside), the veths and the bridge
    await cleanupAll(prefix, [bridge]).catch(() => undefined);
    for (const ns of Object.values(plainNs)) rmSync(`/etc/netns/${ns}`, { recursive: true, force: true });
  };

  try {
    await ensureBridge({ name: bridge, address: gateway, cidr });
    const loaded = loadString(MESH_YAML, 'bench-mesh.yaml');
    const applied = cp.store.apply(loaded.resources, 'bench', loaded.diagnostics);
    if (!applied.accepted) throw new Error(`bench mesh YAML rejected: ${applied.diagnostics.map((d) => d.message).join('; ')}`);
    await cp.start();
    cpStarted = true;
    const push = cp.pushContext();
    const vip = push.registry.service(HOST)[0]?.addresses[0];
    if (!vip) throw new Error(`${HOST} has no ClusterIP`);

    // ---- the tsmesh pods ----
    let tsmeshClientNs = '';
    if (o.proxies.includes('tsmesh')) {
      let i = 0;
      for (const w of push.registry.workloads) {
        if (w.kind !== 'Pod') continue;
        const app = w.labels.app ?? w.name;
        const netns = `${prefix}m${i++}`;
        const containers = app === 'origin'
          ? [
              { name: 'origin', argv: nginxArgv('origin-tsmesh', nginxOrigin(join(dir, 'origin-tsmesh'), 'origin'), o.pin.load) },
              { name: 'origin-aux', argv: originArgv() },
            ]
          : [{ name: 'client', argv: ['sleep', 'infinity'] }];
        const side = app === 'origin' ? 'server' : 'client';
        if (side === 'client') tsmeshClientNs = netns;
        const run = await startPod(
          {
            name: w.name, namespace: w.namespace, ip: w.ip, netns, containers, hostname: w.name,
            capture: { ...DEFAULT_CAPTURE_CONFIG },
            sidecar: {
              argv: [taskset, '-c', o.pin.proxies, ...sidecarArgv(o.sidecarArgs, { extraNodeFlags: o.sidecarNodeFlags.map((f) => f.replace('{PROFILE_DIR}', profileDirs[side])) })],
              env: {
                POD_NAME: w.name, POD_NAMESPACE: w.namespace, INSTANCE_IP: w.ip, SERVICE_ACCOUNT: w.serviceAccount,
                ISTIO_METAJSON_LABELS: JSON.stringify(w.labels), XDS_ADDRESS: `${gateway}:${cp.xdsPort}`, TSMESH_LOG_LEVEL: 'warn',
              },
            },
          },
          { bridge, cidr, gateway, prefix, logDir },
        );
        pods.push(run);
      }
    }

    // ---- the plain pair (direct, nginx, HAProxy) ----
    for (const side of ['client', 'server'] as const) {
      await createNetns(plainNs[side]);
      await attachToBridge({ netns: plainNs[side], hostVeth: vethName(prefix, `plain-${side}`), podIp: plainIp[side], cidr, gateway, bridge });
    }
    spawnIn(plainNs.server, 'origin-plain', nginxArgv('origin-plain', nginxOrigin(join(dir, 'origin-plain'), 'origin'), o.pin.load));
    spawnIn(plainNs.server, 'origin-plain-aux', originArgv());
    const pids: Topology['pids'] = {};
    if (o.proxies.includes('nginx')) {
      const c = spawnIn(plainNs.client, 'nginx-client', nginxArgv('nginx-client', nginxProxy(join(dir, 'nginx-client'), 'nginx', 'client', plainIp.client, plainIp.server, stream), o.pin.proxies));
      const s = spawnIn(plainNs.server, 'nginx-server', nginxArgv('nginx-server', nginxProxy(join(dir, 'nginx-server'), 'nginx', 'server', plainIp.server, plainIp.client, stream), o.pin.proxies));
      pids.nginx = { client: c.pid ?? 0, server: s.pid ?? 0 };
    }
    if (o.proxies.includes('haproxy')) {
      const conf = (side: 'client' | 'server'): string => {
        const file = join(dir, `haproxy-${side}.cfg`);
        writeFileSync(file, haproxyProxy(side, plainIp[side], plainIp[side === 'client' ? 'server' : 'client']));
        return file;
      };
      const c = spawnIn(plainNs.client, 'haproxy-client', [taskset, '-c', o.pin.proxies, haproxy, '-db', '-f', conf('client')]);
      const s = spawnIn(plainNs.server, 'haproxy-server', [taskset, '-c', o.pin.proxies, haproxy, '-db', '-f', conf('server')]);
      pids.haproxy = { client: c.pid ?? 0, server: s.pid ?? 0 };
    }
    const tsClient = pods.find((p) => p.spec.netns === tsmeshClientNs);
    const tsServer = pods.find((p) => p.spec.netns !== tsmeshClientNs);
    if (tsClient && tsServer) pids.tsmesh = { client: tsClient.processes.get('istio-proxy')?.pid ?? 0, server: tsServer.processes.get('istio-proxy')?.pid ?? 0 };

    const O = PORTS.origin;
    const via = (ns: string, host: string, p: { h1: number; h2: number; grpc: number; tcp: number }): ChainTarget => ({
      netns: ns, h1: { host, port: p.h1 }, h2: { host, port: p.h2 }, grpc: { host, port: p.grpc }, tcp: { host, port: p.tcp },
    });
    const unsupported: Topology['unsupported'] = {};
    if (!stream) unsupported.nginx = { tcp: 'nginx has no stream module: apt-get install -y libnginx-mod-stream' };
    return {
      dir, prefix, subnet: cidr,
      targets: {
        direct: via(plainNs.client, plainIp.server, O),
        tsmesh: via(tsmeshClientNs, vip, O),
        nginx: via(plainNs.client, '127.0.0.1', PORTS.nginx.client),
        haproxy: via(plainNs.client, '127.0.0.1', PORTS.haproxy.client),
      },
      pids, unsupported, profileDirs, stop,
    };
  } catch (err) {
    await stop();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}
