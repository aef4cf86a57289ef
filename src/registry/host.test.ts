// Host name matching and expansion, as Istio compares hosts in config.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { dnsSearchCandidates, hostMatches, hostsOverlap, toFqdn } from './host.ts';

describe('hostMatches', () => {
  const table: Array<[string, string, boolean]> = [
    ['*', 'anything.example.com', true],
    ['*.example.com', 'a.example.com', true],
    ['*.example.com', 'a.b.example.com', true],
    ['*.example.com', 'example.com', false],
    ['*.example.com', 'aexample.com', false],
    ['api.example.com', 'API.Example.com', true],
    ['api.example.com', 'api.example.org', false],
    ['*.example.com', '*.a.example.com', true],
    ['*.a.example.com', '*.example.com', false],
    ['', 'x', false],
  ];
  for (const [p, h, want] of table) it(`${p} vs ${h} -> ${want}`, () => assert.equal(hostMatches(p, h), want));
});

describe('hostsOverlap', () => {
  it('is symmetric and true when one wildcard covers the other', () => {
    assert.equal(hostsOverlap('*.example.com', 'a.example.com'), true);
    assert.equal(hostsOverlap('a.example.com', '*.example.com'), true);
    assert.equal(hostsOverlap('*.a.com', '*.b.com'), false);
    assert.equal(hostsOverlap('x.com', 'y.com'), false);
  });
});

describe('toFqdn (Istio expands only names without a dot)', () => {
  const table: Array<[string, string, string]> = [
    ['reviews', 'bookinfo', 'reviews.bookinfo.svc.cluster.local'],
    ['reviews.bookinfo.svc.cluster.local', 'default', 'reviews.bookinfo.svc.cluster.local'],
    ['reviews.other', 'bookinfo', 'reviews.other'],
    ['httpbin.org', 'default', 'httpbin.org'],
    ['api.example.com', 'default', 'api.example.com'],
    ['*', 'default', '*'],
    ['*.example.com', 'default', '*.example.com'],
    ['10.1.2.3', 'default', '10.1.2.3'],
  ];
  for (const [name, ns, want] of table) it(`${name} in ${ns} -> ${want}`, () => assert.equal(toFqdn(name, ns), want));
  it('uses the given cluster domain', () => assert.equal(toFqdn('reviews', 'bookinfo', 'corp.internal'), 'reviews.bookinfo.svc.corp.internal'));
});

describe('dnsSearchCandidates (Kubernetes DNS search path)', () => {
  it('tries the namespace search domains first for names with few dots', () => {
    assert.deepEqual(dnsSearchCandidates('reviews.bookinfo', 'default'), [
      'reviews.bookinfo.default.svc.cluster.local',
      'reviews.bookinfo.svc.cluster.local',
      'reviews.bookinfo.cluster.local',
      'reviews.bookinfo',
    ]);
  });
  it('treats a trailing dot as absolute', () => assert.deepEqual(dnsSearchCandidates('httpbin.org.', 'default'), ['httpbin.org']));
});
