// `npm run bench -- dataplane`: the sidecar's data path against a direct call, an nginx pair and a HAProxy pair, Istio's method: client -> client-side proxy -> server-side proxy -> origin in network namespaces on one bridge, fixed-rate HTTP/1.1 latency added over the direct baseline with each proxy's CPU and RSS, then closed-loop maximum throughput (HTTP/1.1, HTTP/2, gRPC, TCP). A run that fails is reported as failed and the others still run; missing tools are named with their apt package.

import { positiveNumber } from '../lib/args.ts';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { topFrames, type Frame } from '../lib/cpuprofile.ts';
import { writeSection } from '../lib/latest-md.ts';
import { formatLoad, machine, type Machine } from '../lib/machine.ts';
import { lineChart } from '../lib/svg.ts';
import { markdownTable, textTable } from '../lib/table.ts';
import { BODY_BYTES } from './configs.ts';
import type { GrpcResult } from './grpc-load.ts';
import type { Summary } from './histogram.ts';
import type { LoadResult, LoadSpec, ProbeResult } from './loadgen.ts';
import { CHAINS, HOST, nginxStreamAvailable, startTopology, TSX, type Chain, type ProxyKind, type Topology } from './topology.ts';
import { EVENT_MARKS, H2LOAD_MARKS, missingTools, parseH2load, proxyUsage, runTool, TOOL_PACKAGES, type H2loadReport, type ProxyUsage, type ToolRun } from './tools.ts';

const HERE = import.meta.dirname;
const RESULTS = join(HERE, '..', 'results');
const LOADGEN = join(HERE, 'loadgen.ts');
const GRPC_LOAD = join(HERE, 'grpc-load.ts');
/** Hand-written reading of the latest profile and misses, appended to latest.md while a goal is missed. */
const ANALYSIS = join(HERE, 'analysis.md');
const GOAL_P99_VS_NGINX = 1.5;
const GOAL_MAX_VS_NGINX = 0.6;
const GOAL_VCPU_PER_1000 = 0.25;
const GOAL_RSS_MB = 60;
const APT = 'apt-get install -y nginx-light libnginx-mod-stream haproxy nghttp2-client';

export const usage = `npm run bench -- dataplane [options]
  --duration 30         seconds measured per fixed-rate run (after --warmup)
  --warmup 5            seconds of load before each fixed-rate window
  --rate 1000           requests/s of the fixed-rate runs (HTTP/1.1 GET, 1 KB answers)
  --connections 16,4,64 connection counts of the fixed-rate runs (the first is the one the goals use)
  --max-duration 10     seconds measured per closed-loop run (after a 2 s warm-up)
  --max-connections 64  connections of the closed-loop HTTP/1.1 and TCP runs
  --h2 4x16             connections x concurrent streams of the closed-loop HTTP/2 and gRPC runs
  --only CHAINS         tsmesh,nginx,haproxy (direct, the baseline, always runs)
  --tests LIST          rate,h1,h2,grpc,tcp (default all)
  --quick               --duration 5 --warmup 2 --connections 16 --max-duration 3
  --no-check            skip checking the load generator against h2load
  --pin-load 0          CPUs (taskset list) of the load generator and the origin
  --pin-proxies 1       CPUs of every proxy (both sides of each pair)
  --sidecar-args '--concurrency 1'  arguments for \`tsmesh proxy\` (one worker, like nginx and HAProxy here)
  --cpu-prof            run the tsmesh sidecars under node --cpu-prof and list their top frames
  --results DIR         where to write (default bench/results; latest.md is committed)
  --no-write            print only; write nothing
  --keep                keep the run's directory (every proxy's log and config) and say where
  --from-json FILE      re-render the tables, chart and latest.md of an earlier dataplane.json
needs root, Linux, and: ${APT}`;

type Test = 'rate' | 'h1' | 'h2' | 'grpc' | 'tcp';
const TESTS: readonly Test[] = ['rate', 'h1', 'h2', 'grpc', 'tcp'];
const PROXIES: readonly ProxyKind[] = ['tsmesh', 'nginx', 'haproxy'];

interface Options {
  durationS: number;
  warmupS: number;
  rate: number;
  connections: number[];
  maxDurationS: number;
  maxConnections: number;
  h2Connections: number;
  h2Streams: number;
  chains: Chain[];
  tests: Test[];
  check: boolean;
  pinLoad: string;
  pinProxies: string;
  sidecarArgs: string[];
  cpuProf: boolean;
  write: boolean;
  keep: boolean;
  results: string;
}

export interface RunResult {
  test: Test;
  chain: Chain;
  tool: 'loadgen' | 'h2load' | 'grpc-load';
  connections: number;
  /** Concurrent streams per connection (HTTP/2, gRPC); 1 otherwise. */
  streams: number;
  /** Fixed rate (requests/s), 0 = closed loop. */
  rate: number;
  windowS: number;
  requests: number;
  rps: number;
  errors: number;
  errorNote?: string;
  /** ms; h2load gives only min, mean and max. */
  latency?: Partial<Summary>;
  /** Fixed rate: from the actual send, not the intended time. */
  service?: Summary;
  sendLag?: Summary;
  proxies?: { client: ProxyUsage; server: ProxyUsage };
  error?: string;
  skipped?: string;
}

interface CheckRow {
  what: string;
  tool: 'loadgen' | 'h2load';
  rps: number;
  meanMs: number;
  maxMs: number;
  p50Ms?: number;
  p99Ms?: number;
  /** loadgen at a fixed rate: how late requests left their intended time (timer granularity). */
  lagP50Ms?: number;
  lagP99Ms?: number;
  errors: number;
  error?: string;
}

interface Saved {
  suite: 'dataplane';
  date: string;
  command: string;
  machine: Machine;
  options: Options;
  topology: { subnet: string; pin: { load: string; proxies: string } };
  check: CheckRow[];
  runs: RunResult[];
  goals: Goal[];
  /** --cpu-prof: each tsmesh sidecar's top functions and files by self time (shares of its busy time). */
  profiles?: Array<{ side: string; file: string; totalMs: number; busyMs: number; frames: Frame[]; files: Frame[] }>;
}

