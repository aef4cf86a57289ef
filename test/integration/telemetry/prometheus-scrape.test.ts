// Debian's real Prometheus server scrapes a running sidecar's 15090 and 15020 endpoints and finds
// istio_requests_total with Istio's labels and the expected value.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { newStreamInfo, type StreamInfo } from '../../../src/proxy/stream-info.ts';
import { startAdminServers, type AdminServers } from '../../../src/proxy/telemetry/admin.ts';
import { ISTIO_HTTP_LABELS } from '../../../src/proxy/telemetry/metrics.ts';
import { Telemetry } from '../../../src/proxy/telemetry/telemetry.ts';
import { prometheusUnavailable, startPrometheus, type PrometheusServer } from '../../helpers/prometheus.ts';

// CI sets TSMESH_REQUIRE_PROMETHEUS=1 so that a missing server fails instead of skipping.
const skip = process.env.TSMESH_REQUIRE_PROMETHEUS === '1' ? false : (prometheusUnavailable() ?? false);

const productpage = { workload: 'productpage-v1', namespace: 'default', app: 'productpage', version: 'v1', canonicalService: 'productpage', canonicalRevision: 'v1', principal: 'spiffe://cluster.local/ns/default/sa/bookinfo-productpage', cluster: 'Kubernetes' };
const details = { workload: 'details-v1', namespace: 'default', app: 'details', version: 'v1', canonicalService: 'details', canonicalRevision: 'v1', principal: 'spiffe://cluster.local/ns/default/sa/bookinfo-details', cluster: 'Kubernetes' };

function inbound(code: number): StreamInfo {
  const start = Date.now() - 4;
  return Object.assign(newStreamInfo('inbound', 'http', start), {
    endTime: start + 4, method: 'GET', path: '/details/0', protocol: 'HTTP/1.1', responseCode: code, bytesSent: 178,
    upstreamCluster: 'inbound|9080||', connectionSecurityPolicy: 'mutual_tls' as const, source: productpage,
    destinationService: { host: 'details.default.svc.cluster.local', name: 'details', namespace: 'default' },
  });
}

async function until<T>(what: string, fn: () => Promise<T | undefined>, prom: PrometheusServer, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}\nprometheus log:\n${prom.output().slice(-3000)}`);
}

describe('a real Prometheus server scrapes the sidecar', { skip, timeout: 120_000 }, () => {
  let servers: AdminServers;
  let prom: PrometheusServer;
  const telemetry = new Telemetry({ self: details });
  let targets: { prometheus: string; agent: string };

  before(async () => {
    servers = await startAdminServers({
      ports: { admin: 0, prometheus: 0, agent: 0, health: 0 }, bindPublic: '127.0.0.1', appScrape: null,
      providers: { ready: () => true, configDump: () => ({ configs: [] }), clusters: () => [], listeners: () => [] },
      hooks: { quit: () => undefined, drain: () => undefined },
      metrics: telemetry.metrics, stats: telemetry.stats, collect: () => telemetry.collect(),
    });
    targets = { prometheus: `127.0.0.1:${servers.prometheus?.port ?? 0}`, agent: `127.0.0.1:${servers.agent?.port ?? 0}` };
    for (let n = 0; n < 3; n++) telemetry.report(inbound(200), undefined);
    telemetry.report(inbound(503), undefined);
    prom = await startPrometheus([targets.prometheus, targets.agent]);
  });
  after(async () => {
    await prom?.stop();
    await servers?.close();
  });

  it('both targets are up (the exposition is valid for Prometheus)', async () => {
    const up = await until('up == 1 for both targets', async () => {
      const r = await prom.query('up{job="tsmesh"} == 1');
      return r.length === 2 ? r : undefined;
    }, prom);
    assert.deepEqual(up.map((s) => s.metric.instance).sort(), [targets.prometheus, targets.agent].sort());
  });

  it('finds istio_requests_total{reporter="destination",response_code="200"} = 3 with every Istio label, on 15090 and 15020', async () => {
    const result = await until('istio_requests_total on both targets', async () => {
      const r = await prom.query('istio_requests_total{reporter="destination",response_code="200"}');
      return r.length === 2 ? r : undefined;
    }, prom);
    for (const s of result) {
      assert.equal(s.value[1], '3');
      const { __name__: name, job, instance, ...labels } = s.metric;
      assert.equal(name, 'istio_requests_total');
      assert.equal(job, 'tsmesh');
      assert.ok(instance === targets.prometheus || instance === targets.agent);
      assert.deepEqual(labels, {
        reporter: 'destination', source_workload: 'productpage-v1', source_canonical_service: 'productpage', source_canonical_revision: 'v1',
        source_workload_namespace: 'default', source_principal: 'spiffe://cluster.local/ns/default/sa/bookinfo-productpage', source_app: 'productpage',
        source_version: 'v1', source_cluster: 'Kubernetes', destination_workload: 'details-v1', destination_workload_namespace: 'default',
        destination_principal: 'spiffe://cluster.local/ns/default/sa/bookinfo-details', destination_app: 'details', destination_version: 'v1',
        destination_service: 'details.default.svc.cluster.local', destination_canonical_service: 'details', destination_canonical_revision: 'v1',
        destination_service_name: 'details', destination_service_namespace: 'default', destination_cluster: 'Kubernetes',
        request_protocol: 'http', response_code: '200', response_flags: '-', connection_security_policy: 'mutual_tls',
        // grpc_response_status is "" for HTTP: Prometheus drops empty labels.
      });
      assert.deepEqual(Object.keys(labels).length, ISTIO_HTTP_LABELS.length - 1);
    }
  });

  it('sees new requests on the next scrape, and the duration histogram', async () => {
    telemetry.report(inbound(200), undefined);
    telemetry.report(inbound(200), undefined);
    await until('istio_requests_total = 5', async () => {
      const r = await prom.query(`istio_requests_total{reporter="destination",response_code="200",instance="${targets.prometheus}"}`);
      return r[0]?.value[1] === '5' ? r : undefined;
    }, prom);
    const buckets = await prom.query(`istio_request_duration_milliseconds_bucket{reporter="destination",response_code="200",instance="${targets.prometheus}",le="5"}`);
    assert.equal(buckets[0]?.value[1], '5', 'every 4 ms request is in le="5"');
    const errors = await prom.query(`sum(istio_requests_total{reporter="destination",response_code=~"5.."})`);
    assert.equal(errors[0]?.value[1], '2', 'one 503, seen on both targets');
  });
});
