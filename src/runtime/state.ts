// The embedded mesh's state file (<state dir>/state.json) that `tsmesh up` writes and the other commands read:
// where the mesh runs, the names it gave its namespaces, interfaces and chains, and each pod's status. A missing
// or unreadable file reads as "no mesh"; assertNotRunning throws MESH_ERR_CLI_USAGE while one runs.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MeshError } from '../common/errors.ts';
import type { JobState } from './job.ts';

/** Where the state lives: $TSMESH_HOME, read at each call (tests and users run several meshes), else /var/run/tsmesh. */
export function stateDir(): string {
  return process.env.TSMESH_HOME ?? '/var/run/tsmesh';
}

/** A container's status as Kubernetes reports it (containerStatuses[]). */
export interface ContainerState {
  name: string;
  log: string;
  pid?: number;
  /** running, terminated (exited and not restarted, yet or ever), waiting (restart back-off). */
  state: 'running' | 'terminated' | 'waiting';
  /** Kubernetes' reasons: Completed / Error (terminated), CrashLoopBackOff, ContainerCreating, PodInitializing (waiting). */
  reason?: string;
  exitCode?: number;
  signal?: string;
  restartCount: number;
  ready: boolean;
  /** The last termination of a container that was restarted since (lastState.terminated). */
  last?: { exitCode?: number; signal?: string; reason: string };
}

export interface PodState {
  name: string;
  namespace: string;
  ip: string;
  netns: string;
  /** Kubernetes' pod phases: Pending while init containers run; Running until the pod is done; Succeeded/Failed once every application container
   *  exited for good (restartPolicy Never/OnFailure), or Failed when the pod could not start at all. */
  phase: 'Pending' | 'Running' | 'Succeeded' | 'Failed';
  sidecar: boolean;
  containers: ContainerState[];
  /** spec.initContainers' statuses in their order (Istio's istio-init / istio-validation included: the runtime does
   *  their work); absent in state files of older runtimes. */
  initContainers?: ContainerState[];
  restartPolicy?: 'Always' | 'OnFailure' | 'Never';
  /** Why the pod failed to start (the runtime's error), when it did. */
  message?: string;
  /** Kubernetes' status.reason; StartError when the runtime could not start the pod. */
  reason?: string;
  owner?: string;
  labels: Record<string, string>;
}

export interface MeshState {
  pid: number;
  startedAt: string;
  ready: boolean;
  bridge: string;
  gateway: string;
  podCIDR: string;
  serviceCIDR: string;
  /** Prefix of every network namespace and host interface the mesh made (tsm-m- by default). */
  prefix: string;
  /** Prefix of the host iptables chains of the service proxy (TSMESH by default). */
  chainPrefix: string;
  controlplane: { xds: string; http: string };
  logDir: string;
  pods: PodState[];
  /** The Jobs of the manifests with their status (absent in state files of older runtimes). */
  jobs?: JobState[];
  error?: string;
}

export function readState(dir = stateDir()): MeshState | undefined {
  try {
    return JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8')) as MeshState;
  } catch {
    return undefined;
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Throws MESH_ERR_CLI_USAGE when the mesh of this state directory is running. */
export function assertNotRunning(dir = stateDir()): void {
  const s = readState(dir);
  if (s && isAlive(s.pid)) throw new MeshError('MESH_ERR_CLI_USAGE', `a mesh is already running (pid ${s.pid}, started ${s.startedAt}, state in ${dir}); run \`tsmesh down\` first`);
}
