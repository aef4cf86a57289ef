import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  durationProblem, fqdnProblem, headerValueProblem, hostsOverlap, hostSubsetOf, ipOrCidrProblem, labelKeyProblem, parseDuration,
  parseProtocol, wildcardDomainProblem,
} from './common.ts';

describe('shared rules', () => {
  it('parses Go durations into nanoseconds', () => {
    assert.equal(parseDuration('1.5s'), 1.5e9);
    assert.equal(parseDuration('1m30s'), 90e9);
    assert.equal(parseDuration('100ms'), 1e8);
    assert.equal(parseDuration('0'), 0);
    assert.equal(parseDuration('5'), undefined);
    assert.equal(parseDuration('1d'), undefined);
  });

  it('wants durations of at least 1ms at millisecond precision', () => {
    assert.equal(durationProblem('0.5s'), undefined);
    assert.match(durationProblem('0s') ?? '', /at least 1ms/);
    assert.match(durationProblem('1500us') ?? '', /accurate to 1ms/);
    assert.match(durationProblem('soon') ?? '', /not a valid duration/);
  });

  it('validates host names as Istio does', () => {
    for (const ok of ['reviews', 'reviews.bookinfo.svc.cluster.local', '*.example.com', '*', 'istio.io.', 'reviews.', 'UPPER.example.com']) assert.equal(wildcardDomainProblem(ok), undefined, ok);
    for (const bad of ['', 'a..b', '-a.com', 'a.*.com', 'example.123', 'a_b.com']) assert.ok(wildcardDomainProblem(bad), bad);
    assert.ok(fqdnProblem('*.example.com'));
  });

  it('matches hosts and wildcards', () => {
    assert.equal(hostsOverlap('*.example.com', 'a.example.com'), true);
    assert.equal(hostsOverlap('*.com', '*.example.com'), true);
    assert.equal(hostsOverlap('a.example.com', 'b.example.com'), false);
    assert.equal(hostSubsetOf('a.example.com', '*.example.com'), true);
    assert.equal(hostSubsetOf('*.example.com', 'a.example.com'), false);
  });

  it('validates IPs and CIDR blocks', () => {
    for (const ok of ['10.0.0.1', '10.0.0.0/8', '2001:db8::/32', '::1']) assert.equal(ipOrCidrProblem(ok), undefined, ok);
    for (const bad of ['10.0.0', '10.0.0.0/33', 'host/8', '10.0.0.0/']) assert.ok(ipOrCidrProblem(bad), bad);
  });

  it('validates label keys and header values', () => {
    assert.equal(labelKeyProblem('app.kubernetes.io/name'), undefined);
    assert.ok(labelKeyProblem('a/b/c'));
    assert.ok(labelKeyProblem('-app'));
    assert.equal(headerValueProblem('prefix %HOSTNAME% 100%%'), undefined);
    assert.equal(headerValueProblem('%REQ(x-a)%'), undefined);
    assert.ok(headerValueProblem('50%'));
    assert.ok(headerValueProblem('a\nb'));
  });

  it('knows Istio protocol names in any case', () => {
    assert.equal(parseProtocol('http2'), 'HTTP2');
    assert.equal(parseProtocol('Mongo'), 'Mongo');
    assert.equal(parseProtocol('quic'), undefined);
  });
});
