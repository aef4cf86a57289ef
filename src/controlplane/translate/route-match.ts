// Istio HTTPMatchRequest -> Envoy RouteMatch (path, headers, query parameters, pseudo-headers), and the translation-time checks (port, sourceLabels, sourceNamespace, gateways). Pure; never throws.

import type { HTTPMatchRequest, StringMatch } from '../../config/types.ts';

type Json = Record<string, unknown>;

/** Who the routes are built for: decides match.port, sourceLabels, sourceNamespace and gateways at translation time. */
export interface MatchContext {
  /** The port of the route configuration being built. */
  port: number;
  proxyLabels: Readonly<Record<string, string>>;
  proxyNamespace: string;
}

/** True when the match can apply to this proxy on this port (the rest is decided per request by Envoy). */
export function matchApplies(m: HTTPMatchRequest | undefined, ctx: MatchContext): boolean {
  if (!m) return true;
  if (m.port !== undefined && m.port !== 0 && m.port !== ctx.port) return false;
  if (m.sourceLabels) {
    for (const [k, v] of Object.entries(m.sourceLabels)) if (ctx.proxyLabels[k] !== v) return false;
  }
  if (m.sourceNamespace && m.sourceNamespace !== ctx.proxyNamespace) return false;
  if (m.gateways && m.gateways.length > 0 && !m.gateways.includes('mesh')) return false;
  return true;
}

/** Envoy StringMatcher for an Istio StringMatch; undefined for an empty one (which means "present"). */
export function stringMatcher(sm: StringMatch, ignoreCase = false): Json | undefined {
  if (sm.exact !== undefined) return ignoreCase ? { exact: sm.exact, ignore_case: true } : { exact: sm.exact };
  if (sm.prefix !== undefined) return ignoreCase ? { prefix: sm.prefix, ignore_case: true } : { prefix: sm.prefix };
  if (sm.regex !== undefined) return { safe_regex: { regex: sm.regex } };
  return undefined;
}

function headerMatcher(name: string, sm: StringMatch, invert: boolean): Json {
  const m = stringMatcher(sm);
  const out: Json = { name: name.toLowerCase() };
  if (m) out.string_match = m;
  else out.present_match = true;
  if (invert) out.invert_match = true;
  return out;
}

/** The Envoy RouteMatch for one Istio match (a missing match is `prefix: /`). */
export function translateRouteMatch(m: HTTPMatchRequest | undefined): Json {
  const out: Json = {};
  const uri = m?.uri;
  if (uri?.exact !== undefined) out.path = uri.exact;
  else if (uri?.prefix !== undefined) out.prefix = uri.prefix;
  else if (uri?.regex !== undefined) out.safe_regex = { regex: uri.regex };
  else out.prefix = '/';
  if (m?.ignoreUriCase) out.case_sensitive = false;
  const headers: Json[] = [];
  for (const [name, sm] of Object.entries(m?.headers ?? {})) headers.push(headerMatcher(name, sm, false));
  for (const [name, sm] of Object.entries(m?.withoutHeaders ?? {})) headers.push(headerMatcher(name, sm, true));
  if (m?.method) headers.push(headerMatcher(':method', m.method, false));
  if (m?.authority) headers.push(headerMatcher(':authority', m.authority, false));
  if (m?.scheme) headers.push(headerMatcher(':scheme', m.scheme, false));
  if (headers.length > 0) out.headers = headers;
  const query: Json[] = [];
  for (const [name, sm] of Object.entries(m?.queryParams ?? {})) {
    const qm = stringMatcher(sm);
    query.push(qm ? { name, string_match: qm } : { name, present_match: true });
  }
  if (query.length > 0) out.query_parameters = query;
  return out;
}

/** A match that every request satisfies (Istio stops reading http routes after one). */
export function isCatchAllMatch(m: HTTPMatchRequest | undefined): boolean {
  if (!m) return true;
  const hasRequestCondition =
    (m.headers && Object.keys(m.headers).length > 0) ||
    (m.withoutHeaders && Object.keys(m.withoutHeaders).length > 0) ||
    (m.queryParams && Object.keys(m.queryParams).length > 0) ||
    m.method !== undefined ||
    m.authority !== undefined ||
    m.scheme !== undefined;
  if (hasRequestCondition) return false;
  const uri = m.uri;
  if (!uri) return true;
  if (uri.prefix !== undefined) return uri.prefix === '/';
  if (uri.regex !== undefined) return uri.regex === '.*' || uri.regex === '*';
  return false;
}

/** Istio's operation name path part for a match: `/*`, `/exact`, `/prefix*` or the regex. */
export function operationPath(match: Json): string {
  if (typeof match.prefix === 'string') return `${match.prefix}*`;
  if (typeof match.path === 'string') return match.path;
  const re = match.safe_regex as { regex?: string } | undefined;
  if (re?.regex !== undefined) return re.regex;
  return '/*';
}
