// The sidecar bundle's precompiled Envoy protos (src/xds/proto-descriptor.ts) decode everything the control plane
// sends sidecars exactly as the full parsed set does: Bookinfo with mTLS DestinationRules and subsets, fault
// injection, weighted routes, retries and CORS, an AuthorizationPolicy, access logs (whatever of these the control
// plane translates); and they encode a sidecar's requests and peer metadata to the same bytes. A type the pruning
// dropped would show here as "@bytes" or an error.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import protobuf from 'protobufjs';
import type { Logger } from '../src/common/log.ts';
import { loadString } from '../src/config/loader.ts';
import { ControlPlane } from '../src/controlplane/server.ts';
import { AdsStream } from '../src/proxy/xds-client/ads-stream.ts';
import type { DiscoveryRequest, DiscoveryResponse } from '../src/xds/ads-service.ts';
import { formatNodeId } from '../src/xds/node.ts';
import { sidecarDescriptor } from '../src/xds/proto-descriptor.ts';
import { ProtoJson } from '../src/xds/proto-json.ts';
import { PROTO_FILES, protos, TYPE_URLS } from '../src/xds/protos.ts';
import { istioPath } from './helpers/shared.ts';

const quiet: Logger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };
type Json = Record<string, unknown>;

const EXTRA = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: reviews-viewer, namespace: default}
spec:
  selector: {matchLabels: {app: reviews}}
  action: ALLOW
  rules:
  - from: [{source: {principals: [cluster.local/ns/default/sa/bookinfo-productpage]}}]
    to: [{operation: {methods: [GET], paths: [/reviews/*]}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: productpage, namespace: default}
spec:
  hosts: [productpage]
  http:
  - corsPolicy: {allowOrigins: [{exact: https://example.com}], allowMethods: [GET], maxAge: 24h}
    retries: {attempts: 3, perTryTimeout: 2s, retryOn: 5xx}
    timeout: 10s
    route: [{destination: {host: productpage}}]
`;

/** Subscribes like a sidecar (CDS, LDS, then the EDS and RDS names they name) and keeps the last response of each type. */
async function fetchAll(address: string, node: DiscoveryRequest['node']): Promise<Map<string, DiscoveryResponse>> {
  const got = new Map<string, DiscoveryResponse>();
  return new Promise((resolve, reject) => {
    let first = true;
    const send = (r: DiscoveryRequest): void => {
      stream.send(first ? { ...r, node } : r);
      first = false;
    };
    const stream: AdsStream = new AdsStream({
      address,
      onClose: (why) => reject(new Error(why)),
      onResponse: (r) => {
        got.set(r.type_url, r);
        const ack = { type_url: r.type_url, version_info: r.version_info, response_nonce: r.nonce };
        const decoded = r.resources.map((a) => protos().json.anyToJson(a));
        if (r.type_url === TYPE_URLS.CLUSTER) {
          send({ ...ack, resource_names: [] });
          const eds = decoded.filter((c) => c.type === 'EDS').map((c) => String(c.name));
          send({ type_url: TYPE_URLS.ENDPOINT, resource_names: eds });
        } else if (r.type_url === TYPE_URLS.LISTENER) {
          send({ ...ack, resource_names: [] });
          const names = new Set<string>();
          JSON.stringify(decoded, (k, v: unknown) => {
            if (k === 'route_config_name' && typeof v === 'string') names.add(v);
            return v;
          });
          send({ type_url: TYPE_URLS.ROUTE, resource_names: [...names] });
        }
        if (got.size === 4) {
          stream.close();
          resolve(got);
        }
      },
    });
    send({ type_url: TYPE_URLS.CLUSTER, resource_names: [] });
    send({ type_url: TYPE_URLS.LISTENER, resource_names: [] });
  });
}

describe("the sidecar bundle's precompiled protos", () => {
  let cp: ControlPlane;
  let pruned: ProtoJson;
  let prunedRoot: protobuf.Root;
  before(async () => {
    cp = new ControlPlane({ xdsAddress: '127.0.0.1:0', httpAddress: '127.0.0.1:0', log: quiet, meshOverrides: ['meshConfig.accessLogFile=/dev/stdout'] });
    const yaml = [
      readFileSync(istioPath('samples', 'bookinfo', 'platform', 'kube', 'bookinfo.yaml'), 'utf8'),
      readFileSync(istioPath('samples', 'bookinfo', 'networking', 'destination-rule-all-mtls.yaml'), 'utf8'),
      readFileSync(istioPath('samples', 'bookinfo', 'networking', 'virtual-service-reviews-80-20.yaml'), 'utf8'),
      readFileSync(istioPath('samples', 'bookinfo', 'networking', 'fault-injection-details-v1.yaml'), 'utf8'),
      EXTRA,
    ].join('\n---\n');
    const loaded = loadString(yaml, 'bookinfo.yaml');
    assert.ok(cp.store.apply(loaded.resources, 'test', loaded.diagnostics).accepted);
    await cp.start();
    const { descriptor } = sidecarDescriptor(protos().root, PROTO_FILES);
    prunedRoot = protobuf.Root.fromJSON(descriptor);
    prunedRoot.resolveAll();
    pruned = new ProtoJson(prunedRoot);
  });
  after(async () => {
    await cp.stop();
  });

  it('keep fewer types than the full set, and every resource type', () => {
    const count = (ns: protobuf.NamespaceBase): number => ns.nestedArray.reduce((n, o) => n + (o instanceof protobuf.Type ? 1 : 0) + (o instanceof protobuf.Namespace ? count(o) : 0), 0);
    assert.ok(count(prunedRoot) < count(protos().root) * 0.8, `${count(prunedRoot)} of ${count(protos().root)} types`);
    for (const url of Object.values(TYPE_URLS)) assert.ok(pruned.lookup(url), url);
  });

  for (const app of ['productpage', 'reviews']) {
    it(`decode every resource a ${app} sidecar gets exactly as the full set does`, async () => {
      const w = cp.pushContext().registry.workloads.find((x) => x.labels.app === app);
      assert.ok(w);
      const node = { id: formatNodeId({ ip: w.ip, podName: w.name, namespace: 'default' }), metadata: { NAMESPACE: 'default', NAME: w.name, INSTANCE_IPS: w.ip, LABELS: w.labels } };
      const responses = await fetchAll(`127.0.0.1:${cp.xdsPort}`, node);
      let resources = 0;
      const packed = new Set<string>();
      for (const r of responses.values()) {
        for (const any of r.resources) {
          const full = protos().json.anyToJson(any);
          assert.deepEqual(pruned.anyToJson(any), full);
          resources++;
          JSON.stringify(full, (k, v: unknown) => {
            if (k === '@type' && typeof v === 'string') packed.add(v.slice(v.lastIndexOf('.') + 1));
            return v;
          });
        }
      }
      assert.ok(resources > 20, `${resources} resources`);
      // what the comparison covered: the filters and options inside Anys
      for (const t of ['HttpConnectionManager', 'Router', 'HTTPFault', 'CorsPolicy', 'TcpProxy', 'FileAccessLog', 'PreviousHostsPredicate']) assert.ok(packed.has(t), `${t} in ${[...packed].join(', ')}`);
    });
  }

  it('encode a sidecar request and its peer metadata to the same bytes', () => {
    const encode = (j: ProtoJson, root: protobuf.Root, name: string, obj: Json): Buffer => {
      const type = root.lookupType(name);
      return Buffer.from(type.encode(j.toWire(type, obj) as Json).finish());
    };
    const req = {
      type_url: TYPE_URLS.ROUTE, version_info: '3', response_nonce: 'n', resource_names: ['80', '9080'],
      node: { id: 'sidecar~10.0.0.1~a.b~b.svc.cluster.local', metadata: { LABELS: { app: 'a' }, INSTANCE_IPS: '10.0.0.1', ISTIO_VERSION: '1.28.0', n: 2, ok: true, l: [1, 'x'] } },
      error_detail: { code: 3, message: 'no' },
    };
    const name = 'envoy.service.discovery.v3.DiscoveryRequest';
    assert.deepEqual(encode(pruned, prunedRoot, name, req), encode(protos().json, protos().root, name, req));
    const meta = { NAME: 'a', LABELS: { app: 'a', version: 'v1' }, PLATFORM_METADATA: {} };
    assert.deepEqual(encode(pruned, prunedRoot, 'google.protobuf.Struct', meta), encode(protos().json, protos().root, 'google.protobuf.Struct', meta));
  });
});
