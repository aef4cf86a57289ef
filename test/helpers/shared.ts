// Paths to the shared test material beside the checkout (../shared/istio), as CI lays it out.

import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join, resolve } from 'node:path';

export const REPO_ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
export const SHARED = process.env.TSMESH_SHARED ?? resolve(REPO_ROOT, '..', 'shared');
export const ISTIO = join(SHARED, 'istio');

if (!existsSync(ISTIO)) {
  throw new Error(`shared test material not found at ${ISTIO}; set TSMESH_SHARED to the shared/ folder`);
}

export const istioPath = (...parts: string[]): string => join(ISTIO, ...parts);