function log(msg: string): void {
  process.stderr.write(`[bench dataplane] ${msg}\n`);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function parse(args: string[]): Options {
  const { values } = parseArgs({
    args,
    options: {
      duration: { type: 'string' },
      warmup: { type: 'string' },
      rate: { type: 'string', default: '1000' },
      connections: { type: 'string' },
      'max-duration': { type: 'string' },
      'max-connections': { type: 'string', default: '64' },
      h2: { type: 'string', default: '4x16' },
      only: { type: 'string', default: PROXIES.join(',') },
      tests: { type: 'string', default: TESTS.join(',') },
      quick: { type: 'boolean', default: false },
      'no-check': { type: 'boolean', default: false },
      'pin-load': { type: 'string', default: '0' },
      'pin-proxies': { type: 'string', default: '1' },
      'sidecar-args': { type: 'string', default: '--concurrency 1' },
      'cpu-prof': { type: 'boolean', default: false },
      'no-write': { type: 'boolean', default: false },
      keep: { type: 'boolean', default: false },
      results: { type: 'string', default: RESULTS },
    },
    strict: true,
  });
  const num = positiveNumber;
  const q = values.quick;
  const chains = values.only.split(',').map((s) => s.trim()).filter((s) => s !== '' && s !== 'direct');
  for (const c of chains) if (!(PROXIES as readonly string[]).includes(c)) throw new Error(`--only: unknown chain ${c}; known: ${PROXIES.join(', ')}`);
  const tests = values.tests.split(',').map((s) => s.trim()).filter(Boolean);
  for (const t of tests) if (!(TESTS as readonly string[]).includes(t)) throw new Error(`--tests: unknown test ${t}; known: ${TESTS.join(', ')}`);
  const h2 = /^(\d+)x(\d+)$/.exec(values.h2);
  if (!h2) throw new Error(`--h2: expected CONNECTIONSxSTREAMS such as 4x16, got ${values.h2}`);
  return {
    durationS: num(values.duration ?? (q ? '5' : '30'), 'duration'),
    warmupS: Number(values.warmup ?? (q ? '2' : '5')),
    rate: num(values.rate, 'rate'),
    connections: (values.connections ?? (q ? '16' : '16,4,64')).split(',').map((s) => num(s, 'connections')),
    maxDurationS: num(values['max-duration'] ?? (q ? '3' : '10'), 'max-duration'),
    maxConnections: num(values['max-connections'], 'max-connections'),
    h2Connections: Number(h2[1]),
    h2Streams: Number(h2[2]),
    chains: ['direct', ...CHAINS.filter((c) => chains.includes(c))],
    tests: TESTS.filter((t) => tests.includes(t)),
    check: !values['no-check'],
    pinLoad: values['pin-load'],
    pinProxies: values['pin-proxies'],
    sidecarArgs: values['sidecar-args'].split(/\s+/).filter((s) => s !== ''),
    cpuProf: values['cpu-prof'],
    write: !values['no-write'],
    keep: values.keep,
    results: values.results,
  };
}

// ---- running -------------------------------------------------------------------------------------

function nodeTool(o: Options, script: string, spec: unknown): string[] {
  // the measuring process: pinned with the origin; a larger young generation keeps its GC pauses short and rare
  return ['taskset', '-c', o.pinLoad, process.execPath, '--max-semi-space-size=32', '--import', TSX, script, JSON.stringify(spec)];
}

function lastJson<T>(run: ToolRun): { result?: T; error?: string } {
  for (let i = run.stdout.length - 1; i >= 0; i--) {
    const line = run.stdout[i] ?? '';
    if (!line.startsWith('{')) continue;
    try {
      const v = JSON.parse(line) as { event?: string; result?: T; error?: string };
      if (v.event === 'result') return v;
    } catch {
      // not JSON
    }
  }
  return { error: run.error ?? `no result (exit ${run.code}): ${run.stderr.trim().split('\n').slice(-3).join(' | ')}` };
}

async function probe(topo: Topology, chain: Chain, timeoutMs: number): Promise<ProbeResult> {
  const t = topo.targets[chain];
  const spec: LoadSpec = { mode: 'probe', host: t.h1.host, port: t.h1.port, hostHeader: HOST, path: '/', connections: 1, rate: 0, warmupS: 0, durationS: 0, timeoutMs: 3000 };
  const until = Date.now() + timeoutMs;
  let last: ProbeResult = { status: 0, bodyBytes: 0, headers: {}, error: 'not tried' };
  while (Date.now() < until) {
    const run = await runTool(t.netns, [process.execPath, '--import', TSX, LOADGEN, JSON.stringify(spec)], undefined, EVENT_MARKS, 15_000);
    const r = lastJson<ProbeResult>(run);
    last = r.result ?? { status: 0, bodyBytes: 0, headers: {}, error: r.error ?? 'no result' };
    if (last.status === 200 && last.bodyBytes === BODY_BYTES) return last;
    await sleep(500);
  }
  return last;
}

function usageOf(run: ToolRun, requests: number): RunResult['proxies'] {
  if (!run.usage) return undefined;
  return { client: proxyUsage(run.usage.client, run.windowS, requests), server: proxyUsage(run.usage.server, run.windowS, requests) };
}

async function rateRun(o: Options, topo: Topology, chain: Chain, connections: number): Promise<RunResult> {
  const t = topo.targets[chain];
  const spec: LoadSpec = { mode: 'http', host: t.h1.host, port: t.h1.port, hostHeader: HOST, path: '/', connections, rate: o.rate, warmupS: o.warmupS, durationS: o.durationS };
  const run = await runTool(t.netns, nodeTool(o, LOADGEN, spec), chain === 'direct' ? undefined : topo.pids[chain], EVENT_MARKS, (o.warmupS + o.durationS + 60) * 1000);
  const base: RunResult = { test: 'rate', chain, tool: 'loadgen', connections, streams: 1, rate: o.rate, windowS: o.durationS, requests: 0, rps: 0, errors: 0 };
  const r = lastJson<LoadResult>(run);
  if (!r.result) return { ...base, error: r.error ?? 'no result' };
  const x = r.result;
  const errors = x.errors.closed + x.errors.connect + x.errors.timeout + x.errors.unsent + x.errors.status;
  const proxies = usageOf(run, x.completed);
  return {
    ...base, requests: x.completed, rps: x.achievedRps, errors,
    ...(errors ? { errorNote: `${JSON.stringify(x.errors)}${x.badStatus ? ` status ${x.badStatus}` : ''}${x.firstError ? `: ${x.firstError}` : ''}` } : {}),
    latency: x.latency, service: x.service, sendLag: x.sendLag,
    ...(proxies ? { proxies } : {}),
  };
}

/**
 * h2load connecting to `target` with the mesh host name as the request's authority (-B gives the address;
 * h2load 1.52 never finishes a timed run when the Host header is set with -H).
 */
function h2loadArgs(o: Options, target: { host: string; port: number }, connections: number, streams: number, h1: boolean, durationS: number, warmupS: number, extra: string[] = []): string[] {
  return ['taskset', '-c', o.pinLoad, 'h2load', ...(h1 ? ['--h1'] : []), '-c', String(connections), '-m', String(streams), '-t', '1',
    '-D', String(durationS), ...(warmupS > 0 ? ['--warm-up-time', String(warmupS)] : []), ...extra,
    '-B', `http://${target.host}:${target.port}`, `http://${HOST}:${target.port}/`];
}

function fromH2load(base: RunResult, run: ToolRun): RunResult {
  const h = parseH2load(run.stdout);
  if (!h) return { ...base, error: run.error ?? `h2load printed no summary (exit ${run.code}): ${(run.stderr || run.stdout.join(' ')).trim().split('\n').slice(-3).join(' | ')}` };
  const requests = h.succeeded;
  const errors = h.failed + h.errored + h.timeout + h.non2xx;
  const proxies = usageOf(run, requests);
  return {
    ...base, windowS: base.windowS, requests, rps: h.rps, errors,
    ...(errors ? { errorNote: `${h.failed} failed, ${h.errored} errored, ${h.timeout} timeout, ${h.non2xx} non-2xx` } : {}),
    latency: h.latency,
    ...(proxies ? { proxies } : {}),
  };
}

async function h2loadRun(o: Options, topo: Topology, chain: Chain, test: 'h1' | 'h2'): Promise<RunResult> {
  const t = topo.targets[chain];
  const h1 = test === 'h1';
  const c = h1 ? o.maxConnections : o.h2Connections;
  const m = h1 ? 1 : o.h2Streams;
  const target = h1 ? t.h1 : t.h2;
  const base: RunResult = { test, chain, tool: 'h2load', connections: c, streams: m, rate: 0, windowS: o.maxDurationS, requests: 0, rps: 0, errors: 0 };
  const run = await runTool(t.netns, h2loadArgs(o, target, c, m, h1, o.maxDurationS, 2), chain === 'direct' ? undefined : topo.pids[chain], H2LOAD_MARKS, (o.maxDurationS + 60) * 1000);
  return fromH2load(base, run);
}

async function tcpRun(o: Options, topo: Topology, chain: Chain): Promise<RunResult> {
  const t = topo.targets[chain];
  const base: RunResult = { test: 'tcp', chain, tool: 'loadgen', connections: o.maxConnections, streams: 1, rate: 0, windowS: o.maxDurationS, requests: 0, rps: 0, errors: 0 };
  const why = topo.unsupported[chain]?.tcp;
  if (why) return { ...base, skipped: why };
  const spec: LoadSpec = { mode: 'tcp', host: t.tcp.host, port: t.tcp.port, size: BODY_BYTES, connections: o.maxConnections, rate: 0, warmupS: 2, durationS: o.maxDurationS };
  const run = await runTool(t.netns, nodeTool(o, LOADGEN, spec), chain === 'direct' ? undefined : topo.pids[chain], EVENT_MARKS, (o.maxDurationS + 60) * 1000);
  const r = lastJson<LoadResult>(run);
  if (!r.result) return { ...base, error: r.error ?? 'no result' };
  const x = r.result;
  const errors = x.errors.closed + x.errors.connect + x.errors.timeout;
  const proxies = usageOf(run, x.completed);
  return { ...base, requests: x.completed, rps: x.achievedRps, errors, ...(errors || !x.completed ? { errorNote: `${JSON.stringify(x.errors)}${x.firstError ? `: ${x.firstError}` : ''}` } : {}), latency: x.latency, ...(proxies ? { proxies } : {}) };
}

async function grpcRun(o: Options, topo: Topology, chain: Chain): Promise<RunResult> {
  const t = topo.targets[chain];
  const base: RunResult = { test: 'grpc', chain, tool: 'grpc-load', connections: o.h2Connections, streams: o.h2Streams, rate: 0, windowS: o.maxDurationS, requests: 0, rps: 0, errors: 0 };
  const spec = { target: `${t.grpc.host}:${t.grpc.port}`, authority: `${HOST}:${t.grpc.port}`, channels: o.h2Connections, streams: o.h2Streams, warmupS: 2, durationS: o.maxDurationS };
  const run = await runTool(t.netns, nodeTool(o, GRPC_LOAD, spec), chain === 'direct' ? undefined : topo.pids[chain], EVENT_MARKS, (o.maxDurationS + 60) * 1000);
  const r = lastJson<GrpcResult>(run);
  if (!r.result) return { ...base, error: r.error ?? 'no result' };
  const x = r.result;
  const proxies = usageOf(run, x.completed);
  return { ...base, requests: x.completed, rps: x.achievedRps, errors: x.errors, ...(x.errors ? { errorNote: x.firstError ?? '' } : {}), latency: x.latency, ...(proxies ? { proxies } : {}) };
}

/** Our load generator against h2load on the direct chain: closed loop at the same connections, and both at the fixed rate. */
async function checkLoadgen(o: Options, topo: Topology): Promise<CheckRow[]> {
  const t = topo.targets.direct;
  const c = o.connections[0] ?? 16;
  const d = Math.min(o.durationS, 5);
  const rows: CheckRow[] = [];
  const ours = async (what: string, rate: number): Promise<void> => {
    const spec: LoadSpec = { mode: 'http', host: t.h1.host, port: t.h1.port, hostHeader: HOST, path: '/', connections: c, rate, warmupS: 2, durationS: d };
    const r = lastJson<LoadResult>(await runTool(t.netns, nodeTool(o, LOADGEN, spec), undefined, EVENT_MARKS, (d + 60) * 1000));
    const x = r.result;
    rows.push(x
      ? { what, tool: 'loadgen', rps: x.achievedRps, meanMs: x.latency.mean, maxMs: x.latency.max, p50Ms: x.latency.p50, p99Ms: x.latency.p99, ...(rate > 0 ? { lagP50Ms: x.sendLag.p50, lagP99Ms: x.sendLag.p99 } : {}), errors: x.errors.closed + x.errors.timeout + x.errors.unsent + x.errors.status }
      : { what, tool: 'loadgen', rps: NaN, meanMs: NaN, maxMs: NaN, errors: 0, error: r.error ?? 'no result' });
  };
  const theirs = async (what: string, rate: number): Promise<void> => {
    const extra = rate > 0 ? [`--rps=${rate / c}`] : [];
    const run = await runTool(t.netns, h2loadArgs(o, t.h1, c, 1, true, d, 2, extra), undefined, H2LOAD_MARKS, (d + 60) * 1000);
    const h: H2loadReport | undefined = parseH2load(run.stdout);
    rows.push(h
      ? { what, tool: 'h2load', rps: h.rps, meanMs: h.latency.mean, maxMs: h.latency.max, errors: h.failed + h.errored + h.timeout + h.non2xx }
      : { what, tool: 'h2load', rps: NaN, meanMs: NaN, maxMs: NaN, errors: 0, error: run.error ?? `no summary: ${run.stderr.trim().slice(0, 200)}` });
  };
  log(`checking the load generator against h2load (direct chain, ${c} connections, ${d} s each)`);
  await ours(`closed loop, ${c} connections`, 0);
  await theirs(`closed loop, ${c} connections`, 0);
  await ours(`${o.rate}/s, ${c} connections`, o.rate);
  await theirs(`${o.rate}/s, ${c} connections`, o.rate);
  return rows;
}

// ---- reporting -------------------------------------------------------------------------------------

const f2 = (v: number | undefined): string => (v === undefined || !Number.isFinite(v) ? '-' : v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));
const f0 = (v: number | undefined): string => (v === undefined || !Number.isFinite(v) ? '-' : Math.round(v).toString());
const ratio = (a: number | undefined, b: number | undefined): string => {
  if (a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b === 0) return '-';
  const r = a / b;
  return `${Math.abs(r) >= 100 ? r.toFixed(0) : Math.abs(r) >= 10 ? r.toFixed(1) : r.toFixed(2)}x`;
};
const pct = (a: number | undefined, b: number | undefined): string => (a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b === 0 ? '-' : `${Math.round((a / b) * 100)}%`);

