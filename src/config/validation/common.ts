// Rules shared by several kinds: DNS names and hosts, IPs and CIDRs, ports, durations, percentages,
// labels and selectors, exportTo, HTTP header names and values, string matches, protocols.
// Each rule returns a problem sentence (what is wrong, what is allowed) or undefined.

import { isIP } from 'node:net';
import { re2Problem } from './re2.ts';
import { entries, num, obj, quote, str, strings, type Checker, type Path } from './check.ts';

// ---------- names ----------

const LABEL_ANY_CASE = /^[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?$/;
const LABEL_LOWER = /^[a-z0-9](?:[-a-z0-9]*[a-z0-9])?$/;
const LABEL_1035 = /^[a-z](?:[-a-z0-9]*[a-z0-9])?$/;
const WILDCARD_LABEL = /^(?:\*|(?:\*|\*-)?[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?)$/;

/** Istio's DNS label: letters (either case), digits and '-', at most 63 characters. */
export function isDnsLabel(s: string): boolean {
  return s.length <= 63 && LABEL_ANY_CASE.test(s);
}

/** Kubernetes' DNS-1123 label: lower case, digits and '-', at most 63 characters. */
export function isK8sLabel(s: string): boolean {
  return s.length <= 63 && LABEL_LOWER.test(s);
}

/** Kubernetes' DNS-1123 subdomain: lower-case labels joined by '.', at most 253 characters. */
export function isK8sSubdomain(s: string): boolean {
  return s.length > 0 && s.length <= 253 && s.split('.').every((l) => LABEL_LOWER.test(l));
}

/** Kubernetes' DNS-1035 label (Service names): starts with a letter. */
export function isDns1035Label(s: string): boolean {
  return s.length <= 63 && LABEL_1035.test(s);
}

/** IANA service name (container and target port names): 1-15 of [a-z0-9-], a letter, no '--'. */
export function ianaSvcNameProblem(s: string): string | undefined {
  if (s.length === 0 || s.length > 15) return `port name ${quote(s)} must be 1 to 15 characters`;
  if (!/^[a-z0-9-]+$/.test(s)) return `port name ${quote(s)} may contain only lower-case letters, digits and '-'`;
  if (!/[a-z]/.test(s)) return `port name ${quote(s)} must contain at least one letter`;
  if (s.includes('--') || s.startsWith('-') || s.endsWith('-')) return `port name ${quote(s)} must not start or end with '-' or contain '--'`;
  return undefined;
}

function dnsPreconditions(name: string): string | undefined {
  if (name.length === 0) return 'an empty host name is not allowed';
  if (name.length > 255) return `host name ${quote(name.slice(0, 40) + '...')} is too long (at most 255 characters)`;
  return undefined;
}

function labelsProblem(domain: string, rest: string): string | undefined {
  const parts = rest.split('.');
  const tld = parts[parts.length - 1] ?? '';
  if (/^[0-9]+$/.test(tld)) return `host ${quote(domain)} is not valid: the top-level label ${quote(tld)} cannot be all digits`;
  for (let i = 0; i < parts.length; i++) {
    const label = parts[i] ?? '';
    if (i === parts.length - 1 && label === '') return undefined; // trailing dot: `istio.io.`
    if (label.includes('*')) return `host ${quote(domain)} is not valid: a wildcard is allowed only at the start of the first label (*.example.com, *)`;
    if (!isDnsLabel(label)) {
      return `host ${quote(domain)} is not valid: label ${quote(label)} must be 1-63 letters, digits or '-', not starting or ending with '-'`;
    }
  }
  return undefined;
}

/** A fully qualified or short DNS name without wildcards (`reviews`, `reviews.bookinfo.svc.cluster.local`). */
export function fqdnProblem(name: string): string | undefined {
  return dnsPreconditions(name) ?? labelsProblem(name, name);
}

/** A DNS name whose first label may be a wildcard (`*`, `*.example.com`, `reviews`). */
export function wildcardDomainProblem(domain: string): string | undefined {
  const pre = dnsPreconditions(domain);
  if (pre) return pre;
  const dot = domain.indexOf('.');
  const first = dot < 0 ? domain : domain.slice(0, dot);
  if (!first.includes('*') && !isDnsLabel(first)) return labelsProblem(domain, first);
  if (first.length > 63 || !WILDCARD_LABEL.test(first)) {
    return `host ${quote(domain)} is not valid: a wildcard is allowed only at the start of the first label (*.example.com, *)`;
  }
  return dot < 0 ? undefined : labelsProblem(domain, domain.slice(dot + 1));
}

/** `*` alone, or a leading `*.`; `*foo.com` and `foo.*.com` are partial wildcards. */
export function partialWildcardProblem(host: string): string | undefined {
  if (host.includes('*') && host !== '*' && !host.startsWith('*.')) {
    return `partial wildcard ${quote(host)} is not supported: use * or a leading *. (e.g. *.example.com)`;
  }
  return undefined;
}

/** Istio host matching: does a overlap b (either a wildcard that covers the other, or equal)? */
export function hostsOverlap(a: string, b: string): boolean {
  if (a === b || a === '*' || b === '*') return true;
  const aw = a.startsWith('*');
  const bw = b.startsWith('*');
  if (aw && bw) {
    const sa = a.slice(1);
    const sb = b.slice(1);
    return sa.length >= sb.length ? sa.endsWith(sb) : sb.endsWith(sa);
  }
  if (aw) return b.endsWith(a.slice(1));
  if (bw) return a.endsWith(b.slice(1));
  return false;
}

/** Is host `sub` entirely covered by host `sup` (e.g. `a.example.com` by `*.example.com`)? */
export function hostSubsetOf(sub: string, sup: string): boolean {
  if (sup === '*' || sub === sup) return true;
  if (!sup.startsWith('*')) return false;
  const suffix = sup.slice(1);
  return sub.startsWith('*') ? sub.slice(1).endsWith(suffix) : sub.endsWith(suffix);
}

// ---------- addresses ----------

export function isIPAddress(s: string): boolean {
  return isIP(s) !== 0;
}

export function ipProblem(s: string): string | undefined {
  return isIPAddress(s) ? undefined : `${quote(s)} is not a valid IP address (e.g. 10.0.0.1 or 2001:db8::1)`;
}

/** An IP address or a CIDR block (`10.0.0.0/8`, `2001:db8::/32`). */
export function ipOrCidrProblem(s: string): string | undefined {
  const slash = s.indexOf('/');
  if (slash < 0) return isIPAddress(s) ? undefined : `${quote(s)} is not a valid IP address or CIDR block (e.g. 10.0.0.1, 10.0.0.0/16)`;
  const ip = s.slice(0, slash);
  const bits = s.slice(slash + 1);
  const family = isIP(ip);
  const max = family === 6 ? 128 : 32;
  if (family === 0 || !/^[0-9]{1,3}$/.test(bits) || Number(bits) > max) {
    return `${quote(s)} is not a valid CIDR block: write address/prefix-length, prefix length 0..${max} (e.g. 10.0.0.0/16)`;
  }
  return undefined;
}

export const UNIX_PREFIX = 'unix://';

/** The path of a unix domain socket (after `unix://`): absolute, not a directory, or `@abstract`. */
export function unixAddressProblem(path: string): string | undefined {
  if (path === '') return 'a unix domain socket address must not be empty: write unix:///absolute/path or unix://@abstract';
  if (path.startsWith('@')) return undefined;
  if (!path.startsWith('/') || path.endsWith('/')) return `unix domain socket ${quote(path)} must be an absolute path to a file (e.g. unix:///var/run/app.sock)`;
  return undefined;
}

// ---------- numbers ----------

export function portProblem(v: unknown, what = 'port number'): string | undefined {
  const n = num(v);
  if (n === undefined) return undefined;
  if (!Number.isInteger(n) || n < 1 || n > 65535) return `${what} ${n} must be in the range 1..65535`;
  return undefined;
}

/** A whole percentage 0..100 (int32 fields such as maxEjectionPercent). */
export function percentIntProblem(v: unknown, what: string): string | undefined {
  const n = num(v);
  if (n === undefined) return undefined;
  if (n < 0 || n > 100) return `${what} ${n} must be in the range 0..100`;
  return undefined;
}

/** A fractional percentage (Percent.value): 0, or 0.0001..100. */
export function percentageProblem(v: unknown, what = 'percentage'): string | undefined {
  const n = num(v);
  if (n === undefined) return undefined;
  if (n < 0 || n > 100 || (n > 0 && n < 0.0001)) return `${what} ${n} must be 0 or in the range 0.0001..100`;
  return undefined;
}

// ---------- durations ----------

const UNIT_NS: Record<string, number> = { ns: 1, us: 1e3, 'µs': 1e3, 'μs': 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };
const DURATION = /^[-+]?(?:(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:ns|us|µs|μs|ms|s|m|h))+$/;
const DURATION_PART = /([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h)/g;

/** Parses a Go/Kubernetes duration (`500ms`, `1.5s`, `1m30s`, `0`) into nanoseconds; undefined if malformed. */
export function parseDuration(s: string): number | undefined {
  if (s === '0' || s === '+0' || s === '-0') return 0;
  if (!DURATION.test(s)) return undefined;
  let total = 0;
  for (const m of s.matchAll(DURATION_PART)) total += Number(m[1]) * (UNIT_NS[m[2] ?? ''] ?? 0);
  return Math.round(s.startsWith('-') ? -total : total);
}

/** A duration of at least 1ms, to millisecond precision (Istio's rule for every duration field). */
export function durationProblem(v: unknown, what = 'duration'): string | undefined {
  const s = str(v);
  if (s === undefined) return undefined;
  const ns = parseDuration(s);
  if (ns === undefined) return `${what} ${quote(s)} is not a valid duration: write a number and a unit (ms, s, m, h), e.g. 500ms, 5s, 1m30s`;
  if (ns < 1e6) return `${what} ${s} is too short: it must be at least 1ms`;
  if (ns % 1e6 !== 0) return `${what} ${s} is finer than a millisecond: durations are accurate to 1ms`;
  return undefined;
}

// ---------- labels and selectors ----------

const QUALIFIED_NAME = /^(?:[A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;

/** A label key: `[prefix/]name`, prefix a DNS subdomain (<= 253), name <= 63 of [A-Za-z0-9-_.]. */
export function labelKeyProblem(key: string): string | undefined {
  const slash = key.lastIndexOf('/');
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if (prefix !== undefined && (prefix.length > 253 || !prefix.split('.').every(isDnsLabel))) {
    return `label key ${quote(key)} has an invalid prefix: it must be a DNS subdomain such as example.com/`;
  }
  if (name.length === 0 || name.length > 63 || !QUALIFIED_NAME.test(name)) {
    return `label key ${quote(key)} is not valid: the name part must be 1-63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit`;
  }
  return undefined;
}

export function labelValueProblem(key: string, value: string): string | undefined {
  if (value === '') return undefined;
  if (value.length > 63 || !QUALIFIED_NAME.test(value)) {
    return `label ${key} has an invalid value ${quote(value)}: at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit`;
  }
  return undefined;
}

/** Checks a map of labels at `path` (keys and values). */
export function checkLabels(c: Checker, path: Path, labels: unknown): void {
  for (const [k, v] of entries(labels)) {
    const p = [...path, k];
    if (c.check(p, labelKeyProblem(k)) && typeof v === 'string') c.check(p, labelValueProblem(k, v));
  }
}

/** An Istio workload selector: labels without wildcards or empty keys; a warning when empty. */
export function checkSelector(c: Checker, path: Path, selector: unknown, labelsField: 'labels' | 'matchLabels', owner: string): void {
  const sel = obj(selector);
  if (!sel) return;
  const labels = entries(sel[labelsField]);
  for (const [k, v] of labels) {
    const p = [...path, labelsField, k];
    if (k === '') c.error(p, 'an empty label key is not allowed in a selector');
    else if (k.includes('*') || (typeof v === 'string' && v.includes('*'))) c.error(p, `wildcards are not allowed in a selector (${k}=${String(v)}); list exact label values`);
    else if (c.check(p, labelKeyProblem(k)) && typeof v === 'string') c.check(p, labelValueProblem(k, v));
  }
  if (labels.length === 0) c.warn([...path], `selector has no ${labelsField}: this ${owner} selects every workload in the namespace`);
}

/** `exportTo`: `.`, `*`, `~` (ServiceEntry only) or namespace names, no duplicates, `*`/`~` alone. */
export function checkExportTo(c: Checker, path: Path, namespace: string, exportTo: unknown, opts: { serviceEntry?: boolean; drWithSelector?: boolean } = {}): void {
  const values = strings(exportTo);
  if (values.length === 0) return;
  const seen = new Set<string>();
  for (const [i, e] of values) {
    const key = e === '.' ? namespace : e;
    if (seen.has(key)) {
      const dotAndOwn = key === namespace && values.some(([, x]) => x === '.') && values.some(([, x]) => x === namespace);
      c.error([...path, i], dotAndOwn ? `duplicate exportTo entries: "." is this resource's namespace ${namespace}` : `duplicate exportTo entry ${quote(e)}`);
      continue;
    }
    if (e === '~' && !opts.serviceEntry) {
      c.error([...path, i], 'exportTo "~" (export to no one) is allowed only on ServiceEntry; use ".", "*" or namespace names');
      continue;
    }
    if (e !== '.' && e !== '*' && e !== '~' && !isK8sLabel(e)) {
      c.error([...path, i], `exportTo entry ${quote(e)} is not valid: use "." (this namespace), "*" (all namespaces) or a namespace name`);
      continue;
    }
    seen.add(key);
  }
  if (seen.has('*') && values.length > 1) c.error([...path], 'exportTo "*" exports to every namespace: it cannot be combined with other entries');
  if (seen.has('~') && values.length > 1) c.error([...path], 'exportTo "~" exports to no one: it cannot be combined with other entries');
  if (opts.drWithSelector && seen.size > 0) {
    if (!seen.has(namespace)) c.error([...path], 'a DestinationRule with a workloadSelector can be exported only to its own namespace (".")');
    else if (seen.size > 1) c.error([...path], 'a DestinationRule with a workloadSelector can have only one exportTo entry, its own namespace (".")');
  }
}

// ---------- HTTP ----------

const TOKEN = /^[!#$%&'*+\-.^_`|~A-Za-z0-9]+$/;
const PSEUDO_HEADERS = new Set([':method', ':scheme', ':authority', ':path', ':status']);

export function isHeaderToken(name: string): boolean {
  return TOKEN.test(name);
}

/** A JWT claim used as a routing header: `@request.auth.claims.<name>` or `@request.auth.claims[<name>]`. */
export function isJwtClaimRoute(name: string): boolean {
  return /^@request\.auth\.claims(?:\.[^.[\]]+|\[[^\]]+\])+$/.test(name);
}

/** A header name in a match: a token, a pseudo-header, or a JWT claim route. */
export function matchHeaderNameProblem(name: string): string | undefined {
  if (name === '') return 'header name cannot be empty';
  if (isJwtClaimRoute(name) || PSEUDO_HEADERS.has(name) || TOKEN.test(name)) return undefined;
  return `header name ${quote(name)} is not valid: use letters, digits and !#$%&'*+-.^_\`|~ (a pseudo-header such as :authority, or @request.auth.claims.NAME)`;
}

/** A header name in `headers.request.set/add`: `:authority` is the only pseudo-header allowed. */
export function setHeaderNameProblem(name: string): string | undefined {
  if (name === '') return 'header name cannot be empty';
  const lower = name.toLowerCase();
  if (name.startsWith(':') && lower !== ':authority') return `header ${quote(name)} cannot be set: names starting with ':' are reserved (except :authority)`;
  return undefined;
}

/** A header name removed from requests or changed on responses: no pseudo-headers, no Host. */
export function modifyHeaderNameProblem(name: string): string | undefined {
  if (name === '') return 'header name cannot be empty';
  if (name.toLowerCase() === 'host') return `header ${quote(name)} cannot be changed here: use rewrite.authority to change the Host`;
  if (name.startsWith(':')) return `header ${quote(name)} cannot be changed: names starting with ':' are reserved`;
  return undefined;
}

/** A header value for Envoy: no control characters; '%' escaped as '%%' or opening a %VARIABLE%. */
export function headerValueProblem(value: string): string | undefined {
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u0008\u000a-\u001f\u007f]/.test(value)) return `header value ${quote(value)} contains control characters`;
  let i = 0;
  while (i < value.length) {
    if (value[i] !== '%') {
      i++;
      continue;
    }
    if (value[i + 1] === '%') {
      i += 2;
      continue;
    }
    const end = endOfVariable(value, i + 1);
    if (end < 0) return `header value ${quote(value)} has an unterminated %VARIABLE%: write %% for a literal %`;
    i = end + 1;
  }
  return undefined;
}

/** Index of the '%' closing a variable that starts at `i`, or -1. Skips `(...)` arguments and quoted strings. */
function endOfVariable(s: string, i: number): number {
  let depth = 0;
  let quoted = false;
  for (let j = i; j < s.length; j++) {
    const ch = s[j];
    if (quoted) {
      if (ch === '\\') j++;
      else if (ch === '"') quoted = false;
      continue;
    }
    if (ch === '"' && depth > 0) quoted = true;
    else if (ch === '(') depth++;
    else if (ch === ')') depth = Math.max(0, depth - 1);
    else if (ch === '%' && depth === 0) return j;
  }
  return -1;
}

/** `headers: {request: {set, add, remove}, response: {set, add, remove}}`. */
export function checkHeaderOperations(c: Checker, path: Path, headers: unknown): void {
  const h = obj(headers);
  if (!h) return;
  for (const side of ['request', 'response'] as const) {
    const ops = obj(h[side]);
    if (!ops) continue;
    for (const op of ['set', 'add'] as const) {
      for (const [name, value] of entries(ops[op])) {
        const p = [...path, side, op, name];
        const nameOk = c.check(p, side === 'request' ? setHeaderNameProblem(name) : modifyHeaderNameProblem(name));
        if (nameOk && typeof value === 'string') c.check(p, headerValueProblem(value));
      }
    }
    for (const [i, name] of strings(ops.remove)) c.check([...path, side, 'remove', i], modifyHeaderNameProblem(name));
  }
}

/** A StringMatch `{exact|prefix|regex}`: prefix not empty (unless allowed), regex valid RE2. */
export function checkStringMatch(c: Checker, path: Path, match: unknown, opts: { allowEmptyPrefix?: boolean } = {}): void {
  const m = obj(match);
  if (!m) return;
  const prefix = str(m.prefix);
  if (prefix === '' && !opts.allowEmptyPrefix) c.error([...path, 'prefix'], 'a prefix match must not be empty: omit the match to match everything');
  const regex = str(m.regex);
  if (regex !== undefined) checkRegex(c, [...path, 'regex'], regex);
}

export function checkRegex(c: Checker, path: Path, regex: string): void {
  if (regex === '') {
    c.error(path, 'a regex match must not be empty');
    return;
  }
  const problem = re2Problem(regex);
  if (problem) c.error(path, `regex ${quote(regex)} is not valid: ${problem}; Istio uses RE2 syntax (https://github.com/google/re2/wiki/Syntax)`);
}

// ---------- protocols ----------

const PROTOCOLS: Record<string, string> = {
  tcp: 'TCP', udp: 'UDP', grpc: 'GRPC', 'grpc-web': 'GRPC-Web', http: 'HTTP', http_proxy: 'HTTP_PROXY', http2: 'HTTP2',
  https: 'HTTPS', tls: 'TLS', mongo: 'Mongo', redis: 'Redis', mysql: 'MySQL',
};
export const PROTOCOL_NAMES = 'HTTP, HTTPS, HTTP2, GRPC, GRPC-Web, HTTP_PROXY, TCP, TLS, MONGO, REDIS, MYSQL, UDP';

/** The canonical protocol name for a port's protocol (case-insensitive), or undefined if unknown. */
export function parseProtocol(p: string): string | undefined {
  return PROTOCOLS[p.toLowerCase()];
}

export function protocolProblem(v: unknown): string | undefined {
  const p = str(v);
  if (p === undefined || p === '') return undefined;
  return parseProtocol(p) ? undefined : `unsupported protocol ${quote(p)}: use one of ${PROTOCOL_NAMES}`;
}

export function isHttpProtocol(p: string | undefined): boolean {
  return ['HTTP', 'HTTP2', 'HTTP_PROXY', 'GRPC', 'GRPC-Web'].includes(parseProtocol(p ?? '') ?? '');
}

export function isTlsProtocol(p: string | undefined): boolean {
  return ['HTTPS', 'TLS'].includes(parseProtocol(p ?? '') ?? '');
}

/** Is a string list present (even if empty)? Distinguishes `from: []` from no `from`. */
export function isList(v: unknown): v is unknown[] {
  return Array.isArray(v);
}
