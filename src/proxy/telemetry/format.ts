// Envoy's access log command operators (%REQ(X?Y):Z%, %START_TIME%, %RESPONSE_FLAGS%, ...) compiled once per format
// string into an array of field writers; TEXT lines and typed JSON objects. Unknown or malformed operators throw
// TelemetryConfigError at compile time; a compiled formatter never throws on a StreamInfo.

import { hostname as osHostname } from 'node:os';
import { formatFlags, type StreamInfo } from '../stream-info.ts';
import { TelemetryConfigError } from './errors.ts';
import { compileTimeFormat } from './strftime.ts';

export { ISTIO_JSON_FORMAT, ISTIO_TEXT_FORMAT } from '../../xds/access-log-formats.ts';

/** Envoy's own default line, used by a file access logger configured without log_format. */
export const ENVOY_DEFAULT_FORMAT =
  '[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" "%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%"\n';

export interface FormatOptions {
  /** Envoy's omit_empty_values: absent values print as '' in TEXT and are left out of JSON. */
  omitEmptyValues?: boolean;
  /** %HOSTNAME%; defaults to os.hostname(), read once at compile time. */
  hostname?: string;
}

export interface JsonFormatOptions extends FormatOptions {
  /** Envoy's json_format_options.sort_properties: keys in lexical order (else in the order given). */
  sortProperties?: boolean;
}

/** An operator's value for one stream; undefined (or '') is absent and prints '-' in TEXT, null in JSON. */
type Value = string | number | undefined;
type Getter = (info: StreamInfo) => Value;

export type FormatToken = { kind: 'literal'; text: string } | { kind: 'operator'; command: string; get: Getter };

// ---------------------------------------------------------------------------------------------------------
// Lookups

function present(v: string | undefined): string | undefined {
  return v === undefined || v === '' ? undefined : v;
}

/** A request header getter; pseudo-headers fall back on the StreamInfo fields the core fills anyway. */
function requestGetter(name: string): (info: StreamInfo) => string | undefined {
  switch (name) {
    case ':method':
      return (i) => present(i.requestHeader?.(name)) ?? present(i.method);
    case ':path':
      return (i) => present(i.requestHeader?.(name)) ?? present(i.path);
    case ':authority':
    case 'host':
      return (i) => present(i.requestHeader?.(':authority')) ?? present(i.requestHeader?.('host')) ?? present(i.authority);
    case 'x-request-id':
      return (i) => present(i.requestHeader?.(name)) ?? present(i.requestId);
    default:
      return (i) => present(i.requestHeader?.(name));
  }
}

function responseGetter(name: string): (info: StreamInfo) => string | undefined {
  switch (name) {
    case ':status':
      return (i) => present(i.responseHeader?.(name)) ?? (i.responseCode > 0 ? String(i.responseCode) : undefined);
    case 'x-envoy-upstream-service-time':
      return (i) => present(i.responseHeader?.(name)) ?? (i.upstreamServiceTimeMs === undefined ? undefined : String(Math.floor(i.upstreamServiceTimeMs)));
    default:
      return (i) => present(i.responseHeader?.(name));
  }
}

function trailerGetter(name: string): (info: StreamInfo) => string | undefined {
  return (i) => present(i.responseTrailer?.(name));
}

/** "10.0.0.1:80" -> "10.0.0.1", "[::1]:80" -> "::1"; a bare address is returned as is. */
export function addressWithoutPort(addr: string | undefined): string | undefined {
  if (!addr) return undefined;
  if (addr.startsWith('[')) {
    const end = addr.indexOf(']');
    return end > 0 ? addr.slice(1, end) : addr;
  }
  const colon = addr.indexOf(':');
  return colon >= 0 && addr.indexOf(':', colon + 1) < 0 ? addr.slice(0, colon) : addr;
}

export function addressPort(addr: string | undefined): number | undefined {
  if (!addr) return undefined;
  const colon = addr.lastIndexOf(':');
  if (colon < 0) return undefined;
  if (!addr.startsWith('[') && addr.indexOf(':') !== colon) return undefined; // bare IPv6
  if (addr.startsWith('[') && addr[colon - 1] !== ']') return undefined;
  const port = Number(addr.slice(colon + 1));
  return Number.isInteger(port) && port >= 0 ? port : undefined;
}

