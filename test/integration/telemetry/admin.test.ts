// The admin, Prometheus, agent and health endpoints over real HTTP on 127.0.0.1, ports chosen by the OS.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { setLogLevel } from '../../../src/common/log.ts';
import { newStreamInfo, type StreamInfo } from '../../../src/proxy/stream-info.ts';
import { startAdminServers, type AdminServers, type ClusterDescription, type ConfigDumpQuery } from '../../../src/proxy/telemetry/admin.ts';
import { appScrapeFromEnv } from '../../../src/proxy/telemetry/app-metrics.ts';
import { Telemetry } from '../../../src/proxy/telemetry/telemetry.ts';
import { findSamples, parseExposition } from '../../helpers/prometheus.ts';

const PORTS = { admin: 0, prometheus: 0, agent: 0, health: 0 };
const LOCAL = '127.0.0.1';

async function get(port: number, path: string, method = 'GET'): Promise<{ status: number; body: string; type: string | null }> {
  const res = await fetch(`http://${LOCAL}:${port}${path}`, { method });
  return { status: res.status, body: await res.text(), type: res.headers.get('content-type') };
}

function inboundRequest(code: number): StreamInfo {
  const info = newStreamInfo('inbound', 'http', Date.now() - 3);
  Object.assign(info, {
    endTime: Date.now(), responseCode: code, bytesSent: 120, upstreamCluster: 'inbound|9080||', connectionSecurityPolicy: 'mutual_tls',
    source: { workload: 'productpage-v1', namespace: 'default', app: 'productpage', version: 'v1', canonicalService: 'productpage', canonicalRevision: 'v1', principal: 'spiffe://cluster.local/ns/default/sa/bookinfo-productpage' },
    destinationService: { host: 'reviews.default.svc.cluster.local', name: 'reviews', namespace: 'default' },
  });
  return info;
}

const clusters: ClusterDescription[] = [{
  name: 'outbound|9080||reviews.default.svc.cluster.local',
  hosts: [
    { key: '10.244.0.12:9080', healthy: true, ejected: false, weight: 1, activeRequests: 2, locality: { region: 'r1', zone: 'z1' } },
    { key: '10.244.0.13:9080', healthy: false, ejected: true, weight: 1, activeRequests: 0, locality: {} },
  ],
}];

