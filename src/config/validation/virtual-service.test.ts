import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { assertError, assertNoErrors, assertOneError, assertWarning, errors, validate, warnings } from './testing.ts';

const dest = (host: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({ destination: { host, ...extra } });
const vs = (http: unknown[], extra: Record<string, unknown> = {}): ReturnType<typeof validate> => validate('VirtualService', { hosts: ['reviews'], http, ...extra });

describe('VirtualService semantic rules', () => {
  it('accepts the Bookinfo weighted route and a delegate VirtualService', () => {
    assertNoErrors(vs([{ route: [{ ...dest('reviews', { subset: 'v1' }), weight: 75 }, { ...dest('reviews', { subset: 'v2' }), weight: 25 }] }]));
    assertNoErrors(validate('VirtualService', { http: [{ route: [dest('reviews')] }] }));
  });

  it('rejects invalid hosts and * for the mesh, but allows * on a gateway', () => {
    assertOneError(validate('VirtualService', { hosts: ['bad_host'], http: [{ route: [dest('reviews')] }] }), 'spec.hosts[0]', 'label "bad_host"');
    assertOneError(validate('VirtualService', { hosts: ['*'], http: [{ route: [dest('reviews')] }] }), 'spec.hosts[0]', 'not allowed for a VirtualService that applies to sidecars');
    assertNoErrors(validate('VirtualService', { hosts: ['*'], gateways: ['bookinfo-gateway'], http: [{ route: [dest('productpage')] }] }));
    assertOneError(validate('VirtualService', { hosts: ['foo.*.com'], http: [{ route: [dest('reviews')] }] }), 'spec.hosts[0]', 'wildcard is allowed only at the start of the first label');
  });

  it('rejects overlapping hosts', () => {
    assertOneError(validate('VirtualService', { hosts: ['*.example.com', 'a.example.com'], http: [{ route: [dest('a.example.com')] }] }), 'spec.hosts[1]', 'overlap');
  });

  it('rejects a delegate with gateways and a VirtualService with no routes', () => {
    assertOneError(validate('VirtualService', { gateways: ['gw'], http: [{ route: [dest('reviews')] }] }), 'spec.gateways', 'must not list gateways');
    assertOneError(validate('VirtualService', { hosts: ['reviews'] }), 'spec', 'at least one http, tcp or tls route');
  });

  it('checks gateway names', () => {
    assertOneError(vs([{ route: [dest('reviews')] }], { gateways: ['istio-system/bad_name'] }), 'spec.gateways[0]', 'invalid name "bad_name"');
    const legacy = vs([{ route: [dest('reviews')] }], { gateways: ['gw.istio-system'] });
    assertNoErrors(legacy);
    assertWarning(legacy, 'spec.gateways[0]', '"istio-system/gw"');
  });

  it('needs exactly one of route, redirect, directResponse or delegate', () => {
    assertOneError(vs([{ match: [{ uri: { prefix: '/' } }] }]), 'spec.http[0]', 'exactly one of route, redirect, directResponse or delegate');
    assertOneError(vs([{ route: [dest('reviews')], redirect: { uri: '/new' } }]), 'spec.http[0].redirect', 'both route and redirect');
    assertOneError(vs([{ redirect: { uri: '/new' }, rewrite: { uri: '/x' } }]), 'spec.http[0].rewrite', 'cannot also rewrite');
    assertOneError(vs([{ delegate: { name: 'd' }, route: [dest('reviews')] }]), 'spec.http[0].route', 'this one delegates');
  });

  it('rejects negative weights and all-zero weights; warns when weights do not add up to 100', () => {
    assertOneError(vs([{ route: [{ ...dest('a'), weight: -10 }, { ...dest('b'), weight: 110 }] }]), 'spec.http[0].route[0].weight', 'must not be negative');
    assertOneError(vs([{ route: [{ ...dest('a'), weight: 0 }, { ...dest('b'), weight: 0 }] }]), 'spec.http[0].route', 'weights add up to 0');
    const ds = vs([{ route: [{ ...dest('a'), weight: 60 }, { ...dest('b'), weight: 50 }] }]);
    assertNoErrors(ds);
    assertWarning(ds, 'spec.http[0].route', 'weights add up to 110, not 100');
    assert.deepEqual(warnings(vs([{ route: [{ ...dest('a'), weight: 90 }, { ...dest('b'), weight: 10 }] }])), []);
  });

  it('checks destinations: host required and valid, subset a DNS label, port in range', () => {
    assertOneError(vs([{ route: [{ destination: { subset: 'v1' } }] }]), 'spec.http[0].route[0].destination.host', 'destination host is required');
    assertOneError(vs([{ route: [dest('*')] }]), 'spec.http[0].route[0].destination.host', 'destination host "*" is not allowed');
    assertOneError(vs([{ route: [dest('reviews', { subset: 'v1.0' })] }]), 'spec.http[0].route[0].destination.subset', 'subset name "v1.0"');
    assertOneError(vs([{ route: [dest('reviews', { port: { number: 70000 } })] }]), 'spec.http[0].route[0].destination.port.number', '1..65535');
  });

  it('checks timeouts and retries', () => {
    assertOneError(vs([{ route: [dest('a')], timeout: '0.5ms' }]), 'spec.http[0].timeout', 'at least 1ms');
    assertOneError(vs([{ route: [dest('a')], timeout: '3 seconds' }]), 'spec.http[0].timeout', 'not a valid duration');
    assertNoErrors(vs([{ route: [dest('a')], timeout: '1m30s', retries: { attempts: 3, perTryTimeout: '2s', retryOn: 'gateway-error,connect-failure,503' } }]));
    assertOneError(vs([{ route: [dest('a')], retries: { attempts: 2, retryOn: '5xx,bogus' } }]), 'spec.http[0].retries.retryOn', '"bogus" is not a valid retryOn policy');
    assertOneError(vs([{ route: [dest('a')], retries: { attempts: -1 } }]), 'spec.http[0].retries.attempts', 'must not be negative');
    assertOneError(vs([{ route: [dest('a')], retries: { attempts: 0, perTryTimeout: '1s' } }]), 'spec.http[0].retries.attempts', 'attempts is 0');
  });

  it('checks fault injection', () => {
    assertNoErrors(vs([{ route: [dest('a')], fault: { delay: { fixedDelay: '7s', percentage: { value: 100 } }, abort: { httpStatus: 500, percentage: { value: 10 } } } }]));
    assertOneError(vs([{ route: [dest('a')], fault: { abort: { httpStatus: 700 } } }]), 'spec.http[0].fault.abort.httpStatus', '200..599');
    assertOneError(vs([{ route: [dest('a')], fault: { delay: { percentage: { value: 50 } } } }]), 'spec.http[0].fault.delay', 'needs fixedDelay');
    assertOneError(vs([{ route: [dest('a')], fault: { delay: { fixedDelay: '1s', percentage: { value: 150 } } } }]), 'spec.http[0].fault.delay.percentage.value', '0.0001..100');
    assertOneError(vs([{ route: [dest('a')], fault: { abort: { grpcStatus: 'NOPE' } } }]), 'spec.http[0].fault.abort.grpcStatus', 'NOT_FOUND');
    assertOneError(vs([{ route: [dest('a')], fault: {} }]), 'spec.http[0].fault', 'needs an abort, a delay, or both');
    assertWarning(vs([{ route: [dest('a')], fault: { abort: { percentage: { value: 1 } } } }]), 'spec.http[0].fault.abort', 'does nothing');
  });

  it('checks match regexes (RE2), header names and prefixes', () => {
    assertOneError(vs([{ match: [{ uri: { regex: '^/a(?=b)' } }], route: [dest('a')] }]), 'spec.http[0].match[0].uri.regex', 'lookahead');
    assertOneError(vs([{ match: [{ headers: { 'x-user': { regex: '(a)\\1' } } }], route: [dest('a')] }]), 'spec.http[0].match[0].headers.x-user.regex', 'backreferences');
    assertOneError(vs([{ match: [{ headers: { 'bad header': { exact: 'x' } } }], route: [dest('a')] }]), 'spec.http[0].match[0].headers["bad header"]', 'not valid');
    assertOneError(vs([{ match: [{ authority: { prefix: '' } }], route: [dest('a')] }]), 'spec.http[0].match[0].authority.prefix', 'must not be empty');
    assertNoErrors(vs([{ match: [{ uri: { prefix: '' }, headers: { 'end-user': { exact: 'jason' } }, withoutHeaders: { 'x-a': { regex: '*' } } }], route: [dest('a')] }]));
  });

  it('allows JWT claim routing only on gateways', () => {
    const match = [{ headers: { '@request.auth.claims.group': { exact: 'admin' } } }];
    assertOneError(vs([{ match, route: [dest('a')] }]), 'spec.http[0].match[0].headers["@request.auth.claims.group"]', 'only on gateways');
    assertNoErrors(vs([{ match, route: [dest('a')] }], { gateways: ['istio-system/gw'] }));
  });

  it('checks redirect, rewrite, direct responses and mirrors', () => {
    assertOneError(vs([{ redirect: { redirectCode: 200, uri: '/x' } }]), 'spec.http[0].redirect.redirectCode', '3xx');
    assertOneError(vs([{ redirect: { scheme: 'ftp' } }]), 'spec.http[0].redirect.scheme', 'http or https');
    assertOneError(vs([{ redirect: {} }]), 'spec.http[0].redirect', 'must change something');
    assertOneError(vs([{ route: [dest('a')], rewrite: { uri: '/a', uriRegexRewrite: { match: 'x', rewrite: 'y' } } }]), 'spec.http[0].rewrite.uriRegexRewrite', 'not both');
    assertOneError(vs([{ route: [dest('a')], rewrite: { authority: 'a' }, headers: { request: { set: { ':authority': 'b' } } } }]), 'spec.http[0].headers.request.set[":authority"]', 'rewritten twice');
    assertOneError(vs([{ directResponse: { status: 99 } }]), 'spec.http[0].directResponse.status', '200..599');
    assertOneError(vs([{ route: [dest('a')], mirror: { host: 'b' }, mirrors: [{ destination: { host: 'c' } }] }]), 'spec.http[0].mirrors', 'not both');
    assertOneError(vs([{ route: [dest('a')], mirror: { host: 'b' }, mirrorPercentage: { value: 101 } }]), 'spec.http[0].mirrorPercentage.value', '0..100');
  });

  it('checks header operations and CORS', () => {
    assertOneError(vs([{ route: [dest('a')], headers: { request: { remove: ['Host'] } } }]), 'spec.http[0].headers.request.remove[0]', 'rewrite.authority');
    assertOneError(vs([{ route: [dest('a')], headers: { response: { set: { 'x-a': 'abc%' } } } }]), 'spec.http[0].headers.response.set.x-a', 'unterminated');
    assertNoErrors(vs([{ route: [dest('a')], headers: { response: { set: { 'x-a': '100%% %HOSTNAME%' } } } }]));
    const cors = vs([{ route: [dest('a')], corsPolicy: { allowOrigins: [{ exact: '' }, { regex: '(?!x)' }], allowMethods: ['GET', 'FETCH'], maxAge: '1500ms' } }]);
    assert.equal(errors(cors).length, 4);
    assertError(cors, 'spec.http[0].corsPolicy.allowOrigins[0]', 'non-empty exact, prefix or regex');
    assertError(cors, 'spec.http[0].corsPolicy.allowOrigins[1].regex', 'lookahead');
    assertError(cors, 'spec.http[0].corsPolicy.allowMethods[1]', '"FETCH" is not a supported HTTP method');
    assertError(cors, 'spec.http[0].corsPolicy.maxAge', 'whole seconds');
  });

  it('checks tls routes: SNI hosts required and covered by the hosts', () => {
    const tls = (sniHosts: string[]): ReturnType<typeof validate> =>
      validate('VirtualService', { hosts: ['*.example.com'], tls: [{ match: [{ sniHosts, port: 443 }], route: [dest('a.example.com')] }] });
    assertNoErrors(tls(['a.example.com']));
    assertOneError(tls(['a.other.com']), 'spec.tls[0].match[0].sniHosts[0]', 'not covered by the VirtualService hosts');
    assertOneError(tls([]), 'spec.tls[0].match[0].sniHosts', 'at least one SNI host');
  });

  it('checks tcp routes', () => {
    const tcp = validate('VirtualService', { hosts: ['mongo'], tcp: [{ match: [{ port: 27017, destinationSubnets: ['10.0.0.0/33'] }] }] });
    assertError(tcp, 'spec.tcp[0].match[0].destinationSubnets[0]', 'not a valid CIDR block');
    assertError(tcp, 'spec.tcp[0].route', 'at least one destination');
  });

  it('checks exportTo', () => {
    assertOneError(vs([{ route: [dest('a')] }], { exportTo: ['*', 'bookinfo'] }), 'spec.exportTo', 'cannot be combined');
    assertOneError(vs([{ route: [dest('a')] }], { exportTo: ['~'] }), 'spec.exportTo[0]', 'only on ServiceEntry');
  });
});
