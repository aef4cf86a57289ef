// Go duration and URL parsing as Kubernetes' CEL library uses them (duration(), isURL(), url()).

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseGoDuration } from './go-duration.ts';
import { parseRequestUri } from './go-url.ts';

const nanos = (s: string): bigint | string => {
  const r = parseGoDuration(s);
  return r.ok ? r.nanos : r.error;
};

describe('parseGoDuration', () => {
  it('sums units and fractions like time.ParseDuration', () => {
    assert.equal(nanos('1h2m3.5s'), 3_723_500_000_000n);
    assert.equal(nanos('300ms'), 300_000_000n);
    assert.equal(nanos('1.5h'), 5_400_000_000_000n);
    assert.equal(nanos('.5s'), 500_000_000n);
    assert.equal(nanos('1.s'), 1_000_000_000n);
    assert.equal(nanos('10us'), 10_000n);
    assert.equal(nanos('10µs'), 10_000n);
    assert.equal(nanos('7ns'), 7n);
    assert.equal(nanos('-1.5s'), -1_500_000_000n);
    assert.equal(nanos('+2s'), 2_000_000_000n);
    assert.equal(nanos('0'), 0n);
  });

  it('rejects what Go rejects, saying why', () => {
    assert.match(String(nanos('')), /empty/);
    assert.match(String(nanos('1')), /missing unit/);
    assert.match(String(nanos('1d')), /unknown unit "d"/);
    assert.match(String(nanos('1h 2m')), /unknown unit "h "/);
    assert.match(String(nanos('s')), /expected a number/);
    assert.match(String(nanos('.s')), /expected a number/);
    assert.match(String(nanos('3000000h')), /out of range/);
  });
});

describe('parseRequestUri', () => {
  const scheme = (s: string): string => {
    const r = parseRequestUri(s);
    return r.ok ? r.url.scheme : `error: ${r.error}`;
  };

  it('accepts absolute URIs and absolute paths', () => {
    assert.equal(scheme('https://example.com/jwks.json'), 'https');
    assert.equal(scheme('HTTP://Example.com:8080/x?y=1'), 'http');
    assert.equal(scheme('oci://ghcr.io/org/plugin:1.0'), 'oci');
    assert.equal(scheme('file:///opt/plugin.wasm'), 'file');
    assert.equal(scheme('/just/a/path'), '');
    assert.equal(scheme('localhost:5000/plugin'), 'localhost'); // Go reads "localhost" as a scheme
    const u = parseRequestUri('http://user@[::1]:8080/p?q=1');
    assert.ok(u.ok);
    assert.equal(u.url.host, '[::1]:8080');
    assert.equal(u.url.path, '/p');
    assert.equal(u.url.rawQuery, 'q=1');
  });

  it('rejects relative references, bad ports, bad escapes and control characters', () => {
    assert.match(scheme('example.com/jwks'), /invalid URI for request/);
    assert.match(scheme(''), /empty url/);
    assert.match(scheme('http://example.com:80a/'), /invalid port/);
    assert.match(scheme('http://exa mple.com/'), /invalid character " " in host/);
    assert.match(scheme('http://example.com/%zz'), /invalid URL escape/);
    assert.match(scheme('http://example.com/\n'), /control character/);
    assert.match(scheme(':foo'), /missing protocol scheme/);
  });
});
