// The simulator follows Envoy's rules on hand-written config: listener hand-off, filter chain specificity, domain precedence, first matching route.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { pickVirtualHost, simulate, stringMatches } from './simulate.ts';

type Json = Record<string, unknown>;
const tcp = (cluster: string): Json => ({ name: 'envoy.filters.network.tcp_proxy', typed_config: { stat_prefix: cluster, cluster } });
const hcm = (rds: string): Json => ({ name: 'envoy.filters.network.http_connection_manager', typed_config: { rds: { route_config_name: rds } } });
const addr = (ip: string, port: number): Json => ({ socket_address: { address: ip, port_value: port } });

const listeners: Json[] = [
  { name: 'virtualOutbound', address: addr('0.0.0.0', 15001), use_original_dst: true, filter_chains: [], default_filter_chain: { name: 'pass', filters: [tcp('PassthroughCluster')] } },
  { name: '0.0.0.0_80', address: addr('0.0.0.0', 80), bind_to_port: false, filter_chains: [{ name: 'http', filters: [hcm('80')] }] },
  { name: '10.0.0.5_80', address: addr('10.0.0.5', 80), bind_to_port: false, filter_chains: [{ name: 'vip', filters: [tcp('vip-cluster')] }] },
  {
    name: '0.0.0.0_443',
    address: addr('0.0.0.0', 443),
    bind_to_port: false,
    listener_filters: [{ name: 'envoy.filters.listener.tls_inspector' }],
    filter_chains: [
      { name: 'wild', filter_chain_match: { server_names: ['*.example.com'] }, filters: [tcp('wild')] },
      { name: 'exact', filter_chain_match: { server_names: ['a.example.com'] }, filters: [tcp('exact')] },
      { name: 'subnet', filter_chain_match: { prefix_ranges: [{ address_prefix: '192.168.0.0', prefix_len: 16 }] }, filters: [tcp('subnet')] },
    ],
    default_filter_chain: { name: 'default', filters: [tcp('PassthroughCluster')] },
  },
  { name: '127.0.0.1_9000', address: addr('127.0.0.1', 9000), bind_to_port: true, filter_chains: [{ name: 'bound', filters: [tcp('bound')] }] },
];

const routes: Json[] = [
  {
    name: '80',
    virtual_hosts: [
      { name: 'any', domains: ['*'], routes: [{ name: 'any', match: { prefix: '/' }, route: { cluster: 'any' } }] },
      { name: 'prefix', domains: ['api.*'], routes: [{ name: 'p', match: { prefix: '/' }, route: { cluster: 'prefix' } }] },
      { name: 'suffix', domains: ['*.example.com'], routes: [{ name: 's', match: { prefix: '/' }, route: { cluster: 'suffix' } }] },
      { name: 'longer-suffix', domains: ['*.b.example.com'], routes: [{ name: 'ls', match: { prefix: '/' }, route: { cluster: 'longer' } }] },
      {
        name: 'exact',
        domains: ['api.example.com'],
        routes: [
          { name: 'first', match: { prefix: '/a' }, route: { cluster: 'first' } },
          { name: 'second', match: { prefix: '/' }, route: { cluster: 'second', timeout: '2.500s', retry_policy: { num_retries: 4, retry_on: '5xx', per_try_timeout: '1s' } } },
        ],
      },
    ],
  },
];

const clusters: Json[] = [{ name: 'first' }, { name: 'second' }, { name: 'PassthroughCluster' }];

describe('simulate: listeners and filter chains', () => {
  it('original destination: IP:port listener, then 0.0.0.0:port, then virtualOutbound', () => {
    assert.equal(simulate(listeners, routes, clusters, { port: 80, destinationIp: '10.0.0.5', protocol: 'tcp' }).listener, '10.0.0.5_80');
    assert.equal(simulate(listeners, routes, clusters, { port: 80, destinationIp: '10.0.0.6', host: 'x' }).listener, '0.0.0.0_80');
    assert.equal(simulate(listeners, routes, clusters, { port: 81, destinationIp: '10.0.0.6', protocol: 'tcp' }).listener, 'virtualOutbound');
  });
  it('bound listeners are reached when dialled directly', () => {
    assert.deepEqual(simulate(listeners, routes, clusters, { port: 9000, destinationIp: '127.0.0.1', protocol: 'tcp' }).clusters, [{ name: 'bound', weight: 100 }]);
  });
  it('server names: exact beats wildcard; no SNI falls to prefix ranges, then to the default chain', () => {
    const at = (sni: string | undefined, ip = '1.2.3.4') =>
      simulate(listeners, routes, clusters, { port: 443, destinationIp: ip, protocol: 'tls', ...(sni ? { sni } : {}) }).filterChain;
    assert.equal(at('a.example.com'), 'exact');
    assert.equal(at('b.example.com'), 'wild');
    assert.equal(at('example.com'), 'default');
    assert.equal(at(undefined, '192.168.3.4'), 'subnet');
    assert.equal(at(undefined), 'default');
  });
  it('reports clusters the config names but CDS lacks', () => {
    assert.deepEqual(simulate(listeners, routes, clusters, { port: 80, destinationIp: '10.0.0.5', protocol: 'tcp' }).missingClusters, ['vip-cluster']);
  });
});

describe('simulate: virtual hosts and routes', () => {
  const vh = (host: string) => pickVirtualHost(routes[0]?.virtual_hosts as Json[], host)?.name;
  it('exact > longest suffix wildcard > prefix wildcard > *', () => {
    assert.equal(vh('API.example.com'), 'exact');
    assert.equal(vh('x.b.example.com'), 'longer-suffix');
    assert.equal(vh('x.example.com'), 'suffix');
    assert.equal(vh('api.other.org'), 'prefix');
    assert.equal(vh('nothing'), 'any');
  });
  it('first matching route wins; timeout and retries reported', () => {
    const a = simulate(listeners, routes, clusters, { port: 80, host: 'api.example.com', path: '/abc' });
    assert.equal(a.route, 'first');
    const b = simulate(listeners, routes, clusters, { port: 80, host: 'api.example.com', path: '/b' });
    assert.equal(b.route, 'second');
    assert.equal(b.timeoutMs, 2500);
    assert.deepEqual(b.retries, { attempts: 4, retryOn: '5xx', perTryTimeoutMs: 1000 });
  });
  it('a tcp call on an HTTP chain is an error, not a guess', () => {
    assert.match(simulate(listeners, routes, clusters, { port: 80, destinationIp: '10.0.0.9', protocol: 'tcp' }).error ?? '', /expects HTTP/);
  });
  it('string matchers', () => {
    assert.ok(stringMatches({ exact: 'A', ignore_case: true }, 'a'));
    assert.ok(!stringMatches({ exact: 'A' }, 'a'));
    assert.ok(stringMatches({ safe_regex: { regex: 'v[0-9]' } }, 'v1'));
    assert.ok(!stringMatches({ safe_regex: { regex: 'v[0-9]' } }, 'xv1'));
    assert.ok(stringMatches({ suffix: '.com' }, 'a.com'));
  });
});
