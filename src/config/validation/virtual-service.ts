// VirtualService rules beyond the schema, as Istio's webhook applies them: hosts, gateways, and every
// http/tcp/tls route (destinations and weights, match, redirect, rewrite, retries, fault, CORS, mirrors).
// Reports problems on the checker; never throws.

import { entries, isSet, list, num, obj, quote, str, strings, type Checker, type Obj, type Path } from './check.ts';
import {
  checkExportTo, checkHeaderOperations, checkLabels, checkRegex, checkStringMatch, durationProblem, fqdnProblem,
  hostsOverlap, hostSubsetOf, ipOrCidrProblem, isDnsLabel, isHeaderToken, isIPAddress, isJwtClaimRoute,
  matchHeaderNameProblem, parseDuration, percentageProblem, portProblem, wildcardDomainProblem,
} from './common.ts';

const RETRY_ON = new Set([
  '5xx', 'gateway-error', 'reset', 'reset-before-request', 'connect-failure', 'retriable-4xx', 'refused-stream',
  'retriable-status-codes', 'retriable-headers', 'envoy-ratelimited', 'http3-post-connect-failure',
  'cancelled', 'deadline-exceeded', 'internal', 'resource-exhausted', 'unavailable',
]);
/** HTTP status codes with a registered meaning (usable in retryOn). */
const HTTP_STATUSES = new Set([
  100, 101, 102, 103, 200, 201, 202, 203, 204, 205, 206, 207, 208, 226, 300, 301, 302, 303, 304, 305, 307, 308,
  400, 401, 402, 403, 404, 405, 406, 407, 408, 409, 410, 411, 412, 413, 414, 415, 416, 417, 418, 421, 422, 423,
  424, 425, 426, 428, 429, 431, 451, 500, 501, 502, 503, 504, 505, 506, 507, 508, 510, 511,
]);
export const GRPC_STATUSES = new Set([
  'OK', 'CANCELLED', 'UNKNOWN', 'INVALID_ARGUMENT', 'DEADLINE_EXCEEDED', 'NOT_FOUND', 'ALREADY_EXISTS', 'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED', 'FAILED_PRECONDITION', 'ABORTED', 'OUT_OF_RANGE', 'UNIMPLEMENTED', 'INTERNAL', 'UNAVAILABLE',
  'DATA_LOSS', 'UNAUTHENTICATED',
]);
const CORS_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', '*']);
const MESH = 'mesh';

