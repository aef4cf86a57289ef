// `tsmesh label namespace <ns> key=value...`: labels a namespace of the running mesh (e.g.
// istio-injection=enabled); pods started afterwards follow it, as in Kubernetes.

import { MeshError } from '../../common/errors.ts';
import { callControlPlane, controlPlaneUrl } from '../client.ts';
import type { CommandIO } from '../main.ts';

export const summary = 'Label a namespace (e.g. istio-injection=enabled)';
export const usage = 'Usage: tsmesh label namespace <ns> KEY=VALUE... [--controlplane URL]';

export async function run(args: string[], io: CommandIO): Promise<number> {
  const cpFlag = args.indexOf('--controlplane');
  const cp = cpFlag >= 0 ? args[cpFlag + 1] : undefined;
  const rest = args.filter((_, i) => i !== cpFlag && i !== cpFlag + 1);
  const [kind, ns, ...pairs] = rest;
  if (!kind || !['namespace', 'ns', 'namespaces'].includes(kind) || !ns || pairs.length === 0) throw new MeshError('MESH_ERR_CLI_USAGE', usage);
  const { body } = await callControlPlane<{ items: Array<{ metadata: { name: string; labels?: Record<string, string> } }> }>(controlPlaneUrl(cp), '/apis/v1/resources?kind=Namespace');
  const labels = { ...(body.items.find((i) => i.metadata.name === ns)?.metadata.labels ?? {}) };
  for (const p of pairs) {
    const m = /^([^=]+)=(.*)$/.exec(p);
    if (m?.[1]) labels[m[1]] = m[2] ?? '';
    else if (p.endsWith('-')) delete labels[p.slice(0, -1)];
    else throw new MeshError('MESH_ERR_CLI_USAGE', `label: "${p}" is not KEY=VALUE or KEY-`);
  }
  const text = JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns, labels } });
  const r = await callControlPlane<{ accepted: boolean; errors: string[] }>(controlPlaneUrl(cp), '/apis/v1/apply', { method: 'POST', body: { documents: [{ file: 'label', text }] } });
  if (!r.body.accepted) {
    for (const e of r.body.errors) io.err(e);
    return 1;
  }
  io.out(`namespace/${ns} labeled`);
  return 0;
}
