import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileRouteTable, type RouteRequest } from './route-table.ts';

const req = (authority: string, path: string, headers: Record<string, string> = {}): RouteRequest => ({
  authority,
  path,
  header: (n) => (n === ':authority' ? authority : n === ':path' ? path : n === ':method' ? (headers[':method'] ?? 'GET') : headers[n]),
});

const table = compileRouteTable({
  name: '9080',
  virtual_hosts: [
    {
      name: 'reviews.default.svc.cluster.local:9080',
      domains: ['reviews.default.svc.cluster.local', 'reviews', 'reviews:9080', '10.96.0.5:9080'],
      routes: [
        { name: 'jason', match: { prefix: '/', headers: [{ name: 'end-user', string_match: { exact: 'jason' } }] }, route: { cluster: 'v2' } },
        { name: 'not-debug', match: { path: '/reviews/1', headers: [{ name: 'x-debug', present_match: true, invert_match: true }] }, route: { cluster: 'exact' } },
        { name: 'regex', match: { safe_regex: { regex: '/ratings/[0-9]+' }, query_parameters: [{ name: 'u', string_match: { exact: 'x' } }] }, route: { cluster: 'regex' } },
        { name: 'ci', match: { prefix: '/API', case_sensitive: false }, route: { cluster: 'ci' } },
        { name: 'default', match: { prefix: '/' }, route: { cluster: 'v1' } },
      ],
    },
    { name: 'wild', domains: ['*.example.com'], routes: [{ name: 'w', match: { prefix: '/' }, route: { cluster: 'wild' } }] },
    { name: 'longer', domains: ['*.api.example.com'], routes: [{ name: 'l', match: { prefix: '/' }, route: { cluster: 'longer' } }] },
    { name: 'pre', domains: ['foo.*'], routes: [{ name: 'p', match: { prefix: '/' }, route: { cluster: 'pre' } }] },
    { name: 'allow_any', domains: ['*'], routes: [{ name: 'allow_any', match: { prefix: '/' }, route: { cluster: 'PassthroughCluster' } }] },
  ],
});

const cluster = (r: RouteRequest): string | undefined => (table.select(r).route?.config.route as { cluster?: string } | undefined)?.cluster;

describe('route table', () => {
  it('picks virtual hosts by exact domain, longest suffix, prefix, then *', () => {
    assert.equal(table.virtualHost('REVIEWS:9080')?.name, 'reviews.default.svc.cluster.local:9080');
    assert.equal(table.virtualHost('a.api.example.com')?.name, 'longer');
    assert.equal(table.virtualHost('b.example.com')?.name, 'wild');
    assert.equal(table.virtualHost('example.com')?.name, 'allow_any');
    assert.equal(table.virtualHost('foo.bar')?.name, 'pre');
    assert.equal(table.virtualHost('httpbin.org')?.name, 'allow_any');
  });
  it('takes the first matching route: headers, invert, exact path, regex + query, case-insensitive prefix', () => {
    assert.equal(cluster(req('reviews', '/reviews/1', { 'end-user': 'jason' })), 'v2');
    assert.equal(cluster(req('reviews', '/reviews/1')), 'exact');
    assert.equal(cluster(req('reviews', '/reviews/1', { 'x-debug': '1' })), 'v1');
    assert.equal(cluster(req('reviews', '/ratings/12?u=x')), 'regex');
    assert.equal(cluster(req('reviews', '/ratings/12?u=y')), 'v1');
    assert.equal(cluster(req('reviews', '/ratings/1a?u=x')), 'v1', 'the regex must match the whole path');
    assert.equal(cluster(req('reviews', '/api/x')), 'ci');
    assert.equal(cluster(req('10.96.0.5:9080', '/')), 'v1');
  });
  it('reports a bad regex and never matches it', () => {
    const t = compileRouteTable({ name: 'x', virtual_hosts: [{ name: 'v', domains: ['*'], routes: [{ match: { safe_regex: { regex: '(' } }, route: { cluster: 'c' } }] }] });
    assert.equal(t.problems.length, 1);
    assert.match(t.problems[0] ?? '', /virtual_hosts\[0\]\.routes\[0\]\.match\.safe_regex: invalid regex/);
    assert.equal(t.select(req('a', '/(')).route, undefined);
  });
});
