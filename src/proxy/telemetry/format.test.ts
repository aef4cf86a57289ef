import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { istioPath } from '../../../test/helpers/shared.ts';
import { newStreamInfo, type StreamInfo } from '../stream-info.ts';
import { TelemetryConfigError } from './errors.ts';
import { ISTIO_JSON_FORMAT, ISTIO_TEXT_FORMAT, compileFormat, compileJsonFormat, addressPort, addressWithoutPort } from './format.ts';

const START = Date.UTC(2024, 0, 2, 3, 4, 5, 678);

function headers(h: Record<string, string>): (name: string) => string | undefined {
  return (name) => h[name];
}

/** An inbound request that reached the application, every field set. */
function full(): StreamInfo {
  const info = newStreamInfo('inbound', 'http', START);
  Object.assign(info, {
    endTime: START + 12,
    method: 'GET',
    path: '/productpage?u=normal',
    protocol: 'HTTP/1.1',
    requestHeader: headers({
      ':method': 'GET', ':path': '/productpage?u=normal', ':authority': 'productpage:9080', 'user-agent': 'curl/8.5.0',
      'x-request-id': '5c8a6e4e-0a0b-4d1c-9f3c-1b2a3c4d5e6f', 'x-forwarded-for': '10.244.0.9',
    }),
    responseHeader: headers({ 'x-envoy-upstream-service-time': '9', 'content-type': 'text/html' }),
    responseTrailer: headers({ 'grpc-status': '0' }),
    responseCode: 200,
    responseCodeDetails: 'via_upstream',
    bytesReceived: 0,
    bytesSent: 5293,
    upstreamServiceTimeMs: 9,
    routeName: 'default',
    upstreamCluster: 'inbound|9080||',
    upstreamHost: '10.244.0.12:9080',
    upstreamLocalAddress: '127.0.0.6:43211',
    downstreamLocalAddress: '10.244.0.12:9080',
    downstreamRemoteAddress: '10.244.0.9:51234',
    requestedServerName: 'outbound_.9080_._.productpage.default.svc.cluster.local',
    retries: 0,
  });
  return info;
}