/** Ratio of two added latencies; none when either is not positive (a noisy baseline makes that meaningless). */
const addedRatio = (a: number | undefined, b: number | undefined): string => (a === undefined || b === undefined || a <= 0 || b <= 0 ? '-' : ratio(a, b));

function find(runs: readonly RunResult[], test: Test, chain: Chain, connections?: number): RunResult | undefined {
  return runs.find((r) => r.test === test && r.chain === chain && (connections === undefined || r.connections === connections) && !r.error && !r.skipped);
}

function added(r: RunResult | undefined, base: RunResult | undefined, k: 'p50' | 'p90' | 'p99' | 'p999'): number | undefined {
  const a = r?.latency?.[k];
  const b = base?.latency?.[k];
  return a === undefined || b === undefined ? undefined : a - b;
}

function rateTable(runs: readonly RunResult[], connections: number, md: boolean): { header: string[]; rows: string[][] } {
  const direct = find(runs, 'rate', 'direct', connections);
  const nginx = find(runs, 'rate', 'nginx', connections);
  const cpuSum = (r: RunResult | undefined): number | undefined => (r?.proxies ? r.proxies.client.cpuMsPer1000 + r.proxies.server.cpuMsPer1000 : undefined);
  const rssSum = (r: RunResult | undefined): number | undefined => (r?.proxies ? r.proxies.client.rssMB + r.proxies.server.rssMB : undefined);
  const selected = runs.filter((r) => r.test === 'rate' && r.connections === connections);
  if (md) {
    // every figure with its ratio to the in-run baseline: latency to direct, added latency, CPU and RSS to the nginx pair
    const header = ['chain', 'req/s', 'errors', 'p50 (x direct)', 'p90', 'p99', 'p99.9', 'added p50 (x nginx)', 'added p90', 'added p99', 'CPU ms per 1000 req, client/server (x nginx)', 'RSS MB, client/server (x nginx)'];
    const rows = selected.map((r) => {
      if (r.error || r.skipped) return [r.chain, r.error ? 'failed' : 'skipped', ...Array<string>(header.length - 2).fill('-')];
      const isDirect = r.chain === 'direct';
      const lat = (k: 'p50' | 'p90' | 'p99' | 'p999'): string => (isDirect ? f2(r.latency?.[k]) : `${f2(r.latency?.[k])} (${ratio(r.latency?.[k], direct?.latency?.[k])})`);
      const add = (k: 'p50' | 'p90' | 'p99'): string => (isDirect ? '-' : r.chain === 'nginx' ? f2(added(r, direct, k)) : `${f2(added(r, direct, k))} (${addedRatio(added(r, direct, k), added(nginx, direct, k))})`);
      const withNginx = (v: string, a: number | undefined, b: number | undefined): string => (r.chain === 'nginx' ? v : `${v} (${ratio(a, b)})`);
      return [
        r.chain, f0(r.rps), String(r.errors), lat('p50'), lat('p90'), lat('p99'), lat('p999'), add('p50'), add('p90'), add('p99'),
        r.proxies ? withNginx(`${f0(r.proxies.client.cpuMsPer1000)}/${f0(r.proxies.server.cpuMsPer1000)}`, cpuSum(r), cpuSum(nginx)) : '-',
        r.proxies ? withNginx(`${f0(r.proxies.client.rssMB)}/${f0(r.proxies.server.rssMB)}`, rssSum(r), rssSum(nginx)) : '-',
      ];
    });
    return { header, rows };
  }
  const header = ['chain', 'req/s', 'err', 'p50', 'p90', 'p99', 'p99.9', '+p50', '+p90', '+p99', '+p99/nginx', 'CPU ms/1000 c/s', 'CPU/nginx', 'RSS MB c/s', 'RSS/nginx'];
  const rows = selected.map((r) => {
    if (r.error || r.skipped) return [r.chain, r.error ? 'failed' : 'skipped', ...Array<string>(header.length - 2).fill('-')];
    const l = r.latency;
    const isDirect = r.chain === 'direct';
    return [
      r.chain, f0(r.rps), String(r.errors), f2(l?.p50), f2(l?.p90), f2(l?.p99), f2(l?.p999),
      isDirect ? '-' : f2(added(r, direct, 'p50')), isDirect ? '-' : f2(added(r, direct, 'p90')), isDirect ? '-' : f2(added(r, direct, 'p99')),
      isDirect ? '-' : addedRatio(added(r, direct, 'p99'), added(nginx, direct, 'p99')),
      r.proxies ? `${f0(r.proxies.client.cpuMsPer1000)}/${f0(r.proxies.server.cpuMsPer1000)}` : '-',
      r.proxies ? ratio(cpuSum(r), cpuSum(nginx)) : '-',
      r.proxies ? `${f0(r.proxies.client.rssMB)}/${f0(r.proxies.server.rssMB)}` : '-',
      r.proxies ? ratio(rssSum(r), rssSum(nginx)) : '-',
    ];
  });
  return { header, rows };
}