// ---------------------------------------------------------------------------------------------------------
// The command operators

type Params = 'none' | 'optional' | 'required';
interface CommandDef {
  params: Params;
  lengthAllowed?: boolean;
  make(arg: string | undefined, maxLength: number | undefined, opts: FormatOptions): Getter;
}

const simple = (get: Getter): CommandDef => ({ params: 'none', make: () => get });

function truncate(get: (i: StreamInfo) => string | undefined, maxLength: number | undefined): Getter {
  if (maxLength === undefined) return get;
  return (i) => get(i)?.slice(0, maxLength);
}

/** REQ(X?Y): X, else Y when X is absent. Header names are case-insensitive. */
function headerCommand(kind: string, lookup: (name: string) => (i: StreamInfo) => string | undefined, stripQuery = false): CommandDef {
  return {
    params: 'required',
    lengthAllowed: true,
    make(arg, maxLength) {
      const names = (arg ?? '').split('?');
      if (names.length > 2 || names.some((n) => n.trim() === '')) {
        throw new TelemetryConfigError(`%${kind}(${arg ?? ''})%: expected a header name or two alternatives "X?Y"`);
      }
      const [main, alt] = names.map((n) => lookup(n.trim().toLowerCase()));
      let get: (i: StreamInfo) => string | undefined = main as (i: StreamInfo) => string | undefined;
      if (alt) {
        const first = get;
        get = (i) => first(i) ?? alt(i);
      }
      if (stripQuery) {
        const withQuery = get;
        get = (i) => {
          const v = withQuery(i);
          if (v === undefined) return undefined;
          const q = v.indexOf('?');
          return q < 0 ? v : present(v.slice(0, q));
        };
      }
      return truncate(get, maxLength);
    },
  };
}

const duration = (i: StreamInfo): number | undefined => (i.endTime === undefined ? undefined : Math.max(0, Math.floor(i.endTime - i.startTime)));

const COMMANDS: Record<string, CommandDef> = {
  START_TIME: {
    params: 'optional',
    make(arg) {
      const fmt = compileTimeFormat(arg);
      return (i) => fmt(i.startTime);
    },
  },
  REQ: headerCommand('REQ', requestGetter),
  REQ_WITHOUT_QUERY: headerCommand('REQ_WITHOUT_QUERY', requestGetter, true),
  RESP: headerCommand('RESP', responseGetter),
  TRAILER: headerCommand('TRAILER', trailerGetter),
  PROTOCOL: simple((i) => i.protocol),
  RESPONSE_CODE: simple((i) => i.responseCode),
  RESPONSE_FLAGS: simple((i) => formatFlags(i.responseFlags)),
  RESPONSE_CODE_DETAILS: simple((i) => i.responseCodeDetails),
  CONNECTION_TERMINATION_DETAILS: simple((i) => i.connectionTerminationDetails),
  UPSTREAM_TRANSPORT_FAILURE_REASON: simple((i) => i.upstreamTransportFailureReason),
  BYTES_RECEIVED: simple((i) => i.bytesReceived),
  BYTES_SENT: simple((i) => i.bytesSent),
  DURATION: simple(duration),
  RESPONSE_DURATION: simple((i) => (i.upstreamServiceTimeMs === undefined ? undefined : Math.floor(i.upstreamServiceTimeMs))),
  UPSTREAM_HOST: simple((i) => i.upstreamHost),
  UPSTREAM_REMOTE_ADDRESS: simple((i) => i.upstreamHost),
  UPSTREAM_REMOTE_ADDRESS_WITHOUT_PORT: simple((i) => addressWithoutPort(i.upstreamHost)),
  UPSTREAM_CLUSTER: simple((i) => i.upstreamCluster),
  UPSTREAM_CLUSTER_RAW: simple((i) => i.upstreamCluster),
  UPSTREAM_LOCAL_ADDRESS: simple((i) => i.upstreamLocalAddress),
  UPSTREAM_LOCAL_ADDRESS_WITHOUT_PORT: simple((i) => addressWithoutPort(i.upstreamLocalAddress)),
  DOWNSTREAM_LOCAL_ADDRESS: simple((i) => i.downstreamLocalAddress),
  DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT: simple((i) => addressWithoutPort(i.downstreamLocalAddress)),
  DOWNSTREAM_LOCAL_PORT: simple((i) => addressPort(i.downstreamLocalAddress)),
  DOWNSTREAM_REMOTE_ADDRESS: simple((i) => i.downstreamRemoteAddress),
  DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT: simple((i) => addressWithoutPort(i.downstreamRemoteAddress)),
  DOWNSTREAM_REMOTE_PORT: simple((i) => addressPort(i.downstreamRemoteAddress)),
  DOWNSTREAM_DIRECT_REMOTE_ADDRESS: simple((i) => i.downstreamRemoteAddress),
  DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT: simple((i) => addressWithoutPort(i.downstreamRemoteAddress)),
  REQUESTED_SERVER_NAME: simple((i) => i.requestedServerName),
  ROUTE_NAME: simple((i) => i.routeName),
  UPSTREAM_REQUEST_ATTEMPT_COUNT: simple((i) => (i.retries !== undefined ? i.retries + 1 : i.upstreamHost ? 1 : 0)),
  HOSTNAME: {
    params: 'none',
    make(_arg, _len, opts) {
      const name = opts.hostname ?? osHostname();
      return () => name;
    },
  },
};

