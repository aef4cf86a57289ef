// Test helpers for Prometheus: a strict parser of the 0.0.4 text exposition (throws on anything a Prometheus
// server would reject), sample lookup by exact label set, and a real Prometheus server (Debian's) run in a temp dir.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Exposition {
  /** By family name: its HELP and TYPE. */
  families: Map<string, { help?: string; type?: string }>;
  samples: Sample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

function parseValue(s: string, line: string): number {
  if (s === '+Inf') return Number.POSITIVE_INFINITY;
  if (s === '-Inf') return Number.NEGATIVE_INFINITY;
  if (s === 'NaN') return Number.NaN;
  const v = Number(s);
  if (s === '' || Number.isNaN(v)) throw new Error(`bad sample value ${JSON.stringify(s)} in: ${line}`);
  return v;
}

function parseLabels(text: string, line: string): Record<string, string> {
  const labels: Record<string, string> = {};
  let i = 0;
  while (i < text.length) {
    const eq = text.indexOf('=', i);
    if (eq < 0) throw new Error(`bad labels in: ${line}`);
    const name = text.slice(i, eq);
    if (!LABEL.test(name)) throw new Error(`bad label name ${JSON.stringify(name)} in: ${line}`);
    if (name in labels) throw new Error(`duplicate label ${name} in: ${line}`);
    if (text[eq + 1] !== '"') throw new Error(`label value not quoted in: ${line}`);
    let j = eq + 2;
    let value = '';
    for (;;) {
      const c = text[j];
      if (c === undefined) throw new Error(`unterminated label value in: ${line}`);
      if (c === '"') break;
      if (c === '\\') {
        const n = text[j + 1];
        if (n === 'n') value += '\n';
        else if (n === '\\' || n === '"') value += n;
        else throw new Error(`bad escape \\${n ?? ''} in: ${line}`);
        j += 2;
      } else {
        value += c;
        j++;
      }
    }
    labels[name] = value;
    i = j + 1;
    if (text[i] === ',') i++;
    else if (i < text.length) throw new Error(`expected , between labels in: ${line}`);
  }
  return labels;
}

/** Parses a text exposition; throws on malformed lines, a TYPE after samples, or an inconsistent histogram. */
export function parseExposition(text: string): Exposition {
  const families = new Map<string, { help?: string; type?: string }>();
  const samples: Sample[] = [];
  const seenSamples = new Set<string>();
  if (text !== '' && !text.endsWith('\n')) throw new Error('exposition must end with a newline');
  for (const line of text.split('\n')) {
    if (line === '') continue;
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) (\S+)(?: (.*))?$/.exec(line);
      if (!m) continue; // a comment
      const [, kind, name = '', rest = ''] = m;
      if (!NAME.test(name)) throw new Error(`bad metric name in: ${line}`);
      const f = families.get(name) ?? {};
      if (kind === 'TYPE') {
        if (f.type !== undefined) throw new Error(`second TYPE for ${name}`);
        if (seenSamples.has(name)) throw new Error(`TYPE for ${name} after its samples`);
        if (!['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(rest)) throw new Error(`bad type in: ${line}`);
        f.type = rest;
      } else {
        if (f.help !== undefined) throw new Error(`second HELP for ${name}`);
        f.help = rest;
      }
      families.set(name, f);
      continue;
    }
    const brace = line.indexOf('{');
    let name: string;
    let labels: Record<string, string> = {};
    let rest: string;
    if (brace >= 0 && brace < line.indexOf(' ')) {
      name = line.slice(0, brace);
      const close = line.lastIndexOf('}');
      if (close < brace) throw new Error(`unclosed labels in: ${line}`);
      labels = parseLabels(line.slice(brace + 1, close), line);
      rest = line.slice(close + 1);
    } else {
      const sp = line.indexOf(' ');
      name = line.slice(0, sp);
      rest = line.slice(sp);
    }
    if (!NAME.test(name)) throw new Error(`bad metric name in: ${line}`);
    const parts = rest.trim().split(/\s+/);
    if (parts.length < 1 || parts.length > 2) throw new Error(`bad sample in: ${line}`);
    samples.push({ name, labels, value: parseValue(parts[0] ?? '', line) });
    seenSamples.add(name.replace(/_(bucket|sum|count)$/, ''));
    seenSamples.add(name);
  }
  checkHistograms(families, samples);
  return { families, samples };
}