const TEST_NAMES: Record<Exclude<Test, 'rate'>, string> = { h1: 'HTTP/1.1 (h2load --h1)', h2: 'HTTP/2 (h2load)', grpc: 'gRPC unary (grpc-js)', tcp: 'TCP echo 1 KB (loadgen)' };

function maxTable(runs: readonly RunResult[], md: boolean): { header: string[]; rows: string[][] } {
  const header = md
    ? ['test', 'chain', 'conns x streams', 'req/s', 'vs direct', 'vs nginx', 'mean latency (ms)', 'errors', 'CPU ms per 1000 req, client/server (x nginx)', 'CPU client+server (vCPU)', 'RSS client/server (MB)']
    : ['test', 'chain', 'c x s', 'req/s', '/direct', '/nginx', 'mean ms', 'err', 'CPU ms/1000 c/s', 'vCPU c+s', 'RSS MB c/s'];
  const rows: string[][] = [];
  for (const test of ['h1', 'h2', 'grpc', 'tcp'] as const) {
    const direct = find(runs, test, 'direct');
    const nginx = find(runs, test, 'nginx');
    for (const r of runs.filter((x) => x.test === test)) {
      if (r.error || r.skipped) {
        rows.push([TEST_NAMES[test], r.chain, `${r.connections}x${r.streams}`, r.error ? 'failed' : 'skipped', ...Array<string>(header.length - 4).fill('-')]);
        continue;
      }
      rows.push([
        TEST_NAMES[test], r.chain, `${r.connections}x${r.streams}`, f0(r.rps),
        r.chain === 'direct' ? '-' : pct(r.rps, direct?.rps), r.chain === 'direct' || r.chain === 'nginx' ? '-' : ratio(r.rps, nginx?.rps),
        f2(r.latency?.mean), String(r.errors),
        r.proxies ? `${f0(r.proxies.client.cpuMsPer1000)}/${f0(r.proxies.server.cpuMsPer1000)}${md && r.chain !== 'nginx' && nginx?.proxies ? ` (${ratio(r.proxies.client.cpuMsPer1000 + r.proxies.server.cpuMsPer1000, nginx.proxies.client.cpuMsPer1000 + nginx.proxies.server.cpuMsPer1000)})` : ''}` : '-',
        r.proxies ? f2(r.proxies.client.vcpu + r.proxies.server.vcpu) : '-',
        r.proxies ? `${f0(r.proxies.client.rssMB)}/${f0(r.proxies.server.rssMB)}` : '-',
      ]);
    }
  }
  return { header, rows };
}

