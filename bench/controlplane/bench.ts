// `npm run bench -- controlplane`: the control plane at scale. Per mesh size and scoping, a control-plane process and two proxy-fleet processes on 127.0.0.1: time to sync every proxy, xDS bytes per proxy, then one VirtualService change timed until every pushed proxy has ACKed, with the control plane's CPU and RSS. Every wait is bounded; a scenario that fails is reported as failed and the others still run.

import { positiveNumber } from '../lib/args.ts';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { Child } from '../lib/child.ts';
import { topFrames, type Frame } from '../lib/cpuprofile.ts';
import { writeSection } from '../lib/latest-md.ts';
import { formatLoad, machine, type Machine } from '../lib/machine.ts';
import { max, mean, percentile } from '../lib/stats.ts';
import { lineChart } from '../lib/svg.ts';
import { markdownTable, textTable } from '../lib/table.ts';
import {
  perType, XDS_TYPES, type CpChangeReply, type CpStartReply, type FleetProgress, type FleetReport, type PerType, type Usage,
} from './protocol.ts';

const HERE = import.meta.dirname;
const RESULTS = join(HERE, '..', 'results');
const PROFILES = join(RESULTS, 'profiles');
const FLEETS = 2;
const DEBOUNCE = { quietMs: 100, maxDelayMs: 1000 };
const GOAL_ACK_MS = 1000;
const GOAL_RSS_MB = 1024;
const GOAL_SCOPING_RATIO = 10;

export const usage = `npm run bench -- controlplane [options]
  --sizes 100,1000,5000   mesh sizes (Kubernetes services)
  --proxies 1000          simulated proxies per scenario
  --namespaces 100        application namespaces
  --scoping both          both | unscoped | scoped (root Sidecar egress ./* + istio-system/*)
  --budget-s 300          sync time a scenario may take; larger sizes get fewer proxies to fit
  --change-timeout-s 300  how long to wait for every ACK of the change
  --heap-mb 8192          the control plane's --max-old-space-size
  --cp-flags '...'        more node flags for the control plane (e.g. --max-semi-space-size=64)
  --fleet-flags='...'     node flags for the proxy fleets (e.g. --fleet-flags='--cpu-prof --cpu-prof-dir=/tmp/f')
  --cpu-prof              profile the control plane (node --cpu-prof) and list its top frames
  --results DIR           where to write (default bench/results; latest.md is committed)
  --no-write              print only; write nothing
  --from-json FILE        re-render the tables, chart and latest.md of an earlier controlplane.json`;

interface Scenario {
  services: number;
  scoped: boolean;
}

export interface ScenarioResult {
  services: number;
  scoped: boolean;
  namespaces: number;
  proxiesRequested: number;
  proxies: number;
  /** Why fewer proxies than requested ran, if so. */
  reduced?: string;
  error?: string;
  mesh?: { resources: number; services: number; pods: number; replicas: [number, number]; canaries: number; applyMs: number; pushContextMs: number };
  sync?: {
    synced: number;
    errors: string[];
    /** From the fleets' connect until the last proxy was synced. */
    allSyncedMs: number;
    p50Ms: number;
    p99Ms: number;
    cpCpuS: number;
    cpPeakRssMB: number;
    /** After the last proxy synced, and a full GC. */
    cpRssMB: number;
    cpHeapMB: number;
    cpExternalMB: number;
    fleetCpuS: number;
    /** Mean per proxy. */
    bytes: PerType & { total: number };
    resources: PerType;
  };
  change?: {
    firstPushMs: number;
    p50Ms: number;
    p99Ms: number;
    maxMs: number;
    allAckedMs: number;
    connected: number;
    pushedProxies: number;
    unacked: number;
    /** Mean per pushed proxy, as the control plane sent them. */
    bytesPerProxy: PerType & { total: number };
    /** Mean per proxy, as the fleets received them after syncing. */
    receivedPerProxy: PerType & { total: number };
    cpCpuS: number;
    cpPeakRssMB: number;
    /** CPU of the proxy fleets from before the change until the report after it (they share the machine). */
    fleetCpuS?: number;
  };
  cpEnd?: Usage;
  /** After every proxy disconnected and a full GC: what the connections held. */
  cpClosed?: Usage;
  load: { before: number[]; after: number[] };
  /** The whole control-plane process (--cpu-prof). */
  profile?: { file: string; totalMs: number; frames: Frame[] };
  /** The change alone, from store.apply until the last ACK. */
  changeProfile?: { file: string; totalMs: number; frames: Frame[] };
}

