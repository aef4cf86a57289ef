// Port protocol selection as Istio does it: appProtocol, then the port name prefix.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isHttpProtocol, parseProtocol, protocolForPort, type Protocol } from './protocol.ts';

describe('protocolForPort', () => {
  const table: Array<[Parameters<typeof protocolForPort>[0], Protocol]> = [
    [{ name: 'http' }, 'HTTP'],
    [{ name: 'http-foo' }, 'HTTP'],
    [{ name: 'HTTP2-x' }, 'HTTP2'],
    [{ name: 'https' }, 'HTTPS'],
    [{ name: 'grpc' }, 'GRPC'],
    [{ name: 'grpc-web' }, 'GRPC-Web'],
    [{ name: 'grpc-web-x' }, 'GRPC-Web'],
    [{ name: 'tcp' }, 'TCP'],
    [{ name: 'tls-passthrough' }, 'TLS'],
    [{ name: 'mongo' }, 'MONGO'],
    [{ name: 'mysql' }, 'MYSQL'],
    [{ name: 'redis' }, 'REDIS'],
    [{ name: 'status-port' }, 'UNSUPPORTED'],
    [{}, 'UNSUPPORTED'],
    [{ name: 'httpfoo' }, 'UNSUPPORTED'],
    [{ name: 'tcp', appProtocol: 'http' }, 'HTTP'],
    [{ name: 'http', appProtocol: 'grpc' }, 'GRPC'],
    [{ appProtocol: 'kubernetes.io/h2c' }, 'HTTP2'],
    [{ name: 'http', protocol: 'UDP' }, 'UDP'],
    [{ name: 'http', protocol: 'TCP' }, 'HTTP'],
    [{ name: 'db', port: 3306 }, 'MYSQL'],
  ];
  for (const [input, want] of table) it(`${JSON.stringify(input)} -> ${want}`, () => assert.equal(protocolForPort(input), want));
});

describe('parseProtocol / isHttpProtocol', () => {
  it('parses ServiceEntry protocol names case-insensitively', () => {
    assert.equal(parseProtocol('HTTPS'), 'HTTPS');
    assert.equal(parseProtocol('grpc-web'), 'GRPC-Web');
    assert.equal(parseProtocol('bogus'), 'UNSUPPORTED');
    assert.equal(parseProtocol(undefined), 'UNSUPPORTED');
  });
  it('HTTP family excludes HTTPS and TCP', () => {
    assert.deepEqual((['HTTP', 'HTTP2', 'GRPC', 'GRPC-Web', 'HTTPS', 'TCP', 'TLS', 'UNSUPPORTED'] as Protocol[]).filter(isHttpProtocol), ['HTTP', 'HTTP2', 'GRPC', 'GRPC-Web']);
  });
});
