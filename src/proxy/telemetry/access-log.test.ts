import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { newStreamInfo, type StreamInfo } from '../stream-info.ts';
import { AccessLogger, SinkRegistry, TelemetryConfigError, accessLoggersFromXds, createAccessLogSink, logAll } from './access-log.ts';

const dir = mkdtempSync(join(tmpdir(), 'tsmesh-access-log-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const START = Date.UTC(2024, 0, 2, 3, 4, 5, 678);
const FILE = 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog';

function req(code: number, flags: StreamInfo['responseFlags'] = [], headers: Record<string, string> = {}): StreamInfo {
  const info = newStreamInfo('outbound', 'http', START);
  Object.assign(info, { method: 'GET', path: '/x', protocol: 'HTTP/1.1', responseCode: code, endTime: START + 5, requestHeader: (n: string) => headers[n] });
  info.responseFlags.push(...flags);
  return info;
}

describe('accessLoggersFromXds', () => {
  it('a FileAccessLog with a text format writes exact lines to the file; the sink is shared per path', async () => {
    const path = join(dir, 'text.log');
    const sinks = new SinkRegistry();
    const entry = { name: 'envoy.access_loggers.file', typed_config: { '@type': FILE, path, log_format: { text_format_source: { inline_string: '%RESPONSE_CODE% %REQ(:METHOD)% %DURATION%ms\n' } } } };
    const loggers = accessLoggersFromXds([entry, entry], { sinks });
    assert.equal(loggers.length, 2);
    assert.equal(loggers[0]?.sink, loggers[1]?.sink);
    logAll(loggers, req(200));
    await sinks.closeAll();
    assert.equal(readFileSync(path, 'utf8'), '200 GET 5ms\n200 GET 5ms\n');
  });

  it('json_format writes one JSON object per line; Stdout/Stderr loggers name their streams; no access_log means none', () => {
    const sinks = new SinkRegistry();
    const [json, stdout, stderr] = accessLoggersFromXds([
      { typed_config: { '@type': FILE, path: join(dir, 'j.log'), log_format: { json_format: { code: '%RESPONSE_CODE%' }, json_format_options: { sort_properties: true } } } },
      { typed_config: { '@type': 'type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog' } },
      { typed_config: { '@type': 'type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StderrAccessLog', log_format: { text_format: 'x' } } },
    ], { sinks });
    assert.equal(json?.format(req(503)), '{"code":503}\n');
    assert.equal(stdout?.sink.path, '/dev/stdout');
    assert.match(stdout?.format(req(200)) ?? '', /^\[2024-01-02T03:04:05\.678Z\] "GET \/x HTTP\/1\.1" 200 - 0 0 5 - "-" "-" "-" "-" "-"\n$/, 'Envoy\'s default format');
    assert.equal(stderr?.sink.path, '/dev/stderr');
    assert.deepEqual(accessLoggersFromXds(undefined), []);
    void sinks.closeAll();
  });

  it('filters: status code, response flags, headers, and/or', async () => {
    const path = join(dir, 'filtered.log');
    const sinks = new SinkRegistry();
    const [logger] = accessLoggersFromXds([{
      typed_config: { '@type': FILE, path, log_format: { text_format_source: { inline_string: '%RESPONSE_CODE% %RESPONSE_FLAGS%\n' } } },
      filter: { or_filter: { filters: [
        { status_code_filter: { comparison: { op: 'GE', value: { default_value: 500, runtime_key: 'k' } } } },
        { response_flag_filter: { flags: ['NR'] } },
        { and_filter: { filters: [{ header_filter: { header: { name: 'X-Debug', string_match: { exact: 'on' } } } }, { duration_filter: { comparison: { op: 'LE', value: { default_value: 10 } } } }] } },
      ] } },
    }], { sinks });
    assert.ok(logger);
    for (const info of [req(200), req(503, ['UH']), req(404, ['NR']), req(404), req(201, [], { 'x-debug': 'on' }), req(202, [], { 'x-debug': 'off' })]) logger.log(info);
    await sinks.closeAll();
    assert.equal(readFileSync(path, 'utf8'), '503 UH\n404 NR\n201 -\n');
  });

  it('explains what it cannot apply, naming the field', () => {
    const cases: Array<[unknown[], RegExp]> = [
      [[{ typed_config: { '@type': 'type.googleapis.com/envoy.extensions.access_loggers.grpc.v3.HttpGrpcAccessLogConfig' } }],
        /^access_log\[0\]\.typed_config: unsupported access logger "type\.googleapis\.com\/envoy\.extensions\.access_loggers\.grpc\.v3\.HttpGrpcAccessLogConfig"/],
      [[{ typed_config: { '@type': FILE } }], /^access_log\[0\]\.typed_config\.path: required/],
      [[{ name: 'x' }], /^access_log\[0\]\.typed_config: required/],
      [[{}, { typed_config: { '@type': FILE, path: '/tmp/x', log_format: { text_format_source: { inline_string: '%NOPE%' } } } }], /^access_log\[0\]\.typed_config: required/],
      [[{ typed_config: { '@type': FILE, path: '/tmp/x', log_format: { text_format_source: { inline_string: '%NOPE%' } } } }],
        /^access_log\[0\]\.typed_config\.log_format\.text_format_source: access log format: unsupported command operator %NOPE%/],
      [[{ typed_config: { '@type': FILE, path: '/tmp/x', log_format: { text_format_source: { inline_string: 'a' }, formatters: [{ name: 'envoy.formatter.cel' }] } } }],
        /log_format\.formatters: formatter extensions are not supported/],
      [[{ typed_config: { '@type': FILE, path: '/tmp/x' }, filter: { extension_filter: { name: 'envoy.access_loggers.extension_filters.cel' } } }],
        /^access_log\[0\]\.filter\.extension_filter: unsupported access log filter/],
      [[{ typed_config: { '@type': FILE, path: '/tmp/x' }, filter: { and_filter: { filters: [{ traceable_filter: {} }] } } }], /and_filter\.filters: at least 2/],
    ];
    for (const [cfg, re] of cases) {
      assert.throws(() => accessLoggersFromXds(cfg, { sinks: new SinkRegistry() }), (e: unknown) => e instanceof TelemetryConfigError && re.test(e.message), String(re));
    }
  });
});

describe('access log sink', () => {
  it('buffers lines within one event-loop turn and writes them together', async () => {
    const path = join(dir, 'batch.log');
    const sink = createAccessLogSink(path);
    for (let n = 0; n < 1000; n++) sink.write(`line ${n}\n`);
    assert.equal(sink.stats.linesWritten, 0, 'nothing is written synchronously');
    await sink.flush();
    assert.equal(sink.stats.linesWritten, 1000);
    await sink.close();
    const lines = readFileSync(path, 'utf8').split('\n');
    assert.equal(lines.length, 1001);
    assert.equal(lines[999], 'line 999');
  });

  it('a file that cannot be opened counts errors and drops lines instead of throwing; reopen later succeeds', async () => {
    let now = 0;
    const missingDir = join(dir, 'later');
    const path = join(missingDir, 'x.log');
    const sink = createAccessLogSink(path, { clock: { now: () => now }, reopenIntervalMs: 1000 });
    sink.write('lost\n');
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(sink.stats.writeErrors, 1);
    assert.equal(sink.stats.linesDropped, 1);
    mkdirSync(missingDir);
    sink.write('kept\n');
    now = 2000; // the reopen interval has passed
    await new Promise((r) => setTimeout(r, 20));
    await sink.flush();
    await sink.close();
    assert.equal(readFileSync(path, 'utf8'), 'kept\n');
    sink.write('after close\n');
    assert.equal(sink.stats.linesDropped, 2);
  });

  it('drops lines beyond the buffer bound, and a logger whose lookup throws counts it', async () => {
    const sink = createAccessLogSink(join(dir, 'small.log'), { maxBufferBytes: 10 });
    sink.write('123456\n');
    sink.write('123456\n');
    assert.equal(sink.stats.linesDropped, 1);
    const logger = new AccessLogger('t', () => { throw new Error('boom'); }, sink);
    logger.log(req(200));
    assert.equal(logger.formatErrors, 1);
    await sink.close();
  });
});
