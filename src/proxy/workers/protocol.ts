// The messages between the sidecar's primary process and its workers (node:cluster IPC, JSON): configuration to
// apply, questions for the admin endpoints and their answers. Types and constants only; nothing here throws.

import type { LogLevel } from '../../common/log.ts';
import type { FamilySnapshot } from '../telemetry/snapshot.ts';

type Json = Record<string, unknown>;

/** The xDS types in the order a complete configuration is applied (routes before listeners: no 404 in between). */
export const APPLY_ORDER = ['clusters', 'endpoints', 'routes', 'listeners'] as const;
export type XdsKind = (typeof APPLY_ORDER)[number];

/** What one process's data path reports to whoever aggregates it. */
export interface DataPlaneSnapshot {
  stats: FamilySnapshot[];
  metrics: FamilySnapshot[];
  memory: { heapUsed: number; heapTotal: number };
}

/** True in a process the primary forked as a worker. */
export function isProxyWorker(env: NodeJS.ProcessEnv = process.env): boolean {
  return typeof process.send === 'function' && env[WORKER_INDEX_ENV] !== undefined;
}

/** The worker's index (0 .. N-1); set only in worker processes. */
export const WORKER_INDEX_ENV = 'TSMESH_PROXY_WORKER';
/** "fd:slots:workers" of the shared circuit-breaker counters; absent when they could not be created. */
export const SHARED_COUNTERS_ENV = 'TSMESH_PROXY_SHARED_COUNTERS';
/** The worker count, for workers without shared counters (each then takes its share of every limit). */
export const WORKER_COUNT_ENV = 'TSMESH_PROXY_WORKERS';
/** The file descriptor a worker inherits the shared counters on (stdio slot after 'ipc'). */
export const SHARED_COUNTERS_FD = 4;

export interface ApplyStep {
  kind: XdsKind;
  resources: Json[];
  /** clusters: the slot of each cluster in the shared counter table. */
  slots?: Record<string, number>;
}

export type ToWorker =
  | { t: 'apply'; id: number; steps: ApplyStep[] }
  | { t: 'snapshot'; id: number }
  | { t: 'clusters'; id: number }
  | { t: 'listeners'; id: number }
  | { t: 'drain'; inboundOnly: boolean; graceful: boolean }
  | { t: 'log-level'; level: LogLevel }
  /** Close the listeners, finish what is in flight (briefly), exit. */
  | { t: 'stop' };

export type FromWorker =
  | { t: 'hello'; index: number; pid: number }
  | { t: 'reply'; id: number; ok: true; value?: unknown }
  | { t: 'reply'; id: number; ok: false; error: string }
  /** Sent now and then, so a worker that dies takes no more than the last few seconds of counts with it. */
  | { t: 'stats'; snapshot: DataPlaneSnapshot };

/** How often a worker sends its stats unasked. */
export const STATS_PUSH_MS = 5000;

export function isFromWorker(m: unknown): m is FromWorker {
  return typeof m === 'object' && m !== null && typeof (m as { t?: unknown }).t === 'string';
}

export function isToWorker(m: unknown): m is ToWorker {
  return typeof m === 'object' && m !== null && typeof (m as { t?: unknown }).t === 'string';
}
