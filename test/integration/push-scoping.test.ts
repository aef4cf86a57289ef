// Pushes go only to the proxies a change can affect: a VirtualService in namespace c reaches a proxy
// without a Sidecar (it imports every namespace) but not one whose Sidecar egress imports only `./*`.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { loadString } from '../../src/config/loader.ts';
import { ControlPlane } from '../../src/controlplane/server.ts';
import { TYPE_URLS } from '../../src/xds/protos.ts';
import type { Logger } from '../../src/common/log.ts';
import { TestAdsClient } from '../helpers/ads-client.ts';

const quiet: Logger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

const svc = (name: string, ns: string): string => `apiVersion: v1\nkind: Service\nmetadata: {name: ${name}, namespace: ${ns}}\nspec:\n  selector: {app: ${name}}\n  ports: [{name: http, port: 80}]\n---\n`;
const MESH = `${svc('a', 'a')}${svc('b', 'b')}${svc('c', 'c')}apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: a}
spec:
  egress:
  - hosts: ["./*"]
`;
const vs = (weight: number): string => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: c, namespace: c}
spec:
  hosts: [c.c.svc.cluster.local]
  http:
  - timeout: ${weight}s
    route:
    - destination: {host: c.c.svc.cluster.local}
`;

describe('pushes scoped by Sidecar egress', () => {
  let cp: ControlPlane;
  let scoped: TestAdsClient;
  let open: TestAdsClient;
  before(async () => {
    cp = new ControlPlane({ xdsAddress: '127.0.0.1:0', httpAddress: '127.0.0.1:0', log: quiet, debounce: { quietMs: 10, maxDelayMs: 50 } });
    await cp.start();
    assert.equal(cp.store.apply(loadString(MESH, 'mesh.yaml').resources).accepted, true);
    scoped = new TestAdsClient(`127.0.0.1:${cp.xdsPort}`, { pod: 'a-1', namespace: 'a', ip: '10.1.0.1', labels: { app: 'a' } });
    open = new TestAdsClient(`127.0.0.1:${cp.xdsPort}`, { pod: 'b-1', namespace: 'b', ip: '10.1.0.2', labels: { app: 'b' } });
    for (const c of [scoped, open]) {
      c.subscribe(TYPE_URLS.ROUTE, ['80']);
      c.ack(await c.next(TYPE_URLS.ROUTE), ['80']);
    }
  });
  after(async () => {
    scoped.close();
    open.close();
    await cp.stop();
  });

  it('pushes a VirtualService in namespace c to the unscoped proxy only', async () => {
    assert.equal(cp.store.apply(loadString(vs(3), 'vs.yaml').resources).accepted, true);
    const pushed = await open.next(TYPE_URLS.ROUTE);
    const rc = pushed.resources.find((r) => r.name === '80');
    assert.match(JSON.stringify(rc), /"timeout":"3s"/, 'the unscoped proxy got the new route');
    open.ack(pushed, ['80']);
    // the scoped proxy is not pushed: give the debounce and the push ample time, then check nothing arrived
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(scoped.pending(TYPE_URLS.ROUTE), 0);
  });

  it('still pushes a change in its own namespace to the scoped proxy', async () => {
    assert.equal(cp.store.apply(loadString(svc('a2', 'a'), 'a2.yaml').resources).accepted, true);
    const pushed = await scoped.next(TYPE_URLS.ROUTE);
    assert.ok(pushed.resources.length > 0);
  });
});