export function validateVirtualService(c: Checker, spec: Obj): void {
  const hosts = strings(spec.hosts);
  const gateways = strings(spec.gateways);
  const http = list(spec.http);
  const tls = list(spec.tls);
  const tcp = list(spec.tcp);
  const delegate = list(spec.hosts).length === 0;

  if (delegate) {
    const what = 'a VirtualService without hosts is a delegate (used through another VirtualService\'s http.delegate)';
    if (gateways.length > 0) c.error(['spec', 'gateways'], `${what} and must not list gateways; add hosts to bind it to gateways`);
    if (tls.length > 0) c.error(['spec', 'tls'], `${what} and can carry only http routes, not tls`);
    if (tcp.length > 0) c.error(['spec', 'tcp'], `${what} and can carry only http routes, not tcp`);
  }
  const appliesToGateway = gateways.length > 0 && !gateways.some(([, g]) => g === MESH);
  const appliesToMesh = !appliesToGateway;
  checkGatewayNames(c, ['spec', 'gateways'], spec.gateways);

  if (appliesToMesh) {
    http.forEach((route, i) => {
      list(obj(route)?.match).forEach((m, j) => {
        for (const field of ['headers', 'withoutHeaders']) {
          for (const [name] of entries(obj(m)?.[field])) {
            if (isJwtClaimRoute(name)) {
              c.error(['spec', 'http', i, 'match', j, field, name], `JWT claim based routing (${name}) works only on gateways: list the gateway in spec.gateways`);
            }
          }
        }
      });
    });
  }

  const sni = tls.some((t) => list(obj(t)?.match).some((m) => list(obj(m)?.sniHosts).length > 0));
  let allHostsValid = true;
  for (const [i, h] of hosts) {
    const problem = appliesToGateway ? gatewayBoundHostProblem(h, sni) : wildcardDomainProblem(h);
    if (problem !== undefined) {
      if (!isIPAddress(h)) {
        c.error(['spec', 'hosts', i], problem);
        allHostsValid = false;
      }
    } else if (appliesToMesh && h === '*') {
      c.error(['spec', 'hosts', i], 'host "*" is not allowed for a VirtualService that applies to sidecars (the mesh gateway): list the hosts, or bind it to a gateway');
      allHostsValid = false;
    }
  }
  if (allHostsValid) {
    for (let a = 0; a < hosts.length; a++) {
      for (let b = a + 1; b < hosts.length; b++) {
        const [, ha] = hosts[a] ?? [0, ''];
        const [ib, hb] = hosts[b] ?? [0, ''];
        if (hostsOverlap(ha, hb)) c.error(['spec', 'hosts', ib], `duplicate hosts in one VirtualService: ${ha} and ${hb} overlap; list each host once`);
      }
    }
  }

  if (http.length === 0 && tls.length === 0 && tcp.length === 0) {
    c.error(['spec'], 'a VirtualService needs at least one http, tcp or tls route');
  }
  const routeNames = new Map<string, number>();
  http.forEach((route, i) => {
    const r = obj(route);
    const p = ['spec', 'http', i];
    if (!r) {
      c.error(p, 'an http route must be a mapping with route, redirect, directResponse or delegate');
      return;
    }
    const name = str(r.name);
    if (name) {
      const first = routeNames.get(name);
      if (first !== undefined) c.warn([...p, 'name'], `route name ${quote(name)} is already used by spec.http[${first}]: names should be unique (they label stats and access logs)`);
      else routeNames.set(name, i);
    }
    checkHttpRoute(c, p, r, delegate);
  });
  tls.forEach((route, i) => checkTlsRoute(c, ['spec', 'tls', i], obj(route), hosts.map(([, h]) => h), appliesToGateway));
  tcp.forEach((route, i) => checkTcpRoute(c, ['spec', 'tcp', i], obj(route)));
  checkExportTo(c, ['spec', 'exportTo'], c.r.metadata.namespace, spec.exportTo);
}

/** Hosts of a VirtualService bound to gateways: as usual, plus Istio's auto-generated SNI names. */
function gatewayBoundHostProblem(host: string, sni: boolean): string | undefined {
  if (sni && host.startsWith('outbound_')) {
    return /^outbound_\.[0-9]+_\._\..*[a-zA-Z]/.test(host) ? undefined : `host ${quote(host)} is not valid: auto-generated SNI names have the form outbound_.<PORT>_._.<HOSTNAME>`;
  }
  return wildcardDomainProblem(host);
}

/** `gateways`: `mesh`, `<namespace>/<name>`, or a bare gateway name in this namespace. */
export function checkGatewayNames(c: Checker, path: Path, gateways: unknown): void {
  for (const [i, g] of strings(gateways)) {
    const p = [...path, i];
    const slash = g.indexOf('/');
    if (slash < 0) {
      if (g.includes('.')) {
        const [name, ns] = g.split('.');
        c.warn(p, `gateway ${quote(g)} uses the legacy name.namespace form; prefer <namespace>/<name>: "${ns ?? ''}/${name ?? ''}"`);
      }
      c.check(p, fqdnProblem(g) === undefined ? undefined : `gateway ${quote(g)} is not valid: write mesh, <name> or <namespace>/<name>`);
      continue;
    }
    const ns = g.slice(0, slash);
    const name = g.slice(slash + 1);
    if (ns === '' || name === '') c.error(p, `gateway ${quote(g)} is not valid: both namespace and name are needed in <namespace>/<name>`);
    else if (!isDnsLabel(ns)) c.error(p, `gateway ${quote(g)} has an invalid namespace ${quote(ns)}: it must be a DNS label`);
    else if (!isDnsLabel(name)) c.error(p, `gateway ${quote(g)} has an invalid name ${quote(name)}: it must be a DNS label`);
  }
}

