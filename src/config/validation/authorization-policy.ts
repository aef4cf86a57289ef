// AuthorizationPolicy rules beyond the schema: what each action needs (CUSTOM a provider, DENY rules),
// non-empty from/to/source/operation, values that are never empty, IPs, ports, service accounts,
// path templates and `when` attributes, as Istio's webhook checks them. Reports on the checker.

import { list, obj, quote, str, type Checker, type Obj, type Path } from './check.ts';
import { ipOrCidrProblem } from './common.ts';
import { checkPolicyTarget } from './policy-target.ts';

const SOURCE_FIELDS = [
  'principals', 'notPrincipals', 'requestPrincipals', 'notRequestPrincipals', 'namespaces', 'notNamespaces', 'ipBlocks', 'notIpBlocks',
  'remoteIpBlocks', 'notRemoteIpBlocks', 'serviceAccounts', 'notServiceAccounts', 'trustDomains', 'notTrustDomains',
];
/** Source fields that also apply to TCP traffic (the others need HTTP). */
const TCP_SOURCE_FIELDS = ['principals', 'notPrincipals', 'namespaces', 'notNamespaces', 'ipBlocks', 'notIpBlocks', 'remoteIpBlocks', 'notRemoteIpBlocks', 'serviceAccounts', 'notServiceAccounts'];
const OPERATION_FIELDS = ['hosts', 'notHosts', 'ports', 'notPorts', 'methods', 'notMethods', 'paths', 'notPaths'];
/** Source fields CUSTOM (external authorization) does not support. */
const CUSTOM_UNSUPPORTED = ['namespaces', 'notNamespaces', 'serviceAccounts', 'notServiceAccounts', 'trustDomains', 'notTrustDomains', 'principals', 'notPrincipals', 'requestPrincipals', 'notRequestPrincipals'];
const HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE'];

/** Values of a string list; numbers are accepted as their text (ports written unquoted). */
function values(v: unknown): Array<[number, string]> {
  const out: Array<[number, string]> = [];
  list(v).forEach((x, i) => {
    if (typeof x === 'string' || typeof x === 'number') out.push([i, String(x)]);
  });
  return out;
}

