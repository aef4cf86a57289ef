// `tsmesh proxy` on its own: the entry point scripts/proxy-bundle.mjs bundles into dist/tsmesh-proxy.mjs, which
// bin/tsmesh runs while it matches the sources. Same flags, output and exit codes as `tsmesh proxy` through main.ts.

import * as proxy from './commands/proxy.ts';
import { runCommand } from './main.ts';

/** Runs `tsmesh proxy ...args` and resolves to the exit code. */
export function runProxy(args: string[]): Promise<number> {
  return runCommand(proxy, args);
}
