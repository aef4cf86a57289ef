// `tsmesh status`: whether the embedded mesh runs, where its control plane is, and its pods.

import { isAlive, readState } from '../../runtime/local-mesh.ts';
import type { CommandIO } from '../main.ts';

export const summary = 'Show whether the embedded mesh runs, and its pods';
export const usage = 'Usage: tsmesh status';

export async function run(_args: string[], io: CommandIO): Promise<number> {
  const s = readState();
  if (!s || !isAlive(s.pid)) {
    io.out('no mesh is running (start one with `tsmesh up DIR`)');
    return 1;
  }
  io.out(`mesh running (pid ${s.pid}) since ${s.startedAt}; ready: ${s.ready}`);
  io.out(`control plane: xDS ${s.controlplane.xds}, API ${s.controlplane.http}; bridge ${s.bridge} ${s.gateway}; pods ${s.podCIDR}; services ${s.serviceCIDR}`);
  const running = s.pods.filter((p) => p.phase === 'Running').length;
  io.out(`pods: ${running}/${s.pods.length} running`);
  if (s.error) io.out(`last error: ${s.error}`);
  return 0;
}