function checkHistograms(families: Exposition['families'], samples: Sample[]): void {
  for (const [name, f] of families) {
    if (f.type !== 'histogram') continue;
    const bySeries = new Map<string, Sample[]>();
    for (const s of samples) {
      if (s.name !== `${name}_bucket`) continue;
      const { le: _le, ...rest } = s.labels;
      const key = JSON.stringify(rest);
      bySeries.set(key, [...(bySeries.get(key) ?? []), s]);
    }
    for (const [key, buckets] of bySeries) {
      let prevLe = Number.NEGATIVE_INFINITY;
      let prevCount = 0;
      for (const b of buckets) {
        const le = parseValue(b.labels.le ?? '', `${name} le`);
        if (le <= prevLe) throw new Error(`${name}${key}: le not ascending`);
        if (b.value < prevCount) throw new Error(`${name}${key}: buckets not cumulative`);
        prevLe = le;
        prevCount = b.value;
      }
      if (prevLe !== Number.POSITIVE_INFINITY) throw new Error(`${name}${key}: no +Inf bucket`);
      const count = samples.find((s) => s.name === `${name}_count` && JSON.stringify(s.labels) === key);
      if (!count || count.value !== prevCount) throw new Error(`${name}${key}: _count does not equal the +Inf bucket`);
      if (!samples.some((s) => s.name === `${name}_sum` && JSON.stringify(s.labels) === key)) throw new Error(`${name}${key}: no _sum`);
    }
  }
}

/** Samples of `name` whose labels include every given label (exactly equal values). */
export function findSamples(exp: Exposition, name: string, labels: Record<string, string> = {}): Sample[] {
  return exp.samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
}

// ---------------------------------------------------------------------------------------------------------
// A real Prometheus server

export const PROMETHEUS_BIN = process.env.TSMESH_PROMETHEUS ?? '/usr/bin/prometheus';

/** Why the real-Prometheus tests cannot run here, or undefined when they can. */
export function prometheusUnavailable(): string | undefined {
  if (!existsSync(PROMETHEUS_BIN)) return `${PROMETHEUS_BIN} not found (Debian: apt-get install -y --no-install-recommends prometheus)`;
  return undefined;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export interface PrometheusServer {
  url: string;
  /** Prometheus's own log (stderr), for failure messages. */
  output(): string;
  /** GET /api/v1/query; returns data.result. */
  query(promql: string): Promise<Array<{ metric: Record<string, string>; value: [number, string] }>>;
  stop(): Promise<void>;
}

/** Starts Prometheus scraping `targets` (host:port, path /stats/prometheus) every second; storage in a temp dir. */
export async function startPrometheus(targets: string[], opts: { metricsPath?: string } = {}): Promise<PrometheusServer> {
  const unavailable = prometheusUnavailable();
  if (unavailable) throw new Error(unavailable);
  const dir = mkdtempSync(join(tmpdir(), 'tsmesh-prometheus-'));
  const config = [
    'global:',
    '  scrape_interval: 1s',
    '  scrape_timeout: 1s',
    '  evaluation_interval: 1s',
    'scrape_configs:',
    '  - job_name: tsmesh',
    `    metrics_path: ${opts.metricsPath ?? '/stats/prometheus'}`,
    '    static_configs:',
    `      - targets: [${targets.map((t) => JSON.stringify(t)).join(', ')}]`,
    '',
  ].join('\n');
  writeFileSync(join(dir, 'prometheus.yml'), config);
  let lastError: Error | undefined;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const child = spawn(PROMETHEUS_BIN, [
      `--config.file=${join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--storage.tsdb.retention.time=1h',
      '--web.console.templates=', '--web.console.libraries=',
      '--log.level=info',
    ], { stdio: ['ignore', 'ignore', 'pipe'] });
    let output = '';
    child.on('error', (err) => {
      output += `spawn failed: ${err.message}\n`;
    });
    child.stderr?.setEncoding('utf8').on('data', (d: string) => {
      output += d;
    });
    const url = `http://127.0.0.1:${port}`;
    try {
      await waitReady(url, child, () => output);
    } catch (err) {
      lastError = err as Error;
      await stopChild(child);
      continue;
    }
    return {
      url,
      output: () => output,
      async query(promql) {
        const res = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(promql)}`);
        const body = (await res.json()) as { status: string; error?: string; data?: { result: Array<{ metric: Record<string, string>; value: [number, string] }> } };
        if (body.status !== 'success') throw new Error(`query ${promql}: ${body.error ?? res.status}`);
        return body.data?.result ?? [];
      },
      async stop() {
        await stopChild(child);
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }
  rmSync(dir, { recursive: true, force: true });
  throw lastError ?? new Error('prometheus did not start');
}

async function waitReady(url: string, child: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`prometheus exited with ${child.exitCode}:\n${output()}`);
    try {
      const res = await fetch(`${url}/-/ready`);
      if (res.status === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`prometheus not ready after 30s:\n${output()}`);
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}
