// `tsmesh status`: whether the embedded mesh runs, where its control plane is, and its pods.

import { isAlive, readState } from '../../runtime/state.ts';
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
  const count = (phase: string): number => s.pods.filter((p) => p.phase === phase).length;
  const done = count('Succeeded');
  const failed = count('Failed');
  io.out(`pods: ${count('Running')}/${s.pods.length} running${done ? `, ${done} completed` : ''}${failed ? `, ${failed} failed` : ''}`);
  if (s.error) io.out(`last error: ${s.error}`);
  return 0;
}
