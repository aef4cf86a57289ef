// Sidecar rules beyond the schema: egress hosts in namespace/dnsName form, one catch-all egress
// listener (last), unique ports, binds and unix sockets, ingress ports and defaultEndpoint, ingress TLS,
// connection pools and outboundTrafficPolicy, as Istio's webhook checks them. Never throws.

import { isSet, list, num, obj, quote, str, strings, type Checker, type Obj, type Path } from './check.ts';
import {
  checkSelector, fqdnProblem, ipProblem, isDnsLabel, isHttpProtocol, isIPAddress, isTlsProtocol, partialWildcardProblem, portProblem,
  protocolProblem, UNIX_PREFIX, unixAddressProblem, wildcardDomainProblem,
} from './common.ts';
import { checkConnectionPool } from './destination-rule.ts';
import { checkDestination } from './virtual-service.ts';

const HOST_FORM = 'egress hosts take the form namespace/dnsName: ./* (this namespace), istio-system/*, */*, ns/reviews.ns.svc.cluster.local, */*.example.com';

export function validateSidecar(c: Checker, spec: Obj): void {
  checkSelector(c, ['spec', 'workloadSelector'], spec.workloadSelector, 'labels', 'Sidecar');
  const ingress = list(spec.ingress);
  const egress = list(spec.egress);
  if (egress.length === 0 && ingress.length === 0 && !isSet(spec, 'outboundTrafficPolicy') && !isSet(spec, 'inboundConnectionPool')) {
    c.error(['spec', 'egress'], `a Sidecar must configure something: usually egress with hosts (${HOST_FORM})`);
    return;
  }

  const ingressPorts = new Set<number>();
  ingress.forEach((item, i) => {
    const p = ['spec', 'ingress', i];
    const l = obj(item);
    if (!l) return;
    const port = obj(l.port);
    if (!port) {
      c.error([...p, 'port'], 'an ingress listener needs a port (number, protocol, name)');
      return;
    }
    if (num(port.targetPort) !== undefined && (num(port.targetPort) ?? 0) > 0) c.error([...p, 'port', 'targetPort'], 'targetPort has no effect on Sidecars: remove it');
    checkListenerPort(c, [...p, 'port'], port);
    if (!isSet(port, 'number')) c.error([...p, 'port', 'number'], 'an ingress listener port needs a number (1..65535)');
    else c.check([...p, 'port', 'number'], portProblem(port.number));
    const bind = str(l.bind) ?? '';
    if (bind !== '') c.check([...p, 'bind'], bindProblem(bind));
    const number = num(port.number);
    if (number !== undefined) {
      if (ingressPorts.has(number)) c.error([...p, 'port', 'number'], `port ${number} is used by another ingress listener: ports must be unique`);
      ingressPorts.add(number);
    }
    const endpoint = str(l.defaultEndpoint) ?? '';
    if (endpoint !== '') c.check([...p, 'defaultEndpoint'], defaultEndpointProblem(endpoint));
    checkIngressTls(c, [...p, 'tls'], obj(l.tls), str(port.protocol));
    checkConnectionPool(c, [...p, 'connectionPool'], l.connectionPool);
    if (isSet(obj(l.connectionPool), 'http') && !isHttpProtocol(str(port.protocol))) {
      c.warn([...p, 'connectionPool', 'http'], `HTTP connection pool settings on port ${number ?? '?'} whose protocol is not HTTP (${str(port.protocol) ?? 'unset'}): only the tcp settings apply`);
    }
  });
  checkConnectionPool(c, ['spec', 'inboundConnectionPool'], spec.inboundConnectionPool);

  const egressPorts = new Set<number>();
  const sockets = new Set<string>();
  let portless = false;
  egress.forEach((item, i) => {
    const p = ['spec', 'egress', i];
    const l = obj(item);
    if (!l) return;
    const port = obj(l.port);
    if (!port) {
      if (portless) c.error(p, 'only one egress listener may omit port (the catch-all listener)');
      else if (i !== egress.length - 1) c.error(p, 'the egress listener without a port (the catch-all) must be the last one in the list');
      portless = true;
      if (str(l.bind)) c.warn([...p, 'bind'], 'bind has no effect on an egress listener without a port: add port (number, protocol, name)');
    } else {
      if ((num(port.targetPort) ?? 0) > 0) c.error([...p, 'port', 'targetPort'], 'targetPort has no effect on Sidecars: remove it');
      checkListenerPort(c, [...p, 'port'], port);
      const bind = str(l.bind) ?? '';
      const number = num(port.number) ?? 0;
      if (number === 0) {
        if (!bind.startsWith(UNIX_PREFIX)) c.error([...p, 'bind'], 'an egress listener with port 0 must bind a unix domain socket (bind: unix:///path)');
        else c.check([...p, 'bind'], unixAddressProblem(bind.slice(UNIX_PREFIX.length)));
        const mode = str(l.captureMode) ?? 'DEFAULT';
        if (mode !== 'DEFAULT' && mode !== 'NONE') c.error([...p, 'captureMode'], 'captureMode must be DEFAULT or NONE for unix domain socket listeners');
        if (sockets.has(bind)) c.error([...p, 'bind'], `unix socket ${bind} is used by another egress listener: sockets must be unique`);
        sockets.add(bind);
      } else {
        c.check([...p, 'port', 'number'], portProblem(number));
        if (bind !== '') c.check([...p, 'bind'], bindProblem(bind));
        if (egressPorts.has(number)) c.error([...p, 'port', 'number'], `port ${number} is used by another egress listener: ports must be unique`);
        egressPorts.add(number);
      }
    }
    checkEgressHosts(c, [...p, 'hosts'], l.hosts);
  });
  checkOutboundTrafficPolicy(c, ['spec', 'outboundTrafficPolicy'], obj(spec.outboundTrafficPolicy));
}

