// destinationrule.SubsetSelectPodAnalyzer: a DestinationRule's host must match a service in the mesh
// (IST0174), and each subset's labels must select at least one of that service's endpoints (IST0173).
// Reports; never throws.

import { hostMatches, type MeshService, type Registry } from '../../../registry/index.ts';
import type { DestinationRuleSpec } from '../../types.ts';
import { K, arrayOf, labelsMatch, stringMapOf, type Analyzer } from '../analyzer.ts';
import { newMessage } from '../message.ts';
import { MESSAGES } from '../messages.ts';

/** Labels of every endpoint of `svc`, on any port. */
function endpointLabels(reg: Registry, svc: MeshService): Array<Record<string, string>> {
  const out: Array<Record<string, string>> = [];
  for (const p of svc.ports) for (const ep of reg.endpoints(svc, p.port)) out.push(ep.labels);
  if (svc.ports.length === 0 && svc.selector) {
    for (const w of reg.workloadsMatching(svc.namespace, svc.selector)) out.push(w.labels);
  }
  return out;
}

export const subsetSelectPodAnalyzer: Analyzer = {
  name: 'destinationrule.SubsetSelectPodAnalyzer',
  description: 'Checks if pods are selected by subsets in destination rules, and that destination rule hosts match a service',
  inputs: [K.DestinationRule],
  registry: true,
  analyze(ctx) {
    const reg = ctx.registry;
    for (const dr of ctx.list<DestinationRuleSpec>(K.DestinationRule)) {
      const host = dr.spec.host;
      if (typeof host !== 'string' || host === '') continue; // schema validation reports it
      if (host.startsWith('*')) {
        // A wildcard host (e.g. '*.local' for mesh-wide TLS settings) is fine when it covers some service.
        if (!reg.services.some((s) => hostMatches(host, s.hostname))) {
          ctx.report(newMessage(MESSAGES.UnknownDestinationRuleHost, dr, [host], ['spec', 'host']));
        }
        continue;
      }
      const svc = reg.lookupHost(host, dr.metadata.namespace)[0];
      if (!svc) {
        ctx.report(newMessage(MESSAGES.UnknownDestinationRuleHost, dr, [host], ['spec', 'host']));
        continue;
      }
      const subsets = arrayOf(dr.spec.subsets);
      if (subsets.length === 0) continue;
      const labelSets = endpointLabels(reg, svc);
      subsets.forEach((subset, i) => {
        if (typeof subset?.name !== 'string') return;
        const sel = stringMapOf(subset.labels);
        if (!labelSets.some((l) => labelsMatch(sel, l))) {
          ctx.report(newMessage(MESSAGES.DestinationRuleSubsetNotSelectPods, dr, [subset.name], ['spec', 'subsets', i, 'name']));
        }
      });
    }
  },
};
