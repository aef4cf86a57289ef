// Access logging: an AccessLogger is a compiled format + a shared sink + an optional filter, built from the
// access_log entries of an HttpConnectionManager or TcpProxy (FileAccessLog, Stdout/StderrAccessLog). Building
// throws TelemetryConfigError naming the field (the xDS client NACKs with it); logging never throws.

import { readFileSync } from 'node:fs';
import type { StreamInfo } from '../stream-info.ts';
import { systemClock, type Clock } from './clock.ts';
import { TelemetryConfigError } from './errors.ts';
import { compileAccessLogFilter, type LogPredicate } from './filter.ts';
import { ENVOY_DEFAULT_FORMAT, compileFormat, compileJsonFormat, type FormatOptions } from './format.ts';
import { SinkRegistry, type AccessLogSink } from './sink.ts';

export { ENVOY_DEFAULT_FORMAT, ISTIO_JSON_FORMAT, ISTIO_TEXT_FORMAT, SUPPORTED_COMMANDS, compileFormat, compileJsonFormat, parseFormat } from './format.ts';
export type { FormatOptions, JsonFormatOptions } from './format.ts';
export { SinkRegistry, createAccessLogSink } from './sink.ts';
export type { AccessLogSink, AccessLogSinkStats, SinkOptions } from './sink.ts';
export { TelemetryConfigError } from './errors.ts';

export const FILE_ACCESS_LOG = 'envoy.extensions.access_loggers.file.v3.FileAccessLog';
export const STDOUT_ACCESS_LOG = 'envoy.extensions.access_loggers.stream.v3.StdoutAccessLog';
export const STDERR_ACCESS_LOG = 'envoy.extensions.access_loggers.stream.v3.StderrAccessLog';

export type LineFormatter = (info: StreamInfo) => string;

export class AccessLogger {
  /** The access_log entry's name, e.g. envoy.access_loggers.file. */
  readonly name: string;
  readonly format: LineFormatter;
  readonly sink: AccessLogSink;
  readonly filter: LogPredicate | undefined;
  /** Lines not written because formatting threw (a bug in a header lookup, say). */
  formatErrors = 0;
  readonly #clock: Clock;
  readonly #onFormatError: (() => void) | undefined;

  constructor(name: string, format: LineFormatter, sink: AccessLogSink, filter?: LogPredicate, clock: Clock = systemClock, onFormatError?: () => void) {
    this.#onFormatError = onFormatError;
    this.name = name;
    this.format = format;
    this.sink = sink;
    this.filter = filter;
    this.#clock = clock;
  }

  /** Writes the line for a finished stream (sets endTime from the clock if the core has not). Never throws. */
  log(info: StreamInfo): void {
    try {
      if (info.endTime === undefined) info.endTime = this.#clock.now();
      if (this.filter && !this.filter(info)) return;
      this.sink.write(this.format(info));
    } catch {
      this.formatErrors++;
      this.#onFormatError?.();
    }
  }
}

/** Logs one finished stream to every logger of its listener/filter chain. */
export function logAll(loggers: readonly AccessLogger[], info: StreamInfo): void {
  for (let k = 0; k < loggers.length; k++) (loggers[k] as AccessLogger).log(info);
}

export interface FromXdsOptions {
  /** Where sinks are shared (one per path); defaults to the process-wide registry. */
  sinks?: SinkRegistry;
  clock?: Clock;
  hostname?: string;
  /** Field path prefix for error messages (default "access_log"). */
  path?: string;
  /** Called when a line could not be formatted (counted in a stat). */
  onFormatError?: () => void;
}

/** The process-wide sinks: one per path, kept across config pushes. */
export const defaultSinks = new SinkRegistry();

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => v !== null && typeof v === 'object' && !Array.isArray(v);
const typeName = (t: unknown): string => (typeof t === 'string' ? t.slice(t.lastIndexOf('/') + 1) : '');

function dataSourceText(src: unknown, at: string): string {
  if (!isObject(src)) throw new TelemetryConfigError(`${at}: expected a DataSource`);
  if (typeof src.inline_string === 'string') return src.inline_string;
  if (typeof src.inline_bytes === 'string') return Buffer.from(src.inline_bytes, 'base64').toString('utf8');
  if (typeof src.filename === 'string') {
    try {
      return readFileSync(src.filename, 'utf8');
    } catch (err) {
      throw new TelemetryConfigError(`${at}.filename: cannot read ${src.filename}: ${(err as Error).message}`);
    }
  }
  if (typeof src.environment_variable === 'string') {
    const v = process.env[src.environment_variable];
    if (v === undefined) throw new TelemetryConfigError(`${at}.environment_variable: ${src.environment_variable} is not set`);
    return v;
  }
  throw new TelemetryConfigError(`${at}: needs inline_string, inline_bytes, filename or environment_variable`);
}

