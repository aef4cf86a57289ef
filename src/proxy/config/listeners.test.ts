import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileListener, selectChain } from './listeners.ts';
import { ConfigError } from './errors.ts';

const tcp = (cluster: string) => ({ name: 'envoy.filters.network.tcp_proxy', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy', stat_prefix: cluster, cluster } });
const hcm = { name: 'envoy.filters.network.http_connection_manager', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager', stat_prefix: 'x', rds: { route_config_name: '80' }, http_filters: [{ name: 'envoy.filters.http.router', typed_config: {} }] } };

const l = compileListener({
  name: '0.0.0.0_443',
  address: { socket_address: { address: '0.0.0.0', port_value: 443 } },
  filter_chains: [
    { name: 'sni-exact', filter_chain_match: { server_names: ['api.example.com'] }, filters: [tcp('exact')] },
    { name: 'sni-wild', filter_chain_match: { server_names: ['*.example.com'] }, filters: [tcp('wild')] },
    { name: 'http', filter_chain_match: { application_protocols: ['http/1.1', 'h2c'] }, filters: [hcm] },
    { name: 'subnet', filter_chain_match: { prefix_ranges: [{ address_prefix: '10.96.0.0', prefix_len: 16 }] }, filters: [tcp('subnet')] },
  ],
  default_filter_chain: { name: 'passthrough', filters: [tcp('PassthroughCluster')] },
  bind_to_port: false,
});

const facts = (o: Partial<{ ip: string; sni: string; tls: boolean; alpn: string[] }>) => ({
  destinationIp: o.ip ?? '1.2.3.4',
  destinationPort: 443,
  transportProtocol: o.tls ? 'tls' : 'raw_buffer',
  applicationProtocols: o.alpn ?? [],
  ...(o.sni ? { serverName: o.sni } : {}),
});

describe('filter chain selection', () => {
  it('prefers the longest destination prefix, then exact SNI over wildcard, then ALPN', () => {
    assert.equal(selectChain(l, facts({ ip: '10.96.1.1' }))?.name, 'subnet');
    assert.equal(selectChain(l, facts({ sni: 'api.example.com', tls: true }))?.name, 'sni-exact');
    assert.equal(selectChain(l, facts({ sni: 'www.example.com', tls: true }))?.name, 'sni-wild');
    assert.equal(selectChain(l, facts({ alpn: ['http/1.1'] }))?.name, 'http');
    assert.equal(selectChain(l, facts({ sni: 'other.org', tls: true }))?.name, 'passthrough');
    assert.equal(l.inspectTls, true);
    assert.equal(l.inspectHttp, true);
  });
  it('rejects configs it cannot run with a message naming the listener', () => {
    assert.throws(() => compileListener({ name: 'bad', address: { socket_address: { address: '0.0.0.0', port_value: 1 } }, filter_chains: [{ filters: [{ name: 'x', typed_config: { '@type': 'type.googleapis.com/some.Other' } }] }] }), (e: unknown) => e instanceof ConfigError && /listener bad: .*not supported/.test(e.message));
  });
});
