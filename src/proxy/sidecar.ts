// Picks how the sidecar runs from its concurrency: one process (the default) or a primary with N worker
// processes. parseConcurrency throws MESH_ERR_PROXY_WORKERS for a value that is not a whole number >= 0.

import { availableParallelism } from 'node:os';
import { MeshError } from '../common/errors.ts';
import type { Logger } from '../common/log.ts';
import type { AgentEnv } from './identity.ts';
import type { AdminOptions } from './telemetry/admin.ts';

export interface Sidecar {
  readonly env: AgentEnv;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * The worker count for a --concurrency value: undefined (not set) -> 1; 0 -> one per CPU, as Envoy's 0 means;
 * N -> N. Throws MESH_ERR_PROXY_WORKERS for anything else.
 */
export function parseConcurrency(value: string | number | undefined, cpus: () => number = availableParallelism): number {
  if (value === undefined || value === '') return 1;
  const text = String(value).trim();
  if (!/^\d+$/.test(text)) throw new MeshError('MESH_ERR_PROXY_WORKERS', `--concurrency must be a whole number (0 = one worker per CPU), not ${JSON.stringify(String(value))}`);
  const n = Number(text);
  if (n > 1024) throw new MeshError('MESH_ERR_PROXY_WORKERS', `--concurrency ${n} is more workers than tsmesh runs (at most 1024)`);
  return n === 0 ? Math.max(1, cpus()) : n;
}

export interface SidecarOptions {
  /** Worker count (parseConcurrency's result); 1 runs everything in this process. */
  concurrency: number;
  env?: NodeJS.ProcessEnv;
  adminPorts?: AdminOptions['ports'];
  log?: Logger;
  workerExec?: string;
  workerArgs?: string[];
}

/**
 * One worker is this process itself (no fork: the memory of one Node process, which the RSS figures measure);
 * N >= 2 is a primary (xDS, admin, stats) and N worker processes sharing the listeners. Each loads only its own
 * modules: the primary never loads the data path.
 */
export async function createSidecar(opts: SidecarOptions): Promise<Sidecar> {
  const common = { ...(opts.env ? { env: opts.env } : {}), ...(opts.adminPorts ? { adminPorts: opts.adminPorts } : {}), ...(opts.log ? { log: opts.log } : {}) };
  if (opts.concurrency <= 1) {
    const { SidecarAgent } = await import('./agent.ts');
    return new SidecarAgent(common);
  }
  const { WorkerSidecar } = await import('./workers/primary.ts');
  return new WorkerSidecar({ ...common, concurrency: opts.concurrency, ...(opts.workerExec ? { workerExec: opts.workerExec } : {}), ...(opts.workerArgs ? { workerArgs: opts.workerArgs } : {}) });
}