/** envoy.config.core.v3.SubstitutionFormatString -> a line formatter. */
export function formatterFromSubstitutionFormat(cfg: unknown, at: string, opts: FormatOptions = {}): LineFormatter {
  if (!isObject(cfg)) throw new TelemetryConfigError(`${at}: expected a SubstitutionFormatString`);
  if (Array.isArray(cfg.formatters) && cfg.formatters.length > 0) {
    throw new TelemetryConfigError(`${at}.formatters: formatter extensions are not supported`);
  }
  const base: FormatOptions = { ...opts, omitEmptyValues: cfg.omit_empty_values === true };
  const wrap = (fn: () => LineFormatter, field: string): LineFormatter => {
    try {
      return fn();
    } catch (err) {
      if (err instanceof TelemetryConfigError) throw new TelemetryConfigError(`${at}.${field}: ${err.message}`);
      throw err;
    }
  };
  if (typeof cfg.text_format === 'string') {
    const text = cfg.text_format;
    return wrap(() => compileFormat(text, base), 'text_format');
  }
  if (cfg.text_format_source !== undefined) {
    const text = dataSourceText(cfg.text_format_source, `${at}.text_format_source`);
    return wrap(() => compileFormat(text, base), 'text_format_source');
  }
  if (cfg.json_format !== undefined) {
    const fields = cfg.json_format;
    if (!isObject(fields)) throw new TelemetryConfigError(`${at}.json_format: expected an object`);
    const sortProperties = isObject(cfg.json_format_options) && cfg.json_format_options.sort_properties === true;
    return wrap(() => compileJsonFormat(fields, { ...base, sortProperties }), 'json_format');
  }
  throw new TelemetryConfigError(`${at}: needs text_format_source, text_format or json_format`);
}

/** One access_log entry (envoy.config.accesslog.v3.AccessLog) -> an AccessLogger. */
export function accessLoggerFromXds(entry: unknown, at: string, opts: FromXdsOptions = {}): AccessLogger {
  if (!isObject(entry)) throw new TelemetryConfigError(`${at}: expected an AccessLog object`);
  const tc = entry.typed_config;
  if (!isObject(tc)) throw new TelemetryConfigError(`${at}.typed_config: required`);
  const type = typeName(tc['@type']);
  const fmtOpts: FormatOptions = opts.hostname === undefined ? {} : { hostname: opts.hostname };
  const tcAt = `${at}.typed_config`;
  let path: string;
  let format: LineFormatter;
  if (type === FILE_ACCESS_LOG) {
    if (typeof tc.path !== 'string' || tc.path === '') throw new TelemetryConfigError(`${tcAt}.path: required (FileAccessLog)`);
    path = tc.path;
    if (tc.log_format !== undefined) format = formatterFromSubstitutionFormat(tc.log_format, `${tcAt}.log_format`, fmtOpts);
    else if (typeof tc.format === 'string') format = formatterFromSubstitutionFormat({ text_format: tc.format }, tcAt, fmtOpts);
    else if (tc.json_format !== undefined) format = formatterFromSubstitutionFormat({ json_format: tc.json_format }, tcAt, fmtOpts);
    else if (tc.typed_json_format !== undefined) format = formatterFromSubstitutionFormat({ json_format: tc.typed_json_format }, tcAt, fmtOpts);
    else format = compileFormat(ENVOY_DEFAULT_FORMAT, fmtOpts);
  } else if (type === STDOUT_ACCESS_LOG || type === STDERR_ACCESS_LOG) {
    path = type === STDOUT_ACCESS_LOG ? '/dev/stdout' : '/dev/stderr';
    format = tc.log_format !== undefined ? formatterFromSubstitutionFormat(tc.log_format, `${tcAt}.log_format`, fmtOpts) : compileFormat(ENVOY_DEFAULT_FORMAT, fmtOpts);
  } else {
    throw new TelemetryConfigError(`${tcAt}: unsupported access logger ${JSON.stringify(tc['@type'] ?? null)} (supported: ${FILE_ACCESS_LOG}, ${STDOUT_ACCESS_LOG}, ${STDERR_ACCESS_LOG})`);
  }
  const filter = entry.filter === undefined ? undefined : compileAccessLogFilter(entry.filter, `${at}.filter`);
  const sink = (opts.sinks ?? defaultSinks).get(path);
  return new AccessLogger(typeof entry.name === 'string' ? entry.name : type, format, sink, filter, opts.clock, opts.onFormatError);
}

/**
 * The access loggers of one HttpConnectionManager or TcpProxy from its `access_log` list (as decoded from
 * xDS); [] when absent. Throws TelemetryConfigError for a shape it cannot apply, e.g.
 * `access_log[0].typed_config.log_format.text_format_source: access log format: unsupported command operator %FOO%`.
 */
export function accessLoggersFromXds(accessLog: unknown[] | undefined, opts: FromXdsOptions = {}): AccessLogger[] {
  if (accessLog === undefined) return [];
  if (!Array.isArray(accessLog)) throw new TelemetryConfigError(`${opts.path ?? 'access_log'}: expected a list`);
  const prefix = opts.path ?? 'access_log';
  return accessLog.map((entry, n) => accessLoggerFromXds(entry, `${prefix}[${n}]`, opts));
}
