// `tsmesh logs <pod> [-c container] [-f]`: a pod container's output (the application by default,
// -c istio-proxy for the sidecar's access log and messages, -c <init container> for an init container's).

import { createReadStream, readFileSync, statSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { MeshError } from '../../common/errors.ts';
import { readState } from '../../runtime/state.ts';
import type { CommandIO } from '../main.ts';

export const summary = 'Print a pod container\'s log (-c istio-proxy for the sidecar)';
export const usage = 'Usage: tsmesh logs <pod> [-n NS] [-c CONTAINER] [-f]';

export async function run(args: string[], io: CommandIO): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { namespace: { type: 'string', short: 'n' }, container: { type: 'string', short: 'c' }, follow: { type: 'boolean', short: 'f' } } });
  const name = positionals[0];
  if (!name) throw new MeshError('MESH_ERR_CLI_USAGE', usage);
  const ns = values.namespace ?? 'default';
  const s = readState();
  const pod = s?.pods.find((p) => (p.name === name || p.name.startsWith(`${name}-`)) && p.namespace === ns);
  if (!pod) throw new MeshError('MESH_ERR_REGISTRY_NOT_FOUND', `pod ${name} not found in namespace ${ns}${s ? ` (pods: ${s.pods.filter((p) => p.namespace === ns).map((p) => p.name).join(', ')})` : ' (no mesh is running)'}`);
  // -c names a container or an init container (Kubernetes keeps their names distinct)
  const all = [...pod.containers, ...(pod.initContainers ?? [])];
  const c = values.container ? all.find((x) => x.name === values.container) : pod.containers.find((x) => x.name !== 'istio-proxy') ?? pod.containers[0];
  if (!c) throw new MeshError('MESH_ERR_REGISTRY_NOT_FOUND', `container ${values.container ?? ''} not found in pod ${pod.name} (containers: ${pod.containers.map((x) => x.name).join(', ')}${pod.initContainers?.length ? `; init containers: ${pod.initContainers.map((x) => x.name).join(', ')}` : ''})`);
  io.out(readFileSync(c.log, 'utf8').replace(/\n$/, ''));
  if (!values.follow) return 0;
  let pos = statSync(c.log).size;
  for (;;) {
    await new Promise((r) => setTimeout(r, 500));
    const size = statSync(c.log).size;
    if (size > pos) {
      for await (const chunk of createReadStream(c.log, { start: pos, end: size - 1 })) process.stdout.write(chunk as Buffer);
      pos = size;
    }
  }
}
