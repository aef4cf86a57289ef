// Finds the proxy a command names: `pod`, `pod.namespace`, or `deployment/name` (its first pod),
// in a registry. Fails with MESH_ERR_REGISTRY_NOT_FOUND listing the pods that do exist.

import { MeshError } from '../../common/errors.ts';
import type { Registry, Workload } from '../../registry/types.ts';
import type { ProxyInfo } from '../model/sidecar-scope.ts';

export function findWorkload(registry: Registry, ref: string, defaultNamespace: string): Workload {
  const ctrl = /^(deployment|deploy|statefulset|sts|daemonset|ds|replicaset|rs|job)\/(.+)$/i.exec(ref);
  let ns = defaultNamespace;
  let name = ref;
  if (ctrl) {
    name = ctrl[2] ?? '';
    const dot = name.indexOf('.');
    if (dot > 0) {
      ns = name.slice(dot + 1);
      name = name.slice(0, dot);
    }
    const owned = registry.workloads.filter((w) => w.namespace === ns && w.owner?.name === name).sort((a, b) => a.name.localeCompare(b.name));
    if (owned[0]) return owned[0];
  } else {
    const exact = registry.workload(name, ns);
    if (exact) return exact;
    const dot = ref.indexOf('.');
    if (dot > 0) {
      const w = registry.workload(ref.slice(0, dot), ref.slice(dot + 1));
      if (w) return w;
      ns = ref.slice(dot + 1);
    }
  }
  const inNs = registry.workloads.filter((w) => w.namespace === ns).map((w) => w.name).sort();
  const hint = inNs.length > 0 ? `pods in namespace ${ns}: ${inNs.join(', ')}` : `namespace ${ns} has no pods; pass -n or <pod>.<namespace>`;
  throw new MeshError('MESH_ERR_REGISTRY_NOT_FOUND', `pod "${ref}" not found in namespace ${ns} (${hint})`);
}

export function proxyInfoFor(w: Workload): ProxyInfo {
  return { name: w.name, namespace: w.namespace, labels: w.labels, ip: w.ip, type: 'sidecar' };
}
