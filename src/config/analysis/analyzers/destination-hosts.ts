// virtualservice.DestinationHostAnalyzer: every route/mirror destination host must name a Service or
// ServiceEntry visible from the VirtualService (IST0101), with a port it exposes, and a port must be
// given when the service has several (IST0112). Reports; never throws.

import type { MeshService, Registry } from '../../../registry/index.ts';
import type { Resource } from '../../resource.ts';
import type { VirtualServiceSpec } from '../../types.ts';
import { K, arrayOf, type Analyzer } from '../analyzer.ts';
import { newMessage } from '../message.ts';
import { MESSAGES } from '../messages.ts';
import { mirrorDestinations, routeDestinations } from './vs-destinations.ts';

/**
 * The service a destination host names, seen from a VirtualService in `ns` exported to `exportTo`:
 * short names resolve in `ns`; ServiceEntry wildcard hosts count. A service exported to all namespaces
 * is always visible; otherwise it must be exported to `ns` (or to one of the VirtualService's exportTo
 * namespaces when it has some), as Istio's analyzer scopes hosts.
 */
export function findDestinationService(reg: Registry, host: string, ns: string, exportTo: readonly string[]): MeshService | undefined {
  const scopes = exportTo.length === 0 ? [ns] : exportTo.map((e) => (e === '.' ? ns : e)).filter((e) => e !== '*');
  return reg.lookupHost(host, ns).find((s) => s.exportTo.includes('*') || scopes.some((n) => reg.isExportedTo(s, n)));
}

export const destinationHostAnalyzer: Analyzer = {
  name: 'virtualservice.DestinationHostAnalyzer',
  description: 'Checks the destination hosts associated with each virtual service',
  inputs: [K.VirtualService],
  registry: true,
  analyze(ctx) {
    for (const vs of ctx.list<VirtualServiceSpec>(K.VirtualService)) {
      const exportTo = arrayOf(vs.spec.exportTo).filter((e): e is string => typeof e === 'string');
      for (const d of [...routeDestinations(vs), ...mirrorDestinations(vs)]) {
        const host = typeof d.destination.host === 'string' ? d.destination.host : '';
        if (host === '') continue; // schema validation reports a missing host
        const svc = findDestinationService(ctx.registry, host, vs.metadata.namespace, exportTo);
        if (!svc) {
          ctx.report(newMessage(MESSAGES.ReferencedResourceNotFound, vs, [d.mirror ? 'mirror host' : 'host', host], d.path));
          continue;
        }
        checkPorts(vs, host, d.destination.port?.number, d.path, svc, ctx.report.bind(ctx));
      }
    }
  },
};

function checkPorts(
  vs: Resource<VirtualServiceSpec>,
  host: string,
  port: number | undefined,
  path: readonly (string | number)[],
  svc: MeshService,
  report: (m: ReturnType<typeof newMessage>) => void,
): void {
  if (port === undefined) {
    if (svc.ports.length > 1) {
      report(newMessage(MESSAGES.VirtualServiceDestinationPortSelectorRequired, vs, [host, svc.ports.map((p) => p.port)], path));
    }
    return;
  }
  if (!svc.ports.some((p) => p.port === port)) {
    report(newMessage(MESSAGES.ReferencedResourceNotFound, vs, ['host:port', `${host}:${port}`], path));
  }
}