/** A route destination: host (required; a service name or `*.domain`, never `*`), subset, port. */
export function checkDestination(c: Checker, path: Path, destination: unknown): void {
  const d = obj(destination);
  if (!d) return;
  const host = str(d.host);
  if (host === undefined || host === '') {
    c.error([...path, 'host'], 'destination host is required: a service name such as reviews or reviews.bookinfo.svc.cluster.local');
  } else if (host === '*') {
    c.error([...path, 'host'], 'destination host "*" is not allowed: name a service (wildcards such as *.example.com are allowed)');
  } else {
    c.check([...path, 'host'], wildcardDomainProblem(host));
  }
  const subset = str(d.subset);
  if (subset !== undefined && subset !== '' && !isDnsLabel(subset)) {
    c.error([...path, 'subset'], `subset name ${quote(subset)} is not valid: it must be a DNS label (letters, digits and '-', at most 63)`);
  }
  const port = obj(d.port);
  if (port) c.check([...path, 'port', 'number'], portProblem(port.number));
}

function checkHttpRoute(c: Checker, p: Path, r: Obj, delegateVs: boolean): void {
  const hasRoute = list(r.route).length > 0;
  const redirect = isSet(r, 'redirect');
  const direct = isSet(r, 'directResponse');
  const fault = isSet(r, 'fault');
  const rewrite = isSet(r, 'rewrite');
  const isRoot = !delegateVs && isSet(r, 'delegate');
  const only = 'an http route has exactly one of route, redirect, directResponse or delegate';

  if (isRoot) {
    if (redirect) c.error([...p, 'redirect'], `${only}: this one delegates, so it cannot also redirect`);
    if (isSet(r, 'route')) c.error([...p, 'route'], `${only}: this one delegates, so it cannot also list route destinations`);
    if (direct) c.error([...p, 'directResponse'], `${only}: this one delegates, so it cannot also respond directly`);
  } else {
    if (delegateVs && isSet(r, 'delegate')) c.error([...p, 'delegate'], 'a delegate VirtualService cannot delegate again: delegation is one level deep');
    if (redirect) {
      if (hasRoute) c.error([...p, 'redirect'], `${only}: this one has both route and redirect`);
      if (fault) c.error([...p, 'fault'], 'a redirect route cannot inject faults: remove fault or redirect');
      if (rewrite) c.error([...p, 'rewrite'], 'a redirect route cannot also rewrite: put the new URI in redirect.uri');
      if (direct) c.error([...p, 'directResponse'], `${only}: this one has both redirect and directResponse`);
    } else if (direct) {
      if (hasRoute) c.error([...p, 'directResponse'], `${only}: this one has both route and directResponse`);
      if (fault) c.error([...p, 'fault'], 'a directResponse route cannot inject faults: remove fault or directResponse');
      if (rewrite) c.error([...p, 'rewrite'], 'a directResponse route cannot rewrite: remove rewrite or directResponse');
    } else if (!hasRoute) {
      c.error([...p], `${only}: this one has none`);
    }
  }
  if (isSet(r, 'mirror') && list(r.mirrors).length > 0) c.error([...p, 'mirrors'], 'use either mirror or mirrors, not both');

  list(r.match).forEach((m, j) => checkHttpMatch(c, [...p, 'match', j], obj(m)));
  checkHeaderOperations(c, [...p, 'headers'], r.headers);
  checkCors(c, [...p, 'corsPolicy'], obj(r.corsPolicy));
  checkFault(c, [...p, 'fault'], obj(r.fault));

  const mirrorPercent = num(obj(r.mirrorPercent)?.value ?? r.mirrorPercent);
  if (isSet(r, 'mirrorPercent')) {
    if (mirrorPercent !== undefined && mirrorPercent > 100) c.error([...p, 'mirrorPercent'], `mirrorPercent ${mirrorPercent} must be at most 100`);
    c.warn([...p, 'mirrorPercent'], 'mirrorPercent is deprecated: use mirrorPercentage: {value: N}');
  }
  const mirrorPercentage = num(obj(r.mirrorPercentage)?.value);
  if (mirrorPercentage !== undefined && (mirrorPercentage < 0 || mirrorPercentage > 100)) {
    c.error([...p, 'mirrorPercentage', 'value'], `mirrorPercentage ${mirrorPercentage} must be in the range 0..100`);
  }
  checkDestination(c, [...p, 'mirror'], r.mirror);
  list(r.mirrors).forEach((m, j) => {
    const mp = [...p, 'mirrors', j];
    const mo = obj(m);
    if (!mo || !isSet(mo, 'destination')) {
      c.error(mp, 'each mirrors entry needs a destination');
      return;
    }
    checkDestination(c, [...mp, 'destination'], mo.destination);
    const v = num(obj(mo.percentage)?.value);
    if (v !== undefined && (v < 0 || v > 100)) c.error([...mp, 'percentage', 'value'], `mirror percentage ${v} must be in the range 0..100`);
  });

  checkRedirect(c, [...p, 'redirect'], obj(r.redirect), list(r.match));
  checkDirectResponse(c, [...p, 'directResponse'], obj(r.directResponse));
  checkRetries(c, [...p, 'retries'], obj(r.retries));
  checkRewrite(c, [...p, 'rewrite'], obj(r.rewrite), obj(r.headers));
  checkWeightedDestinations(c, [...p, 'route'], r.route, true);
  if (isSet(r, 'timeout')) c.check([...p, 'timeout'], durationProblem(r.timeout, 'timeout'));
}

