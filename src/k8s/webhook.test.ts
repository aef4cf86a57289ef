import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { isMeshError } from '../common/errors.ts';
import { injectPod, type PodTemplate } from '../inject/inject.ts';
import { createInjectionWebhook, jsonPatchDiff, serveInjectionWebhook, type AdmissionReview, type JsonPatchOp, type ServingWebhook, type WebhookInjectOptions } from './webhook.ts';

// ---------------------------------------------------------------------------------------------
// A small RFC 6902 apply (add, remove, replace), strict about paths, to check the webhook's patches.

function unescape(seg: string): string {
  return seg.replace(/~1/g, '/').replace(/~0/g, '~');
}

function applyPatch(doc: unknown, ops: readonly JsonPatchOp[]): unknown {
  let root: unknown = structuredClone(doc);
  for (const op of ops) {
    if (op.path === '') {
      assert.equal(op.op, 'replace', 'only replace may target the root');
      root = structuredClone(op.value);
      continue;
    }
    assert.ok(op.path.startsWith('/'), `a JSON pointer: ${op.path}`);
    const segs = op.path.slice(1).split('/').map(unescape);
    const last = segs.pop() ?? '';
    let parent: unknown = root;
    for (const s of segs) {
      const next: unknown = Array.isArray(parent) ? parent[Number(s)] : (parent as Record<string, unknown>)[s];
      assert.ok(next !== undefined && typeof next === 'object' && next !== null, `${op.path}: ${s} does not exist`);
      parent = next;
    }
    if (Array.isArray(parent)) {
      const i = last === '-' ? parent.length : Number(last);
      assert.ok(Number.isInteger(i) && i >= 0, `${op.path}: array index`);
      if (op.op === 'add') {
        assert.ok(i <= parent.length, `${op.path}: index past the end`);
        parent.splice(i, 0, structuredClone(op.value));
      } else {
        assert.ok(i < parent.length, `${op.path}: no element ${i}`);
        if (op.op === 'remove') parent.splice(i, 1);
        else parent[i] = structuredClone(op.value);
      }
    } else {
      const obj = parent as Record<string, unknown>;
      if (op.op !== 'add') assert.ok(Object.hasOwn(obj, last), `${op.path}: no member ${last} to ${op.op}`);
      if (op.op === 'remove') delete obj[last];
      else obj[last] = structuredClone(op.value);
    }
  }
  return root;
}

// ---------------------------------------------------------------------------------------------

/** A pod as the API server sends it for a Deployment's ReplicaSet. */
function replicaSetPod(extra: { annotations?: Record<string, string>; labels?: Record<string, string> } = {}): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      generateName: 'reviews-v2-5b6f7c9d8-',
      namespace: 'bookinfo',
      labels: { app: 'reviews', version: 'v2', 'pod-template-hash': '5b6f7c9d8', ...extra.labels },
      ...(extra.annotations ? { annotations: extra.annotations } : {}),
      ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'reviews-v2-5b6f7c9d8', uid: 'f1e2', controller: true, blockOwnerDeletion: true }],
    },
    spec: {
      serviceAccountName: 'bookinfo-reviews',
      containers: [{ name: 'reviews', image: 'reviews:v2', ports: [{ containerPort: 9080, protocol: 'TCP' }], volumeMounts: [{ name: 'kube-api-access-x', mountPath: '/var/run/secrets/kubernetes.io/serviceaccount', readOnly: true }] }],
      volumes: [{ name: 'kube-api-access-x', projected: { sources: [] } }],
      restartPolicy: 'Always',
    },
    status: {},
  };
}

function admissionReview(pod: unknown, over: Record<string, unknown> = {}): AdmissionReview {
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: '705ab4f5-6393-11e8-b7cc-42010a800002',
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      namespace: 'bookinfo',
      operation: 'CREATE',
      object: pod,
      ...over,
    },
  };
}

