// The analyzer contract: a named check that reads declared kinds (and the service registry) and reports
// messages. Reading a kind an analyzer did not declare throws, so each analyzer's inputs stay honest.

import type { Registry } from '../../registry/index.ts';
import type { Resource } from '../resource.ts';
import type { AnalysisMessage } from './message.ts';

/** `group/Kind` ('' group for core Kubernetes kinds: '/Service'). */
export type KindKey = string;

export const K = {
  VirtualService: 'networking.istio.io/VirtualService',
  DestinationRule: 'networking.istio.io/DestinationRule',
  ServiceEntry: 'networking.istio.io/ServiceEntry',
  Sidecar: 'networking.istio.io/Sidecar',
  Gateway: 'networking.istio.io/Gateway',
  Namespace: '/Namespace',
  Service: '/Service',
  Pod: '/Pod',
  Deployment: 'apps/Deployment',
  StatefulSet: 'apps/StatefulSet',
  DaemonSet: 'apps/DaemonSet',
  ReplicaSet: 'apps/ReplicaSet',
  Job: 'batch/Job',
} as const satisfies Record<string, KindKey>;

export function kindKey(r: Pick<Resource, 'group' | 'kind'>): KindKey {
  return `${r.group}/${r.kind}`;
}

export interface AnalysisContext {
  /** Resources of one kind, in input order. Throws when the analyzer did not declare the kind. */
  list<Spec = Record<string, unknown>>(kind: KindKey): ReadonlyArray<Resource<Spec>>;
  /** Services, workloads (pods and controller replicas) and endpoints built from every input resource. */
  readonly registry: Registry;
  /** The cluster DNS domain (cluster.local). */
  readonly domain: string;
  report(m: AnalysisMessage): void;
}

export interface Analyzer {
  /** Like Istio's, e.g. `virtualservice.DestinationHostAnalyzer`. */
  name: string;
  description: string;
  /** Kinds read through `ctx.list`. `registry: true` when it also reads the registry. */
  inputs: readonly KindKey[];
  registry?: boolean;
  analyze(ctx: AnalysisContext): void;
}

/** Kubernetes' label selector string for a set selector: keys sorted, `a=1,b=2`. */
export function selectorString(labels: Readonly<Record<string, string>>): string {
  return Object.keys(labels)
    .sort()
    .map((k) => `${k}=${labels[k] ?? ''}`)
    .join(',');
}

/** True when every selector label is present with the same value (an empty selector matches all). */
export function labelsMatch(selector: Readonly<Record<string, string>>, labels: Readonly<Record<string, string>>): boolean {
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

/** A plain string map from an untyped field; non-string values are dropped. */
export function stringMapOf(v: unknown): Record<string, string> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return {};
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(v)) {
    if (typeof val === 'string') out[k] = val;
    else if (typeof val === 'number' || typeof val === 'boolean') out[k] = String(val);
  }
  return out;
}

export function arrayOf<T>(v: T[] | undefined | null): T[] {
  return Array.isArray(v) ? v : [];
}
