// `tsmesh kube-inject -f FILE|DIR|-`: prints the manifests with the sidecar added to every workload's pod
// template (istioctl kube-inject). Bad flags or a bad --meshConfigFile exit 2 (MESH_ERR_CLI_USAGE); bad YAML
// or an uninjectable workload exit 1 with the file, document and line.

import { readFile, writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { parse as parseYaml, stringify } from 'yaml';
import { MeshError } from '../../common/errors.ts';
import { listYamlFiles, loadString } from '../../config/loader.ts';
import { defaultMeshConfig, meshConfigFromResources, type MeshConfig } from '../../config/mesh-config.ts';
import { kubeInjectText } from '../../inject/inject-manifest.ts';
import type { CommandIO } from '../main.ts';

export const summary = 'Add the sidecar to the workloads of Kubernetes manifests (istioctl kube-inject)';
export const usage = `Usage: tsmesh kube-inject -f FILE|DIR|- [flags]

Prints the manifests with the istio-init and istio-proxy containers added to the pod template of every
Deployment, StatefulSet, DaemonSet, ReplicaSet, ReplicationController, Job, CronJob and Pod, ready for
  tsmesh kube-inject -f app.yaml | kubectl apply -f -
Other documents are printed exactly as written, in order. As istioctl does, namespace labels are not
consulted, but a pod template with sidecar.istio.io/inject: "false" (label or annotation), hostNetwork,
or an existing sidecar (sidecar.istio.io/status) is left alone; such workloads are listed on stderr.

Flags:
  -f, --filename PATH           a file, a directory (its .yaml/.yml/.json files) or '-' for stdin (repeatable)
  -n, --namespace NS            namespace of documents that name none (default "default")
      --meshConfigFile FILE     mesh config: the YAML of the istio ConfigMap's "mesh" key, or the ConfigMap itself
      --revision REV            the control plane revision to inject for (default "default")
  -o, --output FILE             write the result to FILE instead of stdout
      --proxy-image IMAGE       the sidecar image (default tsmesh/proxy:<version>)
      --discovery-address ADDR  the control plane's xDS host:port (default the mesh config's defaultConfig.discoveryAddress)
      --cni                     Istio's CNI mode: the node installs the capture rules, so no istio-init (no
                                NET_ADMIN); istio-validation checks them, and the capture settings are written
                                as traffic.sidecar.istio.io/* and sidecar.istio.io/interceptionMode annotations`;

/** The mesh config of a --meshConfigFile: MeshConfig YAML, or a ConfigMap whose data.mesh holds it. */
export async function readMeshConfigFile(file: string): Promise<MeshConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new MeshError('MESH_ERR_CLI_USAGE', `--meshConfigFile ${file}: cannot read: ${(err as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = parseYaml(text);
  } catch (err) {
    throw new MeshError('MESH_ERR_CLI_USAGE', `--meshConfigFile ${file}: not YAML: ${(err as Error).message.split('\n')[0] ?? ''}`);
  }
  const p = parsed as { kind?: unknown; data?: { mesh?: unknown } } | null;
  const meshText = p && p.kind === 'ConfigMap' ? p.data?.mesh : text;
  if (typeof meshText !== 'string') throw new MeshError('MESH_ERR_CLI_USAGE', `--meshConfigFile ${file}: the ConfigMap has no data.mesh text`);
  const base = defaultMeshConfig();
  const cm = stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'istio', namespace: base.rootNamespace }, data: { mesh: meshText } });
  const { mesh, diagnostics } = meshConfigFromResources(loadString(cm, file).resources, base);
  const errors = diagnostics.filter((d) => d.severity === 'error');
  if (errors.length > 0) throw new MeshError('MESH_ERR_CLI_USAGE', `--meshConfigFile ${file}: ${errors.map((d) => d.message).join('; ')}`);
  return mesh;
}

async function readStdin(io: CommandIO): Promise<string> {
  if (io.stdin !== undefined) return io.stdin;
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export async function run(args: string[], io: CommandIO): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      allowPositionals: false,
      options: {
        filename: { type: 'string', short: 'f', multiple: true },
        namespace: { type: 'string', short: 'n' },
        meshConfigFile: { type: 'string' },
        revision: { type: 'string', short: 'r' },
        output: { type: 'string', short: 'o' },
        'proxy-image': { type: 'string' },
        'discovery-address': { type: 'string' },
        cni: { type: 'boolean' },
      },
    }));
  } catch (err) {
    throw new MeshError('MESH_ERR_CLI_USAGE', `${(err as Error).message}; see tsmesh kube-inject --help`);
  }
  const paths = values.filename ?? [];
  if (paths.length === 0) throw new MeshError('MESH_ERR_CLI_USAGE', 'no input: tsmesh kube-inject -f FILE (a file, a directory or - for stdin)');
  const meshConfig = values.meshConfigFile !== undefined ? await readMeshConfigFile(values.meshConfigFile) : undefined;
  const opts = {
    namespace: values.namespace,
    meshConfig,
    revision: values.revision,
    proxyImage: values['proxy-image'],
    discoveryAddress: values['discovery-address'],
    cni: values.cni,
  };

  const inputs: Array<{ file: string; text: string }> = [];
  for (const p of paths) {
    if (p === '-') {
      inputs.push({ file: '-', text: await readStdin(io) });
      continue;
    }
    for (const file of await listYamlFiles(p)) {
      try {
        inputs.push({ file, text: await readFile(file, 'utf8') });
      } catch (err) {
        throw new MeshError('MESH_ERR_CONFIG_READ', `${file}: cannot read: ${(err as Error).message}`, { cause: err });
      }
    }
  }
  let out = '';
  for (const { file, text } of inputs) {
    const r = kubeInjectText(text, file, opts);
    if (out !== '' && r.text !== '') {
      if (!out.endsWith('\n')) out += '\n';
      if (!/^---(?:[ \t]|\r?\n|$)/.test(r.text)) out += '---\n';
    }
    out += r.text;
    for (const s of r.skipped) io.err(`${file}: ${s.workload}: not injected: ${s.reason}`);
  }
  if (values.output !== undefined) {
    try {
      await writeFile(values.output, out);
    } catch (err) {
      throw new MeshError('MESH_ERR_CLI_USAGE', `--output ${values.output}: cannot write: ${(err as Error).message}`);
    }
    return 0;
  }
  io.out(out);
  return 0;
}
