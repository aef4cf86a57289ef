import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { assertError, assertNoErrors, assertOneError, assertWarning, errors, validate } from './testing.ts';

const dr = (spec: Record<string, unknown>): ReturnType<typeof validate> => validate('DestinationRule', { host: 'reviews', ...spec });
const tp = (trafficPolicy: unknown): ReturnType<typeof validate> => dr({ trafficPolicy });

describe('DestinationRule semantic rules', () => {
  it('accepts Bookinfo-style subsets and a full traffic policy', () => {
    assertNoErrors(dr({ subsets: [{ name: 'v1', labels: { version: 'v1' } }, { name: 'v2', labels: { version: 'v2' }, trafficPolicy: { loadBalancer: { simple: 'RANDOM' } } }] }));
    assertNoErrors(tp({
      connectionPool: { tcp: { maxConnections: 100, connectTimeout: '30ms' }, http: { http1MaxPendingRequests: 1, maxRequestsPerConnection: 1 } },
      outlierDetection: { consecutive5xxErrors: 7, interval: '5m', baseEjectionTime: '15m', maxEjectionPercent: 100 },
      loadBalancer: { consistentHash: { httpHeaderName: 'x-user', maglev: { tableSize: 65537 } } },
      tls: { mode: 'MUTUAL', clientCertificate: '/c.pem', privateKey: '/k.pem' },
      portLevelSettings: [{ port: { number: 443 }, tls: { mode: 'SIMPLE' } }],
    }));
  });

  it('checks the host', () => {
    assertOneError(validate('DestinationRule', { host: 'reviews..bookinfo' }), 'spec.host', 'label ""');
    assertOneError(validate('DestinationRule', {}), 'spec.host', 'host is required');
  });

  it('rejects duplicate and invalid subset names', () => {
    const ds = dr({ subsets: [{ name: 'v1', labels: { version: 'v1' } }, { name: 'v1', labels: { version: 'v2' } }, { name: 'v_3' }] });
    assert.equal(errors(ds).length, 2);
    assertError(ds, 'spec.subsets[1].name', 'duplicate subset name "v1"');
    assertError(ds, 'spec.subsets[2].name', 'subset name "v_3" is not valid');
    assertOneError(dr({ subsets: [{ name: 'v1', labels: { 'bad key!': 'x' } }] }), 'spec.subsets[0].labels["bad key!"]', 'label key "bad key!"');
  });

  it('rejects an empty traffic policy and an empty connection pool', () => {
    assertOneError(tp({}), 'spec.trafficPolicy', 'at least one of loadBalancer');
    assertOneError(tp({ connectionPool: {} }), 'spec.trafficPolicy.connectionPool', 'tcp and/or http');
  });

  it('checks consistent hashing', () => {
    assertOneError(tp({ loadBalancer: { consistentHash: { httpHeaderName: 'x', useSourceIp: true } } }), 'spec.trafficPolicy.loadBalancer.consistentHash', 'exactly one of');
    assertOneError(tp({ loadBalancer: { consistentHash: { httpCookie: { ttl: '0s' } } } }), 'spec.trafficPolicy.loadBalancer.consistentHash.httpCookie.name', 'needs a name');
    assertOneError(tp({ loadBalancer: { consistentHash: { useSourceIp: true, maglev: { tableSize: 1000 } } } }), 'spec.trafficPolicy.loadBalancer.consistentHash.maglev.tableSize', 'prime');
    assertOneError(tp({ loadBalancer: { consistentHash: { useSourceIp: true, ringHash: { minimumRingSize: 1 }, maglev: { tableSize: 7 } } } }), 'spec.trafficPolicy.loadBalancer.consistentHash.maglev', 'not both');
    assertOneError(tp({ loadBalancer: { simple: 'ROUND_ROBIN', consistentHash: { useSourceIp: true } } }), 'spec.trafficPolicy.loadBalancer.consistentHash', 'either simple or consistentHash');
  });

  it('checks locality load balancing', () => {
    assertOneError(tp({ outlierDetection: { consecutive5xxErrors: 1 }, loadBalancer: { localityLbSetting: { distribute: [{ from: 'us-west/*', to: { 'us-west/*': 80, 'us-east/*': 30 } }] } } }),
      'spec.trafficPolicy.loadBalancer.localityLbSetting.distribute[0].to', 'must add up to 100 (got 110)');
    assertOneError(tp({ outlierDetection: { consecutive5xxErrors: 1 }, loadBalancer: { localityLbSetting: { failover: [{ from: 'us-east', to: 'us-east' }] } } }),
      'spec.trafficPolicy.loadBalancer.localityLbSetting.failover[0]', 'two different regions');
    assertWarning(tp({ loadBalancer: { localityLbSetting: { failover: [{ from: 'us-east', to: 'us-west' }] } } }), 'spec.trafficPolicy.loadBalancer.localityLbSetting', 'outlierDetection');
  });

  it('checks connection pool and outlier detection numbers and durations', () => {
    assertOneError(tp({ connectionPool: { tcp: { maxConnections: -1 } } }), 'spec.trafficPolicy.connectionPool.tcp.maxConnections', 'must not be negative');
    assertOneError(tp({ connectionPool: { http: { idleTimeout: '1us' } } }), 'spec.trafficPolicy.connectionPool.http.idleTimeout', 'at least 1ms');
    assertOneError(tp({ connectionPool: { http: { h2UpgradePolicy: 'UPGRADE', useClientProtocol: true } } }), 'spec.trafficPolicy.connectionPool.http.useClientProtocol', 'UPGRADE');
    assertOneError(tp({ outlierDetection: { maxEjectionPercent: 120 } }), 'spec.trafficPolicy.outlierDetection.maxEjectionPercent', '0..100');
    assertOneError(tp({ outlierDetection: { interval: '10' } }), 'spec.trafficPolicy.outlierDetection.interval', 'not a valid duration');
    assertOneError(tp({ outlierDetection: { consecutiveLocalOriginFailures: 3 } }), 'spec.trafficPolicy.outlierDetection.consecutiveLocalOriginFailures', 'splitExternalLocalOriginErrors');
    assertWarning(tp({ outlierDetection: { consecutiveErrors: 3 } }), 'spec.trafficPolicy.outlierDetection.consecutiveErrors', 'deprecated');
  });

  it('checks client TLS', () => {
    const mutual = tp({ tls: { mode: 'MUTUAL' } });
    assert.equal(errors(mutual).length, 2);
    assertError(mutual, 'spec.trafficPolicy.tls.clientCertificate', 'MUTUAL needs clientCertificate');
    assertError(mutual, 'spec.trafficPolicy.tls.privateKey', 'MUTUAL needs privateKey');
    assertNoErrors(tp({ tls: { mode: 'MUTUAL', credentialName: 'client-cert' } }));
    assertOneError(tp({ tls: { mode: 'SIMPLE', credentialName: 'c', caCertificates: '/ca.pem' } }), 'spec.trafficPolicy.tls.caCertificates', 'cannot be set with credentialName');
    assertOneError(tp({ tls: { mode: 'SIMPLE', insecureSkipVerify: true, caCertificates: '/ca.pem' } }), 'spec.trafficPolicy.tls.insecureSkipVerify', 'cannot be combined');
  });

  it('checks port level settings', () => {
    assertOneError(tp({ portLevelSettings: [{ tls: { mode: 'SIMPLE' } }] }), 'spec.trafficPolicy.portLevelSettings[0].port', 'needs port.number');
    assertOneError(tp({ portLevelSettings: [{ port: { number: 0 }, tls: { mode: 'SIMPLE' } }] }), 'spec.trafficPolicy.portLevelSettings[0].port.number', '1..65535');
    assertOneError(tp({ portLevelSettings: [{ port: { number: 80 } }] }), 'spec.trafficPolicy.portLevelSettings[0]', 'at least one of');
    assertWarning(tp({ portLevelSettings: [{ port: { number: 80 }, tls: { mode: 'SIMPLE' } }, { port: { number: 80 }, tls: { mode: 'DISABLE' } }] }),
      'spec.trafficPolicy.portLevelSettings[1].port.number', 'already has settings');
  });

  it('restricts exportTo when a workloadSelector is set', () => {
    assertOneError(dr({ workloadSelector: { matchLabels: { app: 'a' } }, exportTo: ['other'] }), 'spec.exportTo', 'only to its own namespace');
    assertNoErrors(dr({ workloadSelector: { matchLabels: { app: 'a' } }, exportTo: ['.'] }));
  });
});
