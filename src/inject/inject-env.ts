// A container's environment as the kubelet would give it: literal values, the downward API (fieldRef,
// resourceFieldRef) and $(VAR) expansion, for the local runtime that runs injected pods without a
// kubelet. Pure; a reference it cannot resolve becomes '' (as the kubelet leaves unknown fields empty).

import type { Container, PodSpec } from '../config/types.ts';

/** What only a running pod knows. */
export interface PodStatusFields {
  podIP: string;
  hostIP?: string;
  nodeName?: string;
  /** CPUs of the node, for limits.cpu when the container sets none. Default 1. */
  nodeCpus?: number;
  /** Memory of the node in bytes, for limits.memory when the container sets none. */
  nodeMemoryBytes?: number;
}

export interface PodLike {
  metadata?: { name?: string; namespace?: string; uid?: string; labels?: Record<string, string>; annotations?: Record<string, string> } | undefined;
  spec?: Pick<PodSpec, 'serviceAccountName' | 'serviceAccount' | 'nodeName'> | undefined;
}

/** The value of a downward-API fieldPath (`metadata.name`, `metadata.labels['app']`, `status.podIP`, ...). */
export function downwardField(pod: PodLike, path: string, status: PodStatusFields): string {
  const m = pod.metadata ?? {};
  const keyed = /^metadata\.(labels|annotations)\['(.*)'\]$/.exec(path);
  if (keyed) return (keyed[1] === 'labels' ? m.labels : m.annotations)?.[keyed[2] ?? ''] ?? '';
  switch (path) {
    case 'metadata.name': return m.name ?? '';
    case 'metadata.namespace': return m.namespace ?? 'default';
    case 'metadata.uid': return m.uid ?? '';
    case 'metadata.labels': return formatMap(m.labels);
    case 'metadata.annotations': return formatMap(m.annotations);
    case 'spec.serviceAccountName': return pod.spec?.serviceAccountName ?? pod.spec?.serviceAccount ?? 'default';
    case 'spec.nodeName': return status.nodeName ?? pod.spec?.nodeName ?? '';
    case 'status.podIP':
    case 'status.podIPs': return status.podIP;
    case 'status.hostIP':
    case 'status.hostIPs': return status.hostIP ?? '';
    default: return '';
  }
}

/** The downward API's file format for a map: `key="value"` lines, sorted. */
function formatMap(map: Record<string, string> | undefined): string {
  return Object.keys(map ?? {}).sort().map((k) => `${k}=${JSON.stringify(map?.[k] ?? '')}`).join('\n');
}

const UNITS: Record<string, number> = { '': 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60 };

/** A Kubernetes quantity ('500m', '2', '128Mi') as a number (cores or bytes); undefined when malformed. */
export function parseQuantity(q: unknown): number | undefined {
  const m = /^(\d+(?:\.\d+)?)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$/.exec(String(q ?? '').trim());
  if (!m) return undefined;
  const n = Number(m[1]);
  return m[2] === 'm' ? n / 1000 : n * (UNITS[m[2] ?? ''] ?? 1);
}

function resourceField(c: Container, resource: string, status: PodStatusFields): string {
  const [kind, what] = resource.split('.') as [string, string | undefined];
  const section = (c.resources?.[kind] ?? {}) as Record<string, unknown>;
  const set = what === undefined ? undefined : parseQuantity(section[what]);
  if (what === 'cpu') return String(Math.max(1, Math.ceil(set ?? (kind === 'limits' ? status.nodeCpus ?? 1 : 0))));
  if (what === 'memory') return String(Math.ceil(set ?? (kind === 'limits' ? status.nodeMemoryBytes ?? 0 : 0)));
  return '';
}

/** `$(VAR)` replaced by VAR's value when defined, `$$(VAR)` by `$(VAR)`; anything else kept as written. */
export function expandVars(text: string, env: Readonly<Record<string, string>>): string {
  return text.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (all, name: string | undefined) => {
    if (all === '$$') return '$';
    return name !== undefined && Object.hasOwn(env, name) ? (env[name] ?? '') : all;
  });
}

/** The container's environment, in order, with each value resolved as the kubelet would. */
export function resolveContainerEnv(container: Container, pod: PodLike, status: PodStatusFields): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of container.env ?? []) {
    const from = e.valueFrom as { fieldRef?: { fieldPath?: string }; resourceFieldRef?: { resource?: string } } | undefined;
    if (from?.fieldRef?.fieldPath) out[e.name] = downwardField(pod, from.fieldRef.fieldPath, status);
    else if (from?.resourceFieldRef?.resource) out[e.name] = resourceField(container, from.resourceFieldRef.resource, status);
    else out[e.name] = expandVars(e.value ?? '', out);
  }
  return out;
}
