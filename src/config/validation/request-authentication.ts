// RequestAuthentication rules beyond the schema: each JWT rule names an issuer (or jwksUri), its
// jwksUri is http(s), inline jwks parses, token locations and claim-to-header outputs are non-empty.
// Reports on the checker; never throws.

import { list, obj, quote, str, type Checker, type Obj, type Path } from './check.ts';
import { durationProblem } from './common.ts';
import { checkPolicyTarget } from './policy-target.ts';

const STRICT_HEADER = /^[-_A-Za-z0-9]+$/;

export function validateRequestAuthentication(c: Checker, spec: Obj): void {
  checkPolicyTarget(c, spec, 'RequestAuthentication');
  list(spec.jwtRules).forEach((r, i) => {
    const rule = obj(r);
    if (rule) checkJwtRule(c, ['spec', 'jwtRules', i], rule);
  });
}

function checkJwtRule(c: Checker, p: Path, rule: Obj): void {
  list(rule.audiences).forEach((a, i) => {
    if (a === '') c.error([...p, 'audiences', i], 'an audience must not be empty');
  });
  const issuer = str(rule.issuer) ?? '';
  const jwksUri = str(rule.jwksUri) ?? str(rule.jwks_uri) ?? '';
  if (issuer === '' && jwksUri === '') c.error([...p, 'issuer'], 'a JWT rule needs an issuer (e.g. https://accounts.google.com) or a jwksUri');
  if (jwksUri !== '') c.check([...p, 'jwksUri'], jwksUriProblem(jwksUri));
  const jwks = str(rule.jwks);
  if (jwks) checkJwks(c, [...p, 'jwks'], jwks);
  list(rule.fromHeaders).forEach((h, i) => {
    if (!str(obj(h)?.name)) c.error([...p, 'fromHeaders', i, 'name'], 'a fromHeaders entry needs a header name (e.g. Authorization)');
  });
  list(rule.fromParams).forEach((q, i) => {
    if (q === '') c.error([...p, 'fromParams', i], 'a query parameter name must not be empty');
  });
  list(rule.fromCookies).forEach((q, i) => {
    if (q === '') c.error([...p, 'fromCookies', i], 'a cookie name must not be empty');
  });
  list(rule.outputClaimToHeaders).forEach((o, i) => {
    const op = [...p, 'outputClaimToHeaders', i];
    const header = str(obj(o)?.header) ?? '';
    if (!str(obj(o)?.claim) || header === '') c.error(op, 'outputClaimToHeaders needs both claim and header');
    else if (!STRICT_HEADER.test(header)) c.error([...op, 'header'], `header name ${quote(header)} may contain only letters, digits, '-' and '_'`);
  });
  if (rule.timeout !== undefined) c.check([...p, 'timeout'], durationProblem(rule.timeout, 'timeout'));
}

function jwksUriProblem(uri: string): string | undefined {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return `jwksUri ${quote(uri)} is not a valid URL (e.g. https://example.com/.well-known/jwks.json)`;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return `jwksUri scheme ${quote(url.protocol.replace(/:$/, ''))} is not supported: use http or https`;
  return undefined;
}

function checkJwks(c: Checker, p: Path, jwks: string): void {
  let parsed: unknown;
  try {
    parsed = JSON.parse(jwks);
  } catch (err) {
    c.error(p, `jwks is not valid JSON: ${(err as Error).message}`);
    return;
  }
  const set = obj(parsed);
  const keys = set && Array.isArray(set.keys) ? set.keys : set && typeof set.kty === 'string' ? [set] : undefined;
  if (!keys) {
    c.error(p, 'jwks must be a JSON Web Key Set ({"keys": [...]}) or a single JSON Web Key');
    return;
  }
  keys.forEach((k, i) => {
    const key = obj(k);
    if (!key || typeof key.kty !== 'string') c.error(p, `jwks key ${i} has no kty (key type)`);
    else if (key.d !== undefined || key.kty === 'oct') c.warn(p, `jwks key ${i} contains private key material: only public keys are needed to verify tokens`);
  });
}
