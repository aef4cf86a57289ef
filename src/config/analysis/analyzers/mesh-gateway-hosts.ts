// virtualservice.ConflictingMeshGatewayHostsAnalyzer: VirtualServices bound to the mesh gateway that
// define the same host, in the same export scope, conflict (IST0109). Reports; never throws.

import { toFqdn } from '../../../registry/index.ts';
import type { Resource } from '../../resource.ts';
import type { VirtualServiceSpec } from '../../types.ts';
import { K, arrayOf, type Analyzer } from '../analyzer.ts';
import { newMessage } from '../message.ts';
import { MESSAGES } from '../messages.ts';

export const meshGatewayHostsAnalyzer: Analyzer = {
  name: 'virtualservice.ConflictingMeshGatewayHostsAnalyzer',
  description: 'Checks if multiple virtual services associated with the mesh gateway have conflicting hosts',
  inputs: [K.VirtualService],
  analyze(ctx) {
    // Key: `<scope>/<fqdn>` as istioctl prints it; scope '*' for exported to all, else a namespace.
    const byHost = new Map<string, Array<Resource<VirtualServiceSpec>>>();
    for (const vs of ctx.list<VirtualServiceSpec>(K.VirtualService)) {
      const gateways = arrayOf(vs.spec.gateways);
      if (gateways.length > 0 && !gateways.includes('mesh')) continue; // no gateways means mesh
      const ns = vs.metadata.namespace;
      const exportTo = arrayOf(vs.spec.exportTo);
      const scopes = exportTo.length === 0 || exportTo.includes('*') ? ['*'] : [...new Set(exportTo.map((e) => (e === '.' ? ns : e)))];
      for (const scope of scopes) {
        for (const h of new Set(arrayOf(vs.spec.hosts))) {
          if (typeof h !== 'string') continue;
          const key = `${scope}/${toFqdn(h, ns, ctx.domain)}`;
          const list = byHost.get(key) ?? [];
          list.push(vs);
          byHost.set(key, list);
        }
      }
    }
    for (const [key, list] of byHost) {
      if (list.length < 2) continue;
      const names = list.map((r) => `${r.metadata.namespace}/${r.metadata.name}`).join(',');
      for (const vs of list) ctx.report(newMessage(MESSAGES.ConflictingMeshGatewayVirtualServiceHosts, vs, [names, key], ['metadata', 'name']));
    }
  },
};
