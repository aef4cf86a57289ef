// Turns Pods, workload controllers (Deployment, ReplicaSet, StatefulSet, DaemonSet, Job) and
// WorkloadEntries into workloads named as Kubernetes names them. Malformed objects are skipped, never thrown on.

import type { Resource } from '../config/resource.ts';
import type { PodSpec, PodTemplateSpec, WorkloadControllerSpec, WorkloadEntrySpec } from '../config/types.ts';
import { nameSuffix, podTemplateHash } from './naming.ts';
import type { Workload } from './types.ts';

/** Workloads before address assignment (`ip` is '' unless the input fixed it: status.podIP,
 *  WorkloadEntry address), and the pods whose status says they are not ready. */
export interface ExpandedWorkloads { workloads: Workload[]; unready: Set<Workload> }

const CONTROLLERS = new Set(['Deployment', 'ReplicaSet', 'StatefulSet', 'DaemonSet', 'Job']);

function isObject<T>(v: T): v is Exclude<T, null | undefined | readonly unknown[]> & Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function serviceAccountOf(spec: PodSpec | undefined): string {
  return spec?.serviceAccountName || spec?.serviceAccount || 'default';
}

function podSpecOf(v: unknown): PodSpec {
  const spec = isObject(v) ? (v as unknown as PodSpec) : ({ containers: [] } as PodSpec);
  return Array.isArray(spec.containers) ? spec : { ...spec, containers: [] };
}

/** How many pods a controller runs on our single node. */
export function replicaCount(kind: string, spec: WorkloadControllerSpec): number {
  switch (kind) {
    case 'DaemonSet':
      return 1;
    case 'Job': {
      const par = typeof spec.parallelism === 'number' ? spec.parallelism : 1;
      const comp = typeof spec.completions === 'number' ? spec.completions : Infinity;
      return Math.max(0, Math.min(par, comp));
    }
    default:
      return typeof spec.replicas === 'number' && spec.replicas >= 0 ? Math.floor(spec.replicas) : 1;
  }
}

function podReady(r: Resource): boolean {
  const status = r.body.status;
  if (!isObject(status)) return true;
  if (typeof status.phase === 'string' && status.phase !== 'Running' && status.phase !== 'Pending') return false;
  const conds = Array.isArray(status.conditions) ? status.conditions : [];
  for (const c of conds) {
    if (isObject(c) && c.type === 'Ready' && c.status === 'False') return false;
  }
  return true;
}

/** Pods of one controller, named `<deploy>-<hash>-<xxxxx>`, `<sts>-<i>` or `<name>-<xxxxx>`. */
function expandController(r: Resource<WorkloadControllerSpec>, taken: Set<string>): Workload[] {
  const spec = r.spec;
  const template: PodTemplateSpec = isObject(spec.template) ? spec.template : {};
  const ns = r.metadata.namespace;
  const tmplLabels: Record<string, string> = {};
  for (const [k, v] of Object.entries(template.metadata?.labels ?? {})) tmplLabels[k] = String(v);
  const annotations: Record<string, string> = {};
  for (const [k, v] of Object.entries(template.metadata?.annotations ?? {})) annotations[k] = String(v);
  const podSpec = podSpecOf(template.spec);
  const count = replicaCount(r.kind, spec);
  const out: Workload[] = [];
  const hash = r.kind === 'Deployment' ? podTemplateHash(template) : '';
  for (let i = 0; i < count; i++) {
    let name: string;
    const labels = { ...tmplLabels };
    if (r.kind === 'StatefulSet') {
      name = `${r.metadata.name}-${i}`;
      labels['statefulset.kubernetes.io/pod-name'] = name;
      labels['apps.kubernetes.io/pod-index'] = String(i);
    } else {
      const prefix = r.kind === 'Deployment' ? `${r.metadata.name}-${hash}` : r.metadata.name;
      let n = 0;
      do {
        name = `${prefix}-${nameSuffix(`${ns}/${prefix}/${i}${n ? `#${n}` : ''}`)}`;
        n++;
      } while (taken.has(`${ns}/${name}`));
      if (r.kind === 'Deployment') labels['pod-template-hash'] = hash;
      if (r.kind === 'Job') {
        labels['job-name'] = r.metadata.name;
        labels['batch.kubernetes.io/job-name'] = r.metadata.name;
      }
    }
    taken.add(`${ns}/${name}`);
    out.push({
      kind: 'Pod',
      name,
      ip: '',
      namespace: ns,
      labels,
      annotations: { ...annotations },
      serviceAccount: serviceAccountOf(podSpec),
      owner: { kind: r.kind, name: r.metadata.name },
      podSpec,
      source: r as Resource,
    });
  }
  return out;
}

