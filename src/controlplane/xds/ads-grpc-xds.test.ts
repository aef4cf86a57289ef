// Conformance: the unmodified @grpc/grpc-js-xds client resolves xds:/// names through our ADS server.
// Its own file because grpc-js-xds's bootstrap is process-global (read once from the environment).
// Known: the process lingers up to 10 s after the test, on a failover timer grpc-js-xds starts in its
// priority balancer and does not clear when the channel is closed (PriorityChildImpl.destroy).
import { rawUnaryService } from '../../../test/helpers/grpc.ts';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import dc from 'node:diagnostics_channel';
import * as grpc from '@grpc/grpc-js';
import * as grpcXds from '@grpc/grpc-js-xds';
import { TYPE_URLS } from '../../xds/protos.ts';
import type { Logger } from '../../common/log.ts';
import { AdsServer, XDS_EVENTS, type ConnectedProxy, type Generator, type XdsAckEvent, type XdsNackEvent } from './ads-server.ts';

const HCM = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const ROUTER = 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router';
const HOST = 'echo.test.svc.cluster.local';
const TARGET = `${HOST}:7070`;

// a raw-bytes echo service: the reply names the server that answered
const echoService = rawUnaryService('Echo', '/tsmesh.test.Echo/Echo');

async function startEcho(name: string): Promise<{ port: number; server: grpc.Server }> {
  const server = new grpc.Server();
  server.addService(echoService, {
    Echo: (_call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => cb(null, Buffer.from(name)),
  });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  return { port, server };
}

/** What the fake control plane knows: which backend the route sends traffic to, and the backends. */
interface Snap {
  routeTo: string;
  backends: Record<string, number>;
}

const clusterOf = (backend: string): string => `outbound|7070|${backend}|${HOST}`;

/** Generators returning the shapes gRPC's xDS client accepts (what Istio's grpc generator serves). */
const generators: Generator<Snap>[] = [
  {
    typeUrl: TYPE_URLS.LISTENER,
    generate: (_p, _s, names) => names.filter((n) => n === TARGET).map((n) => ({
      name: n,
      resource: {
        '@type': TYPE_URLS.LISTENER,
        name: n,
        api_listener: {
          api_listener: {
            '@type': HCM,
            rds: { route_config_name: n, config_source: { ads: {}, resource_api_version: 'V3' } },
            http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER } }],
          },
        },
      },
    })),
  },
  {
    typeUrl: TYPE_URLS.ROUTE,
    generate: (_p, s, names) => names.map((n) => ({
      name: n,
      resource: {
        '@type': TYPE_URLS.ROUTE,
        name: n,
        virtual_hosts: [{
          name: TARGET,
          domains: [TARGET, HOST],
          routes: [{ match: { prefix: '' }, route: { cluster: clusterOf(s.routeTo), timeout: '5s' } }],
        }],
      },
    })),
  },
  {
    typeUrl: TYPE_URLS.CLUSTER,
    generate: (_p, s) => Object.keys(s.backends).map((b) => ({
      name: clusterOf(b),
      resource: {
        '@type': TYPE_URLS.CLUSTER,
        name: clusterOf(b),
        type: 'EDS',
        eds_cluster_config: { service_name: clusterOf(b), eds_config: { ads: {}, resource_api_version: 'V3' } },
        lb_policy: 'ROUND_ROBIN',
        connect_timeout: '1s',
      },
    })),
  },
  {
    typeUrl: TYPE_URLS.ENDPOINT,
    generate: (_p, s, names) => Object.entries(s.backends).filter(([b]) => names.length === 0 || names.includes(clusterOf(b))).map(([b, port]) => ({
      name: clusterOf(b),
      resource: {
        '@type': TYPE_URLS.ENDPOINT,
        cluster_name: clusterOf(b),
        endpoints: [{
          locality: { region: 'local', zone: 'a' },
          load_balancing_weight: 1,
          lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: port } } }, health_status: 'HEALTHY', load_balancing_weight: 1 }],
        }],
      },
    })),
  },
];

function call(client: grpc.Client): Promise<string> {
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(echoService.Echo!.path, (b: Buffer) => b, (b: Buffer) => b, Buffer.from('hi'), { deadline: Date.now() + 10_000 }, (err, res) => (err ? reject(err) : resolve(res?.toString() ?? '')));
  });
}

