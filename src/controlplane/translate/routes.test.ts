// RDS translation: which route and cluster a call reaches for every VirtualService http field (M15), the default route, host names, and the catch-all (M12).

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { app, encodeFailures, mesh, parse, proxyFor, type ProxyConfig } from '../../../test/simulation/harness.ts';

const BACKEND = 'backend.web.svc.cluster.local';
const BASE = [
  app('frontend', 'web', [{ name: 'http', port: 8000 }]),
  app('nobody', 'web', [{ name: 'http', port: 8000 }]),
  app('backend', 'web', [{ name: 'http', port: 8080 }], ['v1', 'v2']),
  app('api', 'other', [{ name: 'http-api', port: 8080 }]),
  app('multi', 'other', [{ name: 'http', port: 8080 }, { name: 'http-admin', port: 9090 }]),
  `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: backend, namespace: web}
spec:
  host: backend
  subsets:
  - name: v1
    labels: {version: v1}
  - name: v2
    labels: {version: v2}
`,
].join('---\n');

function config(extra: string, client = 'frontend', meshOverrides = {}): ProxyConfig {
  const p = proxyFor(parse(`${BASE}---\n${extra}`, 'web'), client, 'web', mesh(meshOverrides));
  assert.deepEqual(encodeFailures(p), [], 'every listener and route fits Envoy protos');
  return p;
}

const MATCHER_VS = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: matcher, namespace: web}
spec:
  hosts: [backend]
  http:
  - match: [{uri: {exact: /exact}}]
    directResponse: {status: 201}
  - match: [{uri: {prefix: /Pre}, ignoreUriCase: true}]
    directResponse: {status: 202}
  - match: [{uri: {regex: "/items/[0-9]+"}}]
    directResponse: {status: 203}
  - match: [{headers: {x-exact: {exact: a}}}]
    directResponse: {status: 204}
  - match: [{headers: {x-prefix: {prefix: pre}}}]
    directResponse: {status: 205}
  - match: [{headers: {x-regex: {regex: "v[0-9]+"}}}]
    directResponse: {status: 206}
  - match: [{headers: {x-present: {}}}]
    directResponse: {status: 207}
  - match: [{queryParams: {q: {exact: "yes"}}}]
    directResponse: {status: 208}
  - match: [{method: {exact: POST}}]
    directResponse: {status: 209}
  - match: [{authority: {prefix: backend.web}}]
    directResponse: {status: 210}
  - match: [{uri: {prefix: /wo}, withoutHeaders: {x-skip: {exact: "1"}}}]
    directResponse: {status: 211}
  - match: [{port: 9999}]
    directResponse: {status: 212}
  - match: [{sourceLabels: {app: nobody}}]
    directResponse: {status: 213}
  - match: [{uri: {prefix: /multi-a}}, {uri: {prefix: /multi-b}}]
    directResponse: {status: 215}
  - match: [{scheme: {exact: https}}]
    directResponse: {status: 216}
  - name: fallback
    route:
    - destination: {host: backend, subset: v1}
