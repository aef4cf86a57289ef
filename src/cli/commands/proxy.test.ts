import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isMeshError } from '../../common/errors.ts';
import { proxyOptions } from './proxy.ts';

const code = (c: string) => (e: unknown): boolean => isMeshError(e) && e.code === c;

describe('tsmesh proxy arguments', () => {
  it('accepts Istio\'s injected command line and takes only --concurrency from it', () => {
    const o = proxyOptions(['sidecar', '--domain', 'demo.svc.cluster.local', '--serviceCluster', 'nginx.demo', '--proxyLogLevel=warning', '--proxyComponentLogLevel=misc:error', '--log_output_level=default:info', '--concurrency', '2'], {});
    assert.equal(o.concurrency, 2);
    assert.deepEqual(o.unknown, []);
  });

  it('defaults to one process, else PROXY_CONFIG\'s concurrency; the flag wins', () => {
    assert.equal(proxyOptions([], {}).concurrency, 1);
    assert.equal(proxyOptions([], { PROXY_CONFIG: '{"concurrency":3}' }).concurrency, 3);
    assert.equal(proxyOptions(['--concurrency=2'], { PROXY_CONFIG: '{"concurrency":3}' }).concurrency, 2);
    assert.ok(proxyOptions(['--concurrency', '0'], {}).concurrency >= 1, '0: one per CPU');
  });

  it('reports flags it does not know instead of failing, and refuses what it cannot be', () => {
    assert.deepEqual(proxyOptions(['--stsPort=15463', '--brand-new-flag'], {}).unknown, ['--brand-new-flag']);
    assert.equal(proxyOptions(['--discovery-address', '10.0.0.1:15010'], {}).env.XDS_ADDRESS, '10.0.0.1:15010');
    assert.throws(() => proxyOptions(['router'], {}), code('MESH_ERR_CLI_USAGE'));
    assert.throws(() => proxyOptions(['--concurrency'], {}), code('MESH_ERR_CLI_USAGE'));
    assert.throws(() => proxyOptions(['--concurrency', 'two'], {}), code('MESH_ERR_CLI_USAGE'));
    assert.throws(() => proxyOptions([], { PROXY_CONFIG: '{"concurrency":-1}' }), code('MESH_ERR_PROXY_WORKERS'));
  });
});
