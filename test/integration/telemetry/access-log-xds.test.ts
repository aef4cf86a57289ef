// What the control plane emits for meshConfig.accessLogFile (TEXT and JSON), through the wire encoding the sidecar
// decodes, compiled by the sidecar's telemetry and written to a real file: the exact lines a user reads.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { defaultMeshConfig } from '../../../src/config/mesh-config.ts';
import { accessLogConfig, httpConnectionManager, tcpProxy } from '../../../src/controlplane/translate/listeners.ts';
import { newStreamInfo, type StreamInfo } from '../../../src/proxy/stream-info.ts';
import { ISTIO_JSON_FORMAT, ISTIO_TEXT_FORMAT, SinkRegistry } from '../../../src/proxy/telemetry/access-log.ts';
import { Telemetry } from '../../../src/proxy/telemetry/telemetry.ts';
import { decodeAny, encodeAny } from '../../../src/xds/protos.ts';

const dir = mkdtempSync(join(tmpdir(), 'tsmesh-access-log-xds-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const START = Date.UTC(2024, 0, 2, 3, 4, 5, 678);

/** The HCM's access_log exactly as the sidecar sees it after decoding the listener's Any. */
function decodedHcmAccessLog(accessLog: Array<Record<string, unknown>> | undefined): unknown[] {
  const hcm = httpConnectionManager('outbound_0.0.0.0_9080', { rds: '9080' }, accessLog);
  const decoded = decodeAny(encodeAny(hcm.typed_config as Record<string, unknown> & { '@type': string }));
  return decoded.access_log as unknown[];
}

function decodedTcpAccessLog(accessLog: Array<Record<string, unknown>> | undefined): unknown[] {
  const tcp = tcpProxy([{ name: 'PassthroughCluster', weight: 100 }], accessLog);
  const decoded = decodeAny(encodeAny(tcp.typed_config as Record<string, unknown> & { '@type': string }));
  return decoded.access_log as unknown[];
}

function outboundCall(): StreamInfo {
  const headers: Record<string, string> = { ':authority': 'reviews:9080', 'user-agent': 'python-requests/2.31', 'x-request-id': 'a1b2c3', 'x-forwarded-for': '10.244.0.7' };
  return Object.assign(newStreamInfo('outbound', 'http', START), {
    endTime: START + 21, method: 'GET', path: '/reviews/0', protocol: 'HTTP/1.1', requestHeader: (n: string) => headers[n],
    responseHeader: (n: string) => (n === 'x-envoy-upstream-service-time' ? '19' : undefined),
    responseCode: 200, responseCodeDetails: 'via_upstream', bytesSent: 295, routeName: 'default',
    upstreamCluster: 'outbound|9080||reviews.default.svc.cluster.local', upstreamHost: '10.244.0.15:9080', upstreamLocalAddress: '10.244.0.7:48878',
    downstreamLocalAddress: '10.96.12.4:9080', downstreamRemoteAddress: '10.244.0.7:33410',
  });
}

describe('access logs configured by the control plane', () => {
  it('meshConfig.accessLogFile with the default TEXT encoding: Istio\'s line, exactly', async () => {
    const path = join(dir, 'text.log');
    const accessLog = decodedHcmAccessLog(accessLogConfig({ ...defaultMeshConfig(), accessLogFile: path }));
    const t = new Telemetry({ self: { workload: 'productpage-v1', namespace: 'default' }, sinks: new SinkRegistry() });
    const loggers = t.compile(accessLog);
    assert.equal(loggers.length, 1);
    assert.equal(t.compile(accessLog), loggers, 'compiled once per list');
    t.report(outboundCall(), accessLog);
    const blocked = Object.assign(newStreamInfo('outbound', 'http', START + 1000), {
      endTime: START + 1000, method: 'GET', path: '/', protocol: 'HTTP/1.1', authority: 'httpbin.org', responseCode: 502, responseCodeDetails: 'direct_response',
      routeName: 'block_all', upstreamCluster: 'BlackHoleCluster', downstreamLocalAddress: '3.3.3.3:80', downstreamRemoteAddress: '10.244.0.7:40000',
    });
    t.report(blocked, accessLog);
    await t.sinks.closeAll();
    assert.equal(readFileSync(path, 'utf8'),
      '[2024-01-02T03:04:05.678Z] "GET /reviews/0 HTTP/1.1" 200 - via_upstream - "-" 0 295 21 19 "10.244.0.7" "python-requests/2.31" "a1b2c3" "reviews:9080" '
      + '"10.244.0.15:9080" outbound|9080||reviews.default.svc.cluster.local 10.244.0.7:48878 10.96.12.4:9080 10.244.0.7:33410 - default\n'
      + '[2024-01-02T03:04:06.678Z] "GET / HTTP/1.1" 502 - direct_response - "-" 0 0 0 - "-" "-" "-" "httpbin.org" "-" BlackHoleCluster - 3.3.3.3:80 10.244.0.7:40000 - block_all\n');
  });

  it('accessLogEncoding JSON: Istio\'s JSON fields, typed', async () => {
    const path = join(dir, 'json.log');
    const accessLog = decodedHcmAccessLog(accessLogConfig({ ...defaultMeshConfig(), accessLogFile: path, accessLogEncoding: 'JSON' }));
    const t = new Telemetry({ self: {}, sinks: new SinkRegistry() });
    t.report(outboundCall(), accessLog);
    await t.sinks.closeAll();
    const lines = readFileSync(path, 'utf8').split('\n');
    assert.equal(lines.length, 2);
    const obj = JSON.parse(lines[0] ?? '') as Record<string, unknown>;
    assert.deepEqual(Object.keys(obj).sort(), Object.keys(ISTIO_JSON_FORMAT).sort());
    assert.equal(obj.response_code, 200);
    assert.equal(obj.duration, 21);
    assert.equal(obj.bytes_sent, 295);
    assert.equal(obj.upstream_service_time, '19');
    assert.equal(obj.requested_server_name, null);
    assert.equal(obj.start_time, '2024-01-02T03:04:05.678Z');
  });

  it('a custom meshConfig.accessLogFormat and a TcpProxy access log', async () => {
    const path = join(dir, 'custom.log');
    const mesh = { ...defaultMeshConfig(), accessLogFile: path, accessLogFormat: '%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT% -> %UPSTREAM_CLUSTER% %RESPONSE_FLAGS% %BYTES_RECEIVED%/%BYTES_SENT%' };
    const accessLog = decodedTcpAccessLog(accessLogConfig(mesh));
    const t = new Telemetry({ self: { workload: 'sleep', namespace: 'default' }, sinks: new SinkRegistry() });
    const conn = Object.assign(newStreamInfo('outbound', 'tcp', START), {
      endTime: START + 5000, upstreamCluster: 'PassthroughCluster', downstreamRemoteAddress: '10.244.0.9:51000', bytesReceived: 517, bytesSent: 4113,
    });
    conn.responseFlags.push('UC');
    t.reportTcpOpen(conn);
    t.report(conn, accessLog);
    await t.sinks.closeAll();
    assert.equal(readFileSync(path, 'utf8'), '10.244.0.9 -> PassthroughCluster UC 517/4113\n');
    const closed = t.metrics.render().split('\n').filter((l) => l.startsWith('istio_tcp_connections_closed_total{'));
    assert.equal(closed.length, 1);
    assert.match(closed[0] ?? '', /destination_service_name="PassthroughCluster".*response_flags="UC".* 1$/);
  });

  it('ISTIO_TEXT_FORMAT is what the control plane sends by default', () => {
    const entry = accessLogConfig({ ...defaultMeshConfig(), accessLogFile: '/dev/stdout' })?.[0] as { typed_config: { log_format: { text_format_source: { inline_string: string } } } };
    assert.equal(entry.typed_config.log_format.text_format_source.inline_string, ISTIO_TEXT_FORMAT);
  });
});