/** The command operators this proxy understands (Envoy's names). */
export const SUPPORTED_COMMANDS: readonly string[] = Object.keys(COMMANDS);

// ---------------------------------------------------------------------------------------------------------
// Parsing

const isCommandChar = (c: string): boolean => (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c === '_';

/** Splits a format into literals and operators; throws TelemetryConfigError naming the offending operator. */
export function parseFormat(format: string, opts: FormatOptions = {}): FormatToken[] {
  const tokens: FormatToken[] = [];
  let literal = '';
  let i = 0;
  while (i < format.length) {
    const c = format[i] ?? '';
    if (c !== '%') {
      literal += c;
      i++;
      continue;
    }
    if (format[i + 1] === '%') {
      literal += '%';
      i += 2;
      continue;
    }
    let j = i + 1;
    while (j < format.length && isCommandChar(format[j] ?? '')) j++;
    const command = format.slice(i + 1, j);
    let arg: string | undefined;
    let maxLength: number | undefined;
    if (format[j] === '(') {
      const close = format.indexOf(')', j);
      if (close < 0) throw new TelemetryConfigError(`access log format: missing ')' in %${command}( at offset ${i}: ${JSON.stringify(format)}`);
      arg = format.slice(j + 1, close);
      j = close + 1;
    }
    if (format[j] === ':') {
      let k = j + 1;
      while (k < format.length && (format[k] ?? '') >= '0' && (format[k] ?? '') <= '9') k++;
      if (k === j + 1) throw new TelemetryConfigError(`access log format: %${command}...: expects a length after ':' at offset ${j}`);
      maxLength = Number(format.slice(j + 1, k));
      j = k;
    }
    if (command === '' || format[j] !== '%') {
      throw new TelemetryConfigError(`access log format: unterminated or malformed command operator at offset ${i}: ${JSON.stringify(format.slice(i, i + 40))} (a literal % is written %%)`);
    }
    const def = COMMANDS[command];
    if (!def) throw new TelemetryConfigError(`access log format: unsupported command operator %${command}% (supported: ${SUPPORTED_COMMANDS.join(', ')})`);
    if (def.params === 'none' && arg !== undefined) throw new TelemetryConfigError(`access log format: %${command}% takes no parameters`);
    if (def.params === 'required' && arg === undefined) throw new TelemetryConfigError(`access log format: %${command}(...)% needs a parameter`);
    if (maxLength !== undefined && !def.lengthAllowed) throw new TelemetryConfigError(`access log format: %${command}% takes no length limit`);
    if (literal) tokens.push({ kind: 'literal', text: literal });
    literal = '';
    tokens.push({ kind: 'operator', command, get: def.make(arg, maxLength, opts) });
    i = j + 1;
  }
  if (literal) tokens.push({ kind: 'literal', text: literal });
  return tokens;
}

// ---------------------------------------------------------------------------------------------------------
// TEXT

type Writer = (info: StreamInfo) => string;

function textWriter(get: Getter, empty: string): Writer {
  return (info) => {
    const v = get(info);
    return v === undefined || v === '' ? empty : typeof v === 'number' ? String(v) : v;
  };
}

function joinWriters(tokens: FormatToken[], empty: string): Writer {
  const writers: Writer[] = tokens.map((t) => (t.kind === 'literal' ? ((text: string) => () => text)(t.text) : textWriter(t.get, empty)));
  if (writers.length === 0) return () => '';
  if (writers.length === 1) return writers[0] as Writer;
  return (info) => {
    let s = '';
    for (let k = 0; k < writers.length; k++) s += (writers[k] as Writer)(info);
    return s;
  };
}

/** Compiles an Envoy TEXT format (the line is exactly the format: no newline is added). */
export function compileFormat(format: string, opts: FormatOptions = {}): (info: StreamInfo) => string {
  return joinWriters(parseFormat(format, opts), opts.omitEmptyValues ? '' : '-');
}

// ---------------------------------------------------------------------------------------------------------
// JSON

/** Writes a JSON value, or undefined when omit_empty_values drops it. */
type JsonWriter = (info: StreamInfo) => string | undefined;

function jsonNumberOrString(v: Value): string | undefined {
  if (v === undefined || v === '') return undefined;
  if (typeof v === 'number') return Number.isFinite(v) ? String(v) : undefined;
  return JSON.stringify(v);
}

function compileJsonValue(value: unknown, path: string, opts: JsonFormatOptions): JsonWriter {
  if (typeof value === 'string') {
    const tokens = parseFormat(value, opts);
    const nullOrOmit = opts.omitEmptyValues ? undefined : 'null';
    const only = tokens[0];
    if (tokens.length === 1 && only?.kind === 'operator') {
      const get = only.get;
      // A value that is exactly one operator keeps its type: numbers for codes, bytes and durations.
      return (info) => jsonNumberOrString(get(info)) ?? nullOrOmit;
    }
    if (tokens.every((t) => t.kind === 'literal')) {
      const text = JSON.stringify(tokens.map((t) => (t.kind === 'literal' ? t.text : '')).join(''));
      return () => text;
    }
    const write = joinWriters(tokens, opts.omitEmptyValues ? '' : '-');
    return (info) => JSON.stringify(write(info));
  }
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    return compileJsonObject(value as Record<string, unknown>, path, opts);
  }
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) {
    const text = JSON.stringify(value);
    return () => text;
  }
  throw new TelemetryConfigError(`json_format.${path}: values must be strings, numbers, booleans or nested objects, got ${Array.isArray(value) ? 'a list' : typeof value}`);
}