function sum(t: PerType): number {
  return XDS_TYPES.reduce((n, k) => n + t[k], 0);
}

function meanPerType(list: readonly PerType[]): PerType & { total: number } {
  const out = perType();
  for (const k of XDS_TYPES) out[k] = mean(list.map((t) => t[k]));
  return { ...out, total: sum(out) };
}

function log(msg: string): void {
  process.stderr.write(`[bench controlplane] ${msg}\n`);
}

async function waitFor(cond: () => boolean, timeoutMs: number, stepMs = 100): Promise<boolean> {
  const end = performance.now() + timeoutMs;
  while (performance.now() < end) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, stepMs));
  }
  return cond();
}

/**
 * Proxies for a scenario: the request, or, for meshes above 1000 services (the goals are stated at
 * 1000, which always runs in full), fewer when the previous size's sync rate says it would not fit.
 */
function planProxies(s: Scenario, requested: number, budgetS: number, done: readonly ScenarioResult[]): { proxies: number; reduced?: string } {
  if (s.services <= 1000) return { proxies: requested };
  const prev = [...done].reverse().find((r) => r.scoped === s.scoped && r.sync && r.sync.synced === r.proxies && r.services < s.services);
  if (!prev?.sync) return { proxies: requested };
  // sync work grows with proxies x visible services (scoped proxies see one namespace: only unscoped
  // ones scale with the mesh), and garbage collection makes it grow faster than that: a 2x margin
  const perProxyS = prev.sync.allSyncedMs / 1000 / prev.proxies;
  const growth = (s.scoped ? 1 : s.services / prev.services) * 2;
  const estimateS = perProxyS * growth * requested;
  if (estimateS <= budgetS) return { proxies: requested };
  const fit = Math.max(50, Math.floor(budgetS / (perProxyS * growth) / 50) * 50);
  if (fit >= requested) return { proxies: requested };
  return { proxies: fit, reduced: `${requested} proxies would take up to ${Math.round(estimateS)} s to sync (the ${prev.services}-service rate x2); ${fit} fit the ${budgetS} s budget` };
}