function checkHttpMatch(c: Checker, p: Path, m: Obj | undefined): void {
  if (!m) return;
  for (const [name, value] of entries(m.headers)) {
    const hp = [...p, 'headers', name];
    c.check(hp, matchHeaderNameProblem(name));
    if (value === null) c.error(hp, `header match ${quote(name)} cannot be null: give exact, prefix or regex (or {} to require the header)`);
    checkStringMatch(c, hp, value);
  }
  for (const [name, value] of entries(m.withoutHeaders)) {
    const hp = [...p, 'withoutHeaders', name];
    c.check(hp, matchHeaderNameProblem(name));
    if (str(obj(value)?.regex) !== '*') checkStringMatch(c, hp, value);
  }
  checkStringMatch(c, [...p, 'uri'], m.uri, { allowEmptyPrefix: true });
  for (const field of ['scheme', 'method', 'authority']) checkStringMatch(c, [...p, field], m[field]);
  for (const [name, value] of entries(m.queryParams)) checkStringMatch(c, [...p, 'queryParams', name], value);
  c.check([...p, 'port'], portProblem(m.port));
  checkLabels(c, [...p, 'sourceLabels'], m.sourceLabels);
  checkGatewayNames(c, [...p, 'gateways'], m.gateways);
  const ns = str(m.sourceNamespace);
  if (ns !== undefined && ns !== '' && !isDnsLabel(ns)) c.error([...p, 'sourceNamespace'], `sourceNamespace ${quote(ns)} is not a valid namespace name (a DNS label)`);
}

/** Destinations with weights: each weight >= 0; with several destinations the weights must not all be 0. */
function checkWeightedDestinations(c: Checker, path: Path, route: unknown, http: boolean): void {
  const items = list(route);
  let total = 0;
  let anyWeight = false;
  items.forEach((item, i) => {
    const p = [...path, i];
    const d = obj(item);
    if (!d) return;
    if (!isSet(d, 'destination')) c.error([...p, 'destination'], 'destination is required: name the service in destination.host');
    else checkDestination(c, [...p, 'destination'], d.destination);
    if (http) checkHeaderOperations(c, [...p, 'headers'], d.headers);
    const w = num(d.weight);
    if (w !== undefined) {
      anyWeight = true;
      if (w < 0) c.error([...p, 'weight'], `weight ${w} must not be negative: weights are shares of traffic, usually adding up to 100`);
      else total += w;
    }
  });
  if (items.length > 1 && total === 0) {
    c.error(path, 'weights add up to 0: give the destinations weights that add up to 100 (e.g. 90 and 10)');
  } else if (items.length > 1 && anyWeight && total !== 100) {
    c.warn(path, `weights add up to ${total}, not 100: traffic is split in proportion to them; make them add up to 100 to say what you mean`);
  }
}

