// The control plane under test, alone in its process (so its CPU, RSS and --cpu-prof profile are its own): loads a synthetic mesh, serves ADS on 127.0.0.1, applies the benchmark's change and times the ACKs through the xDS diagnostics channels; a rejected mesh or change fails the request.

import dc from 'node:diagnostics_channel';
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { join } from 'node:path';
import { writeHeapSnapshot } from 'node:v8';
import type { Logger } from '../../src/common/log.ts';
import { ControlPlane } from '../../src/controlplane/server.ts';
import { XDS_EVENTS, type XdsAckEvent, type XdsPushEvent } from '../../src/controlplane/xds/ads-server.ts';
import { TYPE_SHORT_NAMES } from '../../src/xds/protos.ts';
import { serve } from '../lib/child.ts';
import { buildMesh, canaryVirtualService, changeTarget, ROOT_NAMESPACE } from './mesh.ts';
import { perType, type CpChangeReply, type CpChangeRequest, type CpStartReply, type CpStartRequest, type ProxySpec, type Usage, type XdsType } from './protocol.ts';

const MB = 2 ** 20;
let peakRss = 0;
const sampler = setInterval(() => {
  peakRss = Math.max(peakRss, process.memoryUsage.rss());
}, 200);
sampler.unref();

function usage(): Usage {
  const cpu = process.cpuUsage();
  const mem = process.memoryUsage();
  peakRss = Math.max(peakRss, mem.rss);
  return {
    cpuS: (cpu.user + cpu.system) / 1e6,
    rssMB: mem.rss / MB,
    heapUsedMB: mem.heapUsed / MB,
    heapTotalMB: mem.heapTotal / MB,
    externalMB: mem.external / MB,
    maxRssMB: process.resourceUsage().maxRSS / 1024,
    sampledPeakMB: peakRss / MB,
  };
}

/** Warnings and errors go to stderr, at most 20 of them; the rest (one line per stream) is dropped. */
let complaints = 0;
const complain = (level: string) => (msg: string, fields?: Record<string, unknown>): void => {
  if (++complaints > 20) return;
  process.stderr.write(`controlplane ${level}: ${msg} ${fields ? JSON.stringify(fields) : ''}\n`);
};
const quietLog: Logger = { debug: () => undefined, info: () => undefined, warn: complain('warn'), error: complain('error') };

let cp: ControlPlane | undefined;

/** Pods of the application namespaces, taken round-robin over the namespaces so every namespace has proxies. */
function choosePods(control: ControlPlane, count: number): ProxySpec[] {
  const byNs = new Map<string, ProxySpec[]>();
  for (const w of control.pushContext().registry.workloads) {
    if (w.kind !== 'Pod' || w.namespace === ROOT_NAMESPACE) continue;
    let l = byNs.get(w.namespace);
    if (!l) byNs.set(w.namespace, (l = []));
    l.push({ pod: w.name, namespace: w.namespace, ip: w.ip, labels: { ...w.labels } });
  }
  const lists = [...byNs.keys()].sort().map((ns) => byNs.get(ns) ?? []);
  const out: ProxySpec[] = [];
  for (let i = 0; out.length < count; i++) {
    let any = false;
    for (const l of lists) {
      const p = l[i];
      if (!p) continue;
      any = true;
      if (out.length < count) out.push(p);
    }
    if (!any) break;
  }
  return out;
}

async function start(req: CpStartRequest): Promise<CpStartReply> {
  const mesh = buildMesh(req.mesh);
  cp = new ControlPlane({ xdsAddress: '127.0.0.1:0', httpAddress: '127.0.0.1:0', log: quietLog, debounce: req.debounce });
  let t = performance.now();
  const result = cp.store.apply(mesh.resources);
  if (!result.accepted) {
    const first = result.diagnostics.filter((d) => d.severity === 'error').slice(0, 3).map((d) => `${d.resource} ${d.path}: ${d.message}`);
    throw new Error(`the synthetic mesh was rejected: ${first.join('; ')}`);
  }
  const applyMs = performance.now() - t;
  t = performance.now();
  const push = cp.pushContext();
  const pushContextMs = performance.now() - t;
  await cp.start();
  return {
    xdsPort: cp.xdsPort,
    resources: mesh.resources.length,
    services: push.registry.services.length,
    pods: push.registry.workloads.length,
    replicas: mesh.replicas,
    canaries: mesh.canaries,
    applyMs,
    pushContextMs,
    proxies: choosePods(cp, req.proxies),
    usage: usage(),
  };
}

interface ConnTrack { pending: Set<string>; lastAckAt: number }

