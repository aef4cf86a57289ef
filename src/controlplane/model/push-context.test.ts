// The push context: resources by kind, DestinationRule lookup order, VirtualService visibility.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { loadPaths, loadString } from '../../config/loader.ts';
import type { Resource } from '../../config/resource.ts';
import { istioPath } from '../../../test/helpers/shared.ts';
import { buildPushContext } from './push-context.ts';

function yaml(text: string, ns = 'default'): Resource[] {
  const r = loadString(text, 'inline.yaml', { defaultNamespace: ns });
  assert.deepEqual(r.diagnostics.filter((d) => d.severity === 'error'), []);
  return r.resources;
}

async function bookinfoWith(...networking: string[]): Promise<Resource[]> {
  const paths = [istioPath('samples', 'bookinfo', 'platform', 'kube', 'bookinfo.yaml'), ...networking.map((n) => istioPath('samples', 'bookinfo', 'networking', n))];
  return (await loadPaths(paths, { defaultNamespace: 'bookinfo' })).resources;
}

const svcDoc = (name: string, ns: string): string => `apiVersion: v1
kind: Service
metadata: {name: ${name}, namespace: ${ns}}
spec: {selector: {app: ${name}}, ports: [{name: http, port: 80}]}
`;
const drDoc = (name: string, ns: string, host: string, extra = ''): string => `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ${name}, namespace: ${ns}}
spec:
  host: ${host}
${extra}`;

describe('buildPushContext', () => {
  it('sorts resources by kind and gets a new version on every build', async () => {
    const rs = await bookinfoWith('destination-rule-all.yaml', 'virtual-service-all-v1.yaml', 'bookinfo-gateway.yaml');
    const a = buildPushContext(rs);
    const b = buildPushContext(rs);
    assert.notEqual(a.version, b.version);
    assert.equal(a.destinationRules.length, 4);
    assert.equal(a.virtualServices.length, 5);
    assert.equal(a.gateways.length, 1);
    assert.equal(a.registry.services.length, 4);
    assert.equal(a.mesh.rootNamespace, 'istio-system');
  });

  it('keeps mesh-config diagnostics and uses an explicit mesh when given', () => {
    const cm = yaml('apiVersion: v1\nkind: ConfigMap\nmetadata: {name: istio, namespace: istio-system}\ndata:\n  mesh: "outboundTrafficPolicy: {mode: NOPE}"\n');
    const push = buildPushContext(cm);
    assert.equal(push.meshDiagnostics.length, 1);
    assert.equal(push.mesh.outboundTrafficPolicy.mode, 'ALLOW_ANY');
  });
});