function checkCors(c: Checker, p: Path, cors: Obj | undefined): void {
  if (!cors) return;
  list(cors.allowOrigins).forEach((o, i) => {
    const op = [...p, 'allowOrigins', i];
    const m = obj(o);
    const value = m ? (str(m.exact) ?? str(m.prefix) ?? str(m.regex)) : undefined;
    if (!value) {
      c.error(op, 'an allowOrigins entry needs a non-empty exact, prefix or regex (e.g. exact: https://example.com)');
      return;
    }
    if (m && str(m.regex) !== undefined) checkRegex(c, [...op, 'regex'], value);
  });
  for (const [i, method] of strings(cors.allowMethods)) {
    if (!CORS_METHODS.has(method)) c.error([...p, 'allowMethods', i], `${quote(method)} is not a supported HTTP method: use ${[...CORS_METHODS].join(', ')}`);
  }
  for (const field of ['allowHeaders', 'exposeHeaders']) {
    for (const [i, name] of strings(cors[field])) {
      if (name !== '*' && !isHeaderToken(name)) c.error([...p, field, i], `${quote(name)} is not a valid header name (or "*")`);
    }
  }
  if (isSet(cors, 'maxAge')) {
    const ok = c.check([...p, 'maxAge'], durationProblem(cors.maxAge, 'maxAge'));
    const ns = parseDuration(str(cors.maxAge) ?? '');
    if (ok && ns !== undefined && ns % 1e9 !== 0) c.error([...p, 'maxAge'], `maxAge ${String(cors.maxAge)} must be whole seconds (e.g. 24h or 86400s)`);
  }
}

function checkFault(c: Checker, p: Path, fault: Obj | undefined): void {
  if (!fault) return;
  const delay = obj(fault.delay);
  const abort = obj(fault.abort);
  if (!delay && !abort) c.error(p, 'fault injection needs an abort, a delay, or both');
  if (delay) {
    const dp = [...p, 'delay'];
    c.check([...dp, 'percentage', 'value'], percentageProblem(obj(delay.percentage)?.value, 'delay percentage'));
    const pct = num(delay.percent);
    if (pct !== undefined && (pct < 0 || pct > 100)) c.error([...dp, 'percent'], `delay percent ${pct} must be in the range 0..100`);
    if (isSet(delay, 'fixedDelay')) c.check([...dp, 'fixedDelay'], durationProblem(delay.fixedDelay, 'fixedDelay'));
    else if (isSet(delay, 'exponentialDelay')) c.error([...dp, 'exponentialDelay'], 'exponentialDelay is not supported: use fixedDelay (e.g. 5s)');
    else c.error(dp, 'a delay needs fixedDelay (e.g. fixedDelay: 5s)');
  }
  if (abort) {
    const ap = [...p, 'abort'];
    c.check([...ap, 'percentage', 'value'], percentageProblem(obj(abort.percentage)?.value, 'abort percentage'));
    if (isSet(abort, 'httpStatus')) {
      const s = num(abort.httpStatus);
      if (s !== undefined && (!Number.isInteger(s) || s < 200 || s > 599)) c.error([...ap, 'httpStatus'], `abort httpStatus ${s} must be an HTTP status in the range 200..599`);
    } else if (isSet(abort, 'grpcStatus')) {
      const g = str(abort.grpcStatus);
      if (g !== undefined && !GRPC_STATUSES.has(g)) c.error([...ap, 'grpcStatus'], `gRPC status ${quote(g)} is not known: use a code name such as NOT_FOUND or UNAVAILABLE`);
    } else if (isSet(abort, 'http2Error')) {
      c.error([...ap, 'http2Error'], 'http2Error aborts are not supported: use httpStatus or grpcStatus');
    } else {
      c.warn(ap, 'abort has no httpStatus or grpcStatus, so it does nothing');
    }
  }
}

