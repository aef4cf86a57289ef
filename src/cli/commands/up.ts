// `tsmesh up [DIR...]`: starts the embedded mesh (control plane, DNS, service proxy, every pod in its own
// network namespace with capture rules and a sidecar) in the background and returns once every pod runs;
// `--foreground` keeps it attached. A second `up` while a mesh runs says so.

import { spawn } from 'node:child_process';
import { openSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { MeshError } from '../../common/errors.ts';
import { LocalMesh, STATE_DIR, assertNotRunning, isAlive, readState, teardown } from '../../runtime/local-mesh.ts';
import { TSMESH_BIN } from '../../runtime/pod-runner.ts';
import type { CommandIO } from '../main.ts';
import { mkdirSync } from 'node:fs';

export const summary = 'Start the embedded mesh from a folder of Kubernetes + Istio YAML (every pod in a network namespace with a sidecar)';
export const usage = `Usage: tsmesh up [DIR|FILE...] [--foreground] [--set meshConfig.K=V]

Starts the control plane, mesh DNS, the service proxy (ClusterIPs) and the pods of the manifests, each
in its own network namespace on the bridge tsmesh0 (10.244.0.0/16) with Istio's capture rules and a
sidecar when injection applies (namespace label istio-injection=enabled, or istio.io/rev; pod label or
annotation sidecar.istio.io/inject). Images are mapped to local commands by tsmesh.local.yaml.
Returns when every pod runs; the mesh keeps running until \`tsmesh down\`.

Flags:
      --foreground        stay attached (Ctrl-C stops the mesh)
      --set KEY=VALUE     mesh config override (repeatable)
      --pod-cidr CIDR     default 10.244.0.0/16 (the bridge takes its .1)
      --service-cidr CIDR default 10.96.0.0/16`;

export async function run(args: string[], io: CommandIO): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { foreground: { type: 'boolean' }, set: { type: 'string', multiple: true }, 'pod-cidr': { type: 'string' }, 'service-cidr': { type: 'string' }, filename: { type: 'string', short: 'f', multiple: true } },
  });
  const paths = [...(values.filename ?? []), ...positionals];
  if (paths.length === 0) throw new MeshError('MESH_ERR_CLI_USAGE', `up: name the manifests, e.g. \`tsmesh up examples/bookinfo\`\n${usage}`);
  assertNotRunning();
  if (values.foreground) {
    const podCidr = values['pod-cidr'];
    const mesh = new LocalMesh({
      paths,
      meshOverrides: values.set ?? [],
      ...(podCidr ? { podCIDR: podCidr, gateway: podCidr.replace(/\.\d+\/\d+$/, '.1') } : {}),
      ...(values['service-cidr'] ? { serviceCIDR: values['service-cidr'] } : {}),
    });
    const stop = (): void => void mesh.stop().then(() => process.exit(0));
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
    try {
      await mesh.start();
    } catch (err) {
      await mesh.stop().catch(() => undefined);
      throw err;
    }
    io.err(`mesh ready: ${readState()?.pods.length ?? 0} pods`);
    await new Promise(() => undefined);
    return 0;
  }
  // background: a detached `tsmesh up --foreground`, then wait until its state says ready
  mkdirSync(STATE_DIR, { recursive: true });
  const out = openSync(join(STATE_DIR, 'mesh.log'), 'a');
  const child = spawn(process.execPath, [TSMESH_BIN, 'up', '--foreground', ...args], { detached: true, stdio: ['ignore', out, out] });
  child.unref();
  const until = Date.now() + 180_000;
  for (;;) {
    await new Promise((r) => setTimeout(r, 300));
    const s = readState();
    if (child.exitCode !== null || (child.pid !== undefined && !isAlive(child.pid))) throw new MeshError('MESH_ERR_RUNTIME_POD', `the mesh stopped while starting; see ${join(STATE_DIR, 'mesh.log')}`);
    if (s?.ready && s.pid === child.pid) {
      for (const p of s.pods) io.out(`pod/${p.namespace}/${p.name}\t${p.phase}\t${p.ip}${p.sidecar ? '\t(sidecar)' : ''}${p.message ? `\t${p.message}` : ''}`);
      const pp = s.pods.find((p) => p.labels.app === 'productpage');
      io.out(`mesh is up: control plane ${s.controlplane.http}, ${s.pods.length} pods. Try \`tsmesh get pods -A\`, \`tsmesh proxy-status\`.`);
      if (pp) io.out(`Bookinfo: open http://${pp.ip}:9080/productpage on this machine (or \`tsmesh exec ${pp.name} -n ${pp.namespace} -- curl -s localhost:9080/productpage\`).`);
      return s.pods.some((p) => p.phase === 'Failed') ? 1 : 0;
    }
    if (Date.now() > until) {
      throw new MeshError('MESH_ERR_RUNTIME_POD', `the mesh did not become ready in 180 s; see ${join(STATE_DIR, 'mesh.log')}`);
    }
  }
}

export { teardown };
