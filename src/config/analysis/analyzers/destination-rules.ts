// virtualservice.DestinationRuleAnalyzer: a destination that names a subset needs a DestinationRule for
// that host defining the subset (IST0101 "host+subset in destinationrule"). Reports; never throws.

import { hostMatches, toFqdn } from '../../../registry/index.ts';
import type { DestinationRuleSpec, VirtualServiceSpec } from '../../types.ts';
import { K, arrayOf, type Analyzer } from '../analyzer.ts';
import { newMessage } from '../message.ts';
import { MESSAGES } from '../messages.ts';
import { mirrorDestinations, routeDestinations } from './vs-destinations.ts';

interface RuleHost {
  /** FQDN, or a wildcard host as written. */
  host: string;
  subsets: Set<string>;
}

export const destinationRuleAnalyzer: Analyzer = {
  name: 'virtualservice.DestinationRuleAnalyzer',
  description: 'Checks the destination rules associated with each virtual service',
  inputs: [K.VirtualService, K.DestinationRule],
  analyze(ctx) {
    const rules: RuleHost[] = [];
    for (const dr of ctx.list<DestinationRuleSpec>(K.DestinationRule)) {
      if (typeof dr.spec.host !== 'string' || dr.spec.host === '') continue;
      const subsets = new Set(arrayOf(dr.spec.subsets).flatMap((s) => (typeof s?.name === 'string' ? [s.name] : [])));
      rules.push({ host: toFqdn(dr.spec.host, dr.metadata.namespace, ctx.domain), subsets });
    }
    // Like pilot, the DestinationRules for the exact host win; wildcard ones apply only when there are none.
    const subsetsFor = (fqdn: string): Set<string> => {
      const exact = rules.filter((r) => r.host === fqdn);
      const chosen = exact.length > 0 ? exact : rules.filter((r) => r.host.startsWith('*') && hostMatches(r.host, fqdn));
      return new Set(chosen.flatMap((r) => [...r.subsets]));
    };
    for (const vs of ctx.list<VirtualServiceSpec>(K.VirtualService)) {
      for (const d of [...routeDestinations(vs), ...mirrorDestinations(vs)]) {
        const host = d.destination.host;
        const subset = d.destination.subset;
        if (typeof host !== 'string' || host === '' || typeof subset !== 'string' || subset === '') continue;
        if (subsetsFor(toFqdn(host, vs.metadata.namespace, ctx.domain)).has(subset)) continue;
        const reftype = d.mirror ? 'mirror+subset in destinationrule' : 'host+subset in destinationrule';
        ctx.report(newMessage(MESSAGES.ReferencedResourceNotFound, vs, [reftype, `${host}+${subset}`], d.path));
      }
    }
  },
};
