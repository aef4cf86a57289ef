// `tsmesh down`: stops the embedded mesh and removes every namespace, interface, iptables rule and
// process it made — also after `kill -9` of everything, from the names recorded in its state directory.
// Never fails for a mesh that is already gone; tool failures are MESH_ERR_CAPTURE_APPLY.

import { parseArgs } from 'node:util';
import { MeshError } from '../../common/errors.ts';
import { RUNTIME_PREFIX, isAlive, readState, stateDir, teardown } from '../../runtime/local-mesh.ts';
import { DEFAULT_BRIDGE } from '../../runtime/netns.ts';
import type { CommandIO } from '../main.ts';

export const summary = 'Stop the embedded mesh and remove everything it created';
export const usage = `Usage: tsmesh down [--bridge NAME] [--name-prefix PREFIX] [--chain-prefix NAME]

Stops the mesh started by \`tsmesh up\` (state in $TSMESH_HOME, default /var/run/tsmesh) and removes its
network namespaces and every process in them, its bridge and veths, its iptables chains and rules.
It works after the mesh was killed (kill -9): the names come from the state directory; the flags name
them when that is gone too (the defaults are up's).`;

export async function run(args: string[], io: CommandIO): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({ args, allowPositionals: false, options: { bridge: { type: 'string' }, 'name-prefix': { type: 'string' }, 'chain-prefix': { type: 'string' } } }));
  } catch (err) {
    throw new MeshError('MESH_ERR_CLI_USAGE', `down: ${(err as Error).message}\n${usage}`);
  }
  const dir = stateDir();
  const s = readState(dir);
  if (s && isAlive(s.pid)) {
    process.kill(s.pid, 'SIGTERM');
    for (let i = 0; i < 100 && isAlive(s.pid); i++) await new Promise((r) => setTimeout(r, 100));
    if (isAlive(s.pid)) process.kill(s.pid, 'SIGKILL');
  }
  await teardown(values.bridge ?? s?.bridge ?? DEFAULT_BRIDGE, dir, values['name-prefix'] ?? s?.prefix ?? RUNTIME_PREFIX, values['chain-prefix'] ?? s?.chainPrefix);
  io.out(s ? 'mesh stopped; everything it created is removed' : 'no mesh was running; leftovers (if any) removed');
  return 0;
}
