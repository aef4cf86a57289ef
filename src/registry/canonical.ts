// Istio's canonical service name and revision of a workload, from its labels (the same rules the
// injector uses for service.istio.io/canonical-name|revision). Pure; never throws.

import type { Workload } from './types.ts';

/** service.istio.io/canonical-name, else app.kubernetes.io/name, else app, else the workload name. */
export function canonicalName(labels: Record<string, string>, workloadName: string): string {
  return labels['service.istio.io/canonical-name'] ?? labels['app.kubernetes.io/name'] ?? labels.app ?? workloadName;
}

/** service.istio.io/canonical-revision, else app.kubernetes.io/version, else version, else 'latest'. */
export function canonicalRevision(labels: Record<string, string>): string {
  return labels['service.istio.io/canonical-revision'] ?? labels['app.kubernetes.io/version'] ?? labels.version ?? 'latest';
}

/** The workload name Istio reports: the owning Deployment/StatefulSet/... name, else the pod's. */
export function workloadName(w: Pick<Workload, 'name' | 'owner'>): string {
  return w.owner?.name ?? w.name;
}
