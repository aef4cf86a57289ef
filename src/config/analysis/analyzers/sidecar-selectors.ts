// sidecar.SelectorAnalyzer and sidecar.DefaultSelectorAnalyzer: a Sidecar's workloadSelector must select
// a workload in its namespace (IST0101), no workload may be selected by two Sidecars (IST0110), and a
// namespace has at most one Sidecar without selector (IST0111). Reports; never throws.

import type { Workload } from '../../../registry/index.ts';
import type { Resource } from '../../resource.ts';
import type { SidecarSpec } from '../../types.ts';
import { K, labelsMatch, selectorString, stringMapOf, type Analyzer } from '../analyzer.ts';
import { newMessage } from '../message.ts';
import { MESSAGES } from '../messages.ts';

/** Replicas of one controller share labels: treat them as one workload, named by the first replica. */
function workloadKey(w: Workload): string {
  return w.owner ? `${w.namespace}/${w.owner.kind}/${w.owner.name}` : `${w.namespace}/${w.kind}/${w.name}`;
}

export const sidecarSelectorAnalyzer: Analyzer = {
  name: 'sidecar.SelectorAnalyzer',
  description:
    'Validates that sidecars that define a workload selector match at least one pod, and that there aren\'t multiple sidecar resources that select overlapping pods',
  inputs: [K.Sidecar],
  registry: true,
  analyze(ctx) {
    const selected = new Map<string, { workload: Workload; sidecars: Array<Resource<SidecarSpec>> }>();
    for (const sc of ctx.list<SidecarSpec>(K.Sidecar)) {
      const labels = stringMapOf(sc.spec.workloadSelector?.labels);
      if (Object.keys(labels).length === 0) continue;
      const ns = sc.metadata.namespace;
      const matched = ctx.registry.workloads.filter((w) => w.namespace === ns && labelsMatch(labels, w.labels));
      if (matched.length === 0) {
        const firstLabel = Object.keys(labels).sort()[0] ?? '';
        ctx.report(newMessage(MESSAGES.ReferencedResourceNotFound, sc, ['selector', selectorString(labels)], ['spec', 'workloadSelector', 'labels', firstLabel]));
        continue;
      }
      for (const w of matched) {
        const key = workloadKey(w);
        const entry = selected.get(key) ?? { workload: w, sidecars: [] };
        if (!entry.sidecars.includes(sc)) entry.sidecars.push(sc);
        selected.set(key, entry);
      }
    }
    for (const { workload, sidecars } of selected.values()) {
      if (sidecars.length < 2) continue;
      const names = sidecars.map((s) => s.metadata.name).sort();
      for (const sc of sidecars) {
        ctx.report(newMessage(MESSAGES.ConflictingSidecarWorkloadSelectors, sc, [names, workload.namespace, workload.name], ['metadata', 'name']));
      }
    }
  },
};

export const sidecarDefaultSelectorAnalyzer: Analyzer = {
  name: 'sidecar.DefaultSelectorAnalyzer',
  description: "Validates that there aren't multiple sidecar resources that have no selector",
  inputs: [K.Sidecar],
  analyze(ctx) {
    const byNs = new Map<string, Array<Resource<SidecarSpec>>>();
    for (const sc of ctx.list<SidecarSpec>(K.Sidecar)) {
      // Namespace-wide: no selector, or one without labels (as Istio counts them).
      if (Object.keys(stringMapOf(sc.spec.workloadSelector?.labels)).length > 0) continue;
      const list = byNs.get(sc.metadata.namespace) ?? [];
      list.push(sc);
      byNs.set(sc.metadata.namespace, list);
    }
    for (const [ns, list] of byNs) {
      if (list.length < 2) continue;
      const names = list.map((s) => s.metadata.name).sort();
      for (const sc of list) ctx.report(newMessage(MESSAGES.MultipleSidecarsWithoutWorkloadSelectors, sc, [names, ns], ['metadata', 'name']));
    }
  },
};
