// `tsmesh proxy-config endpoint|cluster <pod>[.<namespace>] -f PATH...`: what a pod's sidecar is given,
// computed offline from files (or rendered from an Envoy config dump), in istioctl's formats.

import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { MeshError } from '../../common/errors.ts';
import { loadPaths } from '../../config/loader.ts';
import { applyMeshOverrides, meshConfigFromResources } from '../../config/mesh-config.ts';
import { buildConfigDump } from '../../controlplane/debug/config-dump.ts';
import { findWorkload, proxyInfoFor } from '../../controlplane/debug/proxy-ref.ts';
import { buildPushContext } from '../../controlplane/model/push-context.ts';
import { clusterSummary, clustersJson, clustersYaml } from '../../xds/configdump/clusters.ts';
import type { ConfigDump } from '../../xds/configdump/dump.ts';
import { endpointStatusTable, endpointSummary, endpointsJson, endpointsYaml } from '../../xds/configdump/endpoints.ts';
import type { CommandIO } from '../main.ts';
import { callControlPlane, controlPlaneUrl } from '../client.ts';

export const summary = 'Show what a pod\'s sidecar is given: endpoints or clusters (istioctl proxy-config)';
export const usage = `Usage: tsmesh proxy-config endpoint|cluster <pod>[.<namespace>] -f PATH... [flags]
       tsmesh proxy-config endpoint|cluster --config-dump FILE [flags]

With -f: computes the configuration the pod's sidecar would receive from the Kubernetes and Istio YAML
under PATH (files, directories, '-' for stdin). Without -f: asks the running control plane
(--controlplane URL, $TSMESH_CONTROLPLANE, default http://127.0.0.1:15014). With --config-dump: renders
an Envoy admin config dump (/config_dump?include_eds).
<pod> may also be deployment/<name> (its first pod).

Flags:
  -f, --filename PATH     YAML to read (repeatable)
  -n, --namespace NS      namespace of the pod, and of resources that name none (default "default")
  -o, --output FORMAT     short (default), json or yaml
      --set KEY=VALUE     mesh config override, e.g. meshConfig.outboundTrafficPolicy.mode=REGISTRY_ONLY
      --config-dump FILE  render this Envoy config dump instead of computing one
      --controlplane URL  the control plane to ask when no -f is given
  endpoint filters: --address IP:PORT  --port N  --cluster NAME  --status HEALTHY|UNHEALTHY|...
  cluster filters:  --fqdn HOST  --port N  --subset NAME  --direction inbound|outbound`;

export async function run(args: string[], io: CommandIO): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      filename: { type: 'string', short: 'f', multiple: true },
      namespace: { type: 'string', short: 'n' },
      output: { type: 'string', short: 'o', default: 'short' },
      set: { type: 'string', multiple: true },
      'config-dump': { type: 'string' },
      controlplane: { type: 'string' },
      address: { type: 'string' },
      port: { type: 'string' },
      cluster: { type: 'string' },
      status: { type: 'string' },
      fqdn: { type: 'string' },
      subset: { type: 'string' },
      direction: { type: 'string' },
    },
  });
  const [what, pod, ...extra] = positionals;
  const kind = what === 'endpoints' || what === 'ep' ? 'endpoint' : what === 'clusters' || what === 'c' ? 'cluster' : what;
  if (kind !== 'endpoint' && kind !== 'cluster') throw new MeshError('MESH_ERR_CLI_USAGE', `proxy-config: first argument must be endpoint or cluster (got ${what ?? 'nothing'})\n${usage}`);
  const output = values.output ?? 'short';
  if (!['short', 'json', 'yaml'].includes(output)) throw new MeshError('MESH_ERR_CLI_USAGE', `proxy-config: --output must be short, json or yaml (got ${output})`);
  const port = values.port !== undefined ? Number(values.port) : undefined;
  if (port !== undefined && !(Number.isInteger(port) && port > 0 && port < 65536)) throw new MeshError('MESH_ERR_CLI_USAGE', `proxy-config: --port must be 1..65535 (got ${values.port})`);

  let dump: ConfigDump;
  let fromDumpFile = false;
  if (values['config-dump']) {
    dump = JSON.parse(await readFile(values['config-dump'], 'utf8')) as ConfigDump;
    fromDumpFile = true;
  } else {
    const files = [...(values.filename ?? []), ...extra];
    if (!pod) throw new MeshError('MESH_ERR_CLI_USAGE', `proxy-config: name a pod\n${usage}`);
    if (files.length === 0) {
      // Live: the config the running control plane computes for this pod.
      const ref = pod.includes('.') || !values.namespace ? pod : `${pod}.${values.namespace}`;
      const q = `?proxyID=${encodeURIComponent(ref)}${values.namespace ? `&namespace=${encodeURIComponent(values.namespace)}` : ''}`;
      dump = (await callControlPlane<ConfigDump>(controlPlaneUrl(values.controlplane), `/debug/config_dump${q}`)).body;
    } else {
      const ns = values.namespace ?? 'default';
      const loaded = await loadPaths(files, { defaultNamespace: ns, ...(io.stdin !== undefined ? { stdin: io.stdin } : {}) });
      for (const d of loaded.diagnostics.filter((x) => x.severity === 'error')) io.err(`warning: skipped: ${d.file}:${d.line}:${d.col}: ${d.message}`);
      let { mesh } = meshConfigFromResources(loaded.resources);
      if (values.set?.length) mesh = applyMeshOverrides(mesh, values.set);
      const push = buildPushContext(loaded.resources, { mesh });
      const workload = findWorkload(push.registry, pod, ns);
      dump = buildConfigDump(proxyInfoFor(workload), push);
    }
  }

  if (kind === 'endpoint') {
    const filter = { ...(values.address ? { address: values.address } : {}), ...(port ? { port } : {}), ...(values.cluster ? { cluster: values.cluster } : {}), ...(values.status ? { status: values.status } : {}) };
    if (output === 'json') io.out(endpointsJson(dump, filter));
    else if (output === 'yaml') io.out(endpointsYaml(dump, filter));
    else io.out(fromDumpFile ? endpointSummary(dump, filter) : endpointStatusTable(dump, filter));
  } else {
    const filter = { ...(values.fqdn ? { fqdn: values.fqdn } : {}), ...(port ? { port } : {}), ...(values.subset ? { subset: values.subset } : {}), ...(values.direction ? { direction: values.direction } : {}) };
    if (output === 'json') io.out(clustersJson(dump, filter));
    else if (output === 'yaml') io.out(clustersYaml(dump, filter));
    else io.out(clusterSummary(dump, filter));
  }
  return 0;
}