/** Every workload the resources describe, in input order (controllers expanded in place). */
export function expandWorkloads(resources: readonly Resource[]): ExpandedWorkloads {
  const out: Workload[] = [];
  const unready = new Set<Workload>();
  const taken = new Set<string>();
  for (const r of resources) {
    if (r.kind === 'Pod' && r.group === '') taken.add(`${r.metadata.namespace}/${r.metadata.name}`);
  }
  for (const r of resources) {
    if (r.kind === 'Pod' && r.group === '') {
      let name = r.metadata.name;
      if (!name && r.metadata.generateName) {
        let n = 0;
        do {
          name = `${r.metadata.generateName}${nameSuffix(`${r.metadata.namespace}/${r.metadata.generateName}/${n}`)}`;
          n++;
        } while (taken.has(`${r.metadata.namespace}/${name}`));
        taken.add(`${r.metadata.namespace}/${name}`);
      }
      const podSpec = podSpecOf(r.spec);
      const status = r.body.status;
      const ip = isObject(status) && typeof status.podIP === 'string' && status.podIP ? status.podIP : undefined;
      const ownerRef = Array.isArray(r.body.metadata && (r.body.metadata as Record<string, unknown>).ownerReferences)
        ? ((r.body.metadata as Record<string, unknown>).ownerReferences as unknown[])[0]
        : undefined;
      const draft: Workload = {
        kind: 'Pod',
        name,
        ip: ip ?? '',
        namespace: r.metadata.namespace,
        labels: { ...r.metadata.labels },
        annotations: { ...r.metadata.annotations },
        serviceAccount: serviceAccountOf(podSpec),
        podSpec,
        source: r,
      };
      if (!podReady(r)) unready.add(draft);
      if (isObject(ownerRef) && typeof ownerRef.kind === 'string' && typeof ownerRef.name === 'string') {
        draft.owner = { kind: ownerRef.kind, name: ownerRef.name };
      }
      out.push(draft);
    } else if (CONTROLLERS.has(r.kind) && (r.group === 'apps' || r.group === 'batch')) {
      out.push(...expandController(r, taken));
    } else if (r.kind === 'WorkloadEntry' && r.group === 'networking.istio.io') {
      out.push(workloadEntryDraft(r));
    }
  }
  return { workloads: out, unready };
}

function workloadEntryDraft(r: Resource<WorkloadEntrySpec>): Workload {
  const spec = r.spec;
  const draft: Workload = {
    kind: 'WorkloadEntry',
    name: r.metadata.name,
    ip: typeof spec.address === 'string' ? spec.address : '',
    namespace: r.metadata.namespace,
    labels: { ...r.metadata.labels, ...(isObject(spec.labels) ? spec.labels : {}) },
    annotations: { ...r.metadata.annotations },
    serviceAccount: spec.serviceAccount || 'default',
    source: r as Resource,
  };
  if (isObject(spec.ports)) draft.ports = { ...spec.ports };
  if (spec.locality) draft.locality = spec.locality;
  if (spec.network) draft.network = spec.network;
  if (typeof spec.weight === 'number') draft.weight = spec.weight;
  return draft;
}