describe('admin servers', () => {
  let servers: AdminServers;
  let ready = false;
  let quits = 0;
  const drains: Array<{ inboundOnly: boolean; graceful: boolean }> = [];
  const dumpQueries: ConfigDumpQuery[] = [];
  const telemetry = new Telemetry({ self: { workload: 'reviews-v2', namespace: 'default', app: 'reviews', version: 'v2', canonicalService: 'reviews', canonicalRevision: 'v2', principal: 'spiffe://cluster.local/ns/default/sa/bookinfo-reviews' } });
  let app: Server;
  let appPort = 0;

  before(async () => {
    app = createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'application/openmetrics-text; version=1.0.0' });
      res.end('# HELP app_orders_total Orders.\n# TYPE app_orders_total counter\napp_orders_total{shop="a"} 42\n# EOF\n');
    });
    await new Promise<void>((r) => app.listen(0, LOCAL, () => r()));
    appPort = (app.address() as AddressInfo).port;
    servers = await startAdminServers({
      ports: PORTS, bindPublic: LOCAL, version: '0.1.0',
      providers: {
        ready: () => ready,
        configDump: (q) => {
          dumpQueries.push(q);
          return { configs: [{ '@type': 'type.googleapis.com/envoy.admin.v3.ListenersConfigDump', version_info: 'v1' }] };
        },
        clusters: () => clusters,
        listeners: () => [{ name: 'virtualOutbound', address: '0.0.0.0:15001' }, { name: 'virtualInbound', address: '0.0.0.0:15006' }],
        serverInfo: () => ({ node: { id: 'sidecar~10.244.0.12~reviews-v2-abc.default~default.svc.cluster.local' } }),
      },
      hooks: { quit: () => { quits++; }, drain: (o) => { drains.push(o); } },
      metrics: telemetry.metrics, stats: telemetry.stats, collect: () => telemetry.collect(),
      appScrape: { port: appPort, path: '/metrics', scheme: 'http' },
    });
  });
  after(async () => {
    await servers.close();
    await new Promise<void>((r) => app.close(() => r()));
    setLogLevel('info');
  });

  it('listen on the ports asked for; the admin only on 127.0.0.1; unknown paths are 404', async () => {
    assert.equal(servers.admin?.address, '127.0.0.1');
    for (const s of [servers.admin, servers.prometheus, servers.agent, servers.health]) assert.ok(s && s.port > 0);
    const r = await get(servers.admin?.port ?? 0, '/nope');
    assert.equal(r.status, 404);
    assert.match((await get(servers.admin?.port ?? 0, '/')).body, /admin commands are:\n(.|\n)*\/quitquitquit/);
  });

  it('/ready and /healthz/ready are 503 until the first full config is applied, then 200; /healthcheck/fail flips them', async () => {
    const admin = servers.admin?.port ?? 0;
    const health = servers.health?.port ?? 0;
    const agent = servers.agent?.port ?? 0;
    assert.deepEqual(await get(admin, '/ready'), { status: 503, body: 'PRE_INITIALIZING\n', type: 'text/plain; charset=UTF-8' });
    const notReady = await get(health, '/healthz/ready');
    assert.equal(notReady.status, 503);
    assert.match(notReady.body, /config not received from XDS server/);
    assert.equal((await get(agent, '/healthz/ready')).status, 503);
    ready = true;
    assert.deepEqual((await get(admin, '/ready')).body, 'LIVE\n');
    assert.equal((await get(admin, '/ready')).status, 200);
    assert.equal((await get(health, '/healthz/ready')).status, 200);
    assert.equal((await get(agent, '/healthz/ready')).status, 200);
    assert.equal((await get(admin, '/healthcheck/fail')).status, 405, 'mutations need POST');
    assert.equal((await get(admin, '/healthcheck/fail', 'POST')).body, 'OK\n');
    assert.deepEqual([(await get(admin, '/ready')).status, (await get(admin, '/ready')).body], [503, 'DRAINING\n']);
    assert.equal((await get(health, '/healthz/ready')).status, 503);
    assert.equal(servers.healthCheckFailed, true);
    await get(admin, '/healthcheck/ok', 'POST');
    assert.equal((await get(health, '/healthz/ready')).status, 200);
    const info = JSON.parse((await get(admin, '/server_info')).body) as Record<string, unknown>;
    assert.equal(info.state, 'LIVE');
    assert.equal(info.version, 'tsmesh/0.1.0');
    assert.deepEqual(info.node, { id: 'sidecar~10.244.0.12~reviews-v2-abc.default~default.svc.cluster.local' });
  });

  it('POST /quitquitquit calls the shutdown hook (GET does not); /drain_listeners passes its options', async () => {
    const admin = servers.admin?.port ?? 0;
    assert.equal((await get(admin, '/quitquitquit')).status, 405);
    assert.equal(quits, 0);
    assert.deepEqual(await get(admin, '/quitquitquit', 'POST'), { status: 200, body: 'OK\n', type: 'text/plain; charset=UTF-8' });
    await new Promise((r) => setImmediate(r));
    assert.equal(quits, 1);
    await get(servers.agent?.port ?? 0, '/quitquitquit', 'POST');
    await new Promise((r) => setImmediate(r));
    assert.equal(quits, 2, 'the agent port has it too');
    assert.equal((await get(admin, '/drain_listeners?inboundonly&graceful', 'POST')).body, 'OK\n');
    await get(admin, '/drain_listeners', 'POST');
    assert.deepEqual(drains, [{ inboundOnly: true, graceful: true }, { inboundOnly: false, graceful: false }]);
  });

  it('/logging shows the level and POST ?level= changes it', async () => {
    const admin = servers.admin?.port ?? 0;
    assert.equal((await get(admin, '/logging')).body, 'active loggers:\n  tsmesh: info\n');
    assert.equal((await get(admin, '/logging?level=debug')).status, 405);
    assert.deepEqual(await get(admin, '/logging?level=debug', 'POST'), { status: 200, body: 'active loggers:\n  tsmesh: debug\n', type: 'text/plain; charset=UTF-8' });
    assert.equal((await get(admin, '/logging')).body, 'active loggers:\n  tsmesh: debug\n');
    assert.equal((await get(admin, '/logging?level=warning', 'POST')).body, 'active loggers:\n  tsmesh: warn\n');
    const bad = await get(admin, '/logging?level=loud', 'POST');
    assert.equal(bad.status, 400);
    assert.match(bad.body, /unknown logger level "loud"/);
    assert.equal((await get(admin, '/logging?http=debug', 'POST')).status, 400);
    await get(admin, '/logging?level=info', 'POST');
  });

  it('/config_dump, /clusters and /listeners come from the providers, in Envoy\'s shapes', async () => {
    const admin = servers.admin?.port ?? 0;
    const dump = await get(admin, '/config_dump?include_eds&resource=dynamic_listeners');
    assert.equal(dump.status, 200);
    assert.equal(dump.type, 'application/json');
    assert.deepEqual(JSON.parse(dump.body), { configs: [{ '@type': 'type.googleapis.com/envoy.admin.v3.ListenersConfigDump', version_info: 'v1' }] });
    assert.deepEqual(dumpQueries.at(-1), { includeEds: true, resource: 'dynamic_listeners' });
    const text = (await get(admin, '/clusters')).body;
    assert.ok(text.includes('outbound|9080||reviews.default.svc.cluster.local::10.244.0.12:9080::health_flags::healthy\n'), text);
    assert.ok(text.includes('outbound|9080||reviews.default.svc.cluster.local::10.244.0.13:9080::health_flags::/failed_outlier_check\n'));
    assert.ok(text.includes('outbound|9080||reviews.default.svc.cluster.local::10.244.0.12:9080::rq_active::2\n'));
    assert.ok(text.includes('outbound|9080||reviews.default.svc.cluster.local::10.244.0.12:9080::zone::z1\n'));
    const cj = JSON.parse((await get(admin, '/clusters?format=json')).body) as { cluster_statuses: Array<{ name: string; host_statuses: Array<Record<string, unknown>> }> };
    assert.equal(cj.cluster_statuses[0]?.name, 'outbound|9080||reviews.default.svc.cluster.local');
    assert.deepEqual(cj.cluster_statuses[0]?.host_statuses[1]?.address, { socket_address: { address: '10.244.0.13', port_value: 9080 } });
    assert.deepEqual(cj.cluster_statuses[0]?.host_statuses[1]?.health_status, { eds_health_status: 'HEALTHY', failed_outlier_check: true });
    assert.equal((await get(admin, '/listeners')).body, 'virtualOutbound::0.0.0.0:15001\nvirtualInbound::0.0.0.0:15006\n');
    const lj = JSON.parse((await get(admin, '/listeners?format=json')).body) as { listener_statuses: unknown[] };
    assert.deepEqual(lj.listener_statuses[0], { name: 'virtualOutbound', local_address: { socket_address: { address: '0.0.0.0', port_value: 15001 } } });
  });

  it('stats: /stats text, filter and JSON; /stats/prometheus on 15000 and 15090 with Istio\'s and Envoy\'s metrics', async () => {
    ready = true;
    telemetry.report(inboundRequest(200), undefined);
    telemetry.report(inboundRequest(200), undefined);
    telemetry.stats.counter('envoy_cluster_upstream_rq_total', { cluster_name: 'inbound|9080||' }).inc();
    const admin = servers.admin?.port ?? 0;
    const stats = (await get(admin, '/stats')).body;
    assert.ok(stats.includes('cluster.inbound|9080||.upstream_rq_total: 1\n'), stats);
    assert.ok(stats.includes('server.live: 1\n'));
    assert.match(stats, /istio_requests_total\{reporter="destination",.*response_code="200".*\}: 2\n/);
    assert.equal((await get(admin, '/stats?filter=^server\\.live$')).body, 'server.live: 1\n');
    assert.equal((await get(admin, '/stats?filter=(')).status, 400);
    const js = JSON.parse((await get(admin, '/stats?format=json&filter=upstream_rq_total')).body) as unknown;
    assert.deepEqual(js, { stats: [{ name: 'cluster.inbound|9080||.upstream_rq_total', value: 1 }] });
    for (const port of [admin, servers.prometheus?.port ?? 0]) {
      const r = await get(port, '/stats/prometheus');
      assert.equal(r.status, 200);
      assert.equal(r.type, 'text/plain; version=0.0.4; charset=utf-8');
      const exp = parseExposition(r.body);
      const [s] = findSamples(exp, 'istio_requests_total', { reporter: 'destination', response_code: '200' });
      assert.equal(s?.value, 2);
      assert.equal(s?.labels.source_workload, 'productpage-v1');
      assert.equal(s?.labels.destination_workload, 'reviews-v2');
      assert.equal(s?.labels.destination_principal, 'spiffe://cluster.local/ns/default/sa/bookinfo-reviews');
      assert.equal(s?.labels.connection_security_policy, 'mutual_tls');
      assert.deepEqual(findSamples(exp, 'envoy_server_live').map((x) => x.value), [1]);
    }
    assert.equal((await get(servers.prometheus?.port ?? 0, '/stats')).status, 404, '15090 serves only /stats/prometheus');
  });

  it('15020 merges the proxy\'s metrics with the application\'s (OpenMetrics # EOF dropped); a down app still gives the proxy\'s', async () => {
    const agent = servers.agent?.port ?? 0;
    const r = await get(agent, '/stats/prometheus');
    assert.equal(r.status, 200);
    assert.ok(!r.body.includes('# EOF'));
    const exp = parseExposition(r.body);
    assert.deepEqual(findSamples(exp, 'app_orders_total'), [{ name: 'app_orders_total', labels: { shop: 'a' }, value: 42 }]);
    assert.equal(findSamples(exp, 'istio_requests_total', { reporter: 'destination' })[0]?.value, 2);
    assert.deepEqual(findSamples(exp, 'istio_agent_scrapes_total').map((s) => [s.labels.type, s.value]), [['envoy', 1], ['application', 1]]);
    await new Promise<void>((res) => app.close(() => res()));
    const down = parseExposition((await get(agent, '/stats/prometheus')).body);
    assert.equal(findSamples(down, 'app_orders_total').length, 0);
    assert.equal(findSamples(down, 'istio_requests_total').length, 1);
    assert.deepEqual(findSamples(down, 'istio_agent_scrape_failures_total').map((s) => [s.labels.type, s.value]), [['application', 1]]);
    await new Promise<void>((res) => app.listen(appPort, LOCAL, () => res()));
  });

  it('a port already in use fails the start with the address, and closes what it opened', async () => {
    const taken = servers.health?.port ?? 0;
    await assert.rejects(
      startAdminServers({ ports: { admin: 0, prometheus: 0, agent: 0, health: taken }, bindPublic: LOCAL, providers: { ready: () => true, configDump: () => ({}), clusters: () => [], listeners: () => [] }, hooks: { quit: () => undefined, drain: () => undefined }, stats: telemetry.stats, appScrape: null }),
      new RegExp(`health: cannot listen on 127\\.0\\.0\\.1:${taken}: .*EADDRINUSE`),
    );
  });
});

describe('ISTIO_PROMETHEUS_ANNOTATIONS', () => {
  it('is parsed as the injector writes it; off unless scrape is "true" and the port is valid', () => {
    assert.deepEqual(appScrapeFromEnv({ ISTIO_PROMETHEUS_ANNOTATIONS: '{"scrape":"true","path":"/metrics","port":"8080"}' }), { port: 8080, path: '/metrics', scheme: 'http' });
    assert.deepEqual(appScrapeFromEnv({ ISTIO_PROMETHEUS_ANNOTATIONS: '{"scrape":"true","port":"9000","path":"stats"}' }), { port: 9000, path: '/stats', scheme: 'http' });
    assert.equal(appScrapeFromEnv({ ISTIO_PROMETHEUS_ANNOTATIONS: '{"scrape":"false","port":"8080"}' }), undefined);
    assert.equal(appScrapeFromEnv({ ISTIO_PROMETHEUS_ANNOTATIONS: '{"scrape":"true"}' }), undefined);
    assert.equal(appScrapeFromEnv({ ISTIO_PROMETHEUS_ANNOTATIONS: 'nope' }), undefined);
    assert.equal(appScrapeFromEnv({}), undefined);
  });
});
