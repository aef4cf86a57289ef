// A push sends each proxy only what changed for it: a VirtualService weight change reaches the proxies as
// one RDS response holding the one route configuration it changed; clusters, endpoints, listeners and the
// other route configuration are not sent again.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { loadString } from '../../src/config/loader.ts';
import { ControlPlane } from '../../src/controlplane/server.ts';
import { TYPE_URLS } from '../../src/xds/protos.ts';
import type { Logger } from '../../src/common/log.ts';
import { TestAdsClient, type Decoded } from '../helpers/ads-client.ts';

const quiet: Logger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

const deployment = (name: string, ns: string, version: string): string => `apiVersion: apps/v1
kind: Deployment
metadata: {name: ${name}-${version}, namespace: ${ns}}
spec:
  replicas: 1
  selector: {matchLabels: {app: ${name}, version: ${version}}}
  template:
    metadata: {labels: {app: ${name}, version: ${version}}}
    spec: {containers: [{name: app, image: ${name}, ports: [{containerPort: 80}, {containerPort: 9090}]}]}
---
`;
const service = (name: string, ns: string): string => `apiVersion: v1
kind: Service
metadata: {name: ${name}, namespace: ${ns}}
spec:
  selector: {app: ${name}}
  ports: [{name: http, port: 80}, {name: grpc, port: 9090}]
---
`;
const vs = (weight: number): string => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: shop, namespace: a}
spec:
  hosts: [shop]
  http:
  - match: [{port: 80}]
    route:
    - {destination: {host: shop, subset: v1}, weight: ${weight}}
    - {destination: {host: shop, subset: v2}, weight: ${100 - weight}}
`;
const MESH = `${service('shop', 'a')}${deployment('shop', 'a', 'v1')}${deployment('shop', 'a', 'v2')}${service('web', 'b')}${deployment('web', 'b', 'v1')}apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: shop, namespace: a}
spec:
  host: shop
  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]
---
${vs(90)}`;

const ALL = [TYPE_URLS.CLUSTER, TYPE_URLS.ENDPOINT, TYPE_URLS.LISTENER, TYPE_URLS.ROUTE];

/** An Envoy-like sidecar: CDS and LDS, then EDS and RDS for the names they carry, everything ACKed. */
class Sidecar {
  readonly ads: TestAdsClient;
  readonly names = new Map<string, string[]>();
  constructor(port: number, pod: string, namespace: string, ip: string, app: string) {
    this.ads = new TestAdsClient(`127.0.0.1:${port}`, { pod, namespace, ip, labels: { app, version: 'v1' } });
  }

  async sync(): Promise<void> {
    this.ads.subscribe(TYPE_URLS.CLUSTER);
    const cds = await this.ads.next(TYPE_URLS.CLUSTER);
    const eds = cds.resources.filter((c) => c.type === 'EDS').map((c) => String(c.name));
    this.names.set(TYPE_URLS.ENDPOINT, eds);
    this.ads.subscribe(TYPE_URLS.ENDPOINT, eds);
    this.ads.ack(cds);
    this.ads.ack(await this.ads.next(TYPE_URLS.ENDPOINT), eds);
    this.ads.subscribe(TYPE_URLS.LISTENER);
    const lds = await this.ads.next(TYPE_URLS.LISTENER);
    const rds = ['80', '9090'];
    assert.ok(JSON.stringify(lds.resources).includes('"route_config_name":"9090"'));
    this.names.set(TYPE_URLS.ROUTE, rds);
    this.ads.subscribe(TYPE_URLS.ROUTE, rds);
    this.ads.ack(lds);
    this.ads.ack(await this.ads.next(TYPE_URLS.ROUTE), rds);
  }

  ack(r: Decoded): void {
    this.ads.ack(r, this.names.get(r.raw.type_url) ?? []);
  }

  /** Responses of every type received and not consumed yet, drained. */
  async drain(): Promise<Decoded[]> {
    const out: Decoded[] = [];
    for (const t of ALL) while (this.ads.pending(t) > 0) out.push(await this.ads.next(t));
    return out;
  }
}

describe('pushes send only what changed', () => {
  let cp: ControlPlane;
  let proxies: Sidecar[];
  before(async () => {
    cp = new ControlPlane({ xdsAddress: '127.0.0.1:0', httpAddress: '127.0.0.1:0', log: quiet, debounce: { quietMs: 10, maxDelayMs: 50 } });
    await cp.start();
    assert.equal(cp.store.apply(loadString(MESH, 'mesh.yaml').resources).accepted, true);
    const pods = cp.pushContext().registry.workloads.filter((w) => w.kind === 'Pod');
    const web = pods.find((w) => w.labels.app === 'web');
    const shop = pods.find((w) => w.labels.app === 'shop');
    assert.ok(web && shop);
    proxies = [new Sidecar(cp.xdsPort, web.name, 'b', web.ip, 'web'), new Sidecar(cp.xdsPort, shop.name, 'a', shop.ip, 'shop')];
    for (const p of proxies) await p.sync();
  });
  after(async () => {
    for (const p of proxies) p.ads.close();
    await cp.stop();
  });

  it('sends a weight change as the one route configuration it changed, to every proxy that sees it', async () => {
    assert.equal(cp.store.apply(loadString(vs(70), 'vs.yaml').resources).accepted, true);
    for (const p of proxies) {
      const rds = await p.ads.next(TYPE_URLS.ROUTE);
      assert.deepEqual(rds.resources.map((r) => r.name), ['80'], 'only the route configuration of port 80 changed');
      assert.match(JSON.stringify(rds.resources[0]), /"weight":70/);
      p.ack(rds);
    }
    // a second change, to clusters: what arrives before its CDS shows what the first one sent
    assert.equal(cp.store.apply(loadString(service('extra', 'b'), 'extra.yaml').resources).accepted, true);
    for (const p of proxies) {
      const cds = await p.ads.next(TYPE_URLS.CLUSTER);
      assert.ok(cds.resources.some((c) => String(c.name).includes('extra.b.svc')));
      const earlier = (await p.drain()).filter((r) => r.version !== cds.version);
      assert.deepEqual(earlier.map((r) => r.raw.type_url), [], 'the weight change sent nothing but RDS');
    }
  });
});