async function runScenario(s: Scenario, o: Options, done: readonly ScenarioResult[]): Promise<ScenarioResult> {
  const plan = planProxies(s, o.proxies, o.budgetS, done);
  const result: ScenarioResult = {
    services: s.services, scoped: s.scoped, namespaces: o.namespaces, proxiesRequested: o.proxies, proxies: plan.proxies, load: { before: machine().load, after: [] },
  };
  if (plan.reduced) {
    result.reduced = plan.reduced;
    log(`reduced: ${plan.reduced}`);
  }
  const tag = `${s.services}-${s.scoped ? 'scoped' : 'unscoped'}`;
  // one directory per scenario: node writes a profile per thread (tsx's loader thread too)
  const profDir = join(PROFILES, `controlplane-${tag}`);
  const flags = [`--max-old-space-size=${o.heapMb}`, '--expose-gc', ...o.cpFlags];
  if (o.cpuProf) {
    rmSync(profDir, { recursive: true, force: true });
    mkdirSync(profDir, { recursive: true });
    flags.push('--cpu-prof', `--cpu-prof-dir=${profDir}`);
  }
  const cp = new Child('controlplane', join(HERE, 'cp-process.ts'), flags, o.cpuProf ? { ...process.env, BENCH_CHANGE_PROFILE_DIR: profDir } : process.env);
  const fleets: Child[] = [];
  try {
    log(`${tag}: loading ${s.services} services, ${plan.proxies} proxies`);
    const started = await cp.request<CpStartReply>('start', { mesh: { services: s.services, namespaces: o.namespaces, scoped: s.scoped, minPods: plan.proxies }, proxies: plan.proxies, debounce: DEBOUNCE }, 300_000);
    result.mesh = { resources: started.resources, services: started.services, pods: started.pods, replicas: started.replicas, canaries: started.canaries, applyMs: started.applyMs, pushContextMs: started.pushContextMs };
    result.proxies = started.proxies.length;
    const atStart = await cp.request<Usage>('usage', { resetPeak: true }, 30_000);

    const progress: FleetProgress[] = [];
    for (let i = 0; i < FLEETS; i++) {
      const f = new Child(`fleet-${i}`, join(HERE, 'proxy-fleet.ts'), o.fleetFlags);
      progress.push({ connected: 0, synced: 0, errors: 0 });
      f.on('progress', (p) => {
        progress[i] = p as FleetProgress;
      });
      fleets.push(f);
    }
    const address = `127.0.0.1:${started.xdsPort}`;
    const shares = fleets.map((_, i) => started.proxies.filter((_p, j) => j % FLEETS === i));
    await Promise.all(fleets.map((f, i) => f.request('connect', { address, proxies: shares[i] }, 60_000)));
    const total = started.proxies.length;
    const settled = (): number => progress.reduce((n, p) => n + p.synced + p.errors, 0);
    let lastLog = performance.now();
    const ok = await waitFor(() => {
      if (performance.now() - lastLog > 10_000) {
        lastLog = performance.now();
        log(`${tag}: ${progress.reduce((n, p) => n + p.synced, 0)}/${total} synced`);
      }
      return settled() >= total;
    }, o.budgetS * 1000 * 1.5);
    if (!ok) log(`${tag}: not every proxy synced within ${Math.round(o.budgetS * 1.5)} s; measuring the change with those that did`);
    const afterSync = await cp.request<Usage>('usage', { resetPeak: true }, 60_000);
    const retained = await cp.request<Usage>('usage', { gc: true }, 60_000);
    const syncReports = await Promise.all(fleets.map((f) => f.request<FleetReport>('report', undefined, 60_000)));
    const syncMs = syncReports.flatMap((r) => r.syncMs);
    result.sync = {
      synced: syncReports.reduce((n, r) => n + r.synced, 0),
      errors: syncReports.flatMap((r) => r.errors),
      allSyncedMs: ok ? max(syncReports.flatMap((r) => r.syncAtMs)) : NaN,
      p50Ms: percentile(syncMs, 50),
      p99Ms: percentile(syncMs, 99),
      cpCpuS: afterSync.cpuS - atStart.cpuS,
      cpPeakRssMB: afterSync.sampledPeakMB,
      cpRssMB: retained.rssMB,
      cpHeapMB: retained.heapUsedMB,
      cpExternalMB: retained.externalMB,
      fleetCpuS: syncReports.reduce((n, r) => n + r.cpuS, 0),
      bytes: meanPerType(syncReports.flatMap((r) => r.syncBytes)),
      resources: meanPerType(syncReports.flatMap((r) => r.syncResources)),
    };
    log(`${tag}: synced ${result.sync.synced}/${total} in ${(result.sync.allSyncedMs / 1000).toFixed(1)} s`);

    await new Promise((r) => setTimeout(r, 1000));
    const ch = await cp.request<CpChangeReply>('change', { weight: 80, timeoutMs: o.changeTimeoutS * 1000 }, o.changeTimeoutS * 1000 + 30_000);
    // the fleets count what they received after syncing; give the last ACKed responses time to be tallied
    await new Promise((r) => setTimeout(r, 500));
    const later = await Promise.all(fleets.map((f) => f.request<FleetReport>('report', undefined, 60_000)));
    const pushedBytes = { ...ch.bytes };
    for (const k of XDS_TYPES) pushedBytes[k] = ch.pushedProxies ? ch.bytes[k] / ch.pushedProxies : 0;
    result.change = {
      firstPushMs: ch.firstPushMs,
      p50Ms: percentile(ch.ackMs, 50),
      p99Ms: percentile(ch.ackMs, 99),
      maxMs: max(ch.ackMs),
      allAckedMs: ch.allAckedMs,
      connected: ch.connected,
      pushedProxies: ch.pushedProxies,
      unacked: ch.unacked,
      bytesPerProxy: { ...pushedBytes, total: sum(pushedBytes) },
      receivedPerProxy: meanPerType(later.flatMap((r) => r.laterBytes)),
      cpCpuS: ch.cpuS,
      cpPeakRssMB: ch.usage.sampledPeakMB,
      fleetCpuS: later.reduce((n, r) => n + r.cpuS, 0) - syncReports.reduce((n, r) => n + r.cpuS, 0),
    };
    log(`${tag}: change ACKed by ${ch.pushedProxies - ch.unacked}/${ch.pushedProxies} pushed proxies in ${Math.round(ch.allAckedMs)} ms`);
    result.cpEnd = await cp.request<Usage>('usage', {}, 30_000);
  } catch (err) {
    result.error = (err as Error).message.split('\n')[0];
    log(`${tag}: failed: ${result.error}`);
  } finally {
    await Promise.all(fleets.map((f) => f.stop()));
    if (result.cpEnd) {
      await new Promise((r) => setTimeout(r, 1000));
      result.cpClosed = await cp.request<Usage>('usage', { gc: true }, 30_000).catch(() => undefined);
    }
    await cp.stop(30_000);
    result.load.after = machine().load;
  }
  if (o.cpuProf && existsSync(profDir)) {
    // --cpu-prof writes one profile per thread (tsx's loader thread too): the main thread's has the most time
    const tops = readdirSync(profDir).filter((f) => f.startsWith('CPU.')).map((f) => ({ file: join(profDir, f), ...topFrames(join(profDir, f), 20) }));
    const main = tops.sort((a, b) => b.totalMs - a.totalMs)[0];
    if (main) result.profile = { ...main, file: relative(process.cwd(), main.file) };
    const changeFile = join(profDir, 'change.cpuprofile');
    if (existsSync(changeFile)) result.changeProfile = { file: relative(process.cwd(), changeFile), ...topFrames(changeFile, 20) };
  }
  return result;
}

