// `tsmesh exec <pod> [-n ns] -- <command...>`: runs a command in the pod's network namespace (its IP,
// its DNS, its capture rules: calls go through its sidecar) and exits with the command's status.

import { MeshError } from '../../common/errors.ts';
import { readState } from '../../runtime/state.ts';
import { execInNetns } from '../../runtime/netns.ts';
import type { CommandIO } from '../main.ts';

export const summary = 'Run a command inside a pod\'s network namespace (e.g. curl), exiting with its status';
export const usage = 'Usage: tsmesh exec <pod> [-n NS] -- <command> [args...]';

export async function run(args: string[], _io: CommandIO): Promise<number> {
  const dash = args.indexOf('--');
  if (dash < 0 || dash === args.length - 1) throw new MeshError('MESH_ERR_CLI_USAGE', usage);
  const before = args.slice(0, dash);
  const argv = args.slice(dash + 1);
  let ns = 'default';
  const nsAt = before.findIndex((a) => a === '-n' || a === '--namespace');
  if (nsAt >= 0) ns = before[nsAt + 1] ?? ns;
  const name = before.find((a, i) => !a.startsWith('-') && before[i - 1] !== '-n' && before[i - 1] !== '--namespace');
  if (!name) throw new MeshError('MESH_ERR_CLI_USAGE', usage);
  const s = readState();
  const pod = s?.pods.find((p) => (p.name === name || p.name.startsWith(`${name}-`)) && p.namespace === ns);
  if (!pod) throw new MeshError('MESH_ERR_REGISTRY_NOT_FOUND', `pod ${name} not found in namespace ${ns}${s ? '' : ' (no mesh is running)'}`);
  const child = execInNetns(pod.netns, argv, { stdio: 'inherit', uid: 1000, env: { ...process.env, HOME: '/tmp' } });
  return await new Promise<number>((resolve) => {
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
    child.on('error', () => resolve(127));
  });
}
