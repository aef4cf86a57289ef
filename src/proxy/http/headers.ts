// Header plumbing for the HTTP path: hop-by-hop removal, header operations, and a lower-case lookup
// over node's IncomingHttpHeaders. Pure; never throws.

import type { IncomingHttpHeaders } from 'node:http';
import type { HeaderOps } from './route-action.ts';
import type { OutgoingHeaders } from '../upstream/types.ts';

/** Headers that belong to one connection, never forwarded (RFC 9110 7.6.1, plus HTTP/2 pseudo-headers). */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer', 'http2-settings']);

/** A copy of the request headers fit for an upstream request. */
export function forwardableHeaders(h: IncomingHttpHeaders): OutgoingHeaders {
  const out: OutgoingHeaders = {};
  // headers the Connection header names are hop-by-hop too ("keep-alive" and "close" name none)
  const c = h.connection;
  const connectionTokens = typeof c === 'string' && c !== 'keep-alive' && c !== 'close' ? c.toLowerCase().split(',').map((s) => s.trim()) : undefined;
  for (const k in h) {
    const v = h[k];
    if (v === undefined || k.charCodeAt(0) === 58 /* ':' */ || HOP_BY_HOP.has(k) || connectionTokens?.includes(k)) continue;
    out[k] = v;
  }
  if (h.te === 'trailers') out.te = 'trailers';
  return out;
}

/** Response headers fit for the downstream: hop-by-hop and pseudo-headers dropped. */
export function forwardableResponseHeaders(h: Record<string, string | string[] | undefined>): OutgoingHeaders {
  const out: OutgoingHeaders = {};
  for (const k in h) {
    const v = h[k];
    if (v === undefined || k.charCodeAt(0) === 58 /* ':' */ || HOP_BY_HOP.has(k)) continue;
    out[k] = v;
  }
  return out;
}

export function applyHeaderOps(headers: OutgoingHeaders, ops: HeaderOps): void {
  for (const name of ops.remove) delete headers[name];
  for (const { name, value, append } of ops.add) {
    const cur = headers[name];
    if (append && cur !== undefined) headers[name] = Array.isArray(cur) ? [...cur, value] : [cur, value];
    else headers[name] = value;
  }
}

/** One value of a header (several joined with ','), lower-case name. */
export function headerValue(h: IncomingHttpHeaders | Record<string, string | string[] | undefined>, name: string): string | undefined {
  const v = h[name];
  if (v === undefined) return undefined;
  return Array.isArray(v) ? v.join(',') : String(v);
}