describe('destinationRuleFor', () => {
  it("short DR hosts resolve in the DR's namespace", async () => {
    const push = buildPushContext(await bookinfoWith('destination-rule-all.yaml'));
    assert.equal(push.destinationRuleFor('bookinfo', 'reviews.bookinfo.svc.cluster.local')?.metadata.name, 'reviews');
    assert.equal(push.destinationRuleFor('default', 'reviews.bookinfo.svc.cluster.local')?.metadata.name, 'reviews', "found in the service's namespace");
    assert.equal(push.destinationRuleFor('bookinfo', 'reviews.other.svc.cluster.local'), undefined);
  });

  it("follows Istio's order: proxy namespace, then service namespace, then root namespace", () => {
    const base = [svcDoc('web', 'shop'), drDoc('root-wide', 'istio-system', '"*.shop.svc.cluster.local"')];
    let push = buildPushContext(yaml(base.join('---\n')));
    assert.equal(push.destinationRuleFor('client', 'web.shop.svc.cluster.local')?.metadata.name, 'root-wide');
    push = buildPushContext(yaml([...base, drDoc('owner', 'shop', 'web')].join('---\n')));
    assert.equal(push.destinationRuleFor('client', 'web.shop.svc.cluster.local')?.metadata.name, 'owner');
    push = buildPushContext(yaml([...base, drDoc('owner', 'shop', 'web'), drDoc('mine', 'client', 'web.shop.svc.cluster.local')].join('---\n')));
    assert.equal(push.destinationRuleFor('client', 'web.shop.svc.cluster.local')?.metadata.name, 'mine');
    assert.equal(push.destinationRuleFor('other', 'web.shop.svc.cluster.local')?.metadata.name, 'owner');
  });

  it('the most specific host wins within a namespace', () => {
    const push = buildPushContext(yaml([
      svcDoc('web', 'shop'),
      drDoc('any', 'shop', '"*"'),
      drDoc('wild', 'shop', '"*.shop.svc.cluster.local"'),
      drDoc('exact', 'shop', 'web.shop.svc.cluster.local'),
      svcDoc('api', 'shop'),
    ].join('---\n')));
    assert.equal(push.destinationRuleFor('shop', 'web.shop.svc.cluster.local')?.metadata.name, 'exact');
    assert.equal(push.destinationRuleFor('shop', 'api.shop.svc.cluster.local')?.metadata.name, 'wild');
    assert.equal(push.destinationRuleFor('shop', 'httpbin.org')?.metadata.name, 'any');
  });

  it("respects exportTo outside the rule's own namespace, and workloadSelector", () => {
    const push = buildPushContext(yaml([
      svcDoc('web', 'shop'),
      drDoc('private', 'shop', 'web', '  exportTo: ["."]\n'),
      drDoc('for-canary', 'client', 'web.shop.svc.cluster.local', '  workloadSelector: {matchLabels: {track: canary}}\n'),
    ].join('---\n').replace('matchLabels', 'labels')));
    assert.equal(push.destinationRuleFor('shop', 'web.shop.svc.cluster.local')?.metadata.name, 'private');
    assert.equal(push.destinationRuleFor('client', 'web.shop.svc.cluster.local'), undefined);
    assert.equal(push.destinationRuleFor('client', 'web.shop.svc.cluster.local', { track: 'canary' })?.metadata.name, 'for-canary');
  });
});

describe('virtualServicesFor', () => {
  it('separates mesh VirtualServices from gateway-bound ones', async () => {
    const push = buildPushContext(await bookinfoWith('virtual-service-all-v1.yaml', 'bookinfo-gateway.yaml'));
    assert.deepEqual(push.virtualServicesFor('bookinfo').map((v) => v.metadata.name).sort(), ['details', 'productpage', 'ratings', 'reviews']);
    assert.deepEqual(push.virtualServicesFor('istio-system', 'bookinfo/bookinfo-gateway').map((v) => v.metadata.name), ['bookinfo']);
    assert.deepEqual(push.virtualServicesFor('istio-system', 'bookinfo-gateway').map((v) => v.metadata.name), ['bookinfo']);
    assert.deepEqual(push.virtualServicesFor('istio-system', 'other/bookinfo-gateway'), []);
    const reviews = push.virtualServices.find((v) => v.metadata.name === 'reviews');
    assert.ok(reviews);
    assert.deepEqual(push.virtualServiceHosts(reviews), ['reviews.bookinfo.svc.cluster.local']);
  });

  it("applies exportTo: '.', a namespace list, and the mesh default", () => {
    const vs = (name: string, exportTo: string): string => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ${name}, namespace: shop}
spec:
  hosts: [${name}]
${exportTo}  http: [{route: [{destination: {host: ${name}}}]}]
`;
    const rs = yaml([vs('open', ''), vs('private', '  exportTo: ["."]\n'), vs('partners', '  exportTo: [partner]\n')].join('---\n'));
    const names = (ns: string): string[] => buildPushContext(rs).virtualServicesFor(ns).map((v) => v.metadata.name).sort();
    assert.deepEqual(names('shop'), ['open', 'private']);
    assert.deepEqual(names('partner'), ['open', 'partners']);
    assert.deepEqual(names('elsewhere'), ['open']);
    const mesh = { ...buildPushContext([]).mesh, defaultVirtualServiceExportTo: ['.'] };
    assert.deepEqual(buildPushContext(rs, { mesh }).virtualServicesFor('elsewhere').map((v) => v.metadata.name), []);
  });
});