interface Options {
  sizes: number[];
  proxies: number;
  namespaces: number;
  scoping: 'both' | 'scoped' | 'unscoped';
  budgetS: number;
  changeTimeoutS: number;
  heapMb: number;
  cpFlags: string[];
  fleetFlags: string[];
  cpuProf: boolean;
  write: boolean;
  results: string;
}

function parse(args: string[]): Options {
  const { values } = parseArgs({
    args,
    options: {
      sizes: { type: 'string', default: '100,1000,5000' },
      proxies: { type: 'string', default: '1000' },
      namespaces: { type: 'string', default: '100' },
      scoping: { type: 'string', default: 'both' },
      'budget-s': { type: 'string', default: '300' },
      'change-timeout-s': { type: 'string', default: '300' },
      'heap-mb': { type: 'string', default: '8192' },
      'cp-flags': { type: 'string', default: '' },
      'fleet-flags': { type: 'string', default: '' },
      'cpu-prof': { type: 'boolean', default: false },
      'no-write': { type: 'boolean', default: false },
      results: { type: 'string', default: RESULTS },
    },
    strict: true,
  });
  const num = positiveNumber;
  const scoping = values.scoping;
  if (scoping !== 'both' && scoping !== 'scoped' && scoping !== 'unscoped') throw new Error(`--scoping: expected both, scoped or unscoped, got ${scoping}`);
  return {
    sizes: values.sizes.split(',').map((s) => num(s, 'sizes')),
    proxies: num(values.proxies, 'proxies'),
    namespaces: num(values.namespaces, 'namespaces'),
    scoping,
    budgetS: num(values['budget-s'], 'budget-s'),
    changeTimeoutS: num(values['change-timeout-s'], 'change-timeout-s'),
    heapMb: num(values['heap-mb'], 'heap-mb'),
    cpFlags: values['cp-flags'].split(/\s+/).filter((f) => f !== ''),
    fleetFlags: values['fleet-flags'].split(/\s+/).filter((f) => f !== ''),
    cpuProf: values['cpu-prof'],
    write: !values['no-write'],
    results: values.results,
  };
}

