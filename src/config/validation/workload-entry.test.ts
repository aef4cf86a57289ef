import { describe, it } from 'node:test';
import { assertNoErrors, assertOneError, assertWarning, validate } from './testing.ts';

describe('WorkloadEntry semantic rules', () => {
  it('accepts IPs, DNS names and unix sockets', () => {
    assertNoErrors(validate('WorkloadEntry', { address: '1.2.3.4', ports: { http: 8080 }, labels: { app: 'vm' } }));
    assertNoErrors(validate('WorkloadEntry', { address: 'vm1.example.com' }));
    assertNoErrors(validate('WorkloadEntry', { address: 'unix:///var/run/app.sock' }));
  });

  it('needs an address unless a network is set', () => {
    assertOneError(validate('WorkloadEntry', { ports: { http: 80 } }), 'spec.address', 'address is required');
    assertWarning(validate('WorkloadEntry', { network: 'net1' }), 'spec.address', 'network "net1"');
  });

  it('checks addresses, ports and labels', () => {
    assertOneError(validate('WorkloadEntry', { address: 'not a host' }), 'spec.address', 'not a valid IP address or DNS name');
    assertOneError(validate('WorkloadEntry', { address: 'unix://relative.sock' }), 'spec.address', 'absolute path');
    assertOneError(validate('WorkloadEntry', { address: 'unix:///a.sock', ports: { http: 80 } }), 'spec.ports', 'must not list ports');
    assertOneError(validate('WorkloadEntry', { address: '1.2.3.4', ports: { http: 70000 } }), 'spec.ports.http', '1..65535');
    assertOneError(validate('WorkloadEntry', { address: '1.2.3.4', ports: { 'http_x': 80 } }), 'spec.ports.http_x', 'DNS label');
    assertOneError(validate('WorkloadEntry', { address: '1.2.3.4', labels: { app: 'a b' } }), 'spec.labels.app', 'invalid value');
  });
});

describe('WorkloadGroup semantic rules', () => {
  it('accepts the validation-dataset shape', () => {
    assertNoErrors(validate('WorkloadGroup', { metadata: { labels: { app: 'reviews' } }, template: { ports: { http: 8080 }, serviceAccount: 'default' }, probe: { httpGet: { port: 8080, path: '/ready' } } }));
  });

  it('needs a template and a well-formed probe', () => {
    assertOneError(validate('WorkloadGroup', { metadata: { labels: { app: 'a' } } }), 'spec.template', 'template is required');
    assertOneError(validate('WorkloadGroup', { template: {}, probe: { tcpSocket: { port: 0 } } }), 'spec.probe.tcpSocket.port', '1..65535');
    assertOneError(validate('WorkloadGroup', { template: {}, probe: { periodSeconds: 5 } }), 'spec.probe', 'one of httpGet, tcpSocket or exec');
    assertOneError(validate('WorkloadGroup', { template: {}, probe: { exec: { command: [] } } }), 'spec.probe.exec.command', 'needs a command');
  });
});
