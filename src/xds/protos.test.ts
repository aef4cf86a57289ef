import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import protobuf from 'protobufjs';
import { isMeshError } from '../common/errors.ts';
import { decodeAny, encodeAny, encodeMessage, decodeMessage, protos, TYPE_URLS, type XdsObject } from './protos.ts';

const HCM = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const ROUTER = 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router';
const FAULT = 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault';
const CORS = 'type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors';
const CORS_POLICY = 'type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy';
const FILE_LOG = 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog';
const TLS_INSPECTOR = 'type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector';
const UPSTREAM_TLS = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext';
const HTTP_OPTIONS = 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions';

const listener: XdsObject = {
  '@type': TYPE_URLS.LISTENER,
  name: '0.0.0.0_9080',
  address: { socket_address: { address: '0.0.0.0', port_value: 9080 } },
  traffic_direction: 'OUTBOUND',
  listener_filters: [{ name: 'envoy.filters.listener.tls_inspector', typed_config: { '@type': TLS_INSPECTOR } }],
  filter_chains: [{
    filters: [{
      name: 'envoy.filters.network.http_connection_manager',
      typed_config: {
        '@type': HCM,
        stat_prefix: 'outbound_0.0.0.0_9080',
        rds: { route_config_name: '9080', config_source: { ads: {}, initial_fetch_timeout: '0s', resource_api_version: 'V3' } },
        http_filters: [
          { name: 'envoy.filters.http.cors', typed_config: { '@type': CORS } },
          { name: 'envoy.filters.http.fault', typed_config: { '@type': FAULT } },
          { name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER, suppress_envoy_headers: true } },
        ],
        access_log: [{ name: 'envoy.access_loggers.file', typed_config: { '@type': FILE_LOG, path: '/dev/stdout', log_format: { text_format_source: { inline_string: '[%START_TIME%] %RESPONSE_CODE%\n' } } } }],
        use_remote_address: false,
        stream_idle_timeout: '0s',
        normalize_path: true,
        upgrade_configs: [{ upgrade_type: 'websocket' }],
      },
    }],
  }],
  metadata: { filter_metadata: { istio: { config: '/apis/networking.istio.io/v1/namespaces/default/sidecar/default', ports: [9080, 'http'], nested: { flag: true, none: null } } } },
};

const cluster: XdsObject = {
  '@type': TYPE_URLS.CLUSTER,
  name: 'outbound|9080|v1|reviews.bookinfo.svc.cluster.local',
  type: 'EDS',
  eds_cluster_config: { service_name: 'outbound|9080|v1|reviews.bookinfo.svc.cluster.local', eds_config: { ads: {}, initial_fetch_timeout: '0s', resource_api_version: 'V3' } },
  connect_timeout: '10s',
  lb_policy: 'LEAST_REQUEST',
  circuit_breakers: {
    thresholds: [
      { max_connections: 4294967295, max_pending_requests: 100, max_requests: 4294967295, max_retries: 4294967295, track_remaining: true },
      { priority: 'HIGH', max_connections: 10 },
    ],
  },
  outlier_detection: { consecutive_5xx: 7, interval: '0.500s', base_ejection_time: '30s', max_ejection_percent: 100 },
  common_lb_config: { locality_weighted_lb_config: {} },
  transport_socket: {
    name: 'envoy.transport_sockets.tls',
    typed_config: { '@type': UPSTREAM_TLS, sni: 'reviews.bookinfo.svc.cluster.local', common_tls_context: { alpn_protocols: ['istio-peer-exchange', 'istio'], tls_certificate_sds_secret_configs: [{ name: 'default', sds_config: { ads: {}, resource_api_version: 'V3' } }] } },
  },
  typed_extension_protocol_options: {
    'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
      '@type': HTTP_OPTIONS,
      common_http_protocol_options: { idle_timeout: '3600s', max_requests_per_connection: 1 },
      use_downstream_protocol_config: { http_protocol_options: {}, http2_protocol_options: {} },
    },
  },
  metadata: { filter_metadata: { istio: { services: [{ host: 'reviews.bookinfo.svc.cluster.local', name: 'reviews', namespace: 'bookinfo' }], subset: 'v1' } } },
};

const endpoints: XdsObject = {
  '@type': TYPE_URLS.ENDPOINT,
  cluster_name: 'outbound|9080|v1|reviews.bookinfo.svc.cluster.local',
  endpoints: [
    {
      locality: { region: 'us-east1', zone: 'us-east1-b' },
      lb_endpoints: [
        { endpoint: { address: { socket_address: { address: '10.1.0.5', port_value: 9080 } } }, health_status: 'HEALTHY', load_balancing_weight: 1, metadata: { filter_metadata: { istio: { workload: 'reviews-v1;bookinfo;reviews;v1;Kubernetes' } } } },
        { endpoint: { address: { socket_address: { address: '10.1.0.6', port_value: 9080 } } }, health_status: 'UNHEALTHY', load_balancing_weight: 3 },
      ],
      load_balancing_weight: 4,
      priority: 1,
    },
  ],
  policy: { overprovisioning_factor: 140 },
};

