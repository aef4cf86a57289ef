// Where each Kubernetes workload kind keeps its pod template, and which workload a pod belongs to
// (Istio's owner URI and workload name, from owner references). Pure; never throws.

/** A workload kind that carries a pod template: its API version, plural and where the template sits. */
export interface WorkloadKind {
  kind: string;
  apiVersion: string;
  plural: string;
  /** Path from the document root to the pod template ({metadata, spec}); [] for a Pod itself. */
  templatePath: readonly string[];
}

const kind = (k: string, apiVersion: string, plural: string, templatePath: string[]): [string, WorkloadKind] => [k, { kind: k, apiVersion, plural, templatePath }];

/** The kinds kube-inject injects (istioctl's list, plus CronJob's job template). */
export const WORKLOAD_KINDS: ReadonlyMap<string, WorkloadKind> = new Map([
  kind('Pod', 'v1', 'pods', []),
  kind('Deployment', 'apps/v1', 'deployments', ['spec', 'template']),
  kind('StatefulSet', 'apps/v1', 'statefulsets', ['spec', 'template']),
  kind('DaemonSet', 'apps/v1', 'daemonsets', ['spec', 'template']),
  kind('ReplicaSet', 'apps/v1', 'replicasets', ['spec', 'template']),
  kind('ReplicationController', 'v1', 'replicationcontrollers', ['spec', 'template']),
  kind('Job', 'batch/v1', 'jobs', ['spec', 'template']),
  kind('CronJob', 'batch/v1', 'cronjobs', ['spec', 'jobTemplate', 'spec', 'template']),
]);

/** `kubernetes://apis/apps/v1/namespaces/default/deployments/reviews-v1`, as ISTIO_META_OWNER carries it. */
export function ownerUri(kindName: string, namespace: string, name: string, apiVersion?: string): string {
  const k = WORKLOAD_KINDS.get(kindName);
  const version = apiVersion ?? k?.apiVersion ?? 'v1';
  const plural = k?.plural ?? `${kindName.toLowerCase()}s`;
  return `kubernetes://apis/${version}/namespaces/${namespace}/${plural}/${name}`;
}

export interface OwnerReference { apiVersion?: string; kind?: string; name?: string; controller?: boolean }

/** The workload a pod belongs to: kind, name and API version of its top-level controller. */
export interface PodWorkload { kind: string; name: string; apiVersion: string }

/**
 * The workload of a pod as Istio derives it: the controller owner reference, with a ReplicaSet named
 * `<deployment>-<pod-template-hash>` mapped to its Deployment and a Job named `<cronjob>-<8..10 digits>`
 * to its CronJob; a pod without a controller is its own workload (its name, else its generateName
 * without the trailing '-').
 */
export function workloadOfPod(meta: { name?: string; generateName?: string; labels?: Record<string, string>; ownerReferences?: readonly OwnerReference[] } | undefined): PodWorkload {
  const m = meta ?? {};
  const refs = Array.isArray(m.ownerReferences) ? m.ownerReferences : [];
  const ref = refs.find((r) => r.controller === true) ?? (refs.length === 1 ? refs[0] : undefined);
  if (!ref?.kind || !ref.name) {
    const name = m.name || (m.generateName ?? '').replace(/-$/, '');
    return { kind: 'Pod', name, apiVersion: 'v1' };
  }
  const hash = m.labels?.['pod-template-hash'];
  if (ref.kind === 'ReplicaSet' && hash && ref.name.endsWith(`-${hash}`)) {
    return { kind: 'Deployment', name: ref.name.slice(0, -(hash.length + 1)), apiVersion: 'apps/v1' };
  }
  if (ref.kind === 'Job') {
    const cron = /^(.+)-\d{8,10}$/.exec(ref.name);
    if (cron?.[1]) return { kind: 'CronJob', name: cron[1], apiVersion: 'batch/v1' };
  }
  return { kind: ref.kind, name: ref.name, apiVersion: ref.apiVersion ?? WORKLOAD_KINDS.get(ref.kind)?.apiVersion ?? 'v1' };
}