// ---- reporting -------------------------------------------------------------------------------------

const kb = (b: number | undefined): string => (b === undefined || !Number.isFinite(b) ? '-' : (b / 1024).toFixed(b < 10_240 ? 1 : 0));
const ms = (v: number | undefined): string => (v === undefined || !Number.isFinite(v) ? '-' : v >= 10_000 ? `${(v / 1000).toFixed(1)} s` : `${Math.round(v)}`);
const dur = (v: number): string => (v >= 1000 ? `${(v / 1000).toFixed(1)} s` : `${Math.round(v)} ms`);
const s1 = (v: number | undefined): string => (v === undefined || !Number.isFinite(v) ? '-' : v.toFixed(1));
const scopeName = (r: ScenarioResult): string => (r.scoped ? 'scoped' : 'unscoped');

function syncTable(rs: readonly ScenarioResult[]): { header: string[]; rows: string[][] } {
  const header = ['services', 'scope', 'proxies', 'sync all (s)', 'sync p50/p99 (ms)', 'CDS KB', 'EDS KB', 'LDS KB', 'RDS KB', 'total KB', 'clusters', 'CP CPU (s)', 'CP peak RSS (MB)', 'CP RSS/heap after GC (MB)'];
  const rows = rs.map((r) => {
    const y = r.sync;
    return [
      String(r.services), scopeName(r), `${y?.synced ?? 0}/${r.proxies}${r.reduced ? '*' : ''}`,
      y ? s1(y.allSyncedMs / 1000) : (r.error ? 'failed' : '-'),
      y ? `${ms(y.p50Ms)}/${ms(y.p99Ms)}` : '-',
      kb(y?.bytes.CDS), kb(y?.bytes.EDS), kb(y?.bytes.LDS), kb(y?.bytes.RDS), kb(y?.bytes.total),
      y ? String(Math.round(y.resources.CDS)) : '-',
      s1(y?.cpCpuS), y ? String(Math.round(y.cpPeakRssMB)) : '-', y ? `${Math.round(y.cpRssMB)}/${Math.round(y.cpHeapMB)}` : '-',
    ];
  });
  return { header, rows };
}

function changeTable(rs: readonly ScenarioResult[]): { header: string[]; rows: string[][] } {
  const header = ['services', 'scope', 'ACKed/pushed/connected', 'first push (ms)', 'ACK p50 (ms)', 'p99 (ms)', 'max (ms)', 'all ACKed (ms)', 'KB/proxy (LDS+RDS)', 'CP CPU (s)', 'fleets CPU (s)', 'CP peak RSS (MB)'];
  const rows = rs.map((r) => {
    const c = r.change;
    return [
      String(r.services), scopeName(r), c ? `${c.pushedProxies - c.unacked}/${c.pushedProxies}/${c.connected}` : '-',
      ms(c?.firstPushMs), ms(c?.p50Ms), ms(c?.p99Ms), ms(c?.maxMs), c ? (c.unacked > 0 ? `>${ms(c.allAckedMs)}` : ms(c.allAckedMs)) : (r.error ? 'failed' : '-'),
      c ? `${kb(c.bytesPerProxy.LDS)}+${kb(c.bytesPerProxy.RDS)}` : '-',
      s1(c?.cpCpuS), s1(c?.fleetCpuS), c ? String(Math.round(c.cpPeakRssMB)) : '-',
    ];
  });
  return { header, rows };
}