function checkListenerPort(c: Checker, p: Path, port: Obj): void {
  const name = str(port.name);
  if (name !== undefined && name !== '' && !isDnsLabel(name)) c.error([...p, 'name'], `port name ${quote(name)} is not valid: it must be a DNS label (e.g. http, http-8080)`);
  c.check([...p, 'protocol'], protocolProblem(port.protocol));
}

/** A listener bind: an IP address, or (egress) unix:///path. */
function bindProblem(bind: string): string | undefined {
  if (bind.startsWith(UNIX_PREFIX)) return `bind ${quote(bind)}: a unix socket needs port number 0`;
  return ipProblem(bind) === undefined ? undefined : `bind ${quote(bind)} is not a valid IP address (e.g. 127.0.0.1 or 0.0.0.0)`;
}

const ENDPOINT_FORM = 'defaultEndpoint must be 127.0.0.1:PORT, 0.0.0.0:PORT, [::1]:PORT, [::]:PORT or unix:///path';

function defaultEndpointProblem(endpoint: string): string | undefined {
  if (endpoint.startsWith(UNIX_PREFIX)) return unixAddressProblem(endpoint.slice(UNIX_PREFIX.length));
  const m = /^(?:\[([^\]]*)\]|([^:[\]]*)):([^:]*)$/.exec(endpoint);
  if (!m) return `${ENDPOINT_FORM} (got ${quote(endpoint)})`;
  const host = m[1] ?? m[2] ?? '';
  const port = m[3] ?? '';
  if (host !== '' && !['127.0.0.1', '0.0.0.0', '::1', '::'].includes(host)) return `${ENDPOINT_FORM} (got ${quote(endpoint)})`;
  if (!/^[0-9]+$/.test(port)) return `defaultEndpoint port ${quote(port)} is not a number: ${ENDPOINT_FORM}`;
  return portProblem(Number(port), 'defaultEndpoint port');
}

function checkIngressTls(c: Checker, p: Path, tls: Obj | undefined, protocol: string | undefined): void {
  if (!tls) return;
  if (list(tls.subjectAltNames).length > 0) c.error([...p, 'subjectAltNames'], 'subjectAltNames is not supported in Sidecar ingress tls');
  if (tls.httpsRedirect === true) c.error([...p, 'httpsRedirect'], 'httpsRedirect is not supported in Sidecar ingress tls');
  if (str(tls.credentialName)) c.error([...p, 'credentialName'], 'credentialName is not supported in Sidecar ingress tls: give serverCertificate and privateKey');
  if (list(tls.credentialNames).length > 0) c.error([...p, 'credentialNames'], 'credentialNames is not supported in Sidecar ingress tls');
  if (list(tls.tlsCertificates).length > 0) c.error([...p, 'tlsCertificates'], 'tlsCertificates is not supported in Sidecar ingress tls');
  const mode = str(tls.mode) ?? 'PASSTHROUGH';
  if (mode === 'ISTIO_MUTUAL' || mode === 'AUTO_PASSTHROUGH') c.error([...p, 'mode'], `tls mode ${mode} cannot be used in Sidecar ingress tls: use SIMPLE or MUTUAL`);
  if (!isTlsProtocol(protocol)) c.error(p, `tls settings need an HTTPS or TLS port (this port's protocol is ${protocol ?? 'unset'})`);
  if (mode === 'SIMPLE' || mode === 'MUTUAL' || mode === 'OPTIONAL_MUTUAL') {
    const label = mode === 'SIMPLE' ? 'SIMPLE' : 'MUTUAL';
    if (!str(tls.serverCertificate)) c.error([...p, 'serverCertificate'], `${label} TLS needs serverCertificate`);
    if (!str(tls.privateKey)) c.error([...p, 'privateKey'], `${label} TLS needs privateKey`);
    if (label === 'MUTUAL' && !str(tls.caCertificates)) c.error([...p, 'caCertificates'], 'MUTUAL TLS needs caCertificates (the client CA bundle)');
  }
}

