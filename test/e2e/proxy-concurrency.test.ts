// `tsmesh proxy --concurrency 2` in real network namespaces with real capture, started with Istio's injected
// argument shape: requests over separate connections reach both workers of each sidecar (Envoy's per-worker
// listener stats), istio_requests_total counts every one of them once on both reporters, a SIGKILLed worker is
// replaced while the other keeps serving, a listener the workers cannot bind is NACKed with their reason, and stopping the sidecar (SIGTERM, or SIGKILL of the primary) leaves no
// worker process behind.

import assert from 'node:assert/strict';
import dc from 'node:diagnostics_channel';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { netnsSkipReason } from '../helpers/netns.ts';
import { APPS, CLIENT_YAML, ECHO_DEPLOYMENT_YAML, ECHO_SERVICE_YAML, poll, startTestMesh, type TestMesh } from '../helpers/mesh.ts';
import { findSamples, parseExposition } from '../helpers/prometheus.ts';
import { XDS_EVENTS, type XdsNackEvent } from '../../src/controlplane/xds/ads-server.ts';

const skip = netnsSkipReason();
const HOST = 'echo.demo.svc.cluster.local';
const REQUESTS = 24;

const YAML = `
${ECHO_SERVICE_YAML}
---
${ECHO_DEPLOYMENT_YAML}
---
${CLIENT_YAML}
`;

/** What Istio's injector writes after `proxy` (plus --concurrency 2). */
const ISTIO_ARGS = ['sidecar', '--domain', 'demo.svc.cluster.local', '--serviceCluster', 'echo.demo', '--proxyLogLevel=warning', '--proxyComponentLogLevel=misc:error', '--log_output_level=default:info', '--concurrency', '2'];