function nextEvent<T>(name: string, pred: (m: T) => boolean): Promise<T> {
  return new Promise((resolve) => {
    const fn = (m: unknown): void => {
      if (!pred(m as T)) return;
      dc.unsubscribe(name, fn);
      resolve(m as T);
    };
    dc.subscribe(name, fn);
  });
}

const quiet: Logger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

describe('conformance with @grpc/grpc-js-xds', () => {
  it('resolves xds:///echo.test.svc.cluster.local:7070 through tsmesh ADS and follows a route change live', async () => {
    const a = await startEcho('echo-a');
    const b = await startEcho('echo-b');
    const snap: { current: Snap } = { current: { routeTo: 'a', backends: { a: a.port } } };
    const nacks: XdsNackEvent[] = [];
    const onNack = (m: unknown): void => void nacks.push(m as XdsNackEvent);
    dc.subscribe(XDS_EVENTS.nack, onNack);
    const ads = new AdsServer<Snap>({ generators, snapshot: () => snap.current, log: quiet, debounce: { quietMs: 0, maxDelayMs: 0 } });
    const port = await ads.start('127.0.0.1:0');
    process.env.GRPC_XDS_BOOTSTRAP_CONFIG = JSON.stringify({
      xds_servers: [{ server_uri: `127.0.0.1:${port}`, channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] }],
      node: {
        id: 'sidecar~127.0.0.1~client-0.test~test.svc.cluster.local',
        metadata: { GENERATOR: 'grpc', NAMESPACE: 'test', LABELS: { app: 'client' }, INSTANCE_IPS: '127.0.0.1' },
        locality: { region: 'local', zone: 'a' },
      },
    });
    grpcXds.register();
    const connected = nextEvent<{ proxy: ConnectedProxy }>(XDS_EVENTS.connect, () => true);
    const client = new grpc.Client(`xds:///${TARGET}`, grpc.credentials.createInsecure());
    // grpc-js-xds ends its ADS stream once its last channel is gone; stopping the server before that
    // leaves the library re-subscribing with 15 s resource timers that hold the process open
    const clientGone = nextEvent<{ proxy: ConnectedProxy }>(XDS_EVENTS.disconnect, (e) => e.proxy.type === 'grpc');
    try {
      assert.equal(await call(client), 'echo-a');
      const { proxy } = await connected;
      assert.equal(proxy.type, 'grpc');
      assert.equal(proxy.namespace, 'test');
      const status = ads.syncStatus().find((s) => s.proxyId === proxy.id);
      const lds = status?.types.find((t) => t.type === 'LDS');
      assert.deepEqual(lds?.names, [TARGET], 'gRPC asks for its listener by host:port');

      // a second RouteConfiguration version sends traffic to a second server, without restarting the client
      const routeAcked = nextEvent<XdsAckEvent>(XDS_EVENTS.ack, (e) => e.typeUrl === TYPE_URLS.ROUTE && e.version !== lds?.sentVersion);
      snap.current = { routeTo: 'b', backends: { a: a.port, b: b.port } };
      ads.push({ full: true, reasons: new Set(['config']), kinds: new Set(['VirtualService']) });
      const acked = await routeAcked;
      assert.equal(acked.version, ads.version);
      let answer = await call(client);
      for (let i = 0; answer !== 'echo-b' && i < 20; i++) answer = await call(client);
      assert.equal(answer, 'echo-b');
      assert.deepEqual(nacks.map((n) => n.message), [], 'grpc-js-xds accepted every resource');
      const final = ads.syncStatus().find((s) => s.proxyId === proxy.id);
      assert.deepEqual(final?.types.map((t) => [t.type, t.state]), [['CDS', 'SYNCED'], ['EDS', 'SYNCED'], ['LDS', 'SYNCED'], ['RDS', 'SYNCED']]);
    } finally {
      dc.unsubscribe(XDS_EVENTS.nack, onNack);
      client.close();
      await clientGone;
      await ads.stop();
      a.server.forceShutdown();
      b.server.forceShutdown();
    }
  });
});
