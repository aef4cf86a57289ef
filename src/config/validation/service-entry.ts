// ServiceEntry rules beyond the schema: hosts, addresses, ports (unique names and numbers, protocols),
// and what each resolution (NONE, STATIC, DNS, DNS_ROUND_ROBIN, DYNAMIC_DNS) allows of endpoints and
// workloadSelector, as Istio's webhook checks them. Reports on the checker; never throws.

import { isSet, list, num, obj, quote, str, strings, type Checker, type Obj } from './check.ts';
import {
  checkExportTo, checkSelector, fqdnProblem, ipOrCidrProblem, isDnsLabel, isHttpProtocol, isTlsProtocol,
  parseProtocol, partialWildcardProblem, portProblem, protocolProblem, wildcardDomainProblem,
} from './common.ts';
import { checkWorkloadEntry } from './workload-entry.ts';

const RESOLUTIONS = ['NONE', 'STATIC', 'DNS', 'DNS_ROUND_ROBIN', 'DYNAMIC_DNS'];

export function validateServiceEntry(c: Checker, spec: Obj): void {
  const resolution = str(spec.resolution) ?? 'NONE';
  const hosts = strings(spec.hosts);
  const endpoints = list(spec.endpoints);
  const hasSelector = isSet(spec, 'workloadSelector');

  checkSelector(c, ['spec', 'workloadSelector'], spec.workloadSelector, 'labels', 'ServiceEntry');
  if (hasSelector && isSet(spec, 'endpoints')) c.error(['spec', 'endpoints'], 'a ServiceEntry takes either endpoints or workloadSelector, not both');

  if (list(spec.hosts).length === 0) c.error(['spec', 'hosts'], 'a ServiceEntry needs at least one host (e.g. api.example.com or *.example.com)');
  for (const [i, h] of hosts) {
    if (h === '*') {
      c.error(['spec', 'hosts', i], 'host "*" is not allowed in a ServiceEntry: name the hosts, or use a wildcard such as *.example.com');
      continue;
    }
    if (c.check(['spec', 'hosts', i], wildcardDomainProblem(h)) && resolution !== 'DYNAMIC_DNS') {
      const partial = partialWildcardProblem(h);
      if (partial) c.warn(['spec', 'hosts', i], partial);
    }
  }

  let cidr = false;
  for (const [i, a] of strings(spec.addresses)) {
    cidr ||= a.includes('/');
    c.check(['spec', 'addresses', i], ipOrCidrProblem(a));
  }
  if (cidr && resolution !== 'NONE' && resolution !== 'STATIC') {
    c.error(['spec', 'addresses'], `CIDR addresses are allowed only with resolution NONE or STATIC (this one is ${resolution})`);
  }

  const portNames = new Set<string>();
  const portNumbers = new Set<number>();
  list(spec.ports).forEach((port, i) => {
    const p = ['spec', 'ports', i];
    const po = obj(port);
    if (!po) return;
    const name = str(po.name) ?? '';
    const number = num(po.number);
    if (portNames.has(name)) c.error([...p, 'name'], `port name ${quote(name)} is already used by another port: port names must be unique`);
    portNames.add(name);
    if (number !== undefined) {
      if (portNumbers.has(number)) c.error([...p, 'number'], `port ${number} is already declared: port numbers must be unique`);
      portNumbers.add(number);
    }
    if (!isDnsLabel(name)) c.error([...p, 'name'], `port name ${quote(name)} is not valid: it must be a DNS label (e.g. http, https-443)`);
    c.check([...p, 'protocol'], protocolProblem(po.protocol));
    c.check([...p, 'number'], portProblem(number));
    const target = num(po.targetPort);
    if (target !== undefined && target !== 0) c.check([...p, 'targetPort'], portProblem(target, 'targetPort'));
  });

  switch (resolution) {
    case 'NONE':
      if (endpoints.length > 0) c.error(['spec', 'endpoints'], 'resolution NONE forwards to the address the caller dialled, so endpoints are not allowed: use resolution STATIC or DNS');
      if (hasSelector) c.warn(['spec', 'workloadSelector'], 'workloadSelector has no effect with resolution NONE: use resolution STATIC');
      break;
    case 'STATIC':
      if (endpoints.length === 0 && !hasSelector) c.warn(['spec', 'resolution'], 'resolution STATIC with neither endpoints nor workloadSelector: this service has no endpoints');
      endpoints.forEach((e, i) => {
        const eo = obj(e);
        if (eo) checkWorkloadEntry(c, ['spec', 'endpoints', i], eo, { servicePorts: portNames, allowHostname: false });
      });
      break;
    case 'DNS':
    case 'DNS_ROUND_ROBIN':
      if (endpoints.length === 0) {
        for (const [i, h] of hosts) {
          if (h !== '*' && fqdnProblem(h) !== undefined && wildcardDomainProblem(h) === undefined) {
            c.error(['spec', 'hosts', i], `host ${quote(h)} cannot be resolved: resolution ${resolution} without endpoints looks up the hosts themselves, so they cannot be wildcards (add endpoints, or use resolution NONE or DYNAMIC_DNS)`);
          }
        }
      }
      if (resolution === 'DNS_ROUND_ROBIN' && endpoints.length > 1) c.error(['spec', 'endpoints'], `resolution DNS_ROUND_ROBIN takes at most one endpoint (got ${endpoints.length})`);
      endpoints.forEach((e, i) => {
        const eo = obj(e);
        if (eo) checkWorkloadEntry(c, ['spec', 'endpoints', i], eo, { servicePorts: portNames, allowHostname: true });
      });
      if (strings(spec.addresses).length > 0 && hosts.length > 1 && list(spec.ports).some((p) => isTcpLike(str(obj(p)?.protocol)))) {
        c.warn(['spec', 'hosts'], 'a ServiceEntry with addresses and a TCP port should have only one host: TCP traffic cannot tell the hosts apart');
      }
      break;
    case 'DYNAMIC_DNS':
      for (const [i, h] of hosts) {
        if (!h.startsWith('*')) c.error(['spec', 'hosts', i], `host ${quote(h)} must be a wildcard (e.g. *.example.com) for resolution DYNAMIC_DNS`);
      }
      if (strings(spec.addresses).length > 0) c.error(['spec', 'addresses'], 'addresses are not allowed with resolution DYNAMIC_DNS: routes are built from the hosts');
      if (endpoints.length > 0) c.error(['spec', 'endpoints'], 'endpoints are not allowed with resolution DYNAMIC_DNS: the destination comes from the requested host');
      list(spec.ports).forEach((p, i) => {
        const proto = parseProtocol(str(obj(p)?.protocol) ?? '');
        if (proto !== 'HTTP' && proto !== 'TLS' && proto !== 'GRPC' && proto !== 'HTTP2') {
          c.error(['spec', 'ports', i, 'protocol'], 'resolution DYNAMIC_DNS supports only HTTP, TLS, GRPC and HTTP2 ports');
        }
      });
      break;
    default:
      c.error(['spec', 'resolution'], `unknown resolution ${quote(resolution)}: use one of ${RESOLUTIONS.join(', ')}`);
  }

  if (resolution !== 'NONE' && hosts.length > 1) {
    const i = list(spec.ports).findIndex((p) => {
      const proto = str(obj(p)?.protocol);
      return !isHttpProtocol(proto) && !isTlsProtocol(proto);
    });
    if (i >= 0) {
      c.error(['spec', 'ports', i, 'protocol'], `several hosts share this non-HTTP, non-TLS port, so traffic cannot tell them apart: use one host per ServiceEntry, an HTTP/TLS protocol, or resolution NONE`);
    }
  }
  checkExportTo(c, ['spec', 'exportTo'], c.r.metadata.namespace, spec.exportTo, { serviceEntry: true });
}

function isTcpLike(protocol: string | undefined): boolean {
  return ['TCP', 'HTTPS', 'TLS', 'Mongo', 'Redis', 'MySQL'].includes(parseProtocol(protocol ?? '') ?? '');
}
