// Envoy's route selection, compiled once per RouteConfiguration: virtual host by domain (exact, then
// longest suffix wildcard, then longest prefix wildcard, then '*'), then the first route whose match
// (path, headers, query parameters) accepts the request. Shared by the sidecar and the control plane's
// simulator so both agree. Compiling never throws: an invalid regex becomes a match that fails, and
// is reported through `problems`.

type Json = Record<string, unknown>;

/** What route matching reads of a request. Header names are lower case; pseudo-headers (:method,
 *  :authority, :path, :scheme) are answered too. Several values of one header are joined with ','. */
export interface RouteRequest {
  /** :authority / Host, as sent (may carry a port). */
  authority: string;
  /** :path with its query string. */
  path: string;
  header(name: string): string | undefined;
}

export interface CompiledRoute {
  /** The route's xDS JSON (route/redirect/direct_response/typed_per_filter_config/...). */
  readonly config: Json;
  readonly name: string;
  readonly matches: (req: RouteRequest, pathOnly: string, query: ReadonlyMap<string, string> | undefined) => boolean;
  /** Consumers attach their own precompiled form of `config` here (the router's action). */
  compiled?: unknown;
}

export interface CompiledVirtualHost {
  readonly name: string;
  readonly config: Json;
  readonly routes: readonly CompiledRoute[];
}

export interface RouteTable {
  readonly name: string;
  readonly config: Json;
  readonly virtualHosts: readonly CompiledVirtualHost[];
  /** Problems met while compiling (bad regexes), for the xDS client's NACK message. */
  readonly problems: readonly string[];
  /** The virtual host for an authority (Host header), or undefined. */
  virtualHost(authority: string): CompiledVirtualHost | undefined;
  /** The virtual host and the first matching route, or what is missing. */
  select(req: RouteRequest): { vhost?: CompiledVirtualHost; route?: CompiledRoute };
}

const obj = (v: unknown): Json | undefined => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : undefined);
const arr = (v: unknown): Json[] => (Array.isArray(v) ? (v as Json[]) : []);

type StringTest = (value: string) => boolean;

/** A full-match regex from RE2 text (Envoy's safe_regex matches the whole value). */
function compileRegex(re: string, flags: string, problems: string[], where: string): RegExp | undefined {
  try {
    return new RegExp(`^(?:${re})$`, flags);
  } catch (err) {
    problems.push(`${where}: invalid regex ${JSON.stringify(re)}: ${(err as Error).message}`);
    return undefined;
  }
}

/** Envoy StringMatcher (exact, prefix, suffix, contains, safe_regex; ignore_case). */
export function compileStringMatcher(m: Json, problems: string[] = [], where = 'string_match'): StringTest {
  const ic = m.ignore_case === true;
  const norm = (x: unknown): string => (ic ? String(x).toLowerCase() : String(x));
  if (m.exact !== undefined) {
    const e = norm(m.exact);
    return ic ? (v) => v.toLowerCase() === e : (v) => v === e;
  }
  if (m.prefix !== undefined) {
    const p = norm(m.prefix);
    return ic ? (v) => v.toLowerCase().startsWith(p) : (v) => v.startsWith(p);
  }
  if (m.suffix !== undefined) {
    const s = norm(m.suffix);
    return ic ? (v) => v.toLowerCase().endsWith(s) : (v) => v.endsWith(s);
  }
  if (m.contains !== undefined) {
    const c = norm(m.contains);
    return ic ? (v) => v.toLowerCase().includes(c) : (v) => v.includes(c);
  }
  const sr = obj(m.safe_regex);
  if (sr) {
    const re = compileRegex(String(sr.regex ?? ''), '', problems, where);
    return re ? (v) => re.test(v) : () => false;
  }
  return () => false;
}

function compileHeaderMatcher(hm: Json, problems: string[], where: string): (req: RouteRequest) => boolean {
  const name = String(hm.name ?? '').toLowerCase();
  const invert = hm.invert_match === true;
  const missingAsEmpty = hm.treat_missing_header_as_empty === true;
  let test: (v: string | undefined) => boolean;
  if (hm.present_match !== undefined) {
    const want = hm.present_match === true;
    test = (v) => (v !== undefined) === want;
  } else {
    let st: StringTest;
    if (obj(hm.string_match)) st = compileStringMatcher(obj(hm.string_match) ?? {}, problems, `${where}.string_match`);
    else if (hm.exact_match !== undefined) st = compileStringMatcher({ exact: hm.exact_match });
    else if (hm.prefix_match !== undefined) st = compileStringMatcher({ prefix: hm.prefix_match });
    else if (hm.suffix_match !== undefined) st = compileStringMatcher({ suffix: hm.suffix_match });
    else if (hm.contains_match !== undefined) st = compileStringMatcher({ contains: hm.contains_match });
    else if (obj(hm.safe_regex_match)) st = compileStringMatcher({ safe_regex: hm.safe_regex_match }, problems, `${where}.safe_regex_match`);
    else if (obj(hm.range_match)) {
      const r = obj(hm.range_match) ?? {};
      const start = Number(r.start);
      const end = Number(r.end);
      st = (v) => /^-?\d+$/.test(v) && Number(v) >= start && Number(v) < end;
    } else st = () => true; // a name alone means "present"
    test = (v) => {
      if (v === undefined) return missingAsEmpty ? st('') : false;
      return st(v);
    };
  }
  return invert ? (req) => !test(req.header(name)) : (req) => test(req.header(name));
}

