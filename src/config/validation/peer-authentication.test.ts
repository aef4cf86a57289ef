import { describe, it } from 'node:test';
import { assertNoErrors, assertOneError, validate } from './testing.ts';

describe('PeerAuthentication semantic rules', () => {
  it('accepts mesh-wide STRICT and port-level mTLS with a selector', () => {
    assertNoErrors(validate('PeerAuthentication', { mtls: { mode: 'STRICT' } }, { namespace: 'istio-system' }));
    assertNoErrors(validate('PeerAuthentication', { selector: { matchLabels: { app: 'httpbin' } }, mtls: { mode: 'PERMISSIVE' }, portLevelMtls: { 8080: { mode: 'STRICT' } } }));
  });

  it('needs a selector for port-level mTLS, and ports in range', () => {
    assertOneError(validate('PeerAuthentication', { portLevelMtls: { 8080: { mode: 'DISABLE' } } }), 'spec.portLevelMtls', 'needs a selector with matchLabels');
    assertOneError(validate('PeerAuthentication', { selector: { matchLabels: { app: 'a' } }, portLevelMtls: { 70000: { mode: 'DISABLE' } } }), 'spec.portLevelMtls["70000"]', '1..65535');
    assertOneError(validate('PeerAuthentication', { selector: { matchLabels: { app: 'a' } }, portLevelMtls: {} }), 'spec.portLevelMtls', 'at least one port');
  });
});
