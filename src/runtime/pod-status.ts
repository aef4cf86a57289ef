// A pod of the runtime's state as kubectl shows it: the STATUS column (init containers first: Init:N/M,
// Init:Error, Init:CrashLoopBackOff, then PodInitializing and the containers' reasons), RESTARTS, and
// containerStatuses / initContainerStatuses in Kubernetes' shape. Pure functions; nothing here fails.

import type { ContainerState, PodState } from './state.ts';

const PROXY = 'istio-proxy';

/** A container's status in Kubernetes' shape (state, lastState, restartCount, ready). */
export function containerStatus(c: ContainerState): Record<string, unknown> {
  const term = (t: { exitCode?: number; signal?: string; reason?: string }): Record<string, unknown> => ({ exitCode: t.exitCode ?? 137, ...(t.signal ? { signal: t.signal } : {}), reason: t.reason ?? 'Error' });
  const state = c.state === 'running' ? { running: {} } : c.state === 'terminated' ? { terminated: term(c) } : { waiting: { reason: c.reason ?? 'ContainerCreating' } };
  return { name: c.name, ready: c.ready, restartCount: c.restartCount ?? 0, state, ...(c.last ? { lastState: { terminated: term(c.last) } } : {}) };
}

/** The init containers' part of kubectl's STATUS, or undefined once every one of them exited 0 (kubectl's printPod). */
export function initStatusText(inits: readonly ContainerState[]): string | undefined {
  for (const [i, c] of inits.entries()) {
    if (c.state === 'terminated' && c.exitCode === 0) continue;
    if (c.state === 'terminated') return `Init:${c.reason ?? (c.signal ? `Signal:${c.signal}` : `ExitCode:${c.exitCode ?? ''}`)}`;
    if (c.state === 'waiting' && c.reason && c.reason !== 'PodInitializing') return `Init:${c.reason}`;
    return `Init:${i}/${inits.length}`;
  }
  return undefined;
}

/**
 * kubectl's STATUS column: an init container's state while the pod initializes (Init:1/3, Init:Error,
 * Init:CrashLoopBackOff); then the pod's reason or phase, overridden by a container's waiting or terminated reason
 * (PodInitializing, CrashLoopBackOff, Completed, Error); the application containers win over the sidecar, the
 * first over later ones.
 */
export function podStatusText(p: PodState): string {
  // a pod the runtime could not start says so (StartError) rather than where its containers were
  if (p.reason === 'StartError') return p.reason;
  const init = initStatusText(p.initContainers ?? []);
  if (init !== undefined) return init;
  let reason: string = p.reason ?? p.phase;
  let running = false;
  const order = [...p.containers.filter((c) => c.name === PROXY), ...p.containers.filter((c) => c.name !== PROXY).reverse()];
  for (const c of order) {
    if (c.state === 'waiting' && c.reason) reason = c.reason;
    else if (c.state === 'terminated') reason = c.reason ?? (c.signal ? `Signal:${c.signal}` : `ExitCode:${c.exitCode ?? ''}`);
    else if (c.state === 'running' && c.ready) running = true;
  }
  return reason === 'Completed' && running ? 'Running' : reason;
}

/** kubectl's RESTARTS: the init containers' restarts while the pod initializes, then the containers'. */
export function podRestarts(p: PodState): number {
  const sum = (cs: readonly ContainerState[]): number => cs.reduce((n, c) => n + (c.restartCount ?? 0), 0);
  return initStatusText(p.initContainers ?? []) !== undefined ? sum(p.initContainers ?? []) : sum(p.containers);
}

/**
 * Why a pod did not start, for `tsmesh up`: the runtime's error, or the init container it is stuck at (a pod still
 * initializing when the runtime stopped waiting, or failed in init); undefined for a pod that started.
 */
export function notStartedText(p: PodState): string | undefined {
  if (p.reason === 'StartError') return `pod ${p.namespace}/${p.name}: ${p.message ?? 'could not start'}`;
  const inits = p.initContainers ?? [];
  const status = initStatusText(inits);
  if (status === undefined) return undefined;
  const at = inits.find((c) => !(c.state === 'terminated' && c.exitCode === 0));
  const last = at?.state === 'terminated' ? at : at?.last;
  const exit = last ? `, last exit ${last.exitCode ?? last.signal ?? '?'}` : '';
  const still = p.phase === 'Failed' ? 'failed in init' : 'is still initializing';
  return `pod ${p.namespace}/${p.name} ${still}: ${status} (init container ${at?.name ?? '?'}${exit}, restarts ${at?.restartCount ?? 0}); see \`tsmesh logs ${p.name} -n ${p.namespace} -c ${at?.name ?? ''}\``;
}
