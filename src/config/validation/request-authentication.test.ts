import { describe, it } from 'node:test';
import { assertNoErrors, assertOneError, assertWarning, validate } from './testing.ts';

const ra = (jwtRules: unknown[]): ReturnType<typeof validate> => validate('RequestAuthentication', { selector: { matchLabels: { app: 'a' } }, jwtRules });

describe('RequestAuthentication semantic rules', () => {
  it('accepts issuer and jwksUri rules', () => {
    assertNoErrors(ra([{ issuer: 'example.com' }, { issuer: 'https://accounts.google.com', jwksUri: 'https://www.googleapis.com/oauth2/v3/certs', fromHeaders: [{ name: 'x-jwt', prefix: 'Bearer ' }], outputClaimToHeaders: [{ header: 'x-sub', claim: 'sub' }] }]));
  });

  it('needs an issuer or jwksUri, an http(s) jwksUri and valid jwks', () => {
    assertOneError(ra([{ audiences: ['a'] }]), 'spec.jwtRules[0].issuer', 'needs an issuer');
    assertOneError(ra([{ issuer: 'a', jwksUri: 'ftp://example.com/keys' }]), 'spec.jwtRules[0].jwksUri', 'use http or https');
    assertOneError(ra([{ issuer: 'a', jwks: '{not json' }]), 'spec.jwtRules[0].jwks', 'not valid JSON');
    assertWarning(ra([{ issuer: 'a', jwks: '{"keys":[{"kty":"RSA","n":"x","e":"AQAB","d":"secret"}]}' }]), 'spec.jwtRules[0].jwks', 'private key material');
  });

  it('checks token locations and outputs', () => {
    assertOneError(ra([{ issuer: 'a', fromHeaders: [{ prefix: 'Bearer ' }] }]), 'spec.jwtRules[0].fromHeaders[0].name', 'needs a header name');
    assertOneError(ra([{ issuer: 'a', outputClaimToHeaders: [{ header: 'x:y', claim: 'sub' }] }]), 'spec.jwtRules[0].outputClaimToHeaders[0].header', 'only letters');
    assertOneError(ra([{ issuer: 'a', timeout: '5' }]), 'spec.jwtRules[0].timeout', 'not a valid duration');
  });
});
