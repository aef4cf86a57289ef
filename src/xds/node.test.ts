import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isMeshError } from '../common/errors.ts';
import { formatNodeId, parseNode } from './node.ts';

describe('Istio node identity', () => {
  it('reads a sidecar id and its metadata', () => {
    const id = formatNodeId({ ip: '10.1.0.5', podName: 'reviews-v1-7d9f', namespace: 'bookinfo' });
    assert.equal(id, 'sidecar~10.1.0.5~reviews-v1-7d9f.bookinfo~bookinfo.svc.cluster.local');
    const p = parseNode({ id, metadata: { LABELS: { app: 'reviews', version: 'v1' }, INSTANCE_IPS: '10.1.0.5,fd00::5', SERVICE_ACCOUNT: 'bookinfo-reviews' } });
    assert.equal(p.type, 'sidecar');
    assert.equal(p.podName, 'reviews-v1-7d9f');
    assert.equal(p.namespace, 'bookinfo');
    assert.equal(p.ip, '10.1.0.5');
    assert.deepEqual(p.ips, ['10.1.0.5', 'fd00::5']);
    assert.deepEqual(p.labels, { app: 'reviews', version: 'v1' });
    assert.equal(p.metadata.SERVICE_ACCOUNT, 'bookinfo-reviews');
    assert.equal(p.dnsDomain, 'bookinfo.svc.cluster.local');
  });

  it('prefers NAMESPACE and NAME from metadata and recognises proxyless gRPC', () => {
    const p = parseNode({ id: 'sidecar~10.0.0.9~client.other~other.svc.cluster.local', metadata: { GENERATOR: 'grpc', NAMESPACE: 'test', NAME: 'client-0' } });
    assert.equal(p.type, 'grpc');
    assert.equal(p.namespace, 'test');
    assert.equal(p.podName, 'client-0');
    assert.equal(parseNode({ id: 'router~10.0.0.1~gw.istio-system~istio-system.svc.cluster.local' }).type, 'router');
  });

  it('rejects ids that are not Istio-shaped, saying what the form is', () => {
    for (const id of ['', 'test-client', 'sidecar~10.0.0.1~pod.ns', 'waypoint~1.2.3.4~p.ns~ns.svc.cluster.local']) {
      assert.throws(() => parseNode({ id }), (err: unknown) => isMeshError(err) && err.code === 'MESH_ERR_XDS_DECODE' && /type~ip~podName\.namespace|neither sidecar nor router/.test(err.message), id);
    }
  });
});
