// `tsmesh wait` against real HTTP servers on loopback: it returns 0 once the readiness URL answers 200, keeps
// polling through refusals and 503s, and exits 1 with the last error when the timeout passes first.

import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, describe, it } from 'node:test';
import { runCli } from '../../../test/helpers/cli.ts';

function server(handler: http.RequestListener): Promise<{ url: string; close(): Promise<void> }> {
  const s = http.createServer(handler);
  return new Promise((resolve) => {
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      resolve({ url: `http://127.0.0.1:${port}/healthz/ready`, close: () => new Promise((r) => s.close(() => r())) });
    });
  });
}

describe('tsmesh wait', () => {
  const open: Array<{ close(): Promise<void> }> = [];
  after(async () => {
    for (const s of open) await s.close();
  });

  it('exits 0 once the readiness URL turns 200, after polling through 503s', async () => {
    let hits = 0;
    const s = await server((req, res) => {
      hits++;
      res.statusCode = hits >= 3 && req.url === '/healthz/ready' ? 200 : 503;
      res.end();
    });
    open.push(s);
    const r = await runCli(['wait', '--url', s.url, '--periodMillis', '20', '--timeoutSeconds', '30']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(hits, 3, 'it stops at the first 200');
    assert.match(r.stdout, /Waiting for the proxy to be ready \(timeout: 30 seconds\)/);
    assert.match(r.stdout, /The proxy is ready!/);
  });

  it('keeps trying while nothing listens yet, and succeeds when the server comes up', async () => {
    const s = await server((_req, res) => res.end('ok'));
    const url = s.url;
    await s.close();
    const pending = runCli(['wait', '--url', url, '--periodMillis', '20', '--timeoutSeconds', '30']);
    await new Promise((r) => setTimeout(r, 200));
    const again = http.createServer((_req, res) => res.end('ok'));
    await new Promise<void>((resolve) => again.listen(Number(new URL(url).port), '127.0.0.1', () => resolve()));
    open.push({ close: () => new Promise((r) => again.close(() => r())) });
    const r = await pending;
    assert.equal(r.code, 0, r.stderr);
  });

  it('exits 1 after --timeoutSeconds with the last error when the URL never answers 200', async () => {
    const s = await server((_req, res) => {
      res.statusCode = 503;
      res.end();
    });
    open.push(s);
    const r = await runCli(['wait', '--url', s.url, '--periodMillis', '50', '--timeoutSeconds', '1']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /timeout waiting for the proxy to become ready at http:\/\/127\.0\.0\.1:\d+\/healthz\/ready \(1 s\)\. Last error: HTTP status code 503/);
  });

  it('a request that hangs counts as a failed attempt (--requestTimeoutMillis)', async () => {
    const s = await server(() => undefined);
    open.push(s);
    const r = await runCli(['wait', '--url', s.url, '--periodMillis', '10', '--requestTimeoutMillis', '100', '--timeoutSeconds', '1']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /Last error: no response within 100 ms/);
  });

  it('bad flags exit 2', async () => {
    assert.equal((await runCli(['wait', '--timeoutSeconds', 'soon'])).code, 2);
    assert.equal((await runCli(['wait', '--url', 'not a url'])).code, 2);
    assert.equal((await runCli(['wait', '--bogus'])).code, 2);
  });
});