interface Goal { goal: string; result: string; met: boolean | undefined }

function goals(rs: readonly ScenarioResult[]): Goal[] {
  const out: Goal[] = [];
  for (const r of rs.filter((x) => x.services === 1000)) {
    const c = r.change;
    const full = r.proxies === 1000 && r.sync?.synced === 1000;
    out.push({
      goal: `every proxy ACKed within 1 s of a change, 1000 services x 1000 proxies (${scopeName(r)})`,
      result: c ? `${dur(c.allAckedMs)} for ${c.pushedProxies - c.unacked} ACKed of ${c.pushedProxies} pushed (${c.connected} connected)${full ? '' : ', not the full 1000'}${c.allAckedMs > GOAL_ACK_MS ? `: ${(c.allAckedMs / GOAL_ACK_MS).toFixed(1)}x the goal` : ''}` : 'not measured',
      met: c ? c.unacked === 0 && c.allAckedMs <= GOAL_ACK_MS && full : undefined,
    });
  }
  for (const r of rs) {
    const peak = Math.max(r.sync?.cpPeakRssMB ?? 0, r.change?.cpPeakRssMB ?? 0, r.cpEnd?.maxRssMB ?? 0);
    if (peak === 0) continue;
    const heap = r.sync ? `; ${Math.round(r.sync.cpHeapMB)} MB of JS heap after GC` : '';
    out.push({ goal: `control plane RSS under 1 GB (${r.services} services, ${scopeName(r)}, ${r.proxies} proxies)`, result: `peak ${Math.round(peak)} MB${heap}`, met: peak < GOAL_RSS_MB });
  }
  for (const size of [...new Set(rs.map((r) => r.services))]) {
    const u = rs.find((r) => r.services === size && !r.scoped)?.sync;
    const sc = rs.find((r) => r.services === size && r.scoped)?.sync;
    if (!u || !sc) continue;
    const ratio = u.bytes.total / sc.bytes.total;
    out.push({ goal: `./*-scoped proxy gets >= 10x fewer bytes than unscoped (${size} services, ${rs[0]?.namespaces} namespaces)`, result: `${ratio.toFixed(1)}x (${kb(u.bytes.total)} KB vs ${kb(sc.bytes.total)} KB)`, met: ratio >= GOAL_SCOPING_RATIO });
  }
  return out;
}

function mark(m: boolean | undefined): string {
  return m === undefined ? '?' : m ? 'met' : 'MISSED';
}

function chart(rs: readonly ScenarioResult[]): string {
  const sizes = [...new Set(rs.map((r) => r.services))].sort((a, b) => a - b);
  const series = (scoped: boolean, pick: (r: ScenarioResult) => number | undefined, name: string, color: string, dashed: boolean): { name: string; color: string; dashed: boolean; values: number[]; notes: Array<string | undefined> } => {
    const runs = sizes.map((n) => rs.find((r) => r.services === n && r.scoped === scoped));
    return {
      name, color, dashed,
      values: runs.map((r) => (r ? (pick(r) ?? NaN) : NaN)),
      notes: runs.map((r) => (!dashed && r && r.proxies !== r.proxiesRequested ? `${r.proxies} proxies` : undefined)),
    };
  };
  return lineChart({
    title: 'Control plane: one VirtualService change until every proxy ACKed',
    xLabel: `mesh size (Kubernetes services; ${rs[0]?.namespaces ?? 0} namespaces; 1000 proxies unless noted)`,
    yLabel: 'time from apply',
    categories: sizes.map(String),
    log: true,
    goal: { value: GOAL_ACK_MS, label: 'goal: 1 s' },
    series: [
      series(false, (r) => r.change?.allAckedMs, 'unscoped: all ACKed', '#d62728', false),
      series(false, (r) => r.change?.p50Ms, 'unscoped: p50', '#d62728', true),
      series(true, (r) => r.change?.allAckedMs, 'scoped: all ACKed', '#1f77b4', false),
      series(true, (r) => r.change?.p50Ms, 'scoped: p50', '#1f77b4', true),
    ],
    footnote: 'Scoped: a root Sidecar with egress ./* and istio-system/*. Includes the 100 ms debounce.',
  });
}