function compileRouteMatch(m: Json, problems: string[], where: string): CompiledRoute['matches'] {
  const cs = m.case_sensitive !== false;
  let pathTest: (p: string) => boolean;
  if (m.prefix !== undefined) {
    const pre = cs ? String(m.prefix) : String(m.prefix).toLowerCase();
    pathTest = pre === '/' || pre === '' ? () => true : cs ? (p) => p.startsWith(pre) : (p) => p.toLowerCase().startsWith(pre);
  } else if (m.path !== undefined) {
    const exact = cs ? String(m.path) : String(m.path).toLowerCase();
    pathTest = cs ? (p) => p === exact : (p) => p.toLowerCase() === exact;
  } else if (m.path_separated_prefix !== undefined) {
    const pre = cs ? String(m.path_separated_prefix) : String(m.path_separated_prefix).toLowerCase();
    pathTest = (p) => {
      const x = cs ? p : p.toLowerCase();
      return x === pre || x.startsWith(`${pre}/`);
    };
  } else if (obj(m.safe_regex)) {
    const re = compileRegex(String(obj(m.safe_regex)?.regex ?? ''), cs ? '' : 'i', problems, `${where}.safe_regex`);
    pathTest = re ? (p) => re.test(p) : () => false;
  } else {
    pathTest = () => true;
  }
  const headers = arr(m.headers).map((h, i) => compileHeaderMatcher(h, problems, `${where}.headers[${i}]`));
  const queries = arr(m.query_parameters).map((q, i) => {
    const name = String(q.name ?? '');
    if (q.present_match === true) return (query: ReadonlyMap<string, string> | undefined) => query?.has(name) === true;
    const st = obj(q.string_match) ? compileStringMatcher(obj(q.string_match) ?? {}, problems, `${where}.query_parameters[${i}]`) : () => true;
    return (query: ReadonlyMap<string, string> | undefined) => {
      const v = query?.get(name);
      return v !== undefined && st(v);
    };
  });
  return (req, pathOnly, query) => {
    if (!pathTest(pathOnly)) return false;
    for (const h of headers) if (!h(req)) return false;
    for (const q of queries) if (!q(query)) return false;
    return true;
  };
}

/** Splits `/a/b?x=1&y` into the path and (lazily parsed) query parameters: the first value of each name. */
export function splitPath(path: string): { pathOnly: string; query: Map<string, string> | undefined } {
  const q = path.indexOf('?');
  if (q < 0) return { pathOnly: path, query: undefined };
  const query = new Map<string, string>();
  for (const [k, v] of new URLSearchParams(path.slice(q + 1))) if (!query.has(k)) query.set(k, v);
  return { pathOnly: path.slice(0, q), query };
}

export function compileRouteTable(rc: Json): RouteTable {
  const problems: string[] = [];
  const name = String(rc.name ?? '');
  const exact = new Map<string, CompiledVirtualHost>();
  const suffixes: Array<{ s: string; v: CompiledVirtualHost }> = [];
  const prefixes: Array<{ p: string; v: CompiledVirtualHost }> = [];
  let any: CompiledVirtualHost | undefined;
  const vhosts: CompiledVirtualHost[] = arr(rc.virtual_hosts).map((vh, vi) => {
    const routes = arr(vh.routes).map((r, ri): CompiledRoute => ({
      config: r,
      name: String(r.name ?? ''),
      matches: compileRouteMatch(obj(r.match) ?? {}, problems, `virtual_hosts[${vi}].routes[${ri}].match`),
    }));
    const v: CompiledVirtualHost = { name: String(vh.name ?? ''), config: vh, routes };
    for (const raw of (vh.domains as string[] | undefined) ?? []) {
      const d = String(raw).toLowerCase();
      if (d === '*') any ??= v;
      else if (d.startsWith('*')) suffixes.push({ s: d.slice(1), v });
      else if (d.endsWith('*')) prefixes.push({ p: d.slice(0, -1), v });
      else if (!exact.has(d)) exact.set(d, v);
    }
    return v;
  });
  suffixes.sort((a, b) => b.s.length - a.s.length);
  prefixes.sort((a, b) => b.p.length - a.p.length);

  const virtualHost = (authority: string): CompiledVirtualHost | undefined => {
    const h = authority.toLowerCase();
    const hit = exact.get(h);
    if (hit) return hit;
    for (const { s, v } of suffixes) if (h.length > s.length && h.endsWith(s)) return v;
    for (const { p, v } of prefixes) if (h.length > p.length && h.startsWith(p)) return v;
    return any;
  };
  return {
    name,
    config: rc,
    virtualHosts: vhosts,
    problems,
    virtualHost,
    select(req) {
      const vhost = virtualHost(req.authority);
      if (!vhost) return {};
      const { pathOnly, query } = splitPath(req.path);
      for (const route of vhost.routes) if (route.matches(req, pathOnly, query)) return { vhost, route };
      return { vhost };
    },
  };
}
