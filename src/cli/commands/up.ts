// `tsmesh up [DIR...]`: starts the embedded mesh (control plane, DNS, service proxy, every pod in its own
// network namespace with capture rules and a sidecar) in the background and returns once every pod runs;
// `--foreground` keeps it attached. A second `up` while a mesh runs says so (MESH_ERR_CLI_USAGE, exit 2);
// a mesh that stops or fails while starting is MESH_ERR_RUNTIME_POD.

import { spawn } from 'node:child_process';
import { mkdirSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { MeshError } from '../../common/errors.ts';
import { LocalMesh, assertNotRunning, isAlive, readState, stateDir, teardown, type LocalMeshOptions } from '../../runtime/local-mesh.ts';
import { TSMESH_BIN } from '../../runtime/pod-runner.ts';
import { notStartedText } from '../../runtime/pod-status.ts';
import { untilSignal } from '../signals.ts';
import type { CommandIO } from '../main.ts';

export const summary = 'Start the embedded mesh from a folder of Kubernetes + Istio YAML (every pod in a network namespace with a sidecar)';
export const usage = `Usage: tsmesh up [DIR|FILE...] [--foreground] [--set meshConfig.K=V] [flags]

Starts the control plane, mesh DNS, the service proxy (ClusterIPs) and the pods of the manifests, each
in its own network namespace on the bridge tsmesh0 (10.244.0.0/16) with Istio's capture rules and a
sidecar when injection applies (namespace label istio-injection=enabled, or istio.io/rev; pod label or
annotation sidecar.istio.io/inject). Images are mapped to local commands by tsmesh.local.yaml.
Returns when every pod runs (exit 1 naming the pods that could not start, or are still in their init
containers after 60 s, e.g. Init:CrashLoopBackOff: they keep trying); the mesh keeps running until \`tsmesh down\`. State (state.json, logs/)
lives in $TSMESH_HOME (default /var/run/tsmesh); one mesh per state directory.

Flags:
      --foreground          stay attached (Ctrl-C stops the mesh)
      --set KEY=VALUE       mesh config override (repeatable)
      --pod-cidr CIDR       default 10.244.0.0/16 (the bridge takes its .1)
      --service-cidr CIDR   default 10.96.0.0/16
      --bridge NAME         the host bridge, default tsmesh0
      --name-prefix PREFIX  prefix of the network namespaces and host interfaces, default tsm-m-
      --chain-prefix NAME   prefix of the host iptables chains (ClusterIPs), default TSMESH
      --xds-port PORT       the control plane's xDS port on the bridge address, default 15010
      --http-port PORT      the control plane's API port on 127.0.0.1, default 15014 (0: any free port;
                            the other commands find it in the state directory)
      --dns-port PORT       the mesh DNS port on the bridge address, default 53`;

function port(flag: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v) || Number(v) > 65535) throw new MeshError('MESH_ERR_CLI_USAGE', `up: --${flag} ${JSON.stringify(v)}: expected a port number 0..65535`);
  return Number(v);
}

