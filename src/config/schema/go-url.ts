// Parses URLs the way Go's url.ParseRequestURI does (absolute URI or absolute path), which is what
// Kubernetes' CEL isURL() and url() accept. Fails by returning an error string, never by throwing.

export interface GoUrl {
  scheme: string; // lower case, '' for a bare path
  opaque: string;
  userinfo: string;
  host: string; // host[:port] as written
  path: string;
  rawQuery: string;
}

export type GoUrlResult = { ok: true; url: GoUrl } | { ok: false; error: string };

// Characters Go accepts unescaped in a host (RFC 3986 unreserved + sub-delims + ':' '[' ']' and a few more).
const HOST_OK = /^[A-Za-z0-9\-._~!$&'()*+,;=:[\]<>"]$/;

/** Parses like Go's url.ParseRequestURI. */
export function parseRequestUri(raw: string): GoUrlResult {
  const bad = (why: string): GoUrlResult => ({ ok: false, error: `parse ${JSON.stringify(raw)}: ${why}` });
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f]/.test(raw)) return bad('invalid control character in URL');
  if (raw === '') return bad('empty url');
  const url: GoUrl = { scheme: '', opaque: '', userinfo: '', host: '', path: '', rawQuery: '' };
  if (raw === '*') {
    url.path = '*';
    return { ok: true, url };
  }
  let rest = raw;
  const schemeMatch = /^([A-Za-z][A-Za-z0-9+\-.]*):/.exec(raw);
  if (schemeMatch?.[1] !== undefined) {
    url.scheme = schemeMatch[1].toLowerCase();
    rest = raw.slice(schemeMatch[0].length);
  } else if (raw.startsWith(':')) {
    return bad('missing protocol scheme');
  }
  const q = rest.indexOf('?');
  if (q >= 0) {
    url.rawQuery = rest.slice(q + 1);
    rest = rest.slice(0, q);
  }
  if (!rest.startsWith('/')) {
    if (url.scheme !== '') {
      url.opaque = rest;
      return { ok: true, url };
    }
    return bad('invalid URI for request');
  }
  if (url.scheme !== '' && rest.startsWith('//')) {
    const afterSlashes = rest.slice(2);
    const slash = afterSlashes.indexOf('/');
    const authority = slash >= 0 ? afterSlashes.slice(0, slash) : afterSlashes;
    rest = slash >= 0 ? afterSlashes.slice(slash) : '';
    const at = authority.lastIndexOf('@');
    const host = at >= 0 ? authority.slice(at + 1) : authority;
    if (at >= 0) {
      url.userinfo = authority.slice(0, at);
      if (!/^[A-Za-z0-9\-._:~!$&'()*+,;=%@]*$/.test(url.userinfo)) return bad('net/url: invalid userinfo');
    }
    const hostError = checkHost(host);
    if (hostError) return bad(hostError);
    url.host = host;
  }
  if (!validEscapes(rest)) return bad('invalid URL escape');
  url.path = rest;
  return { ok: true, url };
}

function checkHost(host: string): string | undefined {
  let name = host;
  if (host.startsWith('[')) {
    const close = host.indexOf(']');
    if (close < 0) return 'missing \']\' in host';
    const port = host.slice(close + 1);
    if (!validOptionalPort(port)) return `invalid port ${JSON.stringify(port)} after host`;
    name = host.slice(1, close);
  } else {
    const colon = host.lastIndexOf(':');
    if (colon >= 0) {
      const port = host.slice(colon);
      if (!validOptionalPort(port)) return `invalid port ${JSON.stringify(port)} after host`;
    }
  }
  if (!validEscapes(name)) return 'invalid URL escape in host';
  for (const ch of name) {
    if (ch === '%' || ch.codePointAt(0)! >= 0x80) continue;
    if (!HOST_OK.test(ch)) return `invalid character ${JSON.stringify(ch)} in host name`;
  }
  return undefined;
}

function validOptionalPort(port: string): boolean {
  return port === '' || /^:\d*$/.test(port);
}

function validEscapes(s: string): boolean {
  for (let i = s.indexOf('%'); i >= 0; i = s.indexOf('%', i + 1)) {
    if (!/^[0-9A-Fa-f]{2}$/.test(s.slice(i + 1, i + 3))) return false;
  }
  return true;
}

/** The host without its port (and without IPv6 brackets), as Go's URL.Hostname(). */
export function urlHostname(u: GoUrl): string {
  if (u.host.startsWith('[')) {
    const close = u.host.indexOf(']');
    return close >= 0 ? u.host.slice(1, close) : u.host.slice(1);
  }
  const colon = u.host.lastIndexOf(':');
  return colon >= 0 ? u.host.slice(0, colon) : u.host;
}

/** The port without ':' or '' when none, as Go's URL.Port(). */
export function urlPort(u: GoUrl): string {
  const m = /:(\d*)$/.exec(u.host.startsWith('[') ? u.host.slice(u.host.indexOf(']') + 1) : u.host);
  return m?.[1] ?? '';
}