export function validateAuthorizationPolicy(c: Checker, spec: Obj): void {
  checkPolicyTarget(c, spec, 'AuthorizationPolicy');
  const action = str(spec.action) ?? 'ALLOW';
  const rules = list(spec.rules);
  const provider = obj(spec.provider);

  if (action === 'CUSTOM') {
    if (rules.length === 0) c.error(['spec', 'rules'], 'a CUSTOM policy without rules never applies: add rules, or an empty rule {} to apply it to every request');
    else if (!str(provider?.name)) c.error(['spec', 'provider', 'name'], 'a CUSTOM policy needs provider.name: an extension provider from the mesh config');
    rules.forEach((r, i) => checkCustomRule(c, ['spec', 'rules', i], obj(r)));
  } else if (provider) {
    c.error(['spec', 'provider'], `provider is used only with action CUSTOM (this policy's action is ${action})`);
  }
  if (action === 'DENY' && rules.length === 0) {
    c.error(['spec', 'rules'], 'a DENY policy without rules never applies: add rules, or an empty rule {} to deny every request');
  }

  rules.forEach((r, i) => {
    const p = ['spec', 'rules', i];
    const rule = obj(r);
    if (!rule) {
      if (r === null) c.error(p, 'a rule must not be null: use {} to match every request');
      return;
    }
    let fromExists = false;
    let toExists = false;
    let tcpFrom = false;
    let tcpTo = false;
    if (Array.isArray(rule.from) && rule.from.length === 0) c.error([...p, 'from'], 'from, if set, must not be empty: remove it to match any source');
    list(rule.from).forEach((f, j) => {
      const fp = [...p, 'from', j];
      const source = obj(obj(f)?.source);
      if (!source) {
        c.error([...fp, 'source'], 'each from entry needs a source');
        return;
      }
      fromExists = true;
      if (!SOURCE_FIELDS.some((k) => list(source[k]).length > 0)) c.error([...fp, 'source'], `a source must set at least one of ${SOURCE_FIELDS.join(', ')}`);
      const identity = ['principals', 'notPrincipals', 'namespaces', 'notNamespaces'].some((k) => list(source[k]).length > 0);
      if (identity && (list(source.serviceAccounts).length > 0 || list(source.notServiceAccounts).length > 0)) {
        c.error([...fp, 'source', 'serviceAccounts'], 'serviceAccounts cannot be combined with namespaces or principals in one source');
      }
      for (const k of SOURCE_FIELDS) checkNonEmpty(c, [...fp, 'source', k], source[k]);
      for (const k of ['ipBlocks', 'notIpBlocks', 'remoteIpBlocks', 'notRemoteIpBlocks']) {
        for (const [n, ip] of values(source[k])) if (ip !== '') c.check([...fp, 'source', k, n], ipOrCidrProblem(ip));
      }
      for (const k of ['serviceAccounts', 'notServiceAccounts']) checkServiceAccounts(c, [...fp, 'source', k], source[k]);
      for (const k of ['trustDomains', 'notTrustDomains']) {
        for (const [n, td] of values(source[k])) if (td.includes('/')) c.error([...fp, 'source', k, n], `trust domain ${quote(td)} must not contain '/'`);
      }
      if (TCP_SOURCE_FIELDS.some((k) => Array.isArray(source[k]))) tcpFrom = true;
    });
    if (Array.isArray(rule.to) && rule.to.length === 0) c.error([...p, 'to'], 'to, if set, must not be empty: remove it to match any operation');
    list(rule.to).forEach((t, j) => {
      const tp = [...p, 'to', j];
      const op = obj(obj(t)?.operation);
      if (!op) {
        c.error([...tp, 'operation'], 'each to entry needs an operation');
        return;
      }
      toExists = true;
      if (!OPERATION_FIELDS.some((k) => list(op[k]).length > 0)) c.error([...tp, 'operation'], `an operation must set at least one of ${OPERATION_FIELDS.join(', ')}`);
      for (const k of OPERATION_FIELDS) checkNonEmpty(c, [...tp, 'operation', k], op[k]);
      for (const k of ['ports', 'notPorts']) {
        for (const [n, port] of values(op[k])) if (port !== '') c.check([...tp, 'operation', k, n], authzPortProblem(port));
      }
      for (const k of ['paths', 'notPaths']) {
        for (const [n, path] of values(op[k])) c.check([...tp, 'operation', k, n], pathTemplateProblem(path));
      }
      for (const k of ['methods', 'notMethods']) {
        for (const [n, m] of values(op[k])) {
          const upper = m.toUpperCase();
          if (m !== upper && HTTP_METHODS.includes(upper)) c.warn([...tp, 'operation', k, n], `method ${quote(m)} is compared exactly with the request method: write ${upper}`);
        }
      }
      if (Array.isArray(op.ports) || Array.isArray(op.notPorts)) tcpTo = true;
    });
    list(rule.when).forEach((w, j) => checkCondition(c, [...p, 'when', j], obj(w)));
    if (action === 'DENY' && ((fromExists && !toExists && !tcpFrom) || (toExists && !tcpTo))) {
      c.warn(p, 'this DENY rule uses only HTTP attributes, so it denies all traffic to TCP ports in its scope: name the ports in to.operation.ports');
    }
  });
}

function checkCustomRule(c: Checker, p: Path, rule: Obj | undefined): void {
  if (!rule) return;
  list(rule.from).forEach((f, j) => {
    const source = obj(obj(f)?.source);
    for (const k of CUSTOM_UNSUPPORTED) {
      if (list(source?.[k]).length > 0) c.error([...p, 'from', j, 'source', k], `${k} is not supported with action CUSTOM`);
    }
  });
  list(rule.when).forEach((w, j) => {
    const key = str(obj(w)?.key) ?? '';
    if (['source.namespace', 'source.serviceAccount', 'source.trustDomain', 'source.principal'].includes(key) || key.startsWith('request.auth.')) {
      c.error([...p, 'when', j, 'key'], `condition ${key} is not supported with action CUSTOM`);
    }
  });
}

function checkNonEmpty(c: Checker, p: Path, v: unknown): void {
  for (const [i, s] of values(v)) if (s === '') c.error([...p, i], 'an empty value is not allowed: remove it, or use "*" to match anything');
}

function authzPortProblem(port: string): string | undefined {
  if (!/^[0-9]+$/.test(port) || Number(port) > 65535) return `port ${quote(port)} must be a number in the range 0..65535`;
  return undefined;
}

function checkServiceAccounts(c: Checker, p: Path, v: unknown): void {
  const all = values(v);
  if (all.length > 16) c.error(p, `at most 16 service accounts may be listed (got ${all.length})`);
  for (const [i, sa] of all) {
    if (sa === '') continue; // reported as empty
    const form = 'use serviceAccount or namespace/serviceAccount';
    if (sa.includes('*')) c.error([...p, i], `service account ${quote(sa)}: wildcards are not allowed; ${form}`);
    else if (sa.length > 320) c.error([...p, i], `service account ${quote(sa.slice(0, 30) + '...')} is longer than 320 characters`);
    else if (sa.split('/').length > 2 || sa.split('/').some((part) => part === '')) c.error([...p, i], `service account ${quote(sa)} is not valid: ${form}`);
  }
}