function markdown(rs: readonly ScenarioResult[], m: Machine, o: Options, date: string, command: string): string {
  const st = syncTable(rs);
  const ct = changeTable(rs);
  const lines = [
    '## Control plane at scale',
    '',
    `${date}, \`${command}\``,
    '',
    `Machine: ${m.cores} cores, ${m.cpuModel}, ${m.memoryGiB} GiB, ${m.kernel}, node ${m.node}; ${formatLoad(m.load)} at the start (other engineers share the CPU).`,
    '',
    `Mesh: ${o.namespaces} namespaces; per service a Deployment of 2-3 replicas and an HTTP port (every 10th also gRPC); every 5th a canary (v1 + v2 Deployments, DestinationRule with subsets, 90/10 VirtualService). Proxies: pods spread over the namespaces, each its own HTTP/2 connection, in ${FLEETS} fleet processes; they request CDS + LDS, then EDS/RDS by name, and ACK everything. Change: the weight of one VirtualService (svc-00000 in ns-000, 90/10 to 80/20). Debounce ${DEBOUNCE.quietMs} ms quiet / ${DEBOUNCE.maxDelayMs} ms max.`,
    '',
    '### Initial sync (bytes: encoded resources per proxy, mean)',
    '',
    markdownTable(st.header, st.rows),
    '',
    '### One VirtualService change',
    '',
    markdownTable(ct.header, ct.rows),
    '',
  ];
  const reduced = rs.filter((r) => r.reduced);
  for (const r of reduced) lines.push(`\\* ${r.services} services ${scopeName(r)}: ${r.reduced}.`, '');
  for (const r of rs.filter((x) => x.error)) lines.push(`${r.services} services ${scopeName(r)} failed: ${r.error}`, '');
  lines.push('Load per scenario (before -> after): ' + rs.map((r) => `${r.services}/${scopeName(r)} ${r.load.before.map((l) => l.toFixed(1)).join(',')} -> ${r.load.after.map((l) => l.toFixed(1)).join(',')}`).join('; '), '');
  lines.push('### Goals', '', markdownTable(['goal', 'result', ''], goals(rs).map((g) => [g.goal, g.result, mark(g.met)]), 'llc'), '');
  for (const r of rs) {
    for (const [what, p] of [['whole run', r.profile], ['the change only', r.changeProfile]] as const) {
      if (!p) continue;
      lines.push(`### Profile: ${r.services} services, ${scopeName(r)}, ${what} (self time, top 12 of ${(p.totalMs / 1000).toFixed(1)} s)`, '');
      lines.push(markdownTable(['function', 'self (s)', 'share'], p.frames.slice(0, 12).map((f) => [f.frame, (f.selfMs / 1000).toFixed(2), `${(f.share * 100).toFixed(1)}%`])), '');
    }
  }
  lines.push('Chart and every figure: `bench/results/controlplane.svg` and `controlplane.json`, written by the run (not committed).');
  return lines.join('\n');
}

interface Saved { date: string; command: string; machine: Machine; options: Options; scenarios: ScenarioResult[] }

