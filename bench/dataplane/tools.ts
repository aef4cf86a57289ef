// Runs the measuring tools (our load generator, the gRPC client, h2load) inside a client network namespace, pinned, sampling each proxy's CPU at the tool's own measure-start/measure-end marks and its memory at the end; parses h2load's text report. A tool that fails or times out resolves with its error, never throws.

import { createInterface } from 'node:readline';
import { execInNetns, findTool } from '../../src/runtime/netns.ts';
import type { Summary } from './histogram.ts';
import { treeUsage, type TreeUsage } from './procstat.ts';

export interface ProxyUsage {
  /** CPU seconds in the measured window. */
  cpuS: number;
  /** Mean CPUs busy over the window (cpuS / window). */
  vcpu: number;
  /** CPU milliseconds per 1000 requests answered in the window (= vCPU at 1000 requests/s, in thousandths). */
  cpuMsPer1000: number;
  /** At the end of the window: RSS summed over the process tree, and the sum of each process's peak. */
  rssMB: number;
  hwmMB: number;
  processes: number;
}

export interface ToolRun {
  code: number | null;
  stdout: string[];
  stderr: string;
  /** Seconds between the tool's measure marks (or its start and exit, for h2load without marks). */
  windowS: number;
  usage?: { client: { start: TreeUsage; end: TreeUsage }; server: { start: TreeUsage; end: TreeUsage } };
  error?: string;
}

export interface Marks {
  start(line: string): boolean;
  end?(line: string): boolean;
}

/** JSON-line tools (loadgen.ts, grpc-load.ts) mark their window with events. */
export const EVENT_MARKS: Marks = {
  start: (l) => l.includes('"event":"measure-start"'),
  end: (l) => l.includes('"event":"measure-end"'),
};

/** h2load says when its main duration starts (after --warm-up-time) and ends with the process. */
export const H2LOAD_MARKS: Marks = {
  start: (l) => /Main benchmark duration is started/i.test(l),
};

export function runTool(netns: string, argv: string[], pids: { client: number; server: number } | undefined, marks: Marks, timeoutMs: number): Promise<ToolRun> {
  return new Promise((resolve) => {
    const child = execInNetns(netns, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    const stdout: string[] = [];
    let stderr = '';
    let t0 = performance.now();
    let t1 = 0;
    let start: { client: TreeUsage; server: TreeUsage } | undefined;
    let end: { client: TreeUsage; server: TreeUsage } | undefined;
    const sample = (): { client: TreeUsage; server: TreeUsage } | undefined => (pids ? { client: treeUsage(pids.client), server: treeUsage(pids.server) } : undefined);
    start = sample();
    let error: string | undefined;
    const timer = setTimeout(() => {
      error = `no result within ${Math.round(timeoutMs / 1000)} s`;
      child.kill('SIGKILL');
    }, timeoutMs);
    const onLine = (line: string): void => {
      stdout.push(line);
      if (marks.start(line)) {
        t0 = performance.now();
        start = sample();
      } else if (marks.end?.(line) && !end) {
        t1 = performance.now();
        end = sample();
      }
    };
    if (child.stdout) createInterface({ input: child.stdout }).on('line', onLine);
    child.stderr?.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
      // h2load writes its progress to stdout, but be liberal
      for (const l of d.split('\n')) if (marks.start(l)) onLine(l);
    });
    child.on('error', (err) => {
      error = err.message;
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      if (!end) {
        t1 = performance.now();
        end = sample();
      }
      const usage = start && end ? { client: { start: start.client, end: end.client }, server: { start: start.server, end: end.server } } : undefined;
      resolve({ code, stdout, stderr, windowS: (t1 - t0) / 1000, ...(usage ? { usage } : {}), ...(error ? { error } : {}) });
    });
  });
}

export function proxyUsage(u: { start: TreeUsage; end: TreeUsage }, windowS: number, requests: number): ProxyUsage {
  const cpuS = Math.max(0, u.end.cpuS - u.start.cpuS);
  return {
    cpuS,
    vcpu: windowS > 0 ? cpuS / windowS : NaN,
    cpuMsPer1000: requests > 0 ? (cpuS * 1000) / (requests / 1000) : NaN,
    rssMB: u.end.rssMB,
    hwmMB: u.end.hwmMB,
    processes: u.end.pids.length,
  };
}

export interface H2loadReport {
  rps: number;
  succeeded: number;
  failed: number;
  errored: number;
  timeout: number;
  non2xx: number;
  /** h2load reports no percentiles: min, mean, max of "time for request", in ms. */
  latency: Pick<Summary, 'min' | 'mean' | 'max'> & { sd: number };
}

function toMs(v: string): number {
  const m = /^([\d.]+)(us|ms|s)$/.exec(v.trim());
  if (!m) return NaN;
  const n = Number(m[1]);
  return m[2] === 'us' ? n / 1000 : m[2] === 'ms' ? n : n * 1000;
}

/** Parses h2load's summary; undefined when it printed none (e.g. it could not connect). */
export function parseH2load(lines: readonly string[]): H2loadReport | undefined {
  const text = lines.join('\n');
  const fin = /finished in [\d.]+\w+, ([\d.]+) req\/s/.exec(text);
  const req = /requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(text);
  const codes = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(text);
  const time = /time for request:\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)/.exec(text);
  if (!fin || !req) return undefined;
  const n = (m: RegExpExecArray | null, i: number): number => Number(m?.[i] ?? 0);
  return {
    rps: Number(fin[1]),
    succeeded: n(req, 1),
    failed: n(req, 2),
    errored: n(req, 3),
    timeout: n(req, 4),
    non2xx: n(codes, 2) + n(codes, 3) + n(codes, 4),
    latency: { min: toMs(time?.[1] ?? ''), max: toMs(time?.[2] ?? ''), mean: toMs(time?.[3] ?? ''), sd: toMs(time?.[4] ?? '') },
  };
}

/** Tools the suite needs, with the Debian package that provides each. */
export const TOOL_PACKAGES: Record<string, string> = {
  ip: 'iproute2',
  'iptables-restore': 'iptables',
  setpriv: 'util-linux',
  taskset: 'util-linux',
  nginx: 'nginx-light',
  haproxy: 'haproxy',
  h2load: 'nghttp2-client',
};

export function missingTools(names: readonly string[]): string[] {
  return names.filter((n) => findTool(n) === undefined);
}
