// The proxy's telemetry in one object: Istio metrics, Envoy stats and access loggers compiled once per access_log
// list (cached by identity), behind the core's report(info, accessLog) contract. compile() throws
// TelemetryConfigError for the xDS client to NACK; report() never throws.

import type { StreamInfo, WorkloadMetadata } from '../stream-info.ts';
import { accessLoggersFromXds, defaultSinks, logAll, type AccessLogger } from './access-log.ts';
import { systemClock, type Clock } from './clock.ts';
import { IstioMetrics } from './metrics.ts';
import type { SinkRegistry } from './sink.ts';
import type { MetricDef } from './prometheus.ts';
import { StatsRegistry } from './stats.ts';

/** This component's stats: Envoy's access_log_file.* (lines, summed over every sink) and compile failures. */
export const TELEMETRY_STATS: readonly MetricDef[] = [
  { name: 'envoy_access_log_file_write_buffered', type: 'counter', help: 'Access log lines queued for writing', labels: [] },
  { name: 'envoy_access_log_file_write_completed', type: 'counter', help: 'Access log lines written', labels: [] },
  { name: 'envoy_access_log_file_write_failed', type: 'counter', help: 'Access log write or open failures', labels: [] },
  { name: 'envoy_access_log_file_reopen_failed', type: 'counter', help: 'Failed reopen attempts of an access log file', labels: [] },
  { name: 'tsmesh_access_log_lines_dropped_total', type: 'counter', help: 'Access log lines lost (buffer full, write failed, sink closed)', labels: [] },
  { name: 'tsmesh_access_log_format_errors_total', type: 'counter', help: 'Access log lines not written because formatting threw', labels: [] },
  { name: 'tsmesh_access_log_compile_failed_total', type: 'counter', help: 'Streams reported with an access_log list that does not compile', labels: [] },
];

export interface TelemetryOptions {
  /** This proxy's workload (the local side of every metric). */
  self: WorkloadMetadata;
  clock?: Clock;
  sinks?: SinkRegistry;
  stats?: StatsRegistry;
  hostname?: string;
}

const NONE: readonly AccessLogger[] = [];

export class Telemetry {
  readonly metrics: IstioMetrics;
  readonly stats: StatsRegistry;
  readonly sinks: SinkRegistry;
  readonly #clock: Clock;
  readonly #hostname: string | undefined;
  readonly #onFormatError: () => void;
  readonly #compiled = new WeakMap<readonly unknown[], readonly AccessLogger[]>();

  constructor(opts: TelemetryOptions) {
    this.#clock = opts.clock ?? systemClock;
    this.metrics = new IstioMetrics(opts.self, { clock: this.#clock });
    this.stats = opts.stats ?? new StatsRegistry();
    this.stats.define(TELEMETRY_STATS);
    const formatErrors = this.stats.counter('tsmesh_access_log_format_errors_total');
    this.#onFormatError = () => formatErrors.inc();
    this.sinks = opts.sinks ?? defaultSinks;
    this.#hostname = opts.hostname;
  }

  /**
   * The loggers of one HttpConnectionManager/TcpProxy `access_log` list, compiled on first sight and cached by
   * the list's identity. Call it when a listener is compiled: it throws TelemetryConfigError (NACK it).
   */
  compile(accessLog: readonly unknown[] | undefined, path?: string): readonly AccessLogger[] {
    if (!accessLog || accessLog.length === 0) return NONE;
    let loggers = this.#compiled.get(accessLog);
    if (!loggers) {
      loggers = accessLoggersFromXds([...accessLog], {
        sinks: this.sinks, clock: this.#clock, onFormatError: this.#onFormatError,
        ...(this.#hostname === undefined ? {} : { hostname: this.#hostname }),
        ...(path === undefined ? {} : { path }),
      });
      this.#compiled.set(accessLog, loggers);
    }
    return loggers;
  }

  /** One finished HTTP stream or TCP connection: Istio metrics, then the access log lines. Never throws. */
  report(info: StreamInfo, accessLog: readonly unknown[] | undefined): void {
    if (info.endTime === undefined) info.endTime = this.#clock.now();
    if (info.kind === 'http') this.metrics.recordHttp(info);
    else this.metrics.recordTcpClose(info);
    let loggers: readonly AccessLogger[];
    try {
      loggers = this.compile(accessLog);
    } catch {
      // Listeners compile their access_log when the config is applied, so this is unreachable there; a list
      // nobody compiled that does not compile is not logged rather than thrown into the data path.
      this.stats.counter('tsmesh_access_log_compile_failed_total').inc();
      return;
    }
    logAll(loggers, info);
  }

  /** A TCP connection reached its upstream (istio_tcp_connections_opened_total). */
  reportTcpOpen(info: StreamInfo): void {
    this.metrics.recordTcpOpen(info);
  }

  /** Bytes of a long TCP connection so far (Istio reports them periodically, not only at close). */
  reportTcpBytes(info: StreamInfo): void {
    this.metrics.recordTcpBytes(info);
  }

  /** Copies the sinks' counts into the stats (call before rendering them). */
  collect(): void {
    let buffered = 0, written = 0, failed = 0, reopen = 0, dropped = 0;
    for (const sink of this.sinks.all()) {
      buffered += sink.stats.linesBuffered;
      written += sink.stats.linesWritten;
      failed += sink.stats.writeErrors;
      reopen += sink.stats.reopenFailed;
      dropped += sink.stats.linesDropped;
    }
    this.stats.counter('envoy_access_log_file_write_buffered').value = buffered;
    this.stats.counter('envoy_access_log_file_write_completed').value = written;
    this.stats.counter('envoy_access_log_file_write_failed').value = failed;
    this.stats.counter('envoy_access_log_file_reopen_failed').value = reopen;
    this.stats.counter('tsmesh_access_log_lines_dropped_total').value = dropped;
  }

  /** Flushes every access log sink. */
  async flush(): Promise<void> {
    await Promise.all(this.sinks.all().map((s) => s.flush()));
  }
}