/** `namespace/dnsName` with namespace `.`, `*`, `~`-prefixed or a name, and dnsName `*`, an FQDN or `*.suffix`. */
function checkEgressHosts(c: Checker, p: Path, hosts: unknown): void {
  const items = strings(hosts);
  if (list(hosts).length === 0) {
    c.error(p, `an egress listener needs at least one host; ${HOST_FORM}`);
    return;
  }
  const byNamespace = new Map<string, Set<string>>();
  for (const [i, h] of items) {
    const hp = [...p, i];
    const slash = h.indexOf('/');
    if (slash < 0) {
      c.error(hp, `host ${quote(h)} has no namespace: ${HOST_FORM}`);
      continue;
    }
    const ns = h.slice(0, slash);
    const name = h.slice(slash + 1);
    if (ns === '' || name === '') {
      c.error(hp, `host ${quote(h)} needs both a namespace and a dnsName: ${HOST_FORM}`);
      continue;
    }
    const bare = ns.replace(/^~/, '');
    if (bare !== '' && bare !== '*' && bare !== '.' && !isDnsLabel(bare)) {
      c.error(hp, `host ${quote(h)} has an invalid namespace ${quote(ns)}: use ., *, ~ or a namespace name`);
      continue;
    }
    if (name !== '*' && !name.includes('.')) {
      c.error(hp, `host ${quote(h)}: short names are not allowed after the slash; write the full name (e.g. ${ns}/${name}.${ns === '.' || ns === '*' ? 'ns' : ns}.svc.cluster.local) or ${ns}/*`);
      continue;
    }
    const problem = wildcardDomainProblem(name) ?? partialWildcardProblem(name);
    if (problem !== undefined) {
      c.error(hp, problem);
      continue;
    }
    if (ns.startsWith('~')) continue;
    const key = ns === '.' ? c.r.metadata.namespace : ns;
    const names = byNamespace.get(key) ?? new Set<string>();
    if (names.has(name) || names.has('*') || (name === '*' && names.size > 0)) c.warn(hp, `duplicate egress host ${quote(h)}: an earlier host already selects it`);
    names.add(name);
    byNamespace.set(key, names);
  }
  if (byNamespace.get('*')?.has('*') && byNamespace.size > 1) c.warn(p, '*/* selects every service: the other hosts add nothing');
}

function checkOutboundTrafficPolicy(c: Checker, p: Path, tp: Obj | undefined): void {
  if (!tp) return;
  const mode = str(tp.mode) ?? 'REGISTRY_ONLY';
  if (mode === 'ALLOW_ANY_DYNAMIC_DNS') {
    c.error([...p, 'mode'], 'ALLOW_ANY_DYNAMIC_DNS can be set only in the mesh config, not in a Sidecar: use ALLOW_ANY or REGISTRY_ONLY');
    return;
  }
  const proxy = obj(tp.egressProxy);
  if (!proxy) return;
  if (mode !== 'ALLOW_ANY') {
    c.error([...p, 'egressProxy'], 'egressProxy can be set only with mode ALLOW_ANY');
    return;
  }
  const host = str(proxy.host) ?? '';
  const hostProblem = fqdnProblem(host);
  if (hostProblem !== undefined && !isIPAddress(host)) c.error([...p, 'egressProxy', 'host'], `egressProxy host: ${hostProblem}`);
  if (!isSet(proxy, 'port')) c.error([...p, 'egressProxy', 'port'], 'egressProxy needs a port (port.number)');
  else if (hostProblem === undefined) checkDestination(c, [...p, 'egressProxy'], proxy);
}