function compileJsonObject(fields: Record<string, unknown>, path: string, opts: JsonFormatOptions): (info: StreamInfo) => string {
  let keys = Object.keys(fields);
  if (opts.sortProperties) keys = [...keys].sort();
  const entries = keys.map((k) => ({ prefix: `${JSON.stringify(k)}:`, write: compileJsonValue(fields[k], path ? `${path}.${k}` : k, opts) }));
  return (info) => {
    let s = '{';
    let first = true;
    for (let k = 0; k < entries.length; k++) {
      const e = entries[k] as (typeof entries)[number];
      const v = e.write(info);
      if (v === undefined) continue;
      s += first ? e.prefix + v : ',' + e.prefix + v;
      first = false;
    }
    return s + '}';
  };
}

/**
 * Compiles Envoy's json_format: one JSON object per line ("\n" appended). A value that is exactly one
 * operator is typed like Envoy's (numbers for RESPONSE_CODE, BYTES_*, DURATION...; null when absent);
 * a value mixing text and operators is a string with '-' for absent parts.
 */
export function compileJsonFormat(fields: Record<string, unknown>, opts: JsonFormatOptions = {}): (info: StreamInfo) => string {
  const write = compileJsonObject(fields, '', opts);
  return (info) => write(info) + '\n';
}