`;

describe('routes: VirtualService match conditions', () => {
  const p = config(MATCHER_VS);
  const ip = p.vip(BACKEND);
  const call = (path: string, headers: Record<string, string> = {}, extra: { method?: string; host?: string } = {}) =>
    p.call({ port: 8080, destinationIp: ip, host: extra.host ?? 'backend:8080', path, headers, ...(extra.method ? { method: extra.method } : {}) });
  const cases: Array<[string, ReturnType<typeof call>, number | undefined]> = [
    ['uri exact', call('/exact'), 201],
    ['uri exact does not match a longer path', call('/exact/more'), undefined],
    ['uri prefix, ignoreUriCase', call('/pREfix'), 202],
    ['uri regex (whole path)', call('/items/42'), 203],
    ['uri regex does not match a partial path', call('/items/42x'), undefined],
    ['header exact', call('/', { 'x-exact': 'a' }), 204],
    ['header names are case-insensitive', call('/', { 'X-Exact': 'a' }), 204],
    ['header prefix', call('/', { 'x-prefix': 'prefixed' }), 205],
    ['header regex', call('/', { 'x-regex': 'v12' }), 206],
    ['header regex mismatch', call('/', { 'x-regex': 'vx' }), undefined],
    ['header present', call('/', { 'x-present': '' }), 207],
    ['query parameter', call('/search?q=yes'), 208],
    ['query parameter mismatch', call('/search?q=no'), undefined],
    ['method', call('/', {}, { method: 'POST' }), 209],
    ['authority prefix', call('/', {}, { host: 'backend.web.svc:8080' }), 210],
    ['withoutHeaders: absent header matches', call('/wo'), 211],
    ['withoutHeaders: present header does not', call('/wo', { 'x-skip': '1' }), undefined],
    ['second match of the same rule', call('/multi-b'), 215],
  ];
  for (const [name, res, status] of cases) {
    it(name, () => {
      assert.equal(res.directResponse, status, JSON.stringify(res));
      if (status === undefined) assert.deepEqual(res.clusters, [{ name: `outbound|8080|v1|${BACKEND}`, weight: 100 }]);
    });
  }
  it('a match on another port is not in this port\'s routes', () => {
    const statuses = p.routes.flatMap((r) => r.virtual_hosts).flatMap((v) => (v.routes as Array<{ direct_response?: { status: number } }>)).map((r) => r.direct_response?.status);
    assert.ok(!statuses.includes(212));
    assert.ok(statuses.includes(211));
  });
  it('sourceLabels are decided per proxy: only the matching pod gets the rule', () => {
    assert.equal(call('/').directResponse, undefined);
    const other = config(MATCHER_VS, 'nobody');
    assert.equal(other.call({ port: 8080, destinationIp: ip, host: 'backend:8080', path: '/' }).directResponse, 213);
  });
  it('scheme is matched on :scheme (plain http here)', () => {
    assert.equal(call('/', {}).directResponse, undefined);
  });
  it('the fallback route keeps its name and the VirtualService in metadata', () => {
    const res = call('/nothing');
    assert.equal(res.route, 'fallback');
    const vh = p.routes.find((r) => r.name === '8080')?.virtual_hosts.find((v) => v.name === `${BACKEND}:8080`);
    const fb = (vh?.routes as Array<Record<string, unknown>>).find((r) => r.name === 'fallback');
    assert.deepEqual(fb?.metadata, { filter_metadata: { istio: { config: '/apis/networking.istio.io/v1/namespaces/web/virtual-service/matcher' } } });
    assert.equal(res.operation, `${BACKEND}:8080/*`);
  });
});

const ACTIONS_VS = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: actions, namespace: web}
spec:
  hosts: [backend]
  http:
  - match: [{uri: {prefix: /redirect}}]
    redirect: {uri: /new, authority: new.example.com, port: 8443, scheme: https, redirectCode: 302}
  - match: [{uri: {prefix: /old}}]
    redirect: {uri: /moved}
  - match: [{uri: {prefix: /rewrite}}]
    rewrite: {uri: /v2/, authority: backend-v2.web}
    route: [{destination: {host: backend, subset: v2}}]
  - match: [{uri: {prefix: /rx}}]
    rewrite: {uriRegexRewrite: {match: "^/rx/(.*)$", rewrite: "/\\\\1"}}
    route: [{destination: {host: backend}}]
  - match: [{uri: {prefix: /slow}}]
    timeout: 3s
    retries: {attempts: 3, perTryTimeout: 1s, retryOn: "gateway-error,connect-failure,503"}
    route: [{destination: {host: backend}}]
  - match: [{uri: {prefix: /noretry}}]
    retries: {attempts: 0}
    route: [{destination: {host: backend}}]
  - match: [{uri: {prefix: /fault}}]
    fault:
      delay: {fixedDelay: 5s, percentage: {value: 50}}
      abort: {httpStatus: 503, percentage: {value: 10.5}}
    route: [{destination: {host: backend}}]
  - match: [{uri: {prefix: /mirrors}}]
    mirrors:
    - destination: {host: backend, subset: v2}
      percentage: {value: 5}
    - destination: {host: api.other.svc.cluster.local}
    route: [{destination: {host: backend, subset: v1}}]
  - match: [{uri: {prefix: /mirror}}]
    mirror: {host: backend, subset: v2}
    mirrorPercentage: {value: 25}
    route: [{destination: {host: backend, subset: v1}}]
  - match: [{uri: {prefix: /headers}}]
    headers:
      request: {set: {x-set: one}, add: {x-add: two}, remove: [x-drop]}
      response: {set: {x-resp: three}, remove: [server]}
    route:
    - destination: {host: backend, subset: v1}
      weight: 60
      headers: {request: {set: {x-version: v1}}}
    - destination: {host: backend, subset: v2}
      weight: 40
  - match: [{uri: {prefix: /cors}}]
    corsPolicy:
      allowOrigins: [{exact: "https://a.example.com"}, {regex: "https://.*\\\\.b\\\\.com"}]
      allowMethods: [GET, POST]
      allowHeaders: [x-a]
      exposeHeaders: [x-b]
      maxAge: 24h
      allowCredentials: true
    route: [{destination: {host: backend}}]
  - match: [{uri: {prefix: /api}}]
    route: [{destination: {host: api.other.svc.cluster.local}}]
  - match: [{uri: {prefix: /multi}}]
    route: [{destination: {host: multi.other.svc.cluster.local}}]
  - match: [{uri: {prefix: /empty}}]
    directResponse: {status: 418, body: {string: teapot}}
  - route:
    - destination: {host: backend, subset: v1}
      weight: 70
    - destination: {host: backend, subset: v2}
      weight: 30
`;

describe('routes: VirtualService actions', () => {
  const p = config(ACTIONS_VS);
  const ip = p.vip(BACKEND);
  const call = (path: string) => p.call({ port: 8080, destinationIp: ip, host: 'backend', path });
  it('redirect: path, host, port, scheme and code', () => {
    assert.deepEqual(call('/redirect/x').redirect, { code: 302, scheme: 'https', host: 'new.example.com', port: 8443, path: '/new' });
    assert.deepEqual(call('/old').redirect, { code: 301, path: '/moved' }, '301 when redirectCode is unset');
    assert.deepEqual(call('/old').clusters, []);
  });
  it('rewrite: prefix and authority; regex rewrite', () => {
    const r = call('/rewrite/a');
    assert.deepEqual(r.clusters, [{ name: `outbound|8080|v2|${BACKEND}`, weight: 100 }]);
    assert.deepEqual(r.rewrite, { prefix: '/v2/', host: 'backend-v2.web' });
    assert.equal(r.operation, `${BACKEND}:8080/rewrite*`);
    assert.deepEqual(call('/rx/z').rewrite, { regex: { pattern: '^/rx/(.*)$', substitution: '/\\1' } });
  });
  it('timeout and retries as written; Istio\'s default elsewhere; attempts 0 disables', () => {
    const slow = call('/slow');
    assert.equal(slow.timeoutMs, 3000);
    assert.deepEqual(slow.retries, { attempts: 3, retryOn: 'gateway-error,connect-failure,retriable-status-codes', perTryTimeoutMs: 1000, retriableStatusCodes: [503] });
    assert.equal(call('/noretry').retries, undefined);
    const dflt = call('/rewrite');
    assert.equal(dflt.timeoutMs, 0, 'sidecar routes have no timeout unless set');
    assert.deepEqual(dflt.retries, {
      attempts: 2,
      retryOn: 'connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes',
      retriableStatusCodes: [503],
    });
  });
  it('fault: delay and abort with fractional percentages', () => {
    assert.deepEqual(call('/fault').fault, { delayMs: 5000, delayPercent: 50, abortStatus: 503, abortPercent: 10.5 });
    assert.equal(call('/slow').fault, undefined);
  });
  it('mirror to a subset with a percentage', () => {
    assert.deepEqual(call('/mirror').mirrors, [{ cluster: `outbound|8080|v2|${BACKEND}`, percent: 25 }]);
    assert.deepEqual(call('/mirrors').mirrors, [
      { cluster: `outbound|8080|v2|${BACKEND}`, percent: 5 },
      { cluster: 'outbound|8080||api.other.svc.cluster.local', percent: 100 },
    ]);
    assert.equal(call('/rewrite').mirrors, undefined);
  });
  it('header operations at route and destination level, weights kept', () => {
    const r = call('/headers');
    assert.deepEqual(r.clusters, [
      { name: `outbound|8080|v1|${BACKEND}`, weight: 60 },
      { name: `outbound|8080|v2|${BACKEND}`, weight: 40 },
    ]);
    assert.deepEqual(r.requestHeadersToAdd, { 'x-set': 'one', 'x-add': 'two' });
    assert.deepEqual(r.requestHeadersToRemove, ['x-drop']);
    assert.deepEqual(r.responseHeadersToAdd, { 'x-resp': 'three' });
    assert.equal(r.operation, 'actions:8080/headers*', 'several destinations: VirtualService name in the operation');
    const rc = p.routes.find((x) => x.name === '8080');
    const route = (rc?.virtual_hosts.find((v) => v.name === `${BACKEND}:8080`)?.routes as Array<Record<string, unknown>>).find((x) => (x.match as { prefix?: string }).prefix === '/headers');
    const wc = (route?.route as { weighted_clusters: { clusters: Array<Record<string, unknown>> } }).weighted_clusters.clusters[0];
    assert.deepEqual(wc?.request_headers_to_add, [{ header: { key: 'x-version', value: 'v1' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' }]);
  });
  it('cors policy per route', () => {
    const cors = call('/cors').corsPolicy;
    assert.deepEqual(cors?.allow_origin_string_match, [{ exact: 'https://a.example.com' }, { safe_regex: { regex: 'https://.*\\.b\\.com' } }]);
    assert.equal(cors?.allow_methods, 'GET,POST');
    assert.equal(cors?.max_age, '86400');
    assert.equal(cors?.allow_credentials, true);
  });
  it('destination port: the only port of the destination service; else the listener port', () => {
    assert.deepEqual(call('/api').clusters, [{ name: 'outbound|8080||api.other.svc.cluster.local', weight: 100 }]);
    assert.deepEqual(call('/multi').clusters, [{ name: 'outbound|8080||multi.other.svc.cluster.local', weight: 100 }]);
    assert.deepEqual(call('/multi').missingClusters, []);
  });
  it('direct response with a body', () => {
    const r = call('/empty');
    assert.equal(r.directResponse, 418);
    assert.equal(r.directResponseBody, 'teapot');
  });
  it('weighted default rule', () => {
    assert.deepEqual(call('/anything').clusters, [
      { name: `outbound|8080|v1|${BACKEND}`, weight: 70 },
      { name: `outbound|8080|v2|${BACKEND}`, weight: 30 },
    ]);
  });
});

describe('routes: services without a VirtualService, host names, catch-all', () => {
  it('default route to outbound|port||host with the default retry policy', () => {
    const p = config('');
    const r = p.call({ port: 8080, host: 'backend:8080', destinationIp: p.vip(BACKEND) });
    assert.equal(r.route, 'default');
    assert.deepEqual(r.clusters, [{ name: `outbound|8080||${BACKEND}`, weight: 100 }]);
    assert.equal(r.retries?.attempts, 2);
    assert.equal(r.operation, `${BACKEND}:8080/*`);
  });
  it('gives a name to the first virtual host that has it: a ServiceEntry host equal to a service name, a VirtualService host already served', () => {
    const p = config(`apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: legacy, namespace: web}
spec:
  hosts: [backend.web]
  ports: [{number: 8080, name: http, protocol: HTTP}]
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: aliases, namespace: web}
spec:
  hosts: [backend.web.svc, www.example.com]
  http:
  - route: [{destination: {host: api.other.svc.cluster.local}}]
`);
    const vh = p.routes.find((r) => r.name === '8080')?.virtual_hosts ?? [];
    const domainsOf = (name: string): string[] => (vh.find((v) => v.name === name)?.domains as string[] | undefined) ?? [];
    assert.deepEqual(domainsOf('backend.web:8080'), ['backend.web', 'backend.web:8080'], 'the ServiceEntry sorts first and takes its names');
    const backend = domainsOf(`${BACKEND}:8080`);
    assert.ok(backend.includes('backend') && backend.includes(BACKEND) && !backend.includes('backend.web') && !backend.includes('backend.web:8080'));
    assert.equal(vh.find((v) => v.name === 'backend.web.svc:8080'), undefined, 'a VirtualService host the service already serves gets no virtual host');
    assert.deepEqual(domainsOf('www.example.com:8080'), ['www.example.com', 'www.example.com:8080']);
    const all = vh.flatMap((v) => v.domains as string[]);
    assert.equal(new Set(all).size, all.length, 'no domain twice');
    assert.equal(p.call({ port: 8080, host: 'backend.web:8080' }).virtualHost, 'backend.web:8080');
  });

  it('every name of a service: short name only from its own namespace', () => {
    const p = config('');
    const vh = p.routes.find((r) => r.name === '8080')?.virtual_hosts ?? [];
    const backend = vh.find((v) => v.name === `${BACKEND}:8080`)?.domains as string[];
    const ip = p.vip(BACKEND);
    for (const d of ['backend', 'backend:8080', 'backend.web', 'backend.web:8080', 'backend.web.svc', 'backend.web.svc:8080', BACKEND, `${BACKEND}:8080`, ip, `${ip}:8080`]) {
      assert.ok(backend.includes(d), `backend has domain ${d}`);
    }
    const api = vh.find((v) => v.name === 'api.other.svc.cluster.local:8080')?.domains as string[];
    assert.ok(api.includes('api.other') && !api.includes('api'));
    assert.deepEqual(p.call({ port: 8080, host: 'api.other:8080' }).clusters, [{ name: 'outbound|8080||api.other.svc.cluster.local', weight: 100 }]);
    assert.equal(p.call({ port: 8080, host: 'api:8080' }).virtualHost, 'allow_any', 'a bare name from another namespace is not a mesh host');
    assert.equal(vh.at(-1)?.name, 'allow_any');
  });
  it('REGISTRY_ONLY: unknown hosts hit block_all (502); ALLOW_ANY: PassthroughCluster', () => {
    const blocked = config('', 'frontend', { outboundTrafficPolicy: { mode: 'REGISTRY_ONLY' } });
    const r = blocked.call({ port: 8080, host: 'unknown.example.com' });
    assert.equal(r.virtualHost, 'block_all');
    assert.equal(r.directResponse, 502);
    const open = config('');
    assert.deepEqual(open.call({ port: 8080, host: 'unknown.example.com' }).clusters, [{ name: 'PassthroughCluster', weight: 100 }]);
  });
  it('consistent hash from the DestinationRule (rule and subset level) on each route', () => {
    const p = config(`apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: api, namespace: other}
spec:
  host: api.other.svc.cluster.local
  trafficPolicy:
    loadBalancer: {consistentHash: {httpHeaderName: x-user}}
  subsets:
  - name: sticky
    labels: {app: api}
    trafficPolicy:
      loadBalancer: {consistentHash: {httpCookie: {name: session, ttl: 60s}}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: multi, namespace: other}
spec:
  host: multi.other.svc.cluster.local
  trafficPolicy:
    loadBalancer: {consistentHash: {httpQueryParameterName: user}}
    portLevelSettings:
    - port: {number: 9090}
      loadBalancer: {consistentHash: {useSourceIp: true}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: api-routes, namespace: other}
spec:
  hosts: [api]
  http:
  - match: [{uri: {prefix: /sticky}}]
    route: [{destination: {host: api, subset: sticky}}]
  - route: [{destination: {host: api}}]
`);
    assert.deepEqual(p.call({ port: 8080, host: 'api.other', path: '/x' }).hashPolicy, [{ header: { header_name: 'x-user' } }]);
    assert.deepEqual(p.call({ port: 8080, host: 'api.other', path: '/sticky' }).hashPolicy, [{ cookie: { name: 'session', ttl: '60s' } }]);
    assert.equal(p.call({ port: 8080, host: 'backend', path: '/x' }).hashPolicy, undefined, 'no consistentHash, no hash policy');
    assert.deepEqual(p.call({ port: 8080, host: 'multi.other' }).hashPolicy, [{ query_parameter: { name: 'user' } }]);
    assert.deepEqual(p.call({ port: 9090, host: 'multi.other:9090' }).hashPolicy, [{ connection_properties: { source_ip: true } }], 'port-level setting');
  });
  it('ServiceEntry hosts, a wildcard host, and a VirtualService host that is no service', () => {
    const p = config(`apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ext, namespace: web}
spec:
  hosts: [api.example.com]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: wild, namespace: web}
spec:
  hosts: ["*.wild.com"]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: NONE
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: alias, namespace: web}
spec:
  hosts: [alias.internal]
  http:
  - route: [{destination: {host: backend, subset: v2}}]
`);
    assert.deepEqual(p.call({ port: 80, host: 'api.example.com', destinationIp: '93.184.216.34' }).clusters, [{ name: 'outbound|80||api.example.com', weight: 100 }]);
    assert.equal(p.call({ port: 80, host: 'api.example.com' }).operation, 'api.example.com:80/*');
    assert.deepEqual(p.call({ port: 80, host: 'x.wild.com' }).clusters, [{ name: 'outbound|80||*.wild.com', weight: 100 }]);
    assert.deepEqual(p.call({ port: 8080, host: 'alias.internal:8080' }).clusters, [{ name: `outbound|8080|v2|${BACKEND}`, weight: 100 }]);
    assert.equal(p.call({ port: 80, host: 'other.com' }).virtualHost, 'allow_any');
  });
});
