// Envoy's AccessLogFilter (status code, duration, response flags, gRPC status, headers, and/or, not-health-check)
// compiled once into a predicate over StreamInfo. Unsupported filters throw TelemetryConfigError naming the field;
// a compiled predicate never throws.

import type { StreamInfo } from '../stream-info.ts';
import { TelemetryConfigError } from './errors.ts';

export type LogPredicate = (info: StreamInfo) => boolean;
type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => v !== null && typeof v === 'object' && !Array.isArray(v);

const GRPC_STATUS = [
  'OK', 'CANCELED', 'UNKNOWN', 'INVALID_ARGUMENT', 'DEADLINE_EXCEEDED', 'NOT_FOUND', 'ALREADY_EXISTS', 'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED', 'FAILED_PRECONDITION', 'ABORTED', 'OUT_OF_RANGE', 'UNIMPLEMENTED', 'INTERNAL', 'UNAVAILABLE',
  'DATA_LOSS', 'UNAUTHENTICATED',
];

/** gRPC status of a response: grpc-status trailer, else header (trailers-only), else undefined. */
export function grpcStatusOf(info: StreamInfo): number | undefined {
  const raw = info.responseTrailer?.('grpc-status') ?? info.responseHeader?.('grpc-status');
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  return Number.isInteger(n) ? n : undefined;
}

/** gRPC's HTTP-to-gRPC status mapping, for responses without grpc-status. */
export function grpcStatusFromHttp(status: number): number {
  switch (status) {
    case 400: return 13;
    case 401: return 16;
    case 403: return 7;
    case 404: return 12;
    case 429: case 502: case 503: case 504: return 14;
    default: return 2;
  }
}

function comparison(cfg: unknown, path: string, value: (info: StreamInfo) => number): LogPredicate {
  if (!isObject(cfg) || !isObject(cfg.comparison)) throw new TelemetryConfigError(`${path}.comparison: required`);
  const c = cfg.comparison;
  const op = c.op ?? 'EQ';
  const v = isObject(c.value) ? Number(c.value.default_value ?? 0) : Number.NaN;
  if (!Number.isFinite(v)) throw new TelemetryConfigError(`${path}.comparison.value.default_value: required number`);
  switch (op) {
    case 'EQ': case 0: return (i) => value(i) === v;
    case 'GE': case 1: return (i) => value(i) >= v;
    case 'LE': case 2: return (i) => value(i) <= v;
    default: throw new TelemetryConfigError(`${path}.comparison.op: unsupported ${JSON.stringify(op)} (EQ, GE, LE)`);
  }
}

function stringMatcher(m: Json, path: string): (v: string) => boolean {
  const ignoreCase = m.ignore_case === true;
  const norm = ignoreCase ? (s: string): string => s.toLowerCase() : (s: string): string => s;
  if (typeof m.exact === 'string') { const e = norm(m.exact); return (s) => norm(s) === e; }
  if (typeof m.prefix === 'string') { const e = norm(m.prefix); return (s) => norm(s).startsWith(e); }
  if (typeof m.suffix === 'string') { const e = norm(m.suffix); return (s) => norm(s).endsWith(e); }
  if (typeof m.contains === 'string') { const e = norm(m.contains); return (s) => norm(s).includes(e); }
  if (isObject(m.safe_regex) && typeof m.safe_regex.regex === 'string') return regexMatcher(m.safe_regex.regex, `${path}.safe_regex.regex`);
  throw new TelemetryConfigError(`${path}: needs one of exact, prefix, suffix, contains, safe_regex`);
}

function regexMatcher(source: string, path: string): (v: string) => boolean {
  try {
    const re = new RegExp(`^(?:${source})$`);
    return (s) => re.test(s);
  } catch (err) {
    throw new TelemetryConfigError(`${path}: invalid regex ${JSON.stringify(source)}: ${(err as Error).message}`);
  }
}