const routes: XdsObject = {
  '@type': TYPE_URLS.ROUTE,
  name: '9080',
  validate_clusters: false,
  virtual_hosts: [{
    name: 'reviews.bookinfo.svc.cluster.local:9080',
    domains: ['reviews.bookinfo.svc.cluster.local', 'reviews', 'reviews.bookinfo', '10.96.0.12', 'reviews:9080'],
    routes: [
      {
        name: 'jason',
        match: { prefix: '/', case_sensitive: true, headers: [{ name: 'end-user', string_match: { exact: 'jason' } }] },
        route: { cluster: 'outbound|9080|v2|reviews.bookinfo.svc.cluster.local', timeout: '0.250s' },
        decorator: { operation: 'reviews.bookinfo.svc.cluster.local:9080/*' },
        typed_per_filter_config: {
          'envoy.filters.http.fault': {
            '@type': FAULT,
            delay: { fixed_delay: '7s', percentage: { numerator: 100, denominator: 'HUNDRED' } },
            abort: { http_status: 503, percentage: { numerator: 500000, denominator: 'MILLION' } },
          },
        },
      },
      {
        match: { safe_regex: { regex: '/api/v[0-9]+/.*' }, query_parameters: [{ name: 'debug', present_match: true }] },
        route: {
          weighted_clusters: { clusters: [
            { name: 'outbound|9080|v1|reviews.bookinfo.svc.cluster.local', weight: 90 },
            { name: 'outbound|9080|v3|reviews.bookinfo.svc.cluster.local', weight: 10, request_headers_to_add: [{ header: { key: 'x-canary', value: 'true' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' }] },
          ] },
          retry_policy: { retry_on: 'connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes', num_retries: 2, per_try_timeout: '2s', retriable_status_codes: [503], host_selection_retry_max_attempts: '5' },
          timeout: '0s',
          max_stream_duration: { max_stream_duration: '0s', grpc_timeout_header_max: '0s' },
          prefix_rewrite: '/v2/',
        },
        typed_per_filter_config: {
          'envoy.filters.http.cors': { '@type': CORS_POLICY, allow_origin_string_match: [{ exact: 'https://example.com' }], allow_methods: 'GET,POST', max_age: '86400', allow_credentials: true },
        },
      },
    ],
    include_request_attempt_count: true,
  }],
};

function roundTrip(obj: XdsObject): XdsObject {
  return decodeAny(encodeAny(obj));
}

function expectEncodeError(obj: XdsObject, ...fragments: string[]): void {
  assert.throws(() => encodeAny(obj), (err: unknown) => {
    assert.ok(isMeshError(err), 'a MeshError');
    assert.equal(err.code, 'MESH_ERR_XDS_ENCODE');
    for (const f of fragments) assert.ok(err.message.includes(f), `message ${JSON.stringify(err.message)} should mention ${JSON.stringify(f)}`);
    return true;
  });
}

describe('Envoy protos and the JSON convention', () => {
  it('loads once and reports the load time', (t) => {
    const p = protos();
    assert.equal(protos(), p, 'a singleton');
    assert.ok(p.fileCount > 50, `loaded ${p.fileCount} files`);
    t.diagnostic(`proto load: ${p.loadMs.toFixed(0)} ms, ${p.fileCount} files`);
  });

  it('round-trips a Listener with an HttpConnectionManager (RDS) network filter', () => {
    const back = roundTrip(listener);
    assert.deepEqual(back, listener);
    // the nested typed_config really went through the wire as an Any of the HCM type
    const any = encodeAny(listener);
    assert.equal(any.type_url, TYPE_URLS.LISTENER);
    assert.ok(Buffer.from(any.value).includes(Buffer.from(HCM.slice('type.googleapis.com/'.length))));
  });

  it('round-trips a Cluster with EDS config, circuit breakers, TLS and protocol options', () => {
    assert.deepEqual(roundTrip(cluster), cluster);
  });

  it('round-trips a ClusterLoadAssignment', () => {
    assert.deepEqual(roundTrip(endpoints), endpoints);
  });

  it('round-trips a RouteConfiguration with weighted clusters, retries and per-route fault and CORS config', () => {
    assert.deepEqual(roundTrip(routes), routes);
  });

  it('writes bytes another protobuf reader decodes to the same values', () => {
    // an independent Root, camelCase names (protobufjs's default), reading our bytes
    const require = createRequire(import.meta.url);
    const deps = join(dirname(require.resolve('@grpc/grpc-js-xds/package.json')), 'deps');
    const root = new protobuf.Root();
    const dirs = [...['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'].map((d) => join(deps, d)), dirname(require.resolve('protobufjs/package.json'))];
    root.resolvePath = (_o, target) => dirs.map((d) => join(d, target)).find((p) => existsSync(p)) ?? target;
    root.loadSync('envoy/config/cluster/v3/cluster.proto');
    const Cluster = root.lookupType('envoy.config.cluster.v3.Cluster');
    const decoded = Cluster.toObject(Cluster.decode(encodeAny(cluster).value), { enums: String, longs: Number }) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    assert.equal(decoded.name, cluster.name);
    assert.equal(decoded.type, 'EDS');
    assert.equal(decoded.lbPolicy, 'LEAST_REQUEST');
    assert.equal(decoded.connectTimeout.seconds, 10);
    assert.equal(decoded.circuitBreakers.thresholds[0].maxPendingRequests.value, 100);
    assert.equal(decoded.circuitBreakers.thresholds[1].priority, 'HIGH');
    assert.equal(decoded.outlierDetection.interval.nanos, 500_000_000);
  });

  it('normalises durations as the proto3 JSON printer does', () => {
    const c = { '@type': TYPE_URLS.CLUSTER, name: 'c', connect_timeout: '0.25s', dns_refresh_rate: '1.000001s', cleanup_interval: '5.000000000s' };
    const back = roundTrip(c);
    assert.equal(back.connect_timeout, '0.250s');
    assert.equal(back.dns_refresh_rate, '1.000001s');
    assert.equal(back.cleanup_interval, '5s');
  });

  it('rejects an unknown field, naming the type and the field path', () => {
    expectEncodeError({ ...cluster, connectTimeout: '1s' }, 'envoy.config.cluster.v3.Cluster', 'connectTimeout', "did you mean 'connect_timeout'");
    const bad = structuredClone(listener) as any; // eslint-disable-line @typescript-eslint/no-explicit-any
    bad.filter_chains[0].filters[0].typed_config.rds.route_name = '9080';
    expectEncodeError(bad, 'filter_chains[0].filters[0].typed_config(HttpConnectionManager).rds.route_name', 'http_connection_manager.v3.Rds');
  });

  it('rejects wrong enum names, wrong value types, two members of one oneof and unknown @types', () => {
    expectEncodeError({ '@type': TYPE_URLS.CLUSTER, name: 'c', lb_policy: 'ROUND_ROBIN_PLEASE' }, 'lb_policy', 'not a value of enum envoy.config.cluster.v3.Cluster.LbPolicy');
    expectEncodeError({ '@type': TYPE_URLS.CLUSTER, name: 'c', connect_timeout: 10 }, 'connect_timeout', 'Duration');
    expectEncodeError({ '@type': TYPE_URLS.CLUSTER, name: 'c', per_connection_buffer_limit_bytes: 'lots' }, 'per_connection_buffer_limit_bytes');
    expectEncodeError({ '@type': TYPE_URLS.CLUSTER, name: 'c', type: 'EDS', cluster_type: { name: 'x' } }, "'cluster_type' and 'type'", 'cluster_discovery_type');
    expectEncodeError({ '@type': 'type.googleapis.com/istio.envoy.config.filter.http.alpn.v2alpha1.FilterConfig' }, 'unknown "@type"');
    expectEncodeError({ name: 'no type' }, '"@type"');
  });

  it('encodes and decodes envelope messages by name (DiscoveryRequest with node metadata)', () => {
    const req = {
      version_info: '2024-01-01T00:00:00.000Z/3',
      node: { id: 'sidecar~10.1.0.5~reviews-v1.bookinfo~bookinfo.svc.cluster.local', metadata: { NAMESPACE: 'bookinfo', LABELS: { app: 'reviews' }, INSTANCE_IPS: '10.1.0.5' } },
      resource_names: ['9080'],
      type_url: TYPE_URLS.ROUTE,
      response_nonce: 'n-1',
      error_detail: { code: 3, message: 'bad route' },
    };
    assert.deepEqual(decodeMessage('envoy.service.discovery.v3.DiscoveryRequest', encodeMessage('envoy.service.discovery.v3.DiscoveryRequest', req)), req);
  });

  it('keeps a packed type it does not know as base64 and encodes it back unchanged', () => {
    const unknownAny = { type_url: 'type.googleapis.com/istio.envoy.config.filter.http.alpn.v2alpha1.FilterConfig', value: Buffer.from([8, 1]) };
    const withUnknown = { '@type': TYPE_URLS.CLUSTER, name: 'c', typed_extension_protocol_options: { x: { '@type': unknownAny.type_url, '@bytes': 'CAE=' } } };
    assert.deepEqual(roundTrip(withUnknown), withUnknown);
    assert.throws(() => decodeAny(unknownAny), /unknown type/);
  });
});