export async function run(args: string[]): Promise<number> {
  const fromJson = args.indexOf('--from-json');
  if (fromJson >= 0) {
    // re-renders the table, chart and latest.md section of an earlier run (its figures unchanged)
    const file = args[fromJson + 1];
    if (!file) throw new Error('--from-json needs a controlplane.json');
    const saved = JSON.parse(readFileSync(file, 'utf8')) as Saved;
    const o = { ...saved.options, results: parse(args.filter((_, i) => i !== fromJson && i !== fromJson + 1)).results };
    report(saved.scenarios, saved.machine, o, saved.date, saved.command);
    return 0;
  }
  const o = parse(args);
  const scopings = o.scoping === 'both' ? [false, true] : [o.scoping === 'scoped'];
  const scenarios: Scenario[] = [];
  for (const services of o.sizes) for (const scoped of scopings) scenarios.push({ services, scoped });
  const m = machine();
  const date = new Date().toISOString();
  const command = `npm run bench -- controlplane${args.length ? ' ' + args.join(' ') : ''}`;
  log(`${scenarios.length} scenarios; ${m.cores} cores, ${formatLoad(m.load)}`);
  const results: ScenarioResult[] = [];
  for (const s of scenarios) results.push(await runScenario(s, o, results));
  report(results, m, o, date, command);
  return results.some((r) => r.error) ? 1 : 0;
}

function report(results: ScenarioResult[], m: Machine, o: Options, date: string, command: string): void {
  const st = syncTable(results);
  const ct = changeTable(results);
  const out: string[] = [
    `Control plane at scale: ${o.namespaces} namespaces, ${date}; ${m.cores} cores ${m.cpuModel}; ${formatLoad(m.load)} at start`,
    '',
    'Initial sync (per proxy, mean):',
    textTable(st.header, st.rows),
    '',
    'One VirtualService change (ms from store.apply, incl. 100 ms debounce):',
    textTable(ct.header, ct.rows),
    '',
  ];
  for (const r of results.filter((x) => x.reduced)) out.push(`* ${r.services} services ${scopeName(r)}: ${r.reduced}`);
  for (const r of results.filter((x) => x.error)) out.push(`! ${r.services} services ${scopeName(r)} failed: ${r.error}`);
  out.push('', 'Goals:');
  for (const g of goals(results)) out.push(`  [${mark(g.met)}] ${g.goal}: ${g.result}`);
  for (const r of results) {
    for (const [what, p] of [['whole run', r.profile], ['change only', r.changeProfile]] as const) {
      if (!p) continue;
      out.push('', `Profile ${r.services} ${scopeName(r)}, ${what} (${p.file}), self time of ${(p.totalMs / 1000).toFixed(1)} s:`);
      for (const f of p.frames.slice(0, 15)) out.push(`  ${(f.selfMs / 1000).toFixed(2).padStart(7)} s ${(f.share * 100).toFixed(1).padStart(5)}%  ${f.frame}`);
    }
  }
  process.stdout.write(out.join('\n') + '\n');

  if (o.write) {
    mkdirSync(o.results, { recursive: true });
    const json = { suite: 'controlplane', date, command, machine: m, options: { ...o, results: relative(process.cwd(), o.results) }, debounce: DEBOUNCE, goals: goals(results), scenarios: results };
    writeAtomic(join(o.results, 'controlplane.json'), JSON.stringify(json, null, 2) + '\n');
    writeAtomic(join(o.results, 'controlplane.svg'), chart(results));
    writeSection(join(o.results, 'latest.md'), 'controlplane', markdown(results, m, o, date, command));
    log(`wrote ${relative(process.cwd(), o.results) || '.'}/controlplane.json, controlplane.svg, latest.md`);
  }
}

function writeAtomic(file: string, text: string): void {
  writeFileSync(`${file}.tmp`, text);
  renameSync(`${file}.tmp`, file);
}
