import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { assertError, assertNoErrors, assertOneError, assertWarning, errors, validate } from './testing.ts';

const ap = (spec: Record<string, unknown>, metadata?: Record<string, unknown>): ReturnType<typeof validate> =>
  validate('AuthorizationPolicy', spec, metadata ? { metadata } : {});

describe('AuthorizationPolicy semantic rules', () => {
  it('accepts the validation-dataset policy and allow-nothing', () => {
    assertNoErrors(ap({
      selector: { matchLabels: { app: 'httpbin' } },
      rules: [{ from: [{ source: { principals: ['cluster.local/ns/default/sa/sleep'] } }, { source: { namespaces: ['test'] } }], to: [{ operation: { methods: ['GET'], paths: ['/info*'] } }], when: [{ key: 'request.auth.claims[iss]', values: ['https://accounts.google.com'] }] }],
    }));
    assertNoErrors(ap({}));
  });

  it('needs rules for DENY and CUSTOM, and a provider for CUSTOM only', () => {
    assertOneError(ap({ action: 'DENY' }), 'spec.rules', 'DENY policy without rules');
    assertOneError(ap({ action: 'CUSTOM', rules: [{}] }), 'spec.provider.name', 'needs provider.name');
    assertOneError(ap({ action: 'ALLOW', provider: { name: 'ext-authz' }, rules: [{}] }), 'spec.provider', 'only with action CUSTOM');
    assertOneError(ap({ action: 'CUSTOM', provider: { name: 'x' }, rules: [{ from: [{ source: { namespaces: ['a'] } }] }] }), 'spec.rules[0].from[0].source.namespaces', 'not supported with action CUSTOM');
  });

  it('rejects empty from/to, sources, operations and values', () => {
    assertOneError(ap({ rules: [{ from: [] }] }), 'spec.rules[0].from', 'must not be empty');
    assertOneError(ap({ rules: [{ from: [{ source: {} }] }] }), 'spec.rules[0].from[0].source', 'at least one of principals');
    assertOneError(ap({ rules: [{ to: [{ operation: {} }] }] }), 'spec.rules[0].to[0].operation', 'at least one of hosts');
    assertOneError(ap({ rules: [{ from: [{ source: { principals: ['a', ''] } }] }] }), 'spec.rules[0].from[0].source.principals[1]', 'empty value');
    assertOneError(ap({ rules: [{ from: [{ source: { namespaces: [''] } }] }] }), 'spec.rules[0].from[0].source.namespaces[0]', 'empty value');
  });

  it('checks IPs, ports, paths and service accounts', () => {
    const ds = ap({ rules: [{ from: [{ source: { ipBlocks: ['10.0.0.0/40'] } }], to: [{ operation: { ports: ['http'], paths: ['/a/{**}/{*}'] } }] }] });
    assert.equal(errors(ds).length, 3);
    assertError(ds, 'spec.rules[0].from[0].source.ipBlocks[0]', 'CIDR');
    assertError(ds, 'spec.rules[0].to[0].operation.ports[0]', 'must be a number');
    assertError(ds, 'spec.rules[0].to[0].operation.paths[0]', '{**} must be the last segment');
    assertOneError(ap({ rules: [{ from: [{ source: { serviceAccounts: ['a/b/c'] } }] }] }), 'spec.rules[0].from[0].source.serviceAccounts[0]', 'namespace/serviceAccount');
  });

  it('checks when conditions', () => {
    assertOneError(ap({ rules: [{ when: [{ key: 'request.headers[x-a]' }] }] }), 'spec.rules[0].when[0]', 'needs values or notValues');
    assertOneError(ap({ rules: [{ when: [{ key: 'request.colour', values: ['red'] }] }] }), 'spec.rules[0].when[0].values', 'unknown attribute');
    assertOneError(ap({ rules: [{ when: [{ key: 'request.headers', values: ['x'] }] }] }), 'spec.rules[0].when[0].values', 'request.headers[NAME]');
    assertOneError(ap({ rules: [{ when: [{ key: 'source.ip', notValues: ['1.2.3'] }] }] }), 'spec.rules[0].when[0].notValues', 'not a valid IP');
  });

  it('warns about lower-case methods and HTTP-only DENY rules', () => {
    assertWarning(ap({ rules: [{ to: [{ operation: { methods: ['get'] } }] }] }), 'spec.rules[0].to[0].operation.methods[0]', 'write GET');
    assertWarning(ap({ action: 'DENY', rules: [{ to: [{ operation: { methods: ['POST'] } }] }] }), 'spec.rules[0]', 'denies all traffic to TCP ports');
  });

  it('checks the dry-run annotation and selector/targetRef exclusivity', () => {
    assertNoErrors(ap({ action: 'DENY', rules: [{}] }, { annotations: { 'istio.io/dry-run': 'true' } }));
    assertOneError(ap({ rules: [{}] }, { annotations: { 'istio.io/dry-run': 'maybe' } }), 'metadata.annotations["istio.io/dry-run"]', '"true" or "false"');
    assertOneError(ap({ selector: { matchLabels: { app: 'a' } }, targetRef: { kind: 'Service', group: '', name: 'a' } }), 'spec', 'only one of selector, targetRef or targetRefs');
    assertOneError(ap({ targetRefs: [{ kind: 'Deployment', group: 'apps', name: 'a' }] }), 'spec.targetRefs[0].kind', 'not supported');
  });
});
