// Simulation of Istio's Bookinfo traffic tasks (M17): calls from productpage's sidecar, replayed through the listeners, routes and clusters tsmesh generates from Istio's own sample YAML.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BOOKINFO, bookinfoNet, encodeFailures, load, proxyFor, type ProxyConfig } from './harness.ts';

const REVIEWS = 'reviews.default.svc.cluster.local';
const RATINGS = 'ratings.default.svc.cluster.local';
const DETAILS = 'details.default.svc.cluster.local';

async function productpage(...networking: string[]): Promise<ProxyConfig> {
  const resources = await load([BOOKINFO, bookinfoNet('destination-rule-all.yaml'), ...networking.map(bookinfoNet)]);
  const p = proxyFor(resources, 'productpage');
  assert.deepEqual(encodeFailures(p), [], 'generated listeners and routes fit Envoy protos');
  return p;
}

/** A call from productpage to `svc` on 9080 the way the app makes it: by short name, to the ClusterIP. */
function callSvc(p: ProxyConfig, svc: string, headers: Record<string, string> = {}, path = '/') {
  const fqdn = `${svc}.default.svc.cluster.local`;
  return p.call({ port: 9080, host: `${svc}:9080`, destinationIp: p.vip(fqdn), headers, path });
}

const only = (cluster: string) => [{ name: cluster, weight: 100 }];

describe('bookinfo: request routing', () => {
  it('virtual-service-all-v1: every service goes to v1', async () => {
    const p = await productpage('virtual-service-all-v1.yaml');
    for (const svc of ['reviews', 'ratings', 'details', 'productpage']) {
      const r = callSvc(p, svc);
      assert.equal(r.listener, '0.0.0.0_9080');
      assert.equal(r.routeConfig, '9080');
      assert.equal(r.virtualHost, `${svc}.default.svc.cluster.local:9080`);
      assert.deepEqual(r.clusters, only(`outbound|9080|v1|${svc}.default.svc.cluster.local`));
      assert.deepEqual(r.missingClusters, [], 'the subset cluster exists in CDS');
    }
    assert.equal(callSvc(p, 'reviews').operation, `${REVIEWS}:9080/*`, 'x-envoy-decorator-operation (M19)');
    assert.deepEqual(callSvc(p, 'reviews', { 'end-user': 'jason' }).clusters, only(`outbound|9080|v1|${REVIEWS}`));
  });

  it('virtual-service-reviews-test-v2: end-user jason -> v2, everyone else -> v1', async () => {
    const p = await productpage('virtual-service-all-v1.yaml', 'virtual-service-reviews-test-v2.yaml');
    assert.deepEqual(callSvc(p, 'reviews', { 'end-user': 'jason' }).clusters, only(`outbound|9080|v2|${REVIEWS}`));
    assert.deepEqual(callSvc(p, 'reviews', { 'end-user': 'Jason' }).clusters, only(`outbound|9080|v1|${REVIEWS}`), 'exact match is case-sensitive');
    assert.deepEqual(callSvc(p, 'reviews').clusters, only(`outbound|9080|v1|${REVIEWS}`));
  });

  it('virtual-service-reviews-jason-v2-v3: jason -> v2, others -> v3', async () => {
    const p = await productpage('virtual-service-reviews-jason-v2-v3.yaml');
    assert.deepEqual(callSvc(p, 'reviews', { 'end-user': 'jason' }).clusters, only(`outbound|9080|v2|${REVIEWS}`));
    assert.deepEqual(callSvc(p, 'reviews').clusters, only(`outbound|9080|v3|${REVIEWS}`));
  });

  it('virtual-service-reviews-v3 and details-v2', async () => {
    const p = await productpage('virtual-service-reviews-v3.yaml', 'virtual-service-details-v2.yaml');
    assert.deepEqual(callSvc(p, 'reviews').clusters, only(`outbound|9080|v3|${REVIEWS}`));
    assert.deepEqual(callSvc(p, 'details').clusters, only(`outbound|9080|v2|${DETAILS}`));
  });
});

describe('bookinfo: traffic shifting (weights)', () => {
  const cases: Array<[string, Array<[string, number]>]> = [
    ['virtual-service-reviews-50-v3.yaml', [['v1', 50], ['v3', 50]]],
    ['virtual-service-reviews-80-20.yaml', [['v1', 80], ['v2', 20]]],
    ['virtual-service-reviews-90-10.yaml', [['v1', 90], ['v2', 10]]],
    ['virtual-service-reviews-v2-v3.yaml', [['v2', 50], ['v3', 50]]],
  ];
  for (const [file, weights] of cases) {
    it(file, async () => {
      const p = await productpage(file);
      const r = callSvc(p, 'reviews');
      assert.deepEqual(r.clusters, weights.map(([subset, weight]) => ({ name: `outbound|9080|${subset}|${REVIEWS}`, weight })));
      assert.deepEqual(r.missingClusters, []);
      assert.equal(r.operation, 'reviews:9080/*');
    });
  }
});