function checkTable(rows: readonly CheckRow[]): { header: string[]; rows: string[][] } {
  return {
    header: ['load', 'tool', 'req/s', 'mean (ms)', 'p50 (ms)', 'p99 (ms)', 'max (ms)', 'send lag p50/p99 (ms)', 'errors'],
    rows: rows.map((r) => [r.what, r.tool, r.error ? 'failed' : f0(r.rps), f2(r.meanMs), f2(r.p50Ms), f2(r.p99Ms), f2(r.maxMs), r.lagP50Ms === undefined ? '-' : `${f2(r.lagP50Ms)}/${f2(r.lagP99Ms)}`, r.error ? r.error.slice(0, 60) : String(r.errors)]),
  };
}

interface Goal { goal: string; result: string; met: boolean | undefined }

function goals(runs: readonly RunResult[], o: Options): Goal[] {
  const c = o.connections[0] ?? 16;
  const out: Goal[] = [];
  const direct = find(runs, 'rate', 'direct', c);
  const ts = find(runs, 'rate', 'tsmesh', c);
  const nginx = find(runs, 'rate', 'nginx', c);
  const tsP99 = added(ts, direct, 'p99');
  const ngP99 = added(nginx, direct, 'p99');
  if (tsP99 !== undefined && ngP99 !== undefined && ngP99 <= 0) {
    // the baseline's tail was noise; for any baseline below both, (ts - d) / (ng - d) >= ts / ng when ts > ng,
    // so the ratio of the totals is a lower bound of the added ratio
    const tsTotal = ts?.latency?.p99 ?? NaN;
    const ngTotal = nginx?.latency?.p99 ?? NaN;
    const bound = tsTotal / ngTotal;
    out.push({
      goal: `added p99 at ${o.rate} req/s, ${c} connections: tsmesh pair <= ${GOAL_P99_VS_NGINX}x the nginx pair's`,
      result: `the direct baseline's p99 (${f2(direct?.latency?.p99)} ms) was above the nginx chain's (${f2(ngTotal)} ms): other work on the cores set that tail. Totals instead (a lower bound of the added ratio): tsmesh ${f2(tsTotal)} ms vs nginx ${f2(ngTotal)} ms, at least ${bound.toFixed(1)}x`,
      met: bound > GOAL_P99_VS_NGINX ? false : undefined,
    });
  } else if (tsP99 !== undefined && ngP99 !== undefined) {
    const limit = ngP99 * GOAL_P99_VS_NGINX;
    const r = tsP99 / ngP99;
    out.push({
      goal: `added p99 at ${o.rate} req/s, ${c} connections: tsmesh pair <= ${GOAL_P99_VS_NGINX}x the nginx pair's`,
      result: `${f2(tsP99)} ms vs nginx ${f2(ngP99)} ms: ${r.toFixed(2)}x${tsP99 > limit ? `, ${f2(tsP99 - limit)} ms (${((tsP99 / limit - 1) * 100).toFixed(0)}%) over the goal` : ''}`,
      met: tsP99 <= limit,
    });
  } else out.push({ goal: `added p99 at ${o.rate} req/s: tsmesh <= ${GOAL_P99_VS_NGINX}x nginx`, result: 'not measured', met: undefined });
  const tsMax = find(runs, 'h1', 'tsmesh');
  const ngMax = find(runs, 'h1', 'nginx');
  if (tsMax && ngMax) {
    const r = tsMax.rps / ngMax.rps;
    out.push({
      goal: `HTTP/1.1 maximum throughput through the tsmesh pair >= ${GOAL_MAX_VS_NGINX * 100}% of the nginx pair's`,
      result: `${f0(tsMax.rps)} vs ${f0(ngMax.rps)} req/s: ${Math.round(r * 100)}%${r < GOAL_MAX_VS_NGINX ? `, ${f0(ngMax.rps * GOAL_MAX_VS_NGINX - tsMax.rps)} req/s (${((GOAL_MAX_VS_NGINX / r - 1) * 100).toFixed(0)}%) short of the goal` : ''}`,
      met: r >= GOAL_MAX_VS_NGINX,
    });
  } else out.push({ goal: `HTTP/1.1 maximum throughput: tsmesh >= ${GOAL_MAX_VS_NGINX * 100}% of nginx`, result: 'not measured', met: undefined });
  if (ts?.proxies) {
    for (const side of ['client', 'server'] as const) {
      const u = ts.proxies[side];
      // vCPU per 1000 requests/s = CPU seconds per 1000 requests
      const v = u.cpuMsPer1000 / 1000;
      out.push({
        goal: `tsmesh ${side}-side sidecar: <= ${GOAL_VCPU_PER_1000} vCPU per 1000 req/s`,
        result: `${v.toFixed(3)} vCPU (${f0(u.cpuMsPer1000)} ms of CPU per 1000 requests${ts.proxies && nginx?.proxies ? `; nginx ${(nginx.proxies[side].cpuMsPer1000 / 1000).toFixed(3)}` : ''})${v > GOAL_VCPU_PER_1000 ? `: ${(v / GOAL_VCPU_PER_1000).toFixed(2)}x the goal` : ''}`,
        met: v <= GOAL_VCPU_PER_1000,
      });
    }
  }
  const tsRuns = runs.filter((r) => r.chain === 'tsmesh' && r.proxies);
  if (tsRuns.length) {
    for (const side of ['client', 'server'] as const) {
      const rss = Math.max(...tsRuns.map((r) => r.proxies?.[side].rssMB ?? 0));
      const hwm = Math.max(...tsRuns.map((r) => r.proxies?.[side].hwmMB ?? 0));
      out.push({
        goal: `tsmesh ${side}-side sidecar RSS <= ${GOAL_RSS_MB} MB`,
        result: `${f0(rss)} MB at most after a run (peak ${f0(hwm)} MB)${rss > GOAL_RSS_MB ? `: ${f0(rss - GOAL_RSS_MB)} MB (${((rss / GOAL_RSS_MB - 1) * 100).toFixed(0)}%) over` : ''}`,
        met: rss <= GOAL_RSS_MB,
      });
    }
  }
  return out;
}

