// Test helpers for the sample apps: start an app as a real process on a free 127.0.0.1 port (PORT=0), stub services in the test process, and a plain HTTP client; a start that does not print its port within 20 s throws with the app's output.

import { spawn, type ChildProcess } from 'node:child_process';
import http, { type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { REPO_ROOT } from '../helpers/shared.ts';

export const EXAMPLES = join(REPO_ROOT, 'examples');

export interface AppProcess {
  child: ChildProcess;
  port: number;
  /** http://127.0.0.1:<port> */
  url: string;
  /** Everything the app printed so far (stdout and stderr). */
  output(): string;
  /** SIGTERM, then the exit code (null when killed by a signal). */
  stop(): Promise<number | null>;
}

const running = new Set<AppProcess>();

/** Starts `examples/<script>` with node --import tsx, PORT=0 and only the given environment (plus PATH/HOME). */
export function startApp(script: string, env: Record<string, string> = {}, args: string[] = []): Promise<AppProcess> {
  return startCommand([process.execPath, '--import', 'tsx', join(EXAMPLES, script), ...args], REPO_ROOT, env);
}

/** Starts an app's command line in `cwd` and waits for its `listening on 0.0.0.0:<port>` line. */
export async function startCommand(argv: string[], cwd: string, env: Record<string, string> = {}): Promise<AppProcess> {
  const script = argv.join(' ');
  const child = spawn(argv[0] as string, argv.slice(1), {
    cwd,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
  child.stderr.on('data', (c: Buffer) => (out += c.toString('utf8')));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${script} did not start within 20 s:\n${out}`)), 20_000);
    const check = (): void => {
      const m = / listening on 0\.0\.0\.0:(\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    };
    child.stdout.on('data', check);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${script} exited with ${code} before listening:\n${out}`));
    });
  });
  const app: AppProcess = {
    child,
    port,
    url: `http://127.0.0.1:${port}`,
    output: () => out,
    stop: async () => {
      running.delete(app);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
  running.add(app);
  return app;
}

/** Stops every app still running (for `after`). */
export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((a) => a.stop()));
}

export interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  ms: number;
}

/** One HTTP request without keep-alive; resolves with whatever status came back. */
export function request(url: string, opts: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Reply> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: opts.method ?? 'GET', headers: opts.headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8'), ms: Date.now() - started }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

export interface Stub {
  port: number;
  /** Headers of every request received, in order. */
  seen: IncomingHttpHeaders[];
  close(): Promise<void>;
}

/** An HTTP server in the test process standing in for a service; `handler` gets the request number (1-based). */
export async function stub(handler: (req: IncomingMessage, res: ServerResponse, n: number) => void): Promise<Stub> {
  const seen: IncomingHttpHeaders[] = [];
  const server = http.createServer((req, res) => {
    seen.push(req.headers);
    handler(req, res, seen.length);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

export function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

/** Answers after `ms` unless the caller hangs up first. */
export function later(res: ServerResponse, ms: number, then: () => void): void {
  const t = setTimeout(then, ms);
  res.once('close', () => clearTimeout(t));
}

/** The env that points a Bookinfo app at a service on 127.0.0.1:<port>. */
export function peer(service: 'details' | 'reviews' | 'ratings', port: number): Record<string, string> {
  const up = service.toUpperCase();
  return { [`${up}_HOSTNAME`]: '127.0.0.1', [`${up}_SERVICE_PORT`]: String(port) };
}