function checkRedirect(c: Checker, p: Path, redirect: Obj | undefined, matches: unknown[]): void {
  if (!redirect) return;
  const uri = str(redirect.uri) ?? '';
  const prefixRewrite = str(redirect.prefixRewrite) ?? '';
  if (uri !== '' && prefixRewrite !== '') c.error([...p, 'prefixRewrite'], 'a redirect has either uri or prefixRewrite, not both');
  if (prefixRewrite !== '') {
    matches.forEach((m, j) => {
      const u = obj(obj(m)?.uri);
      if (u && !isSet(u, 'prefix')) c.error([...p, 'prefixRewrite'], `redirect prefixRewrite needs every uri match to be a prefix match (match[${j}].uri is not)`);
    });
  }
  if (uri === '' && prefixRewrite === '' && !str(redirect.authority) && !isSet(redirect, 'port') && !isSet(redirect, 'derivePort') && !str(redirect.scheme)) {
    c.error(p, 'a redirect must change something: give uri, prefixRewrite, authority, scheme or port');
  }
  const code = num(redirect.redirectCode);
  if (code !== undefined && code !== 0 && (code < 300 || code > 399)) c.error([...p, 'redirectCode'], `redirectCode ${code} is not a redirect status: use 3xx (301, 302, 307, 308...)`);
  const scheme = str(redirect.scheme);
  if (scheme !== undefined && scheme !== '' && scheme !== 'http' && scheme !== 'https') c.error([...p, 'scheme'], `redirect scheme ${quote(scheme)} is not valid: use http or https`);
  const port = num(redirect.port);
  if (port !== undefined && port > 0) c.check([...p, 'port'], portProblem(port));
}

function checkDirectResponse(c: Checker, p: Path, dr: Obj | undefined): void {
  if (!dr) return;
  const status = num(dr.status);
  if (status === undefined || !Number.isInteger(status) || status < 200 || status > 599) {
    c.error([...p, 'status'], `directResponse status ${status ?? '(missing)'} must be an HTTP status in the range 200..599`);
  }
  const body = obj(dr.body);
  const text = str(body?.string) ?? str(body?.bytes) ?? '';
  const size = body && isSet(body, 'bytes') ? Math.floor((text.length * 3) / 4) : Buffer.byteLength(text);
  if (size > 1024 * 1024) c.error([...p, 'body'], `directResponse body is ${size} bytes: it must be under 1MB`);
  else if (size > 100 * 1024) c.warn([...p, 'body'], `directResponse body is ${size} bytes: large bodies slow down configuration pushes`);
}

function checkRetries(c: Checker, p: Path, retries: Obj | undefined): void {
  if (!retries) return;
  const attempts = num(retries.attempts) ?? 0;
  if (attempts < 0) c.error([...p, 'attempts'], `retry attempts ${attempts} must not be negative (0 disables retries)`);
  if (attempts === 0 && (isSet(retries, 'perTryTimeout') || str(retries.retryOn) || isSet(retries, 'retryRemoteLocalities'))) {
    c.error([...p, 'attempts'], 'retry settings are given but attempts is 0 (retries disabled): set attempts to 1 or more');
  }
  if (isSet(retries, 'perTryTimeout')) c.check([...p, 'perTryTimeout'], durationProblem(retries.perTryTimeout, 'perTryTimeout'));
  if (isSet(retries, 'backoff')) c.check([...p, 'backoff'], durationProblem(retries.backoff, 'backoff'));
  const retryOn = str(retries.retryOn);
  if (retryOn) {
    const bad = retryOn.split(',').filter((policy) => !RETRY_ON.has(policy) && !HTTP_STATUSES.has(/^[0-9]+$/.test(policy) ? Number(policy) : NaN));
    if (bad.length > 0) {
      const what = bad.length === 1 ? 'is not a valid retryOn policy' : 'are not valid retryOn policies';
      c.error([...p, 'retryOn'], `${bad.map(quote).join(', ')} ${what}: use a comma-separated list (no spaces) of ${[...RETRY_ON].join(', ')}, or HTTP status codes such as 503`);
    }
  }
}