function mark(m: boolean | undefined): string {
  return m === undefined ? '?' : m ? 'met' : 'MISSED';
}

const COLORS: Record<Chain, string> = { direct: '#555555', tsmesh: '#d62728', nginx: '#2ca02c', haproxy: '#1f77b4' };

function chart(runs: readonly RunResult[], o: Options): string {
  const c = o.connections[0] ?? 16;
  const ks = ['p50', 'p90', 'p99', 'p999'] as const;
  return lineChart({
    title: `Data plane: HTTP/1.1 latency at ${o.rate} req/s, ${c} connections`,
    xLabel: 'percentile (from the intended send time)',
    yLabel: 'latency',
    categories: ['p50', 'p90', 'p99', 'p99.9'],
    log: true,
    series: CHAINS.filter((ch) => o.chains.includes(ch)).map((ch) => {
      const r = find(runs, 'rate', ch, c);
      return { name: ch === 'direct' ? 'direct (baseline)' : `${ch} pair`, color: COLORS[ch], dashed: ch === 'direct', values: ks.map((k) => r?.latency?.[k] ?? NaN) };
    }),
    footnote: 'Client and server in network namespaces on one bridge; proxies pinned to their own CPU; 1 KB answers.',
  });
}

function describeSetup(o: Options, pin: { load: string; proxies: string }): string {
  return [
    `Topology: two network namespaces per chain on one Linux bridge (veth pairs), as \`tsmesh up\` makes them. **direct**: client -> origin. **tsmesh**: client -> its sidecar (captured by Istio's iptables rules) -> the origin pod's sidecar (inbound capture) -> origin, configured by our control plane over xDS. **nginx** / **HAProxy**: client -> proxy on the client's 127.0.0.1 (explicit port) -> proxy on the server's address -> origin on 127.0.0.1, upstream keep-alive on both hops. One worker each (nginx worker_processes 1, HAProxy nbthread 1, one tsmesh process).`,
    `Pinning (taskset): load generator and origin on CPU ${pin.load}; both proxies of the pair under test on CPU ${pin.proxies}. Origin: nginx answering 1 KB to any GET (HTTP/1.1 and h2c), grpc-js (gRPC, 1 KB answers), a Node TCP echo; the same programs in every chain.`,
    `Fixed rate: our load generator (bench/dataplane/loadgen.ts), ${o.rate} GETs/s spread evenly over keep-alive connections, each request timed from its intended send time (coordinated omission corrected), ${o.warmupS} s warm-up then ${o.durationS} s measured. Closed loop: h2load (HTTP/1.1 ${o.maxConnections} connections; HTTP/2 ${o.h2Connections} connections x ${o.h2Streams} streams), grpc-js (${o.h2Connections} channels x ${o.h2Streams} calls), loadgen TCP echo (${o.maxConnections} connections, 1 KB messages), ${o.maxDurationS} s after 2 s of warm-up. CPU: user+system seconds of each proxy's process tree (/proc) in the measured window; RSS: VmRSS of the tree at the end.`,
  ].join('\n\n');
}

