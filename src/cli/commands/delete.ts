// `tsmesh delete -f PATH`: removes the resources named in the YAML from the running control plane.

import { sendDocuments } from './apply.ts';
import type { CommandIO } from '../main.ts';

export const summary = 'Delete the resources named in YAML from the running mesh (kubectl delete)';
export const usage = `Usage: tsmesh delete -f PATH... [-n NS] [--controlplane URL]

Removes every resource the YAML names (kind, namespace, name) from the control plane.`;

export async function run(args: string[], io: CommandIO): Promise<number> {
  return sendDocuments('delete', args, io);
}
