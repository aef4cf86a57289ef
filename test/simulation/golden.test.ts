// Golden files: the exact listeners and routes generated for one small mesh (regenerate with TSMESH_UPDATE_GOLDEN=1 and review the diff).

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildConfigDump } from '../../src/controlplane/debug/config-dump.ts';
import { DUMP_TYPES } from '../../src/xds/configdump/dump.ts';
import { encodeAny } from '../../src/xds/protos.ts';
import { app, encodeFailures, parse, proxyFor } from './harness.ts';

const DIR = join(import.meta.dirname, 'golden');
const UPDATE = process.env.TSMESH_UPDATE_GOLDEN === '1';

const MESH = [
  app('frontend', 'shop', [{ name: 'http', port: 8000, targetPort: 8080 }]),
  app('cart', 'shop', [{ name: 'http', port: 9080 }], ['v1', 'v2']),
  app('cache', 'shop', [{ name: 'tcp-redis', port: 6379 }]),
  `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: cart, namespace: shop}
spec:
  host: cart
  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: cart, namespace: shop}
spec:
  hosts: [cart]
  http:
  - name: beta-testers
    match: [{headers: {x-beta: {exact: "1"}}}]
    route: [{destination: {host: cart, subset: v2}}]
    timeout: 2s
  - name: stable
    route:
    - {destination: {host: cart, subset: v1}, weight: 90}
    - {destination: {host: cart, subset: v2}, weight: 10}
`,
].join('---\n');

function golden(name: string, value: unknown): void {
  const file = join(DIR, name);
  const text = `${JSON.stringify(value, null, 2)}\n`;
  if (UPDATE || !existsSync(file)) {
    writeFileSync(file, text);
    if (!UPDATE) assert.fail(`golden file ${name} was missing and has been written; review and rerun`);
    return;
  }
  assert.equal(text, readFileSync(file, 'utf8'), `${name} differs from the golden file (TSMESH_UPDATE_GOLDEN=1 to accept)`);
}

describe('golden xDS for shop/frontend', () => {
  const p = proxyFor(parse(MESH, 'shop'), 'frontend', 'shop');
  it('fits Envoy protos', () => assert.deepEqual(encodeFailures(p), []));
  it('listeners', () => golden('shop-frontend.listeners.json', p.listeners));
  it('routes', () => golden('shop-frontend.routes.json', p.routes));
});

describe('config dump carries listeners and routes', () => {
  it('ListenersConfigDump and RoutesConfigDump with the generated resources, valid against Envoy protos', () => {
    const p = proxyFor(parse(MESH, 'shop'), 'frontend', 'shop');
    const dump = buildConfigDump(p.proxy, p.push, new Date('2024-01-02T03:04:05Z'));
    const listeners = dump.configs.find((c) => c['@type'] === DUMP_TYPES.listeners);
    const routes = dump.configs.find((c) => c['@type'] === DUMP_TYPES.routes);
    assert.ok(listeners && routes);
    const names = (listeners.dynamic_listeners as Array<{ name: string; active_state: { listener: { name: string } } }>).map((l) => [l.name, l.active_state.listener.name]);
    assert.deepEqual(names, p.listeners.map((l) => [l.name, l.name]));
    assert.deepEqual((routes.dynamic_route_configs as Array<{ route_config: { name: string } }>).map((r) => r.route_config.name), ['8000', '9080']);
    for (const section of dump.configs) encodeAny(section);
  });
});
