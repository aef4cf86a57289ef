// service.PortNameAnalyzer: Service ports whose protocol Istio cannot tell from the name or appProtocol
// (IST0118); ExternalName services with such ports or a port named 'tcp' (IST0150). Reports; never throws.

import { protocolForPort } from '../../../registry/index.ts';
import type { KubeServicePort, KubeServiceSpec } from '../../types.ts';
import { K, arrayOf, type Analyzer } from '../analyzer.ts';
import { newMessage } from '../message.ts';
import { MESSAGES } from '../messages.ts';

/** Ports Istio treats as TCP when the name says nothing (SMTP, DNS, MySQL, MongoDB). */
const WELL_KNOWN_TCP_PORTS = new Set([25, 53, 3306, 27017]);

/** Istio's rule: UDP, else appProtocol (replacing the name), else the name's prefix; some ports are TCP. */
export function portProtocolUnknown(p: KubeServicePort): boolean {
  const name = typeof p.name === 'string' ? p.name : '';
  const appProtocol = typeof p.appProtocol === 'string' ? p.appProtocol : undefined;
  const protocol = typeof p.protocol === 'string' ? p.protocol : undefined;
  if (protocolForPort({ name, appProtocol, protocol }) !== 'UNSUPPORTED') return false;
  return !(typeof p.port === 'number' && WELL_KNOWN_TCP_PORTS.has(p.port));
}

const GATEWAY_MANAGED = 'gateway.istio.io/managed';
const MANAGED_VALUES = new Set(['istio.io-gateway-controller', 'istio.io-mesh-controller', 'istio.io-eastwest-controller']);

export const portNameAnalyzer: Analyzer = {
  name: 'service.PortNameAnalyzer',
  description: 'Checks the port names associated with each service',
  inputs: [K.Service],
  analyze(ctx) {
    for (const svc of ctx.list<KubeServiceSpec>(K.Service)) {
      const labels = svc.metadata.labels;
      if (labels.istio !== undefined || labels.release === 'istio') continue; // Istio's own control plane
      if (MANAGED_VALUES.has(labels[GATEWAY_MANAGED] ?? '')) continue;
      const external = svc.spec.type === 'ExternalName';
      arrayOf(svc.spec.ports).forEach((p, i) => {
        if (typeof p !== 'object' || p === null) return;
        if (!portProtocolUnknown(p) && !(external && p.name === 'tcp')) return;
        const path = ['spec', 'ports', i, 'port'];
        if (external) {
          ctx.report(newMessage(MESSAGES.ExternalNameServiceTypeInvalidPortName, svc, [], path));
          return;
        }
        // Kubernetes defaults targetPort to the port.
        const target = p.targetPort ?? p.port ?? 0;
        ctx.report(newMessage(MESSAGES.PortNameIsNotUnderNamingConvention, svc, [p.name ?? '', p.port ?? 0, String(target)], path));
      });
    }
  },
};
