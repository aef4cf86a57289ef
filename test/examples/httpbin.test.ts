// The httpbin sample app as a real process: the endpoints the Istio tasks use answer as go-httpbin does
// (/ip, /headers, /get, /anything, /status/N, /delay/N), one log line per request, exit 0 on SIGTERM.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { request, startApp, stopAll, type AppProcess } from './helpers.ts';

describe('httpbin', () => {
  let httpbin: AppProcess;
  before(async () => {
    httpbin = await startApp('httpbin/httpbin.ts');
  });
  after(stopAll);

  it('/ip: the caller address as {"origin": ...}, or the first X-Forwarded-For entry', async () => {
    const r = await request(`${httpbin.url}/ip`);
    assert.equal(r.status, 200);
    assert.match(String(r.headers['content-type']), /^application\/json/);
    assert.deepEqual(JSON.parse(r.body), { origin: '127.0.0.1' });
    assert.match(r.body, /^\{\n {2}"origin": "127\.0\.0\.1"\n\}\n$/);
    const fwd = await request(`${httpbin.url}/ip`, { headers: { 'x-forwarded-for': '10.1.2.3, 127.0.0.6' } });
    assert.deepEqual(JSON.parse(fwd.body), { origin: '10.1.2.3' });
  });

  it('/headers: every request header, canonical names, values as lists, Host included', async () => {
    const r = await request(`${httpbin.url}/headers`, { headers: { 'x-b3-traceid': 'abc', 'end-user': 'jason', 'user-agent': 'curl/8.16.0' } });
    const h = JSON.parse(r.body).headers;
    assert.deepEqual(h['X-B3-Traceid'], ['abc']);
    assert.deepEqual(h['End-User'], ['jason']);
    assert.deepEqual(h['User-Agent'], ['curl/8.16.0']);
    assert.deepEqual(h.Host, [`127.0.0.1:${httpbin.port}`]);
    assert.deepEqual(JSON.parse((await request(`${httpbin.url}/user-agent`, { headers: { 'user-agent': 'curl/8.16.0' } })).body), { 'user-agent': 'curl/8.16.0' });
  });

  it('/get: args, headers, method, origin and url; other methods are 405', async () => {
    const r = JSON.parse((await request(`${httpbin.url}/get?a=1&a=2&b=x`)).body);
    assert.deepEqual(r.args, { a: ['1', '2'], b: ['x'] });
    assert.equal(r.method, 'GET');
    assert.equal(r.origin, '127.0.0.1');
    assert.equal(r.url, `http://127.0.0.1:${httpbin.port}/get?a=1&a=2&b=x`);
    assert.equal((await request(`${httpbin.url}/get`, { method: 'POST' })).status, 405);
    assert.equal(JSON.parse((await request(`${httpbin.url}/post`, { method: 'POST', body: 'hi' })).body).data, 'hi');
  });

  it('/anything: any method and path, with the body as data, form or json', async () => {
    const j = JSON.parse((await request(`${httpbin.url}/anything/x/y?q=1`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{"k":[1,2]}' })).body);
    assert.equal(j.method, 'PUT');
    assert.deepEqual(j.json, { k: [1, 2] });
    assert.equal(j.data, '{"k":[1,2]}');
    assert.deepEqual(j.args, { q: ['1'] });
    assert.match(j.url, /\/anything\/x\/y\?q=1$/);
    const f = JSON.parse((await request(`${httpbin.url}/anything`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'user=jason&x=1' })).body);
    assert.deepEqual(f.form, { user: ['jason'], x: ['1'] });
  });

  it('/status/N answers N; weighted lists pick by weight; nonsense is 400', async () => {
    for (const code of [200, 404, 418, 500, 503]) assert.equal((await request(`${httpbin.url}/status/${code}`)).status, code);
    const redirect = await request(`${httpbin.url}/status/302`);
    assert.equal(redirect.status, 302);
    assert.equal(redirect.headers.location, '/redirect/1');
    assert.equal((await request(`${httpbin.url}/status/200:0,503:1`)).status, 503);
    const codes = new Set<number>();
    for (let i = 0; i < 40; i++) codes.add((await request(`${httpbin.url}/status/200,500`)).status);
    assert.deepEqual([...codes].sort(), [200, 500]);
    assert.equal((await request(`${httpbin.url}/status/abc`)).status, 400);
    assert.equal((await request(`${httpbin.url}/status/99`)).status, 400);
  });

  it('/delay/N answers after N seconds (fractions and Go durations too); nonsense is 400', async () => {
    const one = await request(`${httpbin.url}/delay/1`);
    assert.equal(one.status, 200);
    assert.ok(one.ms >= 990 && one.ms < 1800, `took ${one.ms} ms`);
    assert.equal(JSON.parse(one.body).method, 'GET');
    const half = await request(`${httpbin.url}/delay/500ms`);
    assert.ok(half.ms >= 490 && half.ms < 1200, `took ${half.ms} ms`);
    assert.equal((await request(`${httpbin.url}/delay/soon`)).status, 400);
    assert.equal((await request(`${httpbin.url}/nope`)).status, 404);
    assert.match(httpbin.output(), /httpbin 127\.0\.0\.1 "GET \/delay\/1" 200 \d+ms/);
  });

  it('exits 0 on SIGTERM', async () => {
    const other = await startApp('httpbin/httpbin.ts');
    assert.equal(await other.stop(), 0);
  });
});