const NAMESPACES: Record<string, Record<string, string>> = {
  bookinfo: { 'istio-injection': 'enabled' },
  plain: {},
  canary: { 'istio.io/rev': 'canary' },
};
const injectOpts: WebhookInjectOptions = { discoveryAddress: 'istiod.istio-system.svc:15012', clusterId: 'cluster-1' };
const webhook = createInjectionWebhook({
  namespaceLabels: async (ns) => {
    if (ns === 'broken') throw new Error('connection refused');
    return NAMESPACES[ns] ?? {};
  },
  injectOpts,
});

const expectedInjection = (pod: Record<string, unknown>): unknown =>
  injectPod(pod as PodTemplate, { ...injectOpts, namespace: 'bookinfo', workloadName: 'reviews-v2', ownerKind: 'Deployment', ownerApiVersion: 'apps/v1' });

async function post(body: unknown, url = '/inject'): Promise<{ status: number; review?: AdmissionReview; text?: string }> {
  const r = await webhook.handle('POST', url, typeof body === 'string' ? body : JSON.stringify(body));
  return typeof r.body === 'string' ? { status: r.status, text: r.body } : { status: r.status, review: r.body };
}

const patchOf = (review: AdmissionReview | undefined): JsonPatchOp[] => JSON.parse(Buffer.from(review?.response?.patch ?? '', 'base64').toString('utf8')) as JsonPatchOp[];

describe('jsonPatchDiff', () => {
  const cases: Array<[string, unknown, unknown]> = [
    ['keys with / and ~', { a: { 'x/y': 1, 'p~q': 2 } }, { a: { 'x/y': 3, 'p~q': 2, 'n/e~w': true } }],
    ['insertion at the front of an array', { c: [{ n: 'app' }] }, { c: [{ n: 'proxy' }, { n: 'app' }] }],
    ['insertions in the middle and at the end', { c: [1, 2, 3] }, { c: [0, 1, 9, 2, 3, 4] }],
    ['removals and changes in arrays', { c: [1, 2, 3, 4] }, { c: [1, 5] }],
    ['a new member holding an object', { m: {} }, { m: { annotations: { 'sidecar.istio.io/status': '{}' } } }],
    ['removed members and type changes', { a: 1, b: [1], c: { d: 1 } }, { b: { x: 1 }, c: 'text' }],
    ['the root', [1], { a: 1 }],
  ];
  for (const [what, before, afterValue] of cases) {
    it(`applying the patch gives the target: ${what}`, () => {
      assert.deepEqual(applyPatch(before, jsonPatchDiff(before, afterValue)), afterValue);
    });
  }
  it('says nothing for equal values and adds, not rewrites, when containers are prepended', () => {
    assert.deepEqual(jsonPatchDiff({ a: [1, { b: 2 }] }, { a: [1, { b: 2 }] }), []);
    assert.deepEqual(jsonPatchDiff({ c: [{ n: 'app' }] }, { c: [{ n: 'proxy' }, { n: 'app' }] }), [{ op: 'add', path: '/c/0', value: { n: 'proxy' } }]);
  });
});