interface WorkerInfo {
  id: number;
  pid: number;
  state: string;
  restarts: number;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('tsmesh proxy --concurrency 2', { skip, timeout: 120_000 }, () => {
  let mesh: TestMesh;
  let vip: string;
  const scrape = async (app: string, port: number): Promise<string> => {
    const res = await fetch(`http://${mesh.ip(app)}:${port}/stats/prometheus`);
    assert.equal(res.status, 200);
    return res.text();
  };
  const requestsTotal = async (app: string, reporter: string): Promise<number> =>
    findSamples(parseExposition(await scrape(app, 15020)), 'istio_requests_total', { reporter }).reduce((n, s) => n + s.value, 0);
  /** Connections accepted per worker id (Envoy's listener.<address>.worker_<id>.downstream_cx_total, every listener). */
  const perWorker = async (app: string): Promise<Map<number, number>> => {
    const out = new Map<number, number>();
    for (const s of parseExposition(await scrape(app, 15090)).samples) {
      const m = /^envoy_listener_worker_(\d+)_downstream_cx_total$/.exec(s.name);
      if (m) out.set(Number(m[1]), (out.get(Number(m[1])) ?? 0) + s.value);
    }
    return out;
  };
  /** The sidecar's /server_info (its admin listens on 127.0.0.1 inside the pod). */
  const workers = async (app: string): Promise<WorkerInfo[]> => {
    const r = await mesh.exec(app, [process.execPath, '-e', 'fetch("http://127.0.0.1:15000/server_info").then((r) => r.text()).then((t) => process.stdout.write(t))']);
    assert.equal(r.code, 0, r.stderr);
    const info = JSON.parse(r.stdout) as { command_line_options: { concurrency: number }; workers: WorkerInfo[] };
    assert.equal(info.command_line_options.concurrency, 2);
    return info.workers;
  };
  const sidecarPid = (app: string): number => {
    const pid = mesh.pod(app).run.processes.get('istio-proxy')?.pid;
    assert.ok(pid, `${app} has a sidecar process`);
    return pid;
  };
  const send = async (count: number, path: string): Promise<void> => {
    const results = await mesh.fetch('client', `http://${vip}${path}`, { count, concurrency: 4, headers: { host: HOST } });
    const failed = results.filter((r) => r.status !== 200);
    // on failure: the failed results and both sidecars' logs (access log lines included) say what happened
    const why = failed.length === 0 ? '' : `${JSON.stringify(failed)}\n--- client sidecar\n${mesh.sidecarLog('client').slice(-6000)}\n--- echo sidecar\n${mesh.sidecarLog('echo').slice(-6000)}`;
    assert.deepEqual(results.map((r) => r.status), Array<number>(count).fill(200), why);
  };

  before(async () => {
    mesh = await startTestMesh({ yaml: YAML, images: { 'tsmesh/echo': { argv: [process.execPath, join(APPS, 'echo.mjs')], env: { PORT: '8080' } } }, sidecarArgs: ISTIO_ARGS, meshOverrides: ['meshConfig.accessLogFile=/dev/stdout'] });
    vip = mesh.vip(HOST);
    await poll('the echo app answering', async () => ((await mesh.fetch('client', `http://${vip}/`, { headers: { host: HOST } }))[0]?.status === 200 ? true : undefined));
  });
  after(async () => {
    await mesh?.stop();
  });

  it('serves requests on separate connections with both workers of each sidecar, and counts each request once', async () => {
    const before = { client: await requestsTotal('client', 'source'), echo: await requestsTotal('echo', 'destination') };
    await send(REQUESTS, '/spread');
    for (const app of ['client', 'echo']) {
      const counts = await perWorker(app);
      assert.deepEqual([...counts.keys()].sort(), [0, 1], `${app}: per-worker stats of workers 0 and 1`);
      for (const [id, n] of counts) assert.ok(n > 0, `${app}: worker ${id} accepted connections (${JSON.stringify([...counts])})`);
      const ws = await workers(app);
      assert.equal(new Set(ws.map((w) => w.pid)).size, 2, `${app}: two worker processes`);
      assert.ok(!ws.some((w) => w.pid === sidecarPid(app)), 'the workers are not the primary');
    }
    // every request exactly once, whichever worker served it (reporters settle once the streams end)
    const client = await poll('the client sidecar counting every request', async () => ((await requestsTotal('client', 'source')) >= before.client + REQUESTS ? requestsTotal('client', 'source') : undefined));
    const echo = await poll('the server sidecar counting every request', async () => ((await requestsTotal('echo', 'destination')) >= before.echo + REQUESTS ? requestsTotal('echo', 'destination') : undefined));
    assert.equal(client - before.client, REQUESTS, 'reporter="source"');
    assert.equal(echo - before.echo, REQUESTS, 'reporter="destination"');
    const server = parseExposition(await scrape('echo', 15090));
    assert.equal(findSamples(server, 'envoy_server_concurrency')[0]?.value, 2);
    assert.equal(findSamples(server, 'envoy_server_live')[0]?.value, 1);
  });

  it('NACKs a listener the workers cannot bind, with the reason, and keeps serving the last good config', async () => {
    // a Sidecar ingress port with captureMode NONE is a listener bound on 8080, which the echo app holds
    const SIDECAR = `apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: echo-bind, namespace: demo}
spec:
  workloadSelector: {labels: {app: echo}}
  ingress:
  - port: {number: 8080, protocol: HTTP, name: http}
    defaultEndpoint: 127.0.0.1:8080
    captureMode: NONE`;
    const nacks: string[] = [];
    const onNack = (m: unknown): void => {
      const e = m as XdsNackEvent;
      if (e.proxy.id.includes(mesh.pod('echo').workload.name)) nacks.push(e.message);
    };
    dc.subscribe(XDS_EVENTS.nack, onNack);
    try {
      mesh.apply(SIDECAR);
      const reason = await poll('the echo sidecar NACKing the listener', () => nacks.find((m) => /0\.0\.0\.0:8080/.test(m)));
      assert.match(reason, /listener 0\.0\.0\.0_8080: cannot bind 0\.0\.0\.0:8080: EADDRINUSE/);
      assert.equal((await fetch(`http://${mesh.ip('echo')}:15021/healthz/ready`)).status, 200, 'still ready');
      await send(4, '/after-nack');
    } finally {
      dc.unsubscribe(XDS_EVENTS.nack, onNack);
      mesh.remove(SIDECAR);
    }
  });

  it('replaces a SIGKILLed worker while the other keeps serving, and keeps its counts', async () => {
    // the client's sidecar: the app opens a connection per request, so connections keep reaching every worker
    const [victim] = (await workers('client')).filter((w) => w.id === 1);
    assert.ok(victim, 'worker 1 of the client sidecar');
    const counted = await requestsTotal('client', 'source');
    process.kill(victim.pid, 'SIGKILL');
    // the primary notices at once (its IPC channel closes) and restarts it; worker 0 serves meanwhile
    await poll('the primary noticing the dead worker', async () => ((await workers('client')).find((w) => w.id === 1)?.restarts === 1 ? true : undefined));
    await send(8, '/while-restarting');
    const replaced = await poll('a replacement worker 1 with the current configuration', async () => {
      const w = (await workers('client')).find((x) => x.id === 1);
      return w && w.pid !== victim.pid && w.state === 'ready' ? w : undefined;
    });
    assert.ok(alive(replaced.pid));
    assert.equal((await fetch(`http://${mesh.ip('client')}:15021/healthz/ready`)).status, 200, 'still ready');
    const served = (await perWorker('client')).get(1) ?? 0;
    await send(REQUESTS, '/after-restart');
    assert.ok(((await perWorker('client')).get(1) ?? 0) > served, 'the replacement takes connections');
    const total = await poll('every request counted', async () => ((await requestsTotal('client', 'source')) >= counted + 8 + REQUESTS ? requestsTotal('client', 'source') : undefined));
    assert.equal(total, counted + 8 + REQUESTS, 'what the dead worker had counted is still in the total');
    assert.match(mesh.sidecarLog('client'), new RegExp(`proxy worker 1 \\(pid ${victim.pid}\\) exited \\(SIGKILL\\)`));
  });

  it('SIGTERM stops the sidecar and every worker; a SIGKILLed primary leaves no worker either', async () => {
    for (const [app, signal] of [['echo', 'SIGTERM'], ['client', 'SIGKILL']] as const) {
      const pids = (await workers(app)).map((w) => w.pid);
      assert.equal(pids.length, 2);
      const primary = sidecarPid(app);
      process.kill(primary, signal);
      await poll(`${app}: the sidecar and its workers gone after ${signal}`, () => (![primary, ...pids].some(alive) ? true : undefined), 10_000);
    }
  });
});
