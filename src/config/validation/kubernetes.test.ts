import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { assertError, assertNoErrors, assertOneError, errors, validate } from './testing.ts';

const template = (labels: Record<string, string>, containers: unknown[] = [{ name: 'app', image: 'nginx', ports: [{ containerPort: 9080 }] }]): Record<string, unknown> =>
  ({ metadata: { labels }, spec: { containers } });

describe('Kubernetes kinds: Service', () => {
  it('accepts Bookinfo-style services, headless and ExternalName ones', () => {
    assertNoErrors(validate('Service', { selector: { app: 'reviews' }, ports: [{ port: 9080, name: 'http' }] }, { name: 'reviews' }));
    assertNoErrors(validate('Service', { clusterIP: 'None', selector: { app: 'db' } }, { name: 'db' }));
    assertNoErrors(validate('Service', { type: 'ExternalName', externalName: 'db.example.com' }, { name: 'ext' }));
  });

  it('needs ports with numbers in range and unique names', () => {
    assertOneError(validate('Service', { selector: { app: 'a' } }), 'spec.ports', 'at least one port');
    assertOneError(validate('Service', { ports: [{ port: 0, name: 'http' }] }), 'spec.ports[0].port', '1..65535');
    assertOneError(validate('Service', { ports: [{ name: 'http' }] }), 'spec.ports[0].port', 'port is required');
    const ds = validate('Service', { ports: [{ port: 80, name: 'http' }, { port: 81, name: 'http' }, { port: 82 }] });
    assert.equal(errors(ds).length, 2);
    assertError(ds, 'spec.ports[1].name', 'must be unique');
    assertError(ds, 'spec.ports[2].name', 'each port needs a name');
    assertOneError(validate('Service', { ports: [{ port: 80, targetPort: 'http_web' }] }), 'spec.ports[0].targetPort', 'container port name');
    assertOneError(validate('Service', { ports: [{ port: 80, protocol: 'HTTP' }] }), 'spec.ports[0].protocol', 'TCP, UDP or SCTP');
  });

  it('needs a DNS-1035 name', () => {
    assertOneError(validate('Service', { ports: [{ port: 80 }] }, { name: '1reviews' }), 'metadata.name', 'must start with a letter');
  });
});

describe('Kubernetes kinds: workloads', () => {
  it('accepts a Deployment whose selector matches its template', () => {
    assertNoErrors(validate('Deployment', { replicas: 1, selector: { matchLabels: { app: 'reviews', version: 'v1' } }, template: template({ app: 'reviews', version: 'v1' }) }));
    assertNoErrors(validate('StatefulSet', { selector: { matchExpressions: [{ key: 'app', operator: 'In', values: ['db'] }] }, template: template({ app: 'db' }) }));
  });

  it('needs a selector that matches the template labels', () => {
    assertOneError(validate('Deployment', { template: template({ app: 'a' }) }), 'spec.selector', 'spec.selector is required');
    assertOneError(validate('Deployment', { selector: { matchLabels: { app: 'b' } }, template: template({ app: 'a' }) }), 'spec.selector.matchLabels.app', 'does not match');
    assertOneError(validate('DaemonSet', { selector: { matchExpressions: [{ key: 'app', operator: 'NotIn', values: ['a'] }] }, template: template({ app: 'a' }) }), 'spec.selector.matchExpressions[0]', 'does not match');
  });

  it('needs containers with names and images; container ports in range', () => {
    assertOneError(validate('Deployment', { selector: { matchLabels: { app: 'a' } }, template: template({ app: 'a' }, []) }), 'spec.template.spec.containers', 'at least one container');
    assertOneError(validate('Deployment', { selector: { matchLabels: { app: 'a' } }, template: template({ app: 'a' }, [{ name: 'app' }]) }), 'spec.template.spec.containers[0].image', 'needs an image');
    const ds = validate('Pod', { containers: [{ name: 'a', image: 'x', ports: [{ containerPort: 70000, name: 'http' }] }, { name: 'a', image: 'y', ports: [{ containerPort: 80, name: 'http' }] }] });
    assert.equal(errors(ds).length, 3);
    assertError(ds, 'spec.containers[0].ports[0].containerPort', '1..65535');
    assertError(ds, 'spec.containers[1].name', 'used twice');
    assertError(ds, 'spec.containers[1].ports[0].name', 'used twice');
  });

  it('needs a Job restartPolicy of Never or OnFailure', () => {
    assertOneError(validate('Job', { template: { spec: { containers: [{ name: 'a', image: 'x' }] } } }), 'spec.template.spec.restartPolicy', 'Never or OnFailure');
    assertNoErrors(validate('Job', { template: { spec: { restartPolicy: 'Never', containers: [{ name: 'a', image: 'x' }] } } }));
  });
});

describe('Kubernetes kinds: endpoints', () => {
  it('checks Endpoints and EndpointSlice addresses and ports', () => {
    assertOneError(validate('Endpoints', undefined, { top: { subsets: [{ addresses: [{ ip: '10.0.0.256' }], ports: [{ port: 80 }] }] } }), 'subsets[0].addresses[0].ip', 'not a valid IP address');
    assertOneError(validate('EndpointSlice', undefined, { top: { addressType: 'IPv4', endpoints: [{ addresses: ['10.1.2.3'] }], ports: [{ port: 70000 }] } }), 'ports[0].port', '1..65535');
  });
});
