import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { assertError, assertNoErrors, assertOneError, assertWarning, errors, validate } from './testing.ts';

const se = (spec: Record<string, unknown>): ReturnType<typeof validate> =>
  validate('ServiceEntry', { hosts: ['api.example.com'], ports: [{ number: 443, name: 'https', protocol: 'HTTPS' }], resolution: 'DNS', ...spec });

describe('ServiceEntry semantic rules', () => {
  it('accepts the usual external-service shapes', () => {
    assertNoErrors(se({}));
    assertNoErrors(se({ hosts: ['*.example.com'], resolution: 'NONE' }));
    assertNoErrors(se({ resolution: 'STATIC', addresses: ['10.1.0.0/16'], endpoints: [{ address: '10.1.2.3', ports: { https: 8443 } }] }));
    assertNoErrors(se({ endpoints: [{ address: 'backend.example.net' }] }));
  });

  it('needs hosts, valid ones, and not *', () => {
    assertOneError(se({ hosts: [] }), 'spec.hosts', 'at least one host');
    assertOneError(se({ hosts: ['*'] }), 'spec.hosts[0]', 'host "*" is not allowed');
    assertWarning(se({ hosts: ['*x.example.com'], resolution: 'NONE' }), 'spec.hosts[0]', 'partial wildcard');
  });

  it('does not resolve wildcard hosts with DNS unless endpoints are given', () => {
    assertOneError(se({ hosts: ['*.example.com'] }), 'spec.hosts[0]', 'cannot be resolved');
    assertNoErrors(se({ hosts: ['*.example.com'], endpoints: [{ address: 'proxy.example.com' }] }));
  });

  it('checks ports: unique names and numbers, protocols', () => {
    const ds = se({ ports: [{ number: 80, name: 'http', protocol: 'HTTP' }, { number: 80, name: 'http', protocol: 'HTTP' }, { number: 81, name: 'x', protocol: 'QUIC' }] });
    assert.equal(errors(ds).length, 3);
    assertError(ds, 'spec.ports[1].name', 'must be unique');
    assertError(ds, 'spec.ports[1].number', 'port 80 is already declared');
    assertError(ds, 'spec.ports[2].protocol', 'unsupported protocol "QUIC"');
  });

  it('checks addresses and CIDRs per resolution', () => {
    assertOneError(se({ addresses: ['10.0.0.300'] }), 'spec.addresses[0]', 'not a valid IP address or CIDR block');
    assertOneError(se({ addresses: ['10.0.0.0/8'] }), 'spec.addresses', 'only with resolution NONE or STATIC');
  });

  it('checks endpoints against resolution and port names', () => {
    assertOneError(se({ resolution: 'NONE', endpoints: [{ address: '1.2.3.4' }] }), 'spec.endpoints', 'endpoints are not allowed');
    assertOneError(se({ resolution: 'STATIC', endpoints: [{ address: 'host.example.com' }] }), 'spec.endpoints[0].address', 'STATIC needs IPs');
    assertOneError(se({ resolution: 'STATIC', endpoints: [{ address: '1.2.3.4', ports: { http: 8080 } }] }), 'spec.endpoints[0].ports.http', 'not a port name of this ServiceEntry: use one of https');
    assertOneError(se({ resolution: 'DNS_ROUND_ROBIN', endpoints: [{ address: 'a.example.com' }, { address: 'b.example.com' }] }), 'spec.endpoints', 'at most one endpoint');
    assertOneError(se({ resolution: 'STATIC', workloadSelector: { labels: { app: 'vm' } }, endpoints: [{ address: '1.2.3.4' }] }), 'spec.endpoints', 'either endpoints or workloadSelector');
    assertWarning(se({ resolution: 'STATIC' }), 'spec.resolution', 'no endpoints');
  });

  it('rejects several hosts on a plain TCP port unless resolution is NONE', () => {
    const tcp = [{ number: 3306, name: 'tcp', protocol: 'TCP' }];
    assertOneError(se({ hosts: ['a.example.com', 'b.example.com'], ports: tcp }), 'spec.ports[0].protocol', 'several hosts share');
    assertNoErrors(se({ hosts: ['a.example.com', 'b.example.com'], ports: tcp, resolution: 'NONE' }));
  });

  it('checks DYNAMIC_DNS rules', () => {
    assertNoErrors(se({ hosts: ['*.example.com'], resolution: 'DYNAMIC_DNS', ports: [{ number: 443, name: 'tls', protocol: 'TLS' }] }));
    assertOneError(se({ hosts: ['*.example.com'], resolution: 'DYNAMIC_DNS' }), 'spec.ports[0].protocol', 'only HTTP, TLS, GRPC and HTTP2');
    assertOneError(se({ hosts: ['api.example.com'], resolution: 'DYNAMIC_DNS', ports: [{ number: 80, name: 'http', protocol: 'HTTP' }] }), 'spec.hosts[0]', 'must be a wildcard');
  });

  it('allows exportTo ~ only alone', () => {
    assertNoErrors(se({ exportTo: ['~'] }));
    assertOneError(se({ exportTo: ['~', '.'] }), 'spec.exportTo', 'no one');
  });
});
