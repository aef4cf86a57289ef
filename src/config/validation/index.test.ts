import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadString } from '../loader.ts';
import { validateSemantics } from './index.ts';
import { assertNoErrors, assertOneError, validate } from './testing.ts';

describe('validateSemantics: metadata and dispatch', () => {
  it('checks metadata names and namespaces for every known kind', () => {
    assertOneError(validate('DestinationRule', { host: 'reviews' }, { name: 'Reviews_DR' }), 'metadata.name', 'lower-case DNS name');
    assertOneError(validate('DestinationRule', { host: 'reviews' }, { namespace: 'Book_Info' }), 'metadata.namespace', 'lower-case DNS label');
    assertOneError(validate('Namespace', undefined, { name: 'a.b', namespace: '' }), 'metadata.name', 'namespace name "a.b"');
  });

  it('checks metadata labels and annotations, which must be strings', () => {
    assertOneError(validate('Pod', { containers: [{ name: 'a', image: 'x' }] }, { metadata: { labels: { version: 1.0 } } }), 'metadata.labels.version', 'must have a string value');
    assertOneError(validate('Pod', { containers: [{ name: 'a', image: 'x' }] }, { metadata: { annotations: { 'bad key!': 'x' } } }), 'metadata.annotations["bad key!"]', 'annotation key');
  });

  it('rejects annotations Istio reserves, and dry-run outside AuthorizationPolicy', () => {
    assertOneError(validate('DestinationRule', { host: 'a' }, { metadata: { annotations: { 'internal.istio.io/parents': 'x' } } }), 'metadata.annotations["internal.istio.io/parents"]', 'reserved');
    assertOneError(validate('DestinationRule', { host: 'a' }, { metadata: { annotations: { 'istio.io/dry-run': 'true' } } }), 'metadata.annotations["istio.io/dry-run"]', 'only on AuthorizationPolicy');
  });

  it('says nothing about unknown kinds and survives wrongly typed fields', () => {
    const unknown = loadString('apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: Bad_Name}\nspec: {hosts: 5}\n', 'w.yaml').resources[0];
    assert.ok(unknown);
    assert.deepEqual(validateSemantics(unknown), []);
    // Wrong types are the schema's to report; the semantic rules must not throw on them.
    assert.doesNotThrow(() => validate('VirtualService', { hosts: 'reviews', http: 'none', tcp: [null, 5], gateways: [1], tls: [{ match: 'x' }] }));
    assert.doesNotThrow(() => validate('DestinationRule', { host: 5, subsets: [null, 'v1'], trafficPolicy: { portLevelSettings: [null], loadBalancer: 'x' } }));
    assertNoErrors(validate('Sidecar', { egress: [{ hosts: [1, null] }], ingress: 'x' }));
  });

  it('locates problems at the line and column of the field', () => {
    const yaml = 'apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata:\n  name: r\nspec:\n  host: reviews\n  subsets:\n  - name: v_1\n';
    const r = loadString(yaml, 'dr.yaml').resources[0];
    assert.ok(r);
    const [d] = validateSemantics(r);
    assert.ok(d);
    assert.deepEqual([d.file, d.line, d.col, d.resource, d.path], ['dr.yaml', 8, 5, 'DestinationRule default/r', 'spec.subsets[0].name']);
  });
});
