// A Job of the embedded mesh as the Job controller runs it: the spec fields it honours (backoffLimit,
// activeDeadlineSeconds; one completion, parallelism 1), the back-off before a failed pod's replacement, pod names
// `<job>-<5 chars>`, and the status kubectl shows (STATUS, COMPLETIONS, DURATION, status in Kubernetes' shape). Pure; nothing here throws.

import { randomInt } from 'node:crypto';

/** The Job controller's back-off base (10 s), doubled after each failure, capped at 6 min. */
export const DEFAULT_JOB_BACKOFF_MS = 10_000;
const MAX_JOB_BACKOFF_MS = 360_000;
/** Kubernetes' default spec.backoffLimit. */
export const DEFAULT_BACKOFF_LIMIT = 6;

export interface JobCondition {
  type: 'Complete' | 'Failed';
  status: 'True';
  reason?: string;
  message?: string;
  lastTransitionTime: string;
}

/** A Job's record in the state file (MeshState.jobs). */
export interface JobState {
  name: string;
  namespace: string;
  labels: Record<string, string>;
  backoffLimit: number;
  activeDeadlineSeconds?: number;
  /** What the spec asked for (only 1 and 1 are run; `tsmesh up` warns otherwise). */
  completions: number;
  parallelism: number;
  startTime: string;
  completionTime?: string;
  active: number;
  succeeded: number;
  /** Failed pods (a pod killed because the Job failed included). */
  failed: number;
  conditions: JobCondition[];
  /** Names of the Job's pods, oldest first. */
  pods: string[];
  /** How the runtime runs the Job differently from its spec (jobSupportWarning), for `tsmesh up`'s output. */
  warning?: string;
}

/** The delay before the pod that replaces failure number `failures` (1-based): base, 2·base, 4·base ... capped at 6 min. */
export function jobBackoffDelay(failures: number, baseMs = DEFAULT_JOB_BACKOFF_MS): number {
  if (failures <= 0) return 0;
  return Math.min(baseMs * 2 ** Math.min(failures - 1, 30), MAX_JOB_BACKOFF_MS);
}

/** The spec fields of a Job (batch/v1) the runtime reads, with Kubernetes' defaults. */
export function jobSpecOf(spec: Record<string, unknown> | undefined): Pick<JobState, 'backoffLimit' | 'completions' | 'parallelism'> & { activeDeadlineSeconds?: number } {
  const num = (v: unknown, d: number): number => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? Math.floor(v) : d);
  const deadline = spec?.activeDeadlineSeconds;
  return {
    backoffLimit: num(spec?.backoffLimit, DEFAULT_BACKOFF_LIMIT),
    completions: num(spec?.completions, 1),
    parallelism: num(spec?.parallelism, 1),
    ...(typeof deadline === 'number' && deadline > 0 ? { activeDeadlineSeconds: deadline } : {}),
  };
}

/** Why a Job runs differently from what it asks, for `tsmesh up`'s output; undefined when it runs as written. */
export function jobSupportWarning(namespace: string, name: string, spec: Pick<JobState, 'completions' | 'parallelism'>): string | undefined {
  if (spec.completions === 1 && spec.parallelism === 1) return undefined;
  return `Job ${namespace}/${name} asks for completions ${spec.completions} and parallelism ${spec.parallelism}: the local runtime runs one completion with parallelism 1 (one pod at a time, the Job Complete after its first pod that succeeds)`;
}

/** Kubernetes' pod-name suffix alphabet (no vowels, no look-alikes). */
const ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';

/** A new pod name for a Job, as the controller makes them: `<job>-<5 random chars>`, not one of `taken`. */
export function jobPodName(job: string, taken: ReadonlySet<string>, random: (n: number) => number = randomInt): string {
  for (;;) {
    let s = '';
    for (let i = 0; i < 5; i++) s += ALPHABET[random(ALPHABET.length)] ?? 'x';
    const name = `${job}-${s}`;
    if (!taken.has(name)) return name;
  }
}

/** The condition that ended the Job, if any. */
export function jobFinished(j: JobState): JobCondition | undefined {
  return j.conditions.find((c) => c.status === 'True' && (c.type === 'Complete' || c.type === 'Failed'));
}

/** kubectl's STATUS of a Job: Complete, Failed or Running. */
export function jobStatusText(j: JobState): string {
  return jobFinished(j)?.type ?? 'Running';
}

/** kubectl's COMPLETIONS: succeeded/completions (1/1). */
export function jobCompletionsText(j: JobState): string {
  return `${j.succeeded}/${Math.min(j.completions, 1) || 1}`;
}

/** kubectl's short durations (HumanDuration): 45s, 3m20s, 125m, 3h30m, 9h, 3d. */
export function humanDuration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 120) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 10) return s % 60 ? `${m}m${s % 60}s` : `${m}m`;
  if (m < 180) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 8) return m % 60 ? `${h}h${m % 60}m` : `${h}h`;
  if (h < 48) return `${h}h`;
  return `${Math.floor(h / 24)}d`;
}

/** kubectl's DURATION: from the start to completionTime, else to now (a failed Job has no completionTime: it keeps counting, as in kubectl). */
export function jobDurationText(j: JobState, now = Date.now()): string {
  const end = j.completionTime ? Date.parse(j.completionTime) : now;
  return humanDuration(end - Date.parse(j.startTime));
}

/** The Job as `kubectl get job -o yaml` shows it: spec's counts and status (active, succeeded, failed, conditions). */
export function jobObject(j: JobState): Record<string, unknown> {
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name: j.name, namespace: j.namespace, labels: j.labels, creationTimestamp: j.startTime },
    spec: { backoffLimit: j.backoffLimit, completions: j.completions, parallelism: j.parallelism, ...(j.activeDeadlineSeconds !== undefined ? { activeDeadlineSeconds: j.activeDeadlineSeconds } : {}) },
    status: {
      startTime: j.startTime,
      ...(j.completionTime ? { completionTime: j.completionTime } : {}),
      ...(j.active ? { active: j.active } : {}),
      ...(j.succeeded ? { succeeded: j.succeeded } : {}),
      ...(j.failed ? { failed: j.failed } : {}),
      ...(j.conditions.length ? { conditions: j.conditions } : {}),
    },
  };
}