describe('TEXT access log format', () => {
  it('ISTIO_TEXT_FORMAT is the format quoted in ../shared/istio/README.md', () => {
    const readme = readFileSync(istioPath('README.md'), 'utf8');
    const quoted = /Default text access log format[^`]*`([^`]+)`/.exec(readme)?.[1];
    assert.equal(quoted, ISTIO_TEXT_FORMAT.replace('\n', '\\n'));
  });

  it('prints Istio\'s default line exactly for a fully populated stream', () => {
    const line = compileFormat(ISTIO_TEXT_FORMAT)(full());
    assert.equal(line,
      '[2024-01-02T03:04:05.678Z] "GET /productpage?u=normal HTTP/1.1" 200 - via_upstream - "-" 0 5293 12 9 "10.244.0.9" "curl/8.5.0" '
      + '"5c8a6e4e-0a0b-4d1c-9f3c-1b2a3c4d5e6f" "productpage:9080" "10.244.0.12:9080" inbound|9080|| 127.0.0.6:43211 10.244.0.12:9080 '
      + '10.244.0.9:51234 outbound_.9080_._.productpage.default.svc.cluster.local default\n');
  });

  it('prints - for every absent field (a TCP connection reset before anything happened)', () => {
    const info = newStreamInfo('outbound', 'tcp', START);
    info.responseFlags.push('UF', 'URX');
    const line = compileFormat(ISTIO_TEXT_FORMAT)(info);
    assert.equal(line, '[2024-01-02T03:04:05.678Z] "- - -" 0 UF,URX - - "-" 0 0 - - "-" "-" "-" "-" "-" - - - - - -\n');
  });

  it('falls back on the StreamInfo fields when the header lookup lacks pseudo-headers; x-envoy-original-path wins', () => {
    const info = newStreamInfo('outbound', 'http', START);
    Object.assign(info, { method: 'POST', path: '/a', authority: 'reviews:9080', requestId: 'rid-1', upstreamServiceTimeMs: 3.7 });
    assert.equal(compileFormat('%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %REQ(:AUTHORITY)% %REQ(x-request-id)% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%')(info),
      'POST /a reviews:9080 rid-1 3');
    info.requestHeader = headers({ 'x-envoy-original-path': '/original', ':path': '/rewritten' });
    assert.equal(compileFormat('%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %REQ(:PATH)%')(info), '/original /rewritten');
  });

  it('supports max lengths, %%, trailers, attempt count, hostname and the address variants', () => {
    const info = full();
    info.retries = 2;
    const f = compileFormat('100%% %REQ(USER-AGENT):4% %TRAILER(GRPC-STATUS)% %UPSTREAM_REQUEST_ATTEMPT_COUNT% %HOSTNAME% '
      + '%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT% %DOWNSTREAM_REMOTE_PORT% %UPSTREAM_CLUSTER% %REQ_WITHOUT_QUERY(:PATH)% %RESPONSE_DURATION%', { hostname: 'pod-1' });
    assert.equal(f(info), '100% curl 0 3 pod-1 10.244.0.9 51234 inbound|9080|| /productpage 9');
    assert.equal(addressWithoutPort('[fd00::1]:8080'), 'fd00::1');
    assert.equal(addressPort('[fd00::1]:8080'), 8080);
    assert.equal(addressWithoutPort('fd00::1'), 'fd00::1');
    assert.equal(addressPort('fd00::1'), undefined);
  });

  it('formats %START_TIME(...)% with strftime specifiers, in UTC', () => {
    const info = full();
    assert.equal(compileFormat('%START_TIME(%Y-%m-%dT%H:%M:%S.%3fZ)%')(info), '2024-01-02T03:04:05.678Z');
    assert.equal(compileFormat('%START_TIME(%s)%|%START_TIME(%E3S)%|%START_TIME(%6f)%|%START_TIME(%d/%b/%Y:%T %z)%')(info),
      `${Math.floor(START / 1000)}|05.678|678000|02/Jan/2024:03:04:05 +0000`);
    // The cached second is recomputed when the second changes.
    const f = compileFormat('%START_TIME(%H:%M:%S)%');
    assert.equal(f(info), '03:04:05');
    info.startTime += 1000;
    assert.equal(f(info), '03:04:06');
  });

  it('omit_empty_values prints nothing instead of -', () => {
    assert.equal(compileFormat('[%ROUTE_NAME%][%RESPONSE_CODE%]', { omitEmptyValues: true })(newStreamInfo('inbound', 'tcp', START)), '[][0]');
  });

  it('rejects unknown and malformed operators with the reason', () => {
    const bad: Array<[string, RegExp]> = [
      ['%FOO%', /unsupported command operator %FOO%/],
      ['%REQ%', /%REQ\(\.\.\.\)% needs a parameter/],
      ['%REQ()%', /expected a header name/],
      ['%REQ(A?B?C)%', /expected a header name or two alternatives/],
      ['%PROTOCOL(x)%', /%PROTOCOL% takes no parameters/],
      ['%BYTES_SENT:3%', /takes no length limit/],
      ['50% of', /malformed command operator/],
      ['%REQ(:PATH', /missing '\)'/],
    ];
    for (const [fmt, re] of bad) {
      assert.throws(() => compileFormat(fmt), (err: unknown) => err instanceof TelemetryConfigError && re.test(err.message), fmt);
    }
  });
});

describe('JSON access log format', () => {
  it('Istio\'s JSON fields: numbers for codes, bytes and durations, strings for headers, null when absent', () => {
    const line = compileJsonFormat(ISTIO_JSON_FORMAT)(full());
    assert.ok(line.endsWith('}\n'));
    assert.deepEqual(JSON.parse(line), {
      start_time: '2024-01-02T03:04:05.678Z', route_name: 'default', method: 'GET', path: '/productpage?u=normal', protocol: 'HTTP/1.1',
      response_code: 200, response_flags: '-', response_code_details: 'via_upstream', connection_termination_details: null,
      bytes_received: 0, bytes_sent: 5293, duration: 12, upstream_service_time: '9', x_forwarded_for: '10.244.0.9',
      user_agent: 'curl/8.5.0', request_id: '5c8a6e4e-0a0b-4d1c-9f3c-1b2a3c4d5e6f', authority: 'productpage:9080',
      upstream_host: '10.244.0.12:9080', upstream_cluster: 'inbound|9080||', upstream_local_address: '127.0.0.6:43211',
      downstream_local_address: '10.244.0.12:9080', downstream_remote_address: '10.244.0.9:51234',
      requested_server_name: 'outbound_.9080_._.productpage.default.svc.cluster.local', upstream_transport_failure_reason: null,
    });
    assert.deepEqual(Object.keys(JSON.parse(line) as object), Object.keys(ISTIO_JSON_FORMAT), 'keys keep the configured order');
  });

  it('mixed values are strings with - for absent parts; nested objects; literals; omit_empty_values; sorted keys', () => {
    const info = newStreamInfo('outbound', 'tcp', START);
    const fields = { z: '%PROTOCOL% to %UPSTREAM_HOST%', a: { code: '%RESPONSE_CODE%', dur: '%DURATION%' }, lit: 'x%%y', n: 7 };
    assert.equal(compileJsonFormat(fields)(info), '{"z":"- to -","a":{"code":0,"dur":null},"lit":"x%y","n":7}\n');
    assert.equal(compileJsonFormat(fields, { omitEmptyValues: true, sortProperties: true })(info), '{"a":{"code":0},"lit":"x%y","n":7,"z":" to "}\n');
    assert.throws(() => compileJsonFormat({ a: ['%PROTOCOL%'] }), /json_format\.a: values must be/);
  });
});