export async function run(args: string[], io: CommandIO): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: {
        foreground: { type: 'boolean' },
        set: { type: 'string', multiple: true },
        'pod-cidr': { type: 'string' },
        'service-cidr': { type: 'string' },
        bridge: { type: 'string' },
        'name-prefix': { type: 'string' },
        'chain-prefix': { type: 'string' },
        'xds-port': { type: 'string' },
        'http-port': { type: 'string' },
        'dns-port': { type: 'string' },
        filename: { type: 'string', short: 'f', multiple: true },
      },
    });
  } catch (err) {
    throw new MeshError('MESH_ERR_CLI_USAGE', `up: ${(err as Error).message}\n${usage}`);
  }
  const { values, positionals } = parsed;
  const paths = [...(values.filename ?? []), ...positionals];
  if (paths.length === 0) throw new MeshError('MESH_ERR_CLI_USAGE', `up: name the manifests, e.g. \`tsmesh up examples/bookinfo\`\n${usage}`);
  const dir = stateDir();
  assertNotRunning(dir);
  if (values.foreground) {
    const podCidr = values['pod-cidr'];
    const xdsPort = port('xds-port', values['xds-port']);
    const httpPort = port('http-port', values['http-port']);
    const dnsPort = port('dns-port', values['dns-port']);
    const opts: LocalMeshOptions = {
      paths,
      stateDir: dir,
      meshOverrides: values.set ?? [],
      ...(podCidr ? { podCIDR: podCidr, gateway: podCidr.replace(/\.\d+\/\d+$/, '.1') } : {}),
      ...(values['service-cidr'] ? { serviceCIDR: values['service-cidr'] } : {}),
      ...(values.bridge ? { bridge: values.bridge } : {}),
      ...(values['name-prefix'] ? { prefix: values['name-prefix'] } : {}),
      ...(values['chain-prefix'] ? { chainPrefix: values['chain-prefix'] } : {}),
      ...(xdsPort !== undefined ? { xdsPort } : {}),
      ...(httpPort !== undefined ? { httpPort } : {}),
      ...(dnsPort !== undefined ? { dnsPort } : {}),
    };
    const mesh = new LocalMesh(opts);
    const signalled = untilSignal();
    try {
      await mesh.start();
    } catch (err) {
      await mesh.stop().catch(() => undefined);
      throw err;
    }
    io.err(`mesh ready: ${readState(dir)?.pods.length ?? 0} pods`);
    await signalled;
    await mesh.stop();
    return 0;
  }
  // background: a detached `tsmesh up --foreground`, then wait until its state says ready
  mkdirSync(dir, { recursive: true });
  const out = openSync(join(dir, 'mesh.log'), 'a');
  const child = spawn(process.execPath, [TSMESH_BIN, 'up', '--foreground', ...args], { detached: true, stdio: ['ignore', out, out], env: { ...process.env, TSMESH_HOME: dir } });
  child.unref();
  const until = Date.now() + 180_000;
  for (;;) {
    await new Promise((r) => setTimeout(r, 300));
    const s = readState(dir);
    if (child.exitCode !== null || (child.pid !== undefined && !isAlive(child.pid))) throw new MeshError('MESH_ERR_RUNTIME_POD', `the mesh stopped while starting; see ${join(dir, 'mesh.log')}`);
    if (s?.ready && s.pid === child.pid) {
      for (const p of s.pods) io.out(`pod/${p.namespace}/${p.name}\t${p.phase}\t${p.ip}${p.sidecar ? '\t(sidecar)' : ''}${p.message ? `\t${p.message}` : ''}`);
      const pp = s.pods.find((p) => p.labels.app === 'productpage');
      io.out(`mesh is up: control plane ${s.controlplane.http}, ${s.pods.length} pods. Try \`tsmesh get pods -A\`, \`tsmesh proxy-status\`.`);
      if (pp) io.out(`Bookinfo: open http://${pp.ip}:9080/productpage on this machine (or \`tsmesh exec ${pp.name} -n ${pp.namespace} -- curl -s localhost:9080/productpage\`).`);
      // a pod that could not start, or is stuck in (or failed in) its init containers, is named with its state
      const problems = s.pods.map(notStartedText).filter((t) => t !== undefined);
      // a Job run otherwise than its spec asks (more than one completion or pod at a time) is said, not silently narrowed
      for (const j of s.jobs ?? []) if (j.warning) io.err(`warning: ${j.warning}`);
      for (const t of problems) io.err(t);
      return problems.length > 0 ? 1 : 0;
    }
    if (Date.now() > until) {
      throw new MeshError('MESH_ERR_RUNTIME_POD', `the mesh did not become ready in 180 s; see ${join(dir, 'mesh.log')}`);
    }
  }
}

export { teardown };