/** `{*}` matches one path segment and `{**}` any rest (only last); other braces are not allowed. */
function pathTemplateProblem(path: string): string | undefined {
  const templated = path.includes('{*}') || path.includes('{**}');
  let sawAny = false;
  for (const glob of path.replace(/^\/+|\/+$/g, '').split('/')) {
    if ((glob === '{*}' || glob === '{**}') && !sawAny) {
      sawAny = glob === '{**}';
      continue;
    }
    if (glob === '{*}' || glob === '{**}') return `path ${quote(path)}: {**} must be the last segment`;
    if (/[{}]/.test(glob)) return `path ${quote(path)}: braces are allowed only as whole segments {*} or {**}`;
    if (templated && !/^[a-zA-Z0-9\-._~%!$&'()+,;:@=]+$/.test(glob)) return `path ${quote(path)}: segment ${quote(glob)} has characters not allowed in a path`;
  }
  return undefined;
}

const KNOWN_KEYS = 'request.headers[NAME], source.ip, remote.ip, source.namespace, source.principal, source.serviceAccount, source.trustDomain, request.auth.principal, request.auth.audiences, request.auth.presenter, request.auth.claims[NAME], destination.ip, destination.port, connection.sni, experimental.envoy.filters.*[NAME]';

function checkCondition(c: Checker, p: Path, w: Obj | undefined): void {
  if (!w) return;
  const key = str(w.key) ?? '';
  if (key === '') {
    c.error([...p, 'key'], `a condition needs a key: one of ${KNOWN_KEYS}`);
    return;
  }
  const vals = values(w.values);
  const notVals = values(w.notValues);
  if (vals.length === 0 && notVals.length === 0) {
    c.error(p, `condition ${key} needs values or notValues`);
    return;
  }
  const reported = new Set<string>();
  for (const [field, given] of [['values', vals], ['notValues', notVals]] as const) {
    if (given.length === 0) continue;
    const problem = attributeProblem(key, given.map(([, s]) => s));
    if (problem && !reported.has(problem)) c.error([...p, field], `condition ${key}: ${problem}`);
    if (problem) reported.add(problem);
  }
}

function attributeProblem(key: string, vals: string[]): string | undefined {
  if (vals.some((v) => v === '')) return 'an empty value is not allowed';
  const mapKey = (): string | undefined => {
    const open = key.indexOf('[');
    return key.endsWith(']') && open > 0 && open < key.length - 2 ? undefined : `key must have the form ${key.slice(0, Math.max(open, 0)) || key}[NAME]`;
  };
  const ips = (): string | undefined => vals.map(ipOrCidrProblem).find((x) => x !== undefined);
  if (key.startsWith('request.headers')) return mapKey();
  if (key.startsWith('request.auth.claims')) return mapKey();
  if (key.startsWith('experimental.envoy.filters.')) return mapKey();
  switch (key) {
    case 'source.ip':
    case 'remote.ip':
    case 'destination.ip':
      return ips();
    case 'destination.port':
      return vals.map(authzPortProblem).find((x) => x !== undefined);
    case 'source.serviceAccount':
      return vals.some((v) => v.includes('*') || v.split('/').length > 2) ? 'service accounts are serviceAccount or namespace/serviceAccount, without wildcards' : undefined;
    case 'source.trustDomain':
      return vals.some((v) => (v.split('*').length > 2) || (v.includes('*') && v !== '*' && !v.startsWith('*') && !v.endsWith('*')))
        ? 'a trust domain may have one wildcard *, at the start or the end'
        : undefined;
    case 'source.namespace':
    case 'source.principal':
    case 'request.auth.principal':
    case 'request.auth.audiences':
    case 'request.auth.presenter':
    case 'connection.sni':
      return undefined;
    case 'destination.namespace':
      return 'this attribute is replaced by the policy\'s own namespace (metadata.namespace)';
    case 'destination.name':
    case 'destination.user':
      return 'this attribute was removed after v1alpha1';
    default:
      if (key.startsWith('destination.labels')) return 'this attribute is replaced by the policy\'s selector';
      return `unknown attribute: use one of ${KNOWN_KEYS}`;
  }
}