/** With BENCH_CHANGE_PROFILE_DIR set, the change alone is profiled too (the inspector's profiler, in this process). */
async function profileWindow(): Promise<(() => Promise<void>) | undefined> {
  const dir = process.env.BENCH_CHANGE_PROFILE_DIR;
  if (!dir) return undefined;
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
  return async () => {
    const { profile } = await session.post('Profiler.stop');
    writeFileSync(join(dir, 'change.cpuprofile'), JSON.stringify(profile));
    session.disconnect();
  };
}

async function change(req: CpChangeRequest): Promise<CpChangeReply> {
  const control = cp;
  if (!control) throw new Error('change before start');
  const connected = control.ads.proxies().length;
  const target = changeTarget();
  const vs = canaryVirtualService(target.namespace, target.app, req.weight);
  const conns = new Map<string, ConnTrack>();
  const responses = perType();
  const bytes = perType();
  let version: string | undefined;
  let firstPushAt = 0;
  let lastEventAt = 0;
  const onPush = (m: unknown): void => {
    const e = m as XdsPushEvent;
    const now = performance.now();
    version ??= e.version;
    if (e.version !== version) return;
    if (firstPushAt === 0) firstPushAt = now;
    lastEventAt = now;
    let c = conns.get(e.proxy.connectionId);
    if (!c) conns.set(e.proxy.connectionId, (c = { pending: new Set(), lastAckAt: 0 }));
    c.pending.add(e.typeUrl);
    const short = TYPE_SHORT_NAMES[e.typeUrl] as XdsType | undefined;
    if (short) {
      responses[short]++;
      bytes[short] += e.bytes;
    }
  };
  const onAck = (m: unknown): void => {
    const e = m as XdsAckEvent;
    if (version === undefined || e.version !== version) return;
    const c = conns.get(e.proxy.connectionId);
    if (!c) return;
    c.pending.delete(e.typeUrl);
    c.lastAckAt = performance.now();
    lastEventAt = c.lastAckAt;
  };
  dc.subscribe(XDS_EVENTS.push, onPush);
  dc.subscribe(XDS_EVENTS.ack, onAck);
  const stopProfile = await profileWindow();
  const before = usage();
  peakRss = 0;
  const t0 = performance.now();
  const result = control.store.apply([vs]);
  if (!result.accepted) throw new Error(`the change was rejected: ${result.diagnostics.map((d) => d.message).join('; ')}`);
  const deadline = t0 + req.timeoutMs;
  // done: everything sent is ACKed, and either every proxy was pushed or nothing new was sent for 1 s
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    const now = performance.now();
    if (now > deadline) break;
    if (firstPushAt === 0) continue;
    const allAcked = [...conns.values()].every((c) => c.pending.size === 0);
    if (allAcked && (conns.size >= connected || now - lastEventAt > 1000)) break;
  }
  dc.unsubscribe(XDS_EVENTS.push, onPush);
  dc.unsubscribe(XDS_EVENTS.ack, onAck);
  const after = usage();
  await stopProfile?.();
  const done = [...conns.values()].filter((c) => c.pending.size === 0);
  const ackMs = done.map((c) => c.lastAckAt - t0);
  return {
    version: version ?? '',
    connected,
    firstPushMs: firstPushAt ? firstPushAt - t0 : -1,
    pushedProxies: conns.size,
    ackMs,
    unacked: conns.size - done.length,
    allAckedMs: done.length === conns.size && conns.size > 0 ? Math.max(...ackMs) : req.timeoutMs,
    responses,
    bytes,
    cpuS: after.cpuS - before.cpuS,
    usage: after,
  };
}

serve(
  {
    start: (req: CpStartRequest) => start(req),
    usage: async (req: { resetPeak?: boolean; gc?: boolean } | undefined) => {
      const gc = (globalThis as { gc?: () => void }).gc;
      // after full collections, what is retained rather than what awaits collection (array buffers
      // are freed by a background thread after the collection that found them dead: hence the pause)
      if (req?.gc && gc) {
        gc();
        await new Promise((r) => setTimeout(r, 200));
        gc();
      }
      const u = usage();
      // a diagnostic for whoever chases the control plane's memory: BENCH_HEAP_SNAPSHOT=file.heapsnapshot
      if (req?.gc && process.env.BENCH_HEAP_SNAPSHOT) writeHeapSnapshot(process.env.BENCH_HEAP_SNAPSHOT);
      if (req?.resetPeak) peakRss = 0;
      return u;
    },
    change: (req: CpChangeRequest) => change(req),
  },
  async () => {
    await cp?.stop();
  },
);
