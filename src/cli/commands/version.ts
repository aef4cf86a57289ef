// `tsmesh version`: prints the package version and the Node.js version it runs on.

import { readFileSync } from 'node:fs';
import type { CommandIO } from '../main.ts';

export const summary = 'Print the tsmesh version';
export const usage = 'Usage: tsmesh version\n\nPrints the tsmesh version and the Node.js runtime version.';

export async function run(_args: string[], io: CommandIO): Promise<number> {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  io.out(`tsmesh ${pkg.version} (node ${process.version})`);
  return 0;
}
