// pilot-agent's `wait`: polls the sidecar's readiness URL (http://localhost:15021/healthz/ready) until it answers
// 200, as the postStart hook of holdApplicationUntilProxyStarts does. Gives up after the timeout with
// MESH_ERR_PROXY_NOT_READY carrying the last error; a malformed URL is MESH_ERR_CLI_USAGE.

import http from 'node:http';
import { MeshError } from '../common/errors.ts';

export const DEFAULT_READY_URL = 'http://localhost:15021/healthz/ready';

export interface WaitOptions {
  /** Default http://localhost:15021/healthz/ready. */
  url?: string;
  /** Give up after this long (default 60 s). */
  timeoutMs?: number;
  /** Between attempts, and before the first (default 500 ms, as Istio). */
  periodMs?: number;
  /** Each request's own limit (default 500 ms). */
  requestTimeoutMs?: number;
  /** Told about each failed attempt. */
  onAttempt?: (error: string) => void;
}

/** One GET on a fresh connection: undefined when it answered 200, else why not. */
function check(url: URL, timeoutMs: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const req = http.get(url, { agent: false, headers: { connection: 'close' } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode === 200 ? undefined : `HTTP status code ${res.statusCode ?? 0}`));
      res.on('error', (err) => resolve(err.message));
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no response within ${timeoutMs} ms`)));
    req.on('error', (err: NodeJS.ErrnoException) => resolve(err.code && !err.message.includes(err.code) ? `${err.code}: ${err.message}` : err.message));
  });
}

/** Resolves once `url` answers 200; throws MESH_ERR_PROXY_NOT_READY when `timeoutMs` passes first. */
export async function waitUntilReady(opts: WaitOptions = {}): Promise<void> {
  const text = opts.url ?? DEFAULT_READY_URL;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new MeshError('MESH_ERR_CLI_USAGE', `wait: bad --url ${JSON.stringify(text)}: expected e.g. ${DEFAULT_READY_URL}`);
  }
  if (url.protocol !== 'http:') throw new MeshError('MESH_ERR_CLI_USAGE', `wait: --url ${JSON.stringify(text)}: only http:// URLs are polled`);
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const periodMs = opts.periodMs ?? 500;
  const requestTimeoutMs = opts.requestTimeoutMs ?? 500;
  const deadline = Date.now() + timeoutMs;
  let last = 'no attempt made';
  for (;;) {
    const left = deadline - Date.now();
    if (left <= 0) break;
    await new Promise((r) => setTimeout(r, Math.min(periodMs, left)));
    if (Date.now() > deadline) break;
    const err = await check(url, requestTimeoutMs);
    if (err === undefined) return;
    last = err;
    opts.onAttempt?.(err);
  }
  throw new MeshError('MESH_ERR_PROXY_NOT_READY', `timeout waiting for the proxy to become ready at ${text} (${timeoutMs / 1000} s). Last error: ${last}`);
}