/** envoy.config.route.v3.HeaderMatcher over the request headers. */
function headerFilter(cfg: unknown, path: string): LogPredicate {
  const h = isObject(cfg) ? cfg.header : undefined;
  if (!isObject(h) || typeof h.name !== 'string' || h.name === '') throw new TelemetryConfigError(`${path}.header.name: required`);
  const name = h.name.toLowerCase();
  const invert = h.invert_match === true;
  const missingAsEmpty = h.treat_missing_header_as_empty === true;
  let match: ((v: string) => boolean) | undefined;
  let presentOnly: boolean | undefined;
  if (typeof h.exact_match === 'string') { const e = h.exact_match; match = (s) => s === e; }
  else if (typeof h.prefix_match === 'string') { const e = h.prefix_match; match = (s) => s.startsWith(e); }
  else if (typeof h.suffix_match === 'string') { const e = h.suffix_match; match = (s) => s.endsWith(e); }
  else if (typeof h.contains_match === 'string') { const e = h.contains_match; match = (s) => s.includes(e); }
  else if (isObject(h.safe_regex_match) && typeof h.safe_regex_match.regex === 'string') match = regexMatcher(h.safe_regex_match.regex, `${path}.header.safe_regex_match.regex`);
  else if (isObject(h.string_match)) match = stringMatcher(h.string_match, `${path}.header.string_match`);
  else if (isObject(h.range_match)) {
    const start = Number(h.range_match.start ?? 0);
    const end = Number(h.range_match.end ?? 0);
    match = (s) => {
      const n = s.trim() === '' ? Number.NaN : Number(s);
      return Number.isInteger(n) && n >= start && n < end;
    };
  } else presentOnly = h.present_match !== false;
  return (info) => {
    let v = info.requestHeader?.(name);
    if (v === undefined && missingAsEmpty) v = '';
    const result = presentOnly !== undefined ? (v !== undefined) === presentOnly : v !== undefined && (match as (s: string) => boolean)(v);
    return invert ? !result : result;
  };
}

/** Compiles one AccessLogFilter; `path` names it in errors (e.g. "access_log[0].filter"). */
export function compileAccessLogFilter(cfg: unknown, path: string): LogPredicate {
  if (!isObject(cfg)) throw new TelemetryConfigError(`${path}: expected an object`);
  const kinds = Object.keys(cfg);
  if (kinds.length !== 1) throw new TelemetryConfigError(`${path}: exactly one filter kind expected, got ${kinds.length === 0 ? 'none' : kinds.join(', ')}`);
  const kind = kinds[0] as string;
  const body = cfg[kind];
  const at = `${path}.${kind}`;
  switch (kind) {
    case 'status_code_filter':
      return comparison(body, at, (i) => i.responseCode);
    case 'duration_filter':
      return comparison(body, at, (i) => (i.endTime === undefined ? 0 : i.endTime - i.startTime));
    case 'not_health_check_filter':
      // Health checks are answered by the health endpoints, never by the data path: every stream passes.
      return () => true;
    case 'traceable_filter':
      // No tracing here: no stream is traceable.
      return () => false;
    case 'response_flag_filter': {
      const flags = isObject(body) && Array.isArray(body.flags) ? body.flags.map(String) : [];
      if (flags.length === 0) return (i) => i.responseFlags.length > 0;
      const wanted = new Set(flags);
      return (i) => i.responseFlags.some((f) => wanted.has(f));
    }
    case 'grpc_status_filter': {
      const list = isObject(body) && Array.isArray(body.statuses) ? body.statuses : [];
      const statuses = new Set(list.map((s, n) => {
        const code = typeof s === 'number' ? s : GRPC_STATUS.indexOf(String(s));
        if (code < 0 || code >= GRPC_STATUS.length) throw new TelemetryConfigError(`${at}.statuses[${n}]: unknown gRPC status ${JSON.stringify(s)}`);
        return code;
      }));
      const exclude = isObject(body) && body.exclude === true;
      return (i) => {
        const st = grpcStatusOf(i) ?? grpcStatusFromHttp(i.responseCode);
        return statuses.has(st) !== exclude;
      };
    }
    case 'header_filter':
      return headerFilter(body, at);
    case 'and_filter':
    case 'or_filter': {
      const list = isObject(body) && Array.isArray(body.filters) ? body.filters : [];
      if (list.length < 2) throw new TelemetryConfigError(`${at}.filters: at least 2 filters`);
      const preds = list.map((f, n) => compileAccessLogFilter(f, `${at}.filters[${n}]`));
      return kind === 'and_filter' ? (i) => preds.every((p) => p(i)) : (i) => preds.some((p) => p(i));
    }
    default:
      throw new TelemetryConfigError(`${at}: unsupported access log filter (supported: status_code_filter, duration_filter, not_health_check_filter, traceable_filter, response_flag_filter, grpc_status_filter, header_filter, and_filter, or_filter)`);
  }
}