describe('injection webhook: reviews', () => {
  it('patches a pod in an istio-injection=enabled namespace into exactly what injectPod makes; echoes the uid', async () => {
    const pod = replicaSetPod();
    const r = await post(admissionReview(pod));
    assert.equal(r.status, 200);
    const res = r.review?.response;
    assert.equal(r.review?.apiVersion, 'admission.k8s.io/v1');
    assert.equal(r.review?.kind, 'AdmissionReview');
    assert.equal(res?.uid, '705ab4f5-6393-11e8-b7cc-42010a800002');
    assert.equal(res?.allowed, true);
    assert.equal(res?.patchType, 'JSONPatch');
    const patched = applyPatch(pod, patchOf(r.review)) as PodTemplate;
    assert.deepEqual(patched, JSON.parse(JSON.stringify(expectedInjection(pod))));
    const env = new Map((patched.spec?.containers.find((c) => c.name === 'istio-proxy')?.env ?? []).map((e) => [e.name, e.value]));
    assert.equal(env.get('ISTIO_META_WORKLOAD_NAME'), 'reviews-v2', 'the Deployment behind the ReplicaSet');
    assert.equal(env.get('ISTIO_META_OWNER'), 'kubernetes://apis/apps/v1/namespaces/bookinfo/deployments/reviews-v2');
    assert.equal(env.get('ISTIO_META_CLUSTER_ID'), 'cluster-1');
    assert.equal(patched.metadata?.labels?.['service.istio.io/canonical-name'], 'reviews');
  });

  it('/inject/cluster/<id>/net/<net> sets the cluster id, as Istio\'s multicluster paths do', async () => {
    const r = await post(admissionReview(replicaSetPod()), '/inject/cluster/east/net/network1');
    const patched = applyPatch(replicaSetPod(), patchOf(r.review)) as PodTemplate;
    const env = patched.spec?.containers.find((c) => c.name === 'istio-proxy')?.env ?? [];
    assert.equal(env.find((e) => e.name === 'ISTIO_META_CLUSTER_ID')?.value, 'east');
  });

  it('/inject/rev/<rev> serves that revision (namespace istio.io/rev=canary)', async () => {
    const review = admissionReview({ ...replicaSetPod(), metadata: { name: 'p', namespace: 'canary' } }, { namespace: 'canary' });
    assert.equal((await post(review)).review?.response?.patch, undefined, 'the default revision does not serve istio.io/rev=canary');
    const r = await post(review, '/inject/rev/canary');
    const patched = applyPatch(review.request?.object, patchOf(r.review)) as PodTemplate;
    assert.equal(JSON.parse(patched.metadata?.annotations?.['sidecar.istio.io/status'] ?? '{}').revision, 'canary');
  });

  it('allows without a patch: opted-out pods, unlabelled namespaces, other kinds, updates, already injected pods', async () => {
    const noPatch = async (review: AdmissionReview, what: string): Promise<void> => {
      const r = await post(review);
      assert.equal(r.status, 200, what);
      assert.equal(r.review?.response?.allowed, true, what);
      assert.equal(r.review?.response?.patch, undefined, what);
      assert.equal(r.review?.response?.uid, review.request?.uid, what);
    };
    await noPatch(admissionReview(replicaSetPod({ annotations: { 'sidecar.istio.io/inject': 'false' } })), 'annotation false');
    await noPatch(admissionReview(replicaSetPod({ labels: { 'sidecar.istio.io/inject': 'false' } })), 'label false');
    await noPatch(admissionReview(replicaSetPod(), { namespace: 'plain' }), 'unlabelled namespace');
    await noPatch(admissionReview({ kind: 'Service', metadata: { name: 's' } }, { kind: { group: '', version: 'v1', kind: 'Service' }, resource: { group: '', version: 'v1', resource: 'services' } }), 'a Service');
    await noPatch(admissionReview(replicaSetPod(), { operation: 'UPDATE' }), 'an update');
    const injected = applyPatch(replicaSetPod(), patchOf((await post(admissionReview(replicaSetPod()))).review));
    await noPatch(admissionReview(injected), 'already injected');
    await noPatch(admissionReview({ ...replicaSetPod(), spec: { ...(replicaSetPod().spec as object), hostNetwork: true } }), 'hostNetwork');
  });

  it('denies a pod whose annotations cannot be injected, saying which', async () => {
    const r = await post(admissionReview(replicaSetPod({ annotations: { 'traffic.sidecar.istio.io/excludeInboundPorts': 'http' } })));
    assert.equal(r.status, 200);
    assert.equal(r.review?.response?.allowed, false);
    assert.match(r.review?.response?.status?.message ?? '', /traffic\.sidecar\.istio\.io\/excludeInboundPorts: invalid value "http"/);
  });

  it('answers malformed requests with 400 and a clear message; other paths 404; GET 405; a failed namespace lookup 500', async () => {
    const cases: Array<[unknown, RegExp]> = [
      ['{not json', /not JSON/],
      [{ kind: 'Pod' }, /not an AdmissionReview/],
      [{ apiVersion: 'admission.k8s.io/v2', kind: 'AdmissionReview', request: {} }, /apiVersion "admission.k8s.io\/v2" is not supported/],
      [{ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' }, /request is missing/],
      [{ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { kind: { kind: 'Pod' } } }, /request\.uid is missing/],
      [admissionReview('a pod'), /request\.object must be the Pod/],
    ];
    for (const [body, message] of cases) {
      const r = await post(body);
      assert.equal(r.status, 400, String(message));
      assert.match(r.text ?? '', message);
    }
    assert.equal((await post(admissionReview(replicaSetPod()), '/mutate')).status, 404);
    assert.equal((await webhook.handle('GET', '/inject', '')).status, 405);
    const broken = await post(admissionReview(replicaSetPod(), { namespace: 'broken' }));
    assert.equal(broken.status, 500);
    assert.match(broken.text ?? '', /namespace broken: connection refused/);
  });
});

describe('injection webhook over HTTPS', () => {
  let dir = '';
  let cert = '';
  let key = '';
  let skip: string | false = false;
  let serving: ServingWebhook | undefined;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tsmesh-webhook-'));
    try {
      execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'),
        '-days', '1', '-subj', '/CN=istiod.istio-system.svc', '-addext', 'subjectAltName=DNS:istiod.istio-system.svc,IP:127.0.0.1'], { stdio: 'pipe' });
    } catch (err) {
      skip = `openssl is needed to make the test certificate: ${(err as Error).message.split('\n')[0] ?? ''}`;
      return;
    }
    cert = readFileSync(join(dir, 'cert.pem'), 'utf8');
    key = readFileSync(join(dir, 'key.pem'), 'utf8');
    serving = await serveInjectionWebhook(webhook, { cert, key, host: '127.0.0.1' });
  });
  after(async () => {
    await serving?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  function send(body: string, path = '/inject?timeout=10s'): Promise<{ status: number; type: string; text: string }> {
    return new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: serving?.port, path, method: 'POST', ca: cert, servername: 'istiod.istio-system.svc', headers: { 'content-type': 'application/json' } }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), text }));
      });
      req.on('error', reject);
      req.end(body);
    });
  }

  it('a real AdmissionReview over TLS: the returned patch turns the pod into injectPod\'s result', async (t) => {
    if (skip) return t.skip(skip);
    const pod = replicaSetPod();
    const r = await send(JSON.stringify(admissionReview(pod)));
    assert.equal(r.status, 200);
    assert.equal(r.type, 'application/json');
    const review = JSON.parse(r.text) as AdmissionReview;
    assert.equal(review.response?.uid, '705ab4f5-6393-11e8-b7cc-42010a800002');
    assert.equal(review.response?.patchType, 'JSONPatch');
    assert.deepEqual(applyPatch(pod, patchOf(review)), JSON.parse(JSON.stringify(expectedInjection(pod))));
  });

  it('a malformed body over TLS is a 400 with the reason', async (t) => {
    if (skip) return t.skip(skip);
    const r = await send('{"kind":"AdmissionReview"');
    assert.equal(r.status, 400);
    assert.match(r.text, /the request body is not JSON/);
  });

  it('refuses to start with a certificate that is not PEM', async (t) => {
    if (skip) return t.skip(skip);
    await assert.rejects(serveInjectionWebhook(webhook, { cert: 'not a certificate', key }), (err: unknown) => isMeshError(err) && err.code === 'MESH_ERR_WEBHOOK_SERVE');
    await assert.rejects(serveInjectionWebhook(webhook, { cert, key, host: '127.0.0.1', port: serving?.port ?? 1 }), (err: unknown) => isMeshError(err) && err.code === 'MESH_ERR_WEBHOOK_SERVE' && /cannot listen/.test(err.message));
  });
});