describe('bookinfo: fault injection', () => {
  it('ratings-test-delay: a 7 s delay for jason only, to ratings v1', async () => {
    const p = await productpage('virtual-service-all-v1.yaml', 'virtual-service-ratings-test-delay.yaml');
    const jason = callSvc(p, 'ratings', { 'end-user': 'jason' });
    assert.deepEqual(jason.fault, { delayMs: 7000, delayPercent: 100 });
    assert.deepEqual(jason.clusters, only(`outbound|9080|v1|${RATINGS}`));
    assert.equal(callSvc(p, 'ratings').fault, undefined);
  });

  it('ratings-test-abort: HTTP 500 for jason only', async () => {
    const p = await productpage('virtual-service-all-v1.yaml', 'virtual-service-ratings-test-abort.yaml');
    assert.deepEqual(callSvc(p, 'ratings', { 'end-user': 'jason' }).fault, { abortStatus: 500, abortPercent: 100 });
    assert.equal(callSvc(p, 'ratings', { 'end-user': 'bob' }).fault, undefined);
  });

  it('fault-injection-details-v1: every call to details aborts with 555', async () => {
    const p = await productpage('fault-injection-details-v1.yaml');
    const r = callSvc(p, 'details');
    assert.deepEqual(r.fault, { abortStatus: 555, abortPercent: 100 });
    assert.deepEqual(r.clusters, only(`outbound|9080|v1|${DETAILS}`));
  });
});

describe('bookinfo: timeouts, retries, sourceLabels, defaults', () => {
  it('a timeout: 3s and retries on reviews', async () => {
    const resources = await load([BOOKINFO, bookinfoNet('destination-rule-all.yaml')], 'default', [
      `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route: [{destination: {host: reviews, subset: v2}}]
    timeout: 3s
    retries: {attempts: 1, perTryTimeout: 2s}
`,
    ]);
    const r = proxyFor(resources, 'productpage').call({ port: 9080, host: 'reviews:9080' });
    assert.equal(r.timeoutMs, 3000);
    assert.deepEqual(r.retries, {
      attempts: 1,
      retryOn: 'connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes',
      perTryTimeoutMs: 2000,
      retriableStatusCodes: [503],
    });
  });

  it('a sourceLabels rule applies only on the matching proxy', async () => {
    const resources = await load([BOOKINFO, bookinfoNet('destination-rule-all.yaml')], 'default', [
      `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ratings}
spec:
  hosts: [ratings]
  http:
  - match: [{sourceLabels: {app: reviews, version: v2}}]
    route: [{destination: {host: ratings, subset: v2}}]
  - route: [{destination: {host: ratings, subset: v1}}]
`,
    ]);
    const fromV2 = proxyFor(resources, (w) => w.labels.app === 'reviews' && w.labels.version === 'v2');
    const fromV1 = proxyFor(resources, (w) => w.labels.app === 'reviews' && w.labels.version === 'v1');
    assert.deepEqual(fromV2.call({ port: 9080, host: 'ratings:9080' }).clusters, only(`outbound|9080|v2|${RATINGS}`));
    assert.deepEqual(fromV1.call({ port: 9080, host: 'ratings:9080' }).clusters, only(`outbound|9080|v1|${RATINGS}`));
  });

  it('without a VirtualService: the default route to outbound|9080||reviews with the default retry policy', async () => {
    const p = await productpage();
    const r = callSvc(p, 'reviews', {}, '/reviews/0');
    assert.equal(r.route, 'default');
    assert.deepEqual(r.clusters, only(`outbound|9080||${REVIEWS}`));
    assert.equal(r.timeoutMs, 0);
    assert.deepEqual(r.retries, { attempts: 2, retryOn: 'connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes', retriableStatusCodes: [503] });
    for (const host of ['reviews', 'reviews.default', 'reviews.default.svc', REVIEWS, `${REVIEWS}:9080`, p.vip(REVIEWS)]) {
      assert.deepEqual(p.call({ port: 9080, host }).clusters, only(`outbound|9080||${REVIEWS}`), `host ${host}`);
    }
  });

  it('productpage receives on 9080 through virtualInbound', async () => {
    const p = await productpage();
    const r = p.call({ direction: 'inbound', port: 9080, host: 'productpage:9080', path: '/productpage' });
    assert.equal(r.listener, 'virtualInbound');
    assert.deepEqual(r.clusters, only('inbound|9080||'));
    assert.deepEqual(r.missingClusters, []);
  });
});