function checkRewrite(c: Checker, p: Path, rewrite: Obj | undefined, headers: Obj | undefined): void {
  const authority = str(rewrite?.authority) ?? '';
  if (rewrite) {
    const uri = str(rewrite.uri) ?? '';
    const regex = obj(rewrite.uriRegexRewrite);
    if (uri !== '' && regex) c.error([...p, 'uriRegexRewrite'], 'a rewrite has either uri or uriRegexRewrite, not both');
    if (uri === '' && !regex && authority === '') c.error(p, 'a rewrite must change something: give uri, uriRegexRewrite or authority');
    if (regex) {
      const match = str(regex.match) ?? '';
      if (match === '' || !str(regex.rewrite)) c.error([...p, 'uriRegexRewrite'], 'uriRegexRewrite needs both match (an RE2 regex) and rewrite');
      if (match !== '') checkRegex(c, [...p, 'uriRegexRewrite', 'match'], match);
    }
  }
  // The authority may be rewritten in one place only: rewrite.authority or a :authority/host request header.
  let current = authority;
  const request = obj(headers?.request);
  for (const op of ['set', 'add']) {
    for (const [name, value] of entries(request?.[op])) {
      const lower = name.toLowerCase();
      if (lower !== ':authority' && lower !== 'host') continue;
      if (current !== '') {
        c.error([...p.slice(0, -1), 'headers', 'request', op, name], `the authority is rewritten twice (to ${quote(current)} and ${quote(String(value))}): set it in one place only`);
      }
      current = String(value);
    }
  }
}

function checkTlsRoute(c: Checker, p: Path, route: Obj | undefined, vsHosts: string[], gatewayBound: boolean): void {
  if (!route) return;
  const matches = list(route.match);
  if (matches.length === 0) c.error([...p, 'match'], 'a tls route needs at least one match with sniHosts');
  matches.forEach((m, j) => {
    const mp = [...p, 'match', j];
    const mo = obj(m);
    if (!mo) return;
    const sniHosts = strings(mo.sniHosts);
    if (sniHosts.length === 0) c.error([...mp, 'sniHosts'], 'a tls match needs at least one SNI host in sniHosts');
    for (const [k, h] of sniHosts) {
      const sp = [...mp, 'sniHosts', k];
      const problem = gatewayBound ? gatewayBoundHostProblem(h, true) : wildcardDomainProblem(h);
      if (problem !== undefined) {
        if (isIPAddress(h)) c.warn(sp, `SNI host ${quote(h)} is an IP address: SNI carries host names and most clients never send an IP`);
        else c.error(sp, problem);
        continue;
      }
      if (!vsHosts.some((vh) => hostSubsetOf(h, vh))) {
        c.error(sp, `SNI host ${quote(h)} is not covered by the VirtualService hosts [${vsHosts.join(', ')}]: use one of them or a name under a wildcard host`);
      }
    }
    checkL4Match(c, mp, mo);
  });
  if (list(route.route).length === 0) c.error([...p, 'route'], 'a tls route needs at least one destination in route');
  checkWeightedDestinations(c, [...p, 'route'], route.route, false);
}

function checkTcpRoute(c: Checker, p: Path, route: Obj | undefined): void {
  if (!route) return;
  list(route.match).forEach((m, j) => {
    const mo = obj(m);
    if (mo) checkL4Match(c, [...p, 'match', j], mo);
  });
  if (list(route.route).length === 0) c.error([...p, 'route'], 'a tcp route needs at least one destination in route');
  checkWeightedDestinations(c, [...p, 'route'], route.route, false);
}

function checkL4Match(c: Checker, p: Path, m: Obj): void {
  for (const [i, subnet] of strings(m.destinationSubnets)) c.check([...p, 'destinationSubnets', i], ipOrCidrProblem(subnet));
  c.check([...p, 'port'], portProblem(m.port));
  checkLabels(c, [...p, 'sourceLabels'], m.sourceLabels);
  checkGatewayNames(c, [...p, 'gateways'], m.gateways);
  const ns = str(m.sourceNamespace);
  if (ns !== undefined && ns !== '' && !isDnsLabel(ns)) c.error([...p, 'sourceNamespace'], `sourceNamespace ${quote(ns)} is not a valid namespace name (a DNS label)`);
}
