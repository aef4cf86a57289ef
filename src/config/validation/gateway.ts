// Gateway rules beyond the schema: a DNS-label name, servers with hosts (namespace/host or host), a port
// with name, number and protocol, binds, and server TLS settings that match the protocol, as Istio's
// webhook checks them. Reports on the checker; never throws.

import { list, num, obj, quote, str, strings, type Checker, type Obj, type Path } from './check.ts';
import {
  checkLabels, ipProblem, isDnsLabel, isHttpProtocol, isIPAddress, isTlsProtocol, parseProtocol, partialWildcardProblem,
  portProblem, PROTOCOL_NAMES, UNIX_PREFIX, unixAddressProblem, wildcardDomainProblem,
} from './common.ts';

export function validateGateway(c: Checker, spec: Obj): void {
  const name = c.r.metadata.name;
  if (name !== '' && !isDnsLabel(name)) c.error(['metadata', 'name'], `Gateway name ${quote(name)} must be a DNS label (no dots): letters, digits and '-', at most 63`);
  checkLabels(c, ['spec', 'selector'], spec.selector);
  const servers = list(spec.servers);
  if (servers.length === 0) c.error(['spec', 'servers'], 'a Gateway needs at least one server (port, hosts)');
  const portNames = new Map<string, number>();
  servers.forEach((s, i) => {
    const p = ['spec', 'servers', i];
    const server = obj(s);
    if (!server) {
      c.error(p, 'a server must be a mapping with port and hosts');
      return;
    }
    checkServer(c, p, server);
    const port = obj(server.port);
    const portName = str(port?.name);
    if (port && portName !== undefined) {
      const first = portNames.get(portName);
      if (first !== undefined) c.error([...p, 'port', 'name'], `port name ${quote(portName)} is already used by spec.servers[${first}]: port names must be unique across servers`);
      else portNames.set(portName, i);
      if (!isHttpProtocol(str(port.protocol)) && obj(server.tls)?.httpsRedirect === true) {
        c.warn([...p, 'tls', 'httpsRedirect'], 'tls.httpsRedirect is meant for HTTP servers only');
      }
    }
  });
}

function checkServer(c: Checker, p: Path, server: Obj): void {
  const hosts = strings(server.hosts);
  if (list(server.hosts).length === 0) c.error([...p, 'hosts'], 'a server needs at least one host (e.g. "*", bookinfo.example.com or ns/bookinfo.example.com)');
  for (const [i, h] of hosts) c.check([...p, 'hosts', i], gatewayHostProblem(h));

  const port = obj(server.port);
  const bind = str(server.bind) ?? '';
  let portOk = true;
  if (!port) {
    c.error([...p, 'port'], 'a server needs a port (number, name, protocol)');
    portOk = false;
  } else {
    const protocol = str(port.protocol) ?? '';
    if (!parseProtocol(protocol)) {
      c.error([...p, 'port', 'protocol'], `protocol ${quote(protocol)} is not supported: use one of ${PROTOCOL_NAMES}`);
      portOk = false;
    }
    const number = num(port.number) ?? 0;
    if (number > 0 || !bind.startsWith(UNIX_PREFIX)) {
      if (!c.check([...p, 'port', 'number'], portProblem(number))) portOk = false;
    }
    if ((num(port.targetPort) ?? 0) > 0) c.error([...p, 'port', 'targetPort'], 'targetPort has no effect on Gateways: remove it');
    if (!str(port.name)) {
      c.error([...p, 'port', 'name'], 'a server port needs a name (e.g. http, https-443)');
      portOk = false;
    }
  }
  if (bind.startsWith(UNIX_PREFIX)) {
    c.check([...p, 'bind'], unixAddressProblem(bind.slice(UNIX_PREFIX.length)));
    if (port && (num(port.number) ?? 0) !== 0) c.error([...p, 'port', 'number'], 'a server bound to a unix domain socket must have port number 0');
  } else if (bind !== '') {
    c.check([...p, 'bind'], ipProblem(bind));
  }

  const tls = obj(server.tls);
  checkServerTls(c, [...p, 'tls'], tls);
  if (portOk && port) {
    const protocol = str(port.protocol);
    if (isTlsProtocol(protocol) && !tls) {
      c.error([...p, 'tls'], `a ${String(protocol)} server needs tls settings (mode, and credentialName or serverCertificate/privateKey)`);
    } else if (!isTlsProtocol(protocol) && tls) {
      if (isHttpProtocol(protocol)) {
        const redirectOnly = (str(tls.mode) ?? 'PASSTHROUGH') === 'PASSTHROUGH' && !str(tls.caCertificates) && !str(tls.privateKey) && !str(tls.serverCertificate);
        if (!redirectOnly) c.error([...p, 'tls'], 'a plain-text HTTP server can only set tls.httpsRedirect: use protocol HTTPS for TLS');
      } else {
        c.error([...p, 'tls'], `tls settings need an HTTPS or TLS port (this server's protocol is ${String(protocol)})`);
      }
    }
  }
}