function markdown(s: Saved): string {
  const o = s.options;
  const m = s.machine;
  const lines = [
    '## Data plane: tsmesh sidecars against nginx and HAProxy',
    '',
    `${s.date}, \`${s.command}\``,
    '',
    `Machine: ${m.cores} cores, ${m.cpuModel}, ${m.memoryGiB} GiB, ${m.kernel}, node ${m.node}; ${formatLoad(m.load)} at the start.`,
    '',
    describeSetup(o, s.topology.pin),
    '',
  ];
  for (const c of o.connections) {
    if (!s.runs.some((r) => r.test === 'rate' && r.connections === c)) continue;
    const t = rateTable(s.runs, c, true);
    lines.push(`### HTTP/1.1 at ${o.rate} req/s, ${c} connections (latency ms; + = added over direct)`, '', markdownTable(t.header, t.rows), '');
  }
  if (s.runs.some((r) => r.test !== 'rate')) {
    const t = maxTable(s.runs, true);
    lines.push('### Closed-loop maximum throughput', '', markdownTable(t.header, t.rows, 'llrrrrrrrrr'), '');
  }
  const negative = s.runs.filter((r) => r.test === 'rate' && r.chain !== 'direct' && (['p50', 'p90', 'p99'] as const).some((k) => (added(r, find(s.runs, 'rate', 'direct', r.connections), k) ?? 0) < 0));
  if (negative.length) lines.push(`A negative added latency (${negative.map((r) => `${r.chain} at ${r.connections} connections`).join(', ')}) means the direct run's percentile was worse than the proxied run's: other work on the cores, not the proxies, set that tail. Compare such figures only across a quieter run.`, '');
  const notes = s.runs.filter((r) => r.error || r.skipped || r.errorNote);
  for (const r of notes) lines.push(`- ${r.test} ${r.chain} (${r.connections}x${r.streams}): ${r.error ?? r.skipped ?? r.errorNote}`);
  if (notes.length) lines.push('');
  if (s.check.length) {
    const t = checkTable(s.check);
    lines.push('### The load generator checked against h2load (direct chain)', '', markdownTable(t.header, t.rows, 'llrrrrrrr'), '');
    lines.push('h2load reports min/mean/max only; its `--rps` mode times each request from its actual send (not corrected for coordinated omission).', '');
  }
  lines.push('### Goals', '', markdownTable(['goal', 'result', ''], s.goals.map((g) => [g.goal, g.result, mark(g.met)]), 'llc'), '');
  if (s.profiles?.length) lines.push('The tsmesh sidecars ran under `node --cpu-prof` in this run (the sampling costs them a few percent of CPU).', '');
  for (const p of s.profiles ?? []) {
    lines.push(`### Profile: tsmesh ${p.side}-side sidecar, whole run (self time; shares of ${(p.busyMs / 1000).toFixed(1)} s busy of ${(p.totalMs / 1000).toFixed(1)} s)`, '');
    const rows = (fs: Frame[]): string[][] => fs.slice(0, 12).map((f) => [f.frame, (f.selfMs / 1000).toFixed(2), `${(f.share * 100).toFixed(1)}%`]);
    lines.push(markdownTable(['function', 'self (s)', 'share'], rows(p.frames)), '', markdownTable(['file', 'self (s)', 'share'], rows(p.files)), '');
  }
  if (existsSync(ANALYSIS) && s.goals.some((g) => g.met === false)) {
    lines.push('### Closing note: why the goals are missed and what would close them', '', readFileSync(ANALYSIS, 'utf8').trim(), '');
  }
  lines.push('Chart and every figure: `bench/results/dataplane.svg` and `dataplane.json`, written by the run (not committed). How to read them: docs/benchmarks.md.');
  return lines.join('\n');
}

function report(s: Saved): void {
  const o = s.options;
  const out: string[] = [`Data plane: ${s.date}; ${s.machine.cores} cores ${s.machine.cpuModel}; ${formatLoad(s.machine.load)} at start; load on CPU ${s.topology.pin.load}, proxies on CPU ${s.topology.pin.proxies}`, ''];
  for (const c of o.connections) {
    if (!s.runs.some((r) => r.test === 'rate' && r.connections === c)) continue;
    const t = rateTable(s.runs, c, false);
    out.push(`HTTP/1.1 GET 1 KB at ${o.rate} req/s fixed rate, ${c} connections (ms from intended send; + = added over direct):`, textTable(t.header, t.rows), '');
  }
  if (s.runs.some((r) => r.test !== 'rate')) {
    const t = maxTable(s.runs, false);
    out.push('Closed-loop maximum throughput:', textTable(t.header, t.rows), '');
  }
  for (const r of s.runs.filter((x) => x.error || x.skipped || x.errorNote)) out.push(`! ${r.test} ${r.chain}: ${r.error ?? r.skipped ?? r.errorNote}`);
  if (s.check.length) {
    const t = checkTable(s.check);
    out.push('', 'Load generator vs h2load (direct chain):', textTable(t.header, t.rows));
  }
  out.push('', 'Goals:');
  for (const g of s.goals) out.push(`  [${mark(g.met)}] ${g.goal}: ${g.result}`);
  for (const p of s.profiles ?? []) {
    out.push('', `Profile tsmesh ${p.side} (${p.file}): ${(p.busyMs / 1000).toFixed(1)} s busy of ${(p.totalMs / 1000).toFixed(1)} s; self time by function, then by file:`);
    for (const f of [...p.frames.slice(0, 15), ...p.files.slice(0, 10)]) out.push(`  ${(f.selfMs / 1000).toFixed(2).padStart(7)} s ${(f.share * 100).toFixed(1).padStart(5)}%  ${f.frame}`);
  }
  process.stdout.write(out.join('\n') + '\n');
  if (o.write) {
    mkdirSync(o.results, { recursive: true });
    writeAtomic(join(o.results, 'dataplane.json'), JSON.stringify({ ...s, options: { ...o, results: relative(process.cwd(), o.results) } }, null, 2) + '\n');
    writeAtomic(join(o.results, 'dataplane.svg'), chart(s.runs, o));
    writeSection(join(o.results, 'latest.md'), 'dataplane', markdown(s));
    log(`wrote ${relative(process.cwd(), o.results) || '.'}/dataplane.json, dataplane.svg, latest.md`);
  }
}

function writeAtomic(file: string, text: string): void {
  writeFileSync(`${file}.tmp`, text);
  renameSync(`${file}.tmp`, file);
}

// ---- main ------------------------------------------------------------------------------------------

function preflight(o: Options): string | undefined {
  if (process.platform !== 'linux') return `the data-plane benchmark needs Linux (network namespaces, iptables); this is ${process.platform}`;
  if (process.getuid?.() !== 0) return 'the data-plane benchmark needs root (network namespaces and iptables): run it with sudo';
  const need = ['ip', 'iptables-restore', 'setpriv', 'taskset'];
  if (o.chains.includes('nginx')) need.push('nginx');
  if (o.chains.includes('haproxy')) need.push('haproxy');
  if (o.tests.includes('h1') || o.tests.includes('h2') || o.check) need.push('h2load');
  const missing = missingTools(need);
  if (missing.length) return `missing ${missing.map((t) => `${t} (package ${TOOL_PACKAGES[t] ?? t})`).join(', ')}: ${APT}`;
  return undefined;
}

