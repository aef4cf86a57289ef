// Istio's metrics from both reporters of a sidecar pair in real network namespaces: after a few
// requests, the server sidecar's merged endpoint (podIP:15020/stats/prometheus, read from the host)
// counts them as reporter="destination" with both workloads named, the client's as reporter="source";
// and Debian's real Prometheus server scraping the server pod finds the same series.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { netnsSkipReason } from '../helpers/netns.ts';
import { APPS, poll, startTestMesh, type TestMesh, CLIENT_YAML, ECHO_SERVICE_YAML } from '../helpers/mesh.ts';
import { findSamples, parseExposition, prometheusUnavailable, startPrometheus, type PrometheusServer } from '../helpers/prometheus.ts';

const skip = netnsSkipReason();
// CI sets TSMESH_REQUIRE_PROMETHEUS=1 so that a missing server fails instead of skipping.
const skipPrometheus = process.env.TSMESH_REQUIRE_PROMETHEUS === '1' ? false : (prometheusUnavailable() ?? false);
const HOST = 'echo.demo.svc.cluster.local';
const REQUESTS = 5;

const YAML = `
${ECHO_SERVICE_YAML}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: echo, namespace: demo}
spec:
  selector: {matchLabels: {app: echo, version: v1}}
  template:
    metadata: {labels: {app: echo, version: v1}}
    spec: {containers: [{name: echo, image: tsmesh/echo, ports: [{containerPort: 8080}]}]}
---
${CLIENT_YAML}
`;

/** The labels both reporters put on these requests. */
const LABELS = {
  source_workload: 'client',
  source_workload_namespace: 'demo',
  source_app: 'client',
  destination_workload: 'echo',
  destination_workload_namespace: 'demo',
  destination_app: 'echo',
  destination_version: 'v1',
  destination_service: HOST,
  destination_service_name: 'echo',
  destination_service_namespace: 'demo',
  request_protocol: 'http',
  response_code: '200',
  response_flags: '-',
};

describe('Istio metrics from both sidecars of a pair', { skip, timeout: 120_000 }, () => {
  let mesh: TestMesh;
  let prom: PrometheusServer | undefined;
  const scrape = async (app: string): Promise<string> => {
    const res = await fetch(`http://${mesh.ip(app)}:15020/stats/prometheus`);
    assert.equal(res.status, 200);
    return res.text();
  };
  /** istio_requests_total for our requests as `app`'s sidecar reports them, once it counts all of them. */
  const requestsTotal = (app: string, reporter: string): Promise<number> =>
    poll(`istio_requests_total{reporter="${reporter}"} = ${REQUESTS} on ${app}`, async () => {
      const samples = findSamples(parseExposition(await scrape(app)), 'istio_requests_total', { reporter, ...LABELS });
      const total = samples.reduce((n, s) => n + s.value, 0);
      return total >= REQUESTS ? total : undefined;
    }, 10_000, 200);

  before(async () => {
    mesh = await startTestMesh({ yaml: YAML, images: { 'tsmesh/echo': { argv: [process.execPath, join(APPS, 'echo.mjs')], env: { PORT: '8080' } } } });
    const vip = mesh.vip(HOST);
    await poll('the echo app answering', async () => ((await mesh.fetch('client', `http://${vip}/`, { headers: { host: HOST } }))[0]?.status === 200 ? true : undefined));
    // at least REQUESTS successful calls (the readiness poll may add a few more with the same labels)
    const results = await mesh.fetch('client', `http://${vip}/counted`, { count: REQUESTS, headers: { host: HOST } });
    assert.deepEqual(results.map((r) => r.status), Array<number>(REQUESTS).fill(200));
  });
  after(async () => {
    await prom?.stop();
    await mesh?.stop();
  });

  it('the server sidecar reports them as destination, naming both workloads', async () => {
    assert.ok((await requestsTotal('echo', 'destination')) >= REQUESTS);
    const exp = parseExposition(await scrape('echo'));
    const [s] = findSamples(exp, 'istio_requests_total', { reporter: 'destination', ...LABELS });
    assert.equal(s?.labels.connection_security_policy, 'none', 'plaintext between the sidecars');
    assert.ok(findSamples(exp, 'istio_request_duration_milliseconds_bucket', { reporter: 'destination', ...LABELS }).length > 0, 'the duration histogram too');
  });

  it('the client sidecar reports them as source', async () => {
    assert.ok((await requestsTotal('client', 'source')) >= REQUESTS);
    const exp = parseExposition(await scrape('client'));
    assert.equal(findSamples(exp, 'istio_requests_total', { reporter: 'destination', source_workload: 'client', destination_workload: 'echo' }).length, 0, 'the client reports no destination series for its own calls');
  });

  it('a real Prometheus server scraping the server pod finds the series', { skip: skipPrometheus }, async () => {
    prom = await startPrometheus([`${mesh.ip('echo')}:15020`]);
    const server = prom;
    const selector = Object.entries({ reporter: 'destination', ...LABELS }).map(([k, v]) => `${k}="${v}"`).join(',');
    const found = await poll('istio_requests_total in Prometheus', async () => {
      const r = await server.query(`sum(istio_requests_total{${selector}})`);
      const v = Number(r[0]?.value[1] ?? 0);
      return v >= REQUESTS ? v : undefined;
    }, 30_000, 500).catch((err: Error) => {
      throw new Error(`${err.message}\nprometheus log:\n${server.output().slice(-2000)}`);
    });
    assert.ok(found >= REQUESTS);
    const up = await server.query('up');
    assert.equal(up[0]?.value[1], '1', 'the target is up');
  });
});
