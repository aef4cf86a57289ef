import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { assertError, assertNoErrors, assertOneError, errors, validate } from './testing.ts';

const server = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({ port: { number: 80, name: 'http', protocol: 'HTTP' }, hosts: ['*'], ...extra });
const gw = (servers: unknown[], name = 'bookinfo-gateway'): ReturnType<typeof validate> => validate('Gateway', { selector: { istio: 'ingressgateway' }, servers }, { name });

describe('Gateway semantic rules', () => {
  it('accepts the Bookinfo gateway and a TLS server with a credential', () => {
    assertNoErrors(gw([server()]));
    assertNoErrors(gw([server(), server({ port: { number: 443, name: 'https', protocol: 'HTTPS' }, hosts: ['bookinfo/bookinfo.example.com'], tls: { mode: 'SIMPLE', credentialName: 'bookinfo-cert' } })]));
  });

  it('needs a DNS-label name and at least one server', () => {
    assertOneError(gw([server()], 'bookinfo.gateway'), 'metadata.name', 'must be a DNS label');
    assertOneError(gw([]), 'spec.servers', 'at least one server');
  });

  it('checks server hosts', () => {
    const ds = gw([server({ hosts: ['reviews', 'ns/', 'Bad_NS/a.example.com', 'a.*.com'] })]);
    assert.equal(errors(ds).length, 4);
    assertError(ds, 'spec.servers[0].hosts[0]', 'short name');
    assertError(ds, 'spec.servers[0].hosts[1]', 'both a namespace and a dnsName');
    assertError(ds, 'spec.servers[0].hosts[2]', 'invalid namespace');
    assertError(ds, 'spec.servers[0].hosts[3]', 'wildcard');
    assertOneError(gw([server({ hosts: [] })]), 'spec.servers[0].hosts', 'at least one host');
  });

  it('checks ports: name, protocol, uniqueness', () => {
    assertOneError(gw([server({ port: { number: 80, protocol: 'HTTP' } })]), 'spec.servers[0].port.name', 'needs a name');
    assertOneError(gw([server({ port: { number: 80, name: 'x', protocol: 'FTP' } })]), 'spec.servers[0].port.protocol', 'not supported');
    assertOneError(gw([server(), server({ port: { number: 8080, name: 'http', protocol: 'HTTP' } })]), 'spec.servers[1].port.name', 'must be unique');
  });

  it('matches TLS settings to the protocol', () => {
    assertOneError(gw([server({ port: { number: 443, name: 'https', protocol: 'HTTPS' } })]), 'spec.servers[0].tls', 'needs tls settings');
    assertOneError(gw([server({ tls: { mode: 'SIMPLE', credentialName: 'c' } })]), 'spec.servers[0].tls', 'plain-text HTTP server');
    assertNoErrors(gw([server({ tls: { httpsRedirect: true } })]));
    const simple = gw([server({ port: { number: 443, name: 'https', protocol: 'HTTPS' }, tls: { mode: 'SIMPLE' } })]);
    assertError(simple, 'spec.servers[0].tls.serverCertificate', 'SIMPLE TLS needs serverCertificate');
    assertOneError(gw([server({ port: { number: 443, name: 'https', protocol: 'HTTPS' }, tls: { mode: 'ISTIO_MUTUAL', credentialName: 'c' } })]), 'spec.servers[0].tls.credentialName', 'ISTIO_MUTUAL');
  });
});