export async function run(args: string[]): Promise<number> {
  const fromJson = args.indexOf('--from-json');
  if (fromJson >= 0) {
    const file = args[fromJson + 1];
    if (!file) throw new Error('--from-json needs a dataplane.json');
    const saved = JSON.parse(readFileSync(file, 'utf8')) as Saved;
    const rest = parse(args.filter((_, i) => i !== fromJson && i !== fromJson + 1));
    report({ ...saved, options: { ...saved.options, results: rest.results, write: rest.write }, goals: goals(saved.runs, saved.options) });
    return 0;
  }
  const o = parse(args);
  const problem = preflight(o);
  if (problem) {
    process.stderr.write(`[bench dataplane] ${problem}\n`);
    return 1;
  }
  if (o.chains.includes('nginx') && o.tests.includes('tcp') && !nginxStreamAvailable()) log(`nginx has no stream module, so no TCP through nginx: apt-get install -y libnginx-mod-stream`);
  const m = machine();
  const date = new Date().toISOString();
  const command = `npm run bench -- dataplane${args.length ? ' ' + args.join(' ') : ''}`;
  const pin = { load: o.pinLoad, proxies: o.pinProxies };
  log(`${m.cores} cores, ${formatLoad(m.load)}; load generator + origin on CPU ${pin.load}, proxies on CPU ${pin.proxies}`);
  const topo = await startTopology({
    pin, proxies: o.chains.filter((c): c is ProxyKind => c !== 'direct'), sidecarArgs: o.sidecarArgs,
    sidecarNodeFlags: o.cpuProf ? ['--cpu-prof', '--cpu-prof-dir={PROFILE_DIR}'] : [], log,
  });
  const runs: RunResult[] = [];
  let failed = true;
  let check: CheckRow[] = [];
  let profiles: Saved['profiles'];
  const stopping = (): void => {
    log('interrupted: cleaning up');
    void topo.stop().finally(() => process.exit(130));
  };
  process.once('SIGINT', stopping);
  process.once('SIGTERM', stopping);
  try {
    log(`set up in ${topo.subnet} (${topo.dir}); probing every chain`);
    for (const chain of o.chains) {
      const p = await probe(topo, chain, 30_000);
      if (p.status !== 200 || p.bodyBytes !== BODY_BYTES) throw new Error(`the ${chain} chain does not answer: status ${p.status}, ${p.bodyBytes} bytes${p.error ? `, ${p.error}` : ''} (logs in ${topo.dir}/logs)`);
    }
    if (o.check) check = await checkLoadgen(o, topo);
    const step = async (what: string, fn: () => Promise<RunResult>): Promise<void> => {
      log(what);
      let r: RunResult;
      try {
        r = await fn();
      } catch (err) {
        r = { test: 'rate', chain: 'direct', tool: 'loadgen', connections: 0, streams: 0, rate: 0, windowS: 0, requests: 0, rps: 0, errors: 0, error: (err as Error).message };
      }
      if (!r.error && !r.skipped && r.requests === 0) r.error = `nothing answered${r.errorNote ? ` (${r.errorNote})` : ''}`;
      if (r.error) log(`  failed: ${r.error}`);
      else if (r.skipped) log(`  skipped: ${r.skipped}`);
      else log(`  ${f0(r.rps)} req/s, ${r.errors} errors${r.latency?.p99 !== undefined ? `, p50 ${f2(r.latency.p50)} p99 ${f2(r.latency.p99)} ms` : `, mean ${f2(r.latency?.mean)} ms`}${r.proxies ? `, CPU ${f0(r.proxies.client.cpuMsPer1000)}/${f0(r.proxies.server.cpuMsPer1000)} ms per 1000, RSS ${f0(r.proxies.client.rssMB)}/${f0(r.proxies.server.rssMB)} MB` : ''}`);
      runs.push(r);
      await sleep(1000);
    };
    if (o.tests.includes('rate')) {
      for (const c of o.connections) for (const chain of o.chains) await step(`${chain}: ${o.rate} req/s over ${c} connections, ${o.warmupS}+${o.durationS} s`, () => rateRun(o, topo, chain, c));
    }
    for (const test of ['h1', 'h2'] as const) {
      if (!o.tests.includes(test)) continue;
      for (const chain of o.chains) await step(`${chain}: closed-loop ${test === 'h1' ? 'HTTP/1.1' : 'HTTP/2'}, ${o.maxDurationS} s`, () => h2loadRun(o, topo, chain, test));
    }
    if (o.tests.includes('grpc')) for (const chain of o.chains) await step(`${chain}: closed-loop gRPC, ${o.maxDurationS} s`, () => grpcRun(o, topo, chain));
    if (o.tests.includes('tcp')) for (const chain of o.chains) await step(`${chain}: closed-loop TCP echo, ${o.maxDurationS} s`, () => tcpRun(o, topo, chain));
    failed = false;
  } finally {
    await topo.stop(o.cpuProf ? { profileWaitMs: 60_000 } : {});
    process.off('SIGINT', stopping);
    process.off('SIGTERM', stopping);
    if (o.cpuProf) profiles = collectProfiles(topo, o.results);
    if (failed || o.keep) log(`logs and configs kept in ${topo.dir}`);
    else rmSync(topo.dir, { recursive: true, force: true });
  }
  const saved: Saved = { suite: 'dataplane', date, command, machine: m, options: o, topology: { subnet: topo.subnet, pin }, check, runs, goals: goals(runs, o), ...(profiles ? { profiles } : {}) };
  report(saved);
  return runs.some((r) => r.error) ? 1 : 0;
}

/** The tsmesh sidecars' profiles (main thread), copied under the results; shares are of the busy (non-idle) time. */
function collectProfiles(topo: Topology, results: string): Saved['profiles'] {
  const out: NonNullable<Saved['profiles']> = [];
  const busy = (t: { totalMs: number; frames: Frame[] }): { busyMs: number; frames: Frame[] } => {
    const idle = t.frames.find((f) => f.frame === '(idle)')?.selfMs ?? 0;
    const busyMs = t.totalMs - idle;
    return { busyMs, frames: t.frames.filter((f) => f.frame !== '(idle)').map((f) => ({ ...f, share: busyMs > 0 ? f.selfMs / busyMs : 0 })) };
  };
  for (const side of ['client', 'server'] as const) {
    const dir = topo.profileDirs[side];
    if (!existsSync(dir)) continue;
    // node writes one profile per thread (tsx's loader thread too): the main thread's has the most time
    const tops = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')).map((f) => ({ file: join(dir, f), ...topFrames(join(dir, f), 26) }));
    const main = tops.sort((a, b) => b.totalMs - a.totalMs)[0];
    if (!main) continue;
    const profiles = join(results, 'profiles');
    const dest = join(profiles, `dataplane-tsmesh-${side}.cpuprofile`);
    mkdirSync(profiles, { recursive: true });
    copyFileSync(main.file, dest);
    const byFunction = busy(main);
    const byFile = busy(topFrames(main.file, 16, process.cwd(), true));
    out.push({ side, file: relative(process.cwd(), dest), totalMs: main.totalMs, busyMs: byFunction.busyMs, frames: byFunction.frames, files: byFile.frames });
  }
  return out;
}