/** A server host: `host` or `namespace/host` (namespace `*`, `.` or a name); no short names; IPs allowed. */
function gatewayHostProblem(host: string): string | undefined {
  const slash = host.indexOf('/');
  let name = host;
  if (slash >= 0) {
    const ns = host.slice(0, slash);
    name = host.slice(slash + 1);
    if (ns === '' || name === '') return `host ${quote(host)} needs both a namespace and a dnsName in namespace/dnsName`;
    if (ns !== '*' && ns !== '.' && !isDnsLabel(ns)) return `host ${quote(host)} has an invalid namespace ${quote(ns)}: use *, . or a namespace name`;
  }
  if (name !== '*' && !name.includes('.')) return `host ${quote(host)} is a short name: gateways need a full name (e.g. bookinfo.example.com) or *`;
  if (wildcardDomainProblem(name) !== undefined && !isIPAddress(name)) return wildcardDomainProblem(name);
  return partialWildcardProblem(name);
}

function checkServerTls(c: Checker, p: Path, tls: Obj | undefined): void {
  if (!tls) return;
  const mode = str(tls.mode) ?? 'PASSTHROUGH';
  const has = (f: string): boolean => Boolean(str(tls[f]));
  const certs = list(tls.tlsCertificates).length > 0;
  const names = list(tls.credentialNames).length > 0;
  if (mode === 'ISTIO_MUTUAL') {
    for (const f of ['serverCertificate', 'privateKey', 'caCertificates', 'credentialName']) {
      if (has(f)) c.error([...p, f], `ISTIO_MUTUAL uses the mesh's certificates: remove ${f}`);
    }
    if (certs) c.error([...p, 'tlsCertificates'], "ISTIO_MUTUAL uses the mesh's certificates: remove tlsCertificates");
    if (names) c.error([...p, 'credentialNames'], "ISTIO_MUTUAL uses the mesh's certificates: remove credentialNames");
    return;
  }
  if ((mode === 'PASSTHROUGH' || mode === 'AUTO_PASSTHROUGH') && (has('serverCertificate') || has('privateKey') || has('caCertificates') || has('credentialName') || certs || names)) {
    c.warn(p, `${mode} does not terminate TLS: the certificates given are ignored`);
  }
  const sources = [has('serverCertificate') && has('privateKey'), has('credentialName'), names, certs].filter(Boolean).length;
  if (sources > 1) c.error(p, 'give only one of credentialName, credentialNames, serverCertificate/privateKey or tlsCertificates');
  const terminating = mode === 'SIMPLE' || mode === 'MUTUAL' || mode === 'OPTIONAL_MUTUAL';
  if (terminating && (has('credentialName') || names)) return;
  if (terminating) {
    const label = mode === 'SIMPLE' ? 'SIMPLE' : 'MUTUAL';
    if (label === 'MUTUAL' && !has('caCertificates')) c.error([...p, 'caCertificates'], 'MUTUAL TLS needs caCertificates (the client CA bundle), or a credentialName');
    const pairs = certs ? list(tls.tlsCertificates).map((x, i) => ({ o: obj(x) ?? {}, path: [...p, 'tlsCertificates', i] })) : [{ o: tls, path: [...p] }];
    for (const { o, path } of pairs) {
      if (!str(o.serverCertificate)) c.error([...path, 'serverCertificate'], `${label} TLS needs serverCertificate and privateKey, or a credentialName`);
      if (!str(o.privateKey)) c.error([...path, 'privateKey'], `${label} TLS needs privateKey and serverCertificate, or a credentialName`);
    }
  }
  if (has('caCrl')) {
    if (has('credentialName')) c.error([...p, 'caCrl'], 'caCrl cannot be used with credentialName: put the CRL in the credential');
    if (mode === 'SIMPLE') c.error([...p, 'caCrl'], 'caCrl is not supported with SIMPLE TLS');
  }
}
