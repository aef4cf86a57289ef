import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { assertError, assertNoErrors, assertOneError, assertWarning, errors, validate } from './testing.ts';

const sidecar = (spec: Record<string, unknown>): ReturnType<typeof validate> => validate('Sidecar', spec, { namespace: 'bookinfo' });

describe('Sidecar semantic rules', () => {
  it('accepts seed 002\'s Sidecar and a full one', () => {
    assertNoErrors(sidecar({ egress: [{ hosts: ['./*', 'istio-system/*'] }] }));
    assertNoErrors(sidecar({
      workloadSelector: { labels: { app: 'reviews' } },
      ingress: [{ port: { number: 9080, protocol: 'HTTP', name: 'http' }, defaultEndpoint: '127.0.0.1:8080' }, { port: { number: 9443, protocol: 'HTTPS', name: 'https' }, defaultEndpoint: 'unix:///var/run/app.sock', tls: { mode: 'SIMPLE', serverCertificate: '/c', privateKey: '/k' } }],
      egress: [{ port: { number: 3306, protocol: 'MYSQL', name: 'mysql' }, bind: '127.0.0.1', hosts: ['*/mysql.foo.com'] }, { hosts: ['~/*', 'istio-system/*', '*/*.example.com'] }],
      outboundTrafficPolicy: { mode: 'REGISTRY_ONLY' },
    }));
  });

  it('requires namespace/dnsName egress hosts', () => {
    const ds = sidecar({ egress: [{ hosts: ['reviews', 'bookinfo/reviews', '/x.com', 'Bad_NS/*', 'ns/foo.*.com'] }] });
    assert.equal(errors(ds).length, 5);
    assertError(ds, 'spec.egress[0].hosts[0]', 'has no namespace');
    assertError(ds, 'spec.egress[0].hosts[1]', 'short names are not allowed');
    assertError(ds, 'spec.egress[0].hosts[2]', 'both a namespace and a dnsName');
    assertError(ds, 'spec.egress[0].hosts[3]', 'invalid namespace "Bad_NS"');
    assertError(ds, 'spec.egress[0].hosts[4]', 'wildcard');
    assertOneError(sidecar({ egress: [{ hosts: [] }] }), 'spec.egress[0].hosts', 'at least one host');
  });

  it('warns about duplicated egress hosts', () => {
    assertWarning(sidecar({ egress: [{ hosts: ['./*', 'bookinfo/reviews.bookinfo.svc.cluster.local'] }] }), 'spec.egress[0].hosts[1]', 'duplicate egress host');
  });

  it('allows one catch-all egress listener, last', () => {
    assertOneError(sidecar({ egress: [{ hosts: ['./*'] }, { port: { number: 80, protocol: 'HTTP', name: 'http' }, hosts: ['./*'] }] }), 'spec.egress[0]', 'must be the last one');
    const two = sidecar({ egress: [{ port: { number: 80, protocol: 'HTTP', name: 'http' }, hosts: ['./*'] }, { hosts: ['./*'] }, { hosts: ['*/*'] }] });
    assert.equal(errors(two).length, 2);
    assertError(two, 'spec.egress[1]', 'must be the last one');
    assertError(two, 'spec.egress[2]', 'only one egress listener may omit port');
  });

  it('checks ports, binds and unix sockets', () => {
    assertOneError(sidecar({ egress: [{ port: { number: 80, protocol: 'HTTP', name: 'a' }, hosts: ['./*'] }, { port: { number: 80, protocol: 'HTTP', name: 'b' }, hosts: ['./*'] }] }), 'spec.egress[1].port.number', 'must be unique');
    assertOneError(sidecar({ egress: [{ port: { number: 80, protocol: 'HTTP', name: 'a' }, bind: 'localhost', hosts: ['./*'] }] }), 'spec.egress[0].bind', 'not a valid IP address');
    assertOneError(sidecar({ egress: [{ port: { number: 0, protocol: 'HTTP', name: 'a' }, bind: '127.0.0.1', hosts: ['./*'] }] }), 'spec.egress[0].bind', 'unix domain socket');
    assertNoErrors(sidecar({ egress: [{ port: { number: 0, protocol: 'HTTP', name: 'a' }, bind: 'unix:///var/run/x.sock', captureMode: 'NONE', hosts: ['./*'] }] }));
    assertOneError(sidecar({ egress: [{ port: { number: 80, protocol: 'WEBSOCKET', name: 'a' }, hosts: ['./*'] }] }), 'spec.egress[0].port.protocol', 'unsupported protocol');
  });

  it('warns that bind needs a port on egress listeners', () => {
    const ds = sidecar({ egress: [{ bind: '127.0.0.1', hosts: ['./*'] }] });
    assertNoErrors(ds);
    assertWarning(ds, 'spec.egress[0].bind', 'without a port');
  });

  it('checks ingress listeners', () => {
    assertOneError(sidecar({ ingress: [{ defaultEndpoint: '127.0.0.1:80' }] }), 'spec.ingress[0].port', 'needs a port');
    assertOneError(sidecar({ ingress: [{ port: { number: 9080, protocol: 'HTTP', name: 'http' }, defaultEndpoint: '10.0.0.1:8080' }] }), 'spec.ingress[0].defaultEndpoint', '127.0.0.1:PORT');
    assertOneError(sidecar({ ingress: [{ port: { number: 9080, protocol: 'HTTP', name: 'http' }, defaultEndpoint: '127.0.0.1:http' }] }), 'spec.ingress[0].defaultEndpoint', 'not a number');
    assertNoErrors(sidecar({ ingress: [{ port: { number: 9080, protocol: 'HTTP', name: 'http' }, defaultEndpoint: '[::1]:8080' }] }));
    assertOneError(sidecar({ ingress: [{ port: { number: 9080, protocol: 'HTTP', name: 'a' } }, { port: { number: 9080, protocol: 'HTTP', name: 'b' } }] }), 'spec.ingress[1].port.number', 'must be unique');
    assertOneError(sidecar({ ingress: [{ port: { number: 9080, protocol: 'HTTP', name: 'http' }, tls: { mode: 'SIMPLE', serverCertificate: '/c', privateKey: '/k' } }] }), 'spec.ingress[0].tls', 'HTTPS or TLS port');
  });

  it('rejects an empty Sidecar and checks outboundTrafficPolicy', () => {
    assertOneError(sidecar({}), 'spec.egress', 'must configure something');
    assertOneError(sidecar({ outboundTrafficPolicy: { mode: 'REGISTRY_ONLY', egressProxy: { host: 'proxy.example.com', port: { number: 3128 } } } }), 'spec.outboundTrafficPolicy.egressProxy', 'only with mode ALLOW_ANY');
    assertNoErrors(sidecar({ outboundTrafficPolicy: { mode: 'ALLOW_ANY', egressProxy: { host: 'proxy.example.com', port: { number: 3128 } } } }));
  });

  it('checks the workload selector', () => {
    assertOneError(sidecar({ workloadSelector: { labels: { app: 'rev*' } }, egress: [{ hosts: ['./*'] }] }), 'spec.workloadSelector.labels.app', 'wildcards are not allowed');
    assertWarning(sidecar({ workloadSelector: {}, egress: [{ hosts: ['./*'] }] }), 'spec.workloadSelector', 'selects every workload');
  });
});
