// `tsmesh down`: stops the embedded mesh and removes every namespace, interface, iptables rule and
// process it made — also after `kill -9` of everything, from the names it gives them.

import { STATE_DIR, isAlive, readState, teardown } from '../../runtime/local-mesh.ts';
import type { CommandIO } from '../main.ts';

export const summary = 'Stop the embedded mesh and remove everything it created';
export const usage = 'Usage: tsmesh down\n\nStops the mesh started by `tsmesh up` and removes its network namespaces, bridge, veths, iptables rules and processes.';

export async function run(_args: string[], io: CommandIO): Promise<number> {
  const s = readState(STATE_DIR);
  if (s && isAlive(s.pid)) {
    process.kill(s.pid, 'SIGTERM');
    for (let i = 0; i < 100 && isAlive(s.pid); i++) await new Promise((r) => setTimeout(r, 100));
    if (isAlive(s.pid)) process.kill(s.pid, 'SIGKILL');
  }
  await teardown(s?.bridge);
  io.out(s ? 'mesh stopped; everything it created is removed' : 'no mesh was running; leftovers (if any) removed');
  return 0;
}
