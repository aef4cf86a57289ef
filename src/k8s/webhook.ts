// The sidecar injector's mutating admission webhook (M2): POST /inject with an AdmissionReview v1, answered
// with a JSON patch (RFC 6902) from the pod to injectPod's result, over HTTPS. A malformed review gets HTTP
// 400 with the reason; a pod that cannot be injected is denied with the message; a failed namespace lookup is a 500.

import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { MeshError, isMeshError } from '../common/errors.ts';
import { injectPod, injectionDecision, type InjectContext, type InjectionOptions, type PodTemplate } from '../inject/inject.ts';
import { workloadOfPod } from '../inject/inject-workload.ts';

/** What the webhook injects with: the injectPod context (less what comes from the pod) plus the decision's options. */
export type WebhookInjectOptions = Omit<InjectContext, 'namespace' | 'workloadName' | 'ownerKind' | 'ownerApiVersion'> &
  Pick<InjectionOptions, 'defaultEnabled' | 'policy' | 'controlPlaneNamespace'>;

export interface InjectionWebhookConfig {
  /** Labels of a namespace (istio-injection, istio.io/rev); {} when it has none. May reject: the review fails with 500. */
  namespaceLabels(namespace: string): Promise<Record<string, string>>;
  injectOpts?: WebhookInjectOptions;
}

/** One RFC 6902 operation (the webhook only emits add, remove and replace). */
export interface JsonPatchOp {
  op: 'add' | 'remove' | 'replace';
  path: string;
  value?: unknown;
}

export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  patchType?: 'JSONPatch';
  /** base64 of the JSON patch. */
  patch?: string;
  status?: { status: 'Failure'; code: number; message: string };
}

export interface AdmissionReview {
  apiVersion: string;
  kind: 'AdmissionReview';
  request?: Record<string, unknown>;
  response?: AdmissionResponse;
}

/** An HTTP answer: status code and either an AdmissionReview or a text message. */
export interface WebhookReply {
  status: number;
  body: AdmissionReview | string;
}

export interface InjectionWebhook {
  /** Answers one request (method, URL path, body text); never throws. */
  handle: (method: string, url: string, body: string) => Promise<WebhookReply>;
  /** The same, as a node:http(s) request listener. */
  listener: (req: IncomingMessage, res: ServerResponse) => void;
}

/** Largest request body accepted (a pod is a few KiB; Kubernetes caps objects at 1.5 MiB). */
export const MAX_BODY_BYTES = 8 * 1024 * 1024;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function escapePointer(seg: string | number): string {
  return String(seg).replace(/~/g, '~0').replace(/\//g, '~1');
}

function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((x, i) => deepEqual(x, b[i]));
  if (isObject(a) && isObject(b)) {
    const ka = Object.keys(a);
    return ka.length === Object.keys(b).length && ka.every((k) => Object.hasOwn(b, k) && deepEqual(a[k], b[k]));
  }
  return false;
}

/** Indices of `after` not matched when `before` is read as a subsequence of it; undefined when it is not one. */
function insertedIndices(before: readonly unknown[], after: readonly unknown[]): number[] | undefined {
  const inserted: number[] = [];
  let i = 0;
  for (let j = 0; j < after.length; j++) {
    if (i < before.length && deepEqual(before[i], after[j])) i++;
    else inserted.push(j);
  }
  return i === before.length ? inserted : undefined;
}

/**
 * The JSON patch that turns `before` into `after` (both JSON values). Objects are diffed key by key;
 * an array that only gained elements gets `add`s at their final indices (in ascending order, so they
 * apply in sequence); other arrays are diffed index by index. Applying the result to `before` gives `after`.
 */
export function jsonPatchDiff(before: unknown, after: unknown, path = ''): JsonPatchOp[] {
  if (deepEqual(before, after)) return [];
  if (isObject(before) && isObject(after)) {
    const ops: JsonPatchOp[] = [];
    for (const k of Object.keys(before)) if (!Object.hasOwn(after, k)) ops.push({ op: 'remove', path: `${path}/${escapePointer(k)}` });
    for (const [k, v] of Object.entries(after)) {
      const p = `${path}/${escapePointer(k)}`;
      if (Object.hasOwn(before, k)) ops.push(...jsonPatchDiff(before[k], v, p));
      else ops.push({ op: 'add', path: p, value: v });
    }
    return ops;
  }
  if (Array.isArray(before) && Array.isArray(after)) {
    const inserted = after.length > before.length ? insertedIndices(before, after) : undefined;
    if (inserted) return inserted.map((j) => ({ op: 'add', path: `${path}/${j}`, value: after[j] }));
    const ops: JsonPatchOp[] = [];
    const common = Math.min(before.length, after.length);
    for (let i = 0; i < common; i++) ops.push(...jsonPatchDiff(before[i], after[i], `${path}/${i}`));
    for (let i = before.length - 1; i >= after.length; i--) ops.push({ op: 'remove', path: `${path}/${i}` });
    for (let i = before.length; i < after.length; i++) ops.push({ op: 'add', path: `${path}/${i}`, value: after[i] });
    return ops;
  }
  return [{ op: 'replace', path, value: after }];
}

/** `/inject`, `/inject/` and Istio's `/inject/cluster/<id>/net/<network>` (plus `rev/<revision>`); undefined for other paths. */
function parseInjectPath(url: string): { clusterId?: string; revision?: string } | undefined {
  const path = url.split('?')[0] ?? '';
  if (path === '/inject' || path === '/inject/') return {};
  if (!path.startsWith('/inject/')) return undefined;
  const segs = path.slice('/inject/'.length).split('/').filter((s) => s !== '').map(decodeURIComponent);
  if (segs.length % 2 !== 0) return undefined;
  const out: { clusterId?: string; revision?: string } = {};
  for (let i = 0; i < segs.length; i += 2) {
    const [k, v] = [segs[i], segs[i + 1] ?? ''];
    if (k === 'cluster') out.clusterId = v;
    else if (k === 'rev') out.revision = v;
    else if (k !== 'net') return undefined;
  }
  return out;
}

export function createInjectionWebhook(cfg: InjectionWebhookConfig): InjectionWebhook {
  const opts = cfg.injectOpts ?? {};

  async function review(body: string, fromPath: { clusterId?: string; revision?: string }): Promise<WebhookReply> {
    const bad = (message: string): WebhookReply => ({ status: 400, body: `${message}\n` });
    let parsed: unknown;
    try {
      parsed = JSON.parse(body);
    } catch (err) {
      return bad(`the request body is not JSON (expected an AdmissionReview): ${(err as Error).message}`);
    }
    if (!isObject(parsed) || parsed.kind !== 'AdmissionReview') return bad('the request body is not an AdmissionReview (kind: AdmissionReview, apiVersion: admission.k8s.io/v1)');
    const apiVersion = parsed.apiVersion;
    if (apiVersion !== 'admission.k8s.io/v1' && apiVersion !== 'admission.k8s.io/v1beta1') {
      return bad(`AdmissionReview apiVersion ${JSON.stringify(apiVersion)} is not supported: use admission.k8s.io/v1`);
    }
    const request = parsed.request;
    if (!isObject(request)) return bad('AdmissionReview.request is missing');
    const uid = request.uid;
    if (typeof uid !== 'string' || uid === '') return bad('AdmissionReview.request.uid is missing (it must be echoed in the response)');
    const answer = (response: Omit<AdmissionResponse, 'uid'>): WebhookReply => ({ status: 200, body: { apiVersion, kind: 'AdmissionReview', response: { uid, ...response } } });

    const kind = isObject(request.kind) ? request.kind.kind : undefined;
    const resource = isObject(request.resource) ? request.resource.resource : undefined;
    if ((kind !== undefined && kind !== 'Pod') || (resource !== undefined && resource !== 'pods') || (request.subResource ?? '') !== '') return answer({ allowed: true });
    if (request.operation !== undefined && request.operation !== 'CREATE') return answer({ allowed: true });
    const pod = request.object;
    if (!isObject(pod)) return bad('AdmissionReview.request.object must be the Pod being created');
    const meta = isObject(pod.metadata) ? pod.metadata : {};
    const spec = isObject(pod.spec) ? pod.spec : {};
    const nsOf = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
    const namespace = nsOf(request.namespace) ?? nsOf(meta.namespace) ?? 'default';

    let nsLabels: Record<string, string>;
    try {
      nsLabels = await cfg.namespaceLabels(namespace);
    } catch (err) {
      return { status: 500, body: `cannot read the labels of namespace ${namespace}: ${err instanceof Error ? err.message : String(err)}\n` };
    }
    const labels = isObject(meta.labels) ? (meta.labels as Record<string, string>) : undefined;
    const annotations = isObject(meta.annotations) ? (meta.annotations as Record<string, string>) : undefined;
    const revision = fromPath.revision ?? opts.revision;
    const decision = injectionDecision({ labels, annotations, namespace, hostNetwork: spec.hostNetwork === true }, nsLabels, { ...opts, revision });
    if (!decision.inject) return answer({ allowed: true });

    const workload = workloadOfPod(meta);
    let injected: PodTemplate;
    try {
      injected = injectPod(pod as PodTemplate, {
        ...opts,
        revision,
        ...(fromPath.clusterId !== undefined ? { clusterId: fromPath.clusterId } : {}),
        namespace,
        workloadName: workload.name,
        ownerKind: workload.kind,
        ownerApiVersion: workload.apiVersion,
      });
    } catch (err) {
      if (!isMeshError(err)) throw err;
      return answer({ allowed: false, status: { status: 'Failure', code: 400, message: `sidecar injection failed: ${err.message}` } });
    }
    const patch = jsonPatchDiff(pod, JSON.parse(JSON.stringify(injected)));
    return answer({ allowed: true, patchType: 'JSONPatch', patch: Buffer.from(JSON.stringify(patch)).toString('base64') });
  }

  const handle = async (method: string, url: string, body: string): Promise<WebhookReply> => {
    const where = parseInjectPath(url);
    if (!where) return { status: 404, body: `no such endpoint ${url.split('?')[0] ?? ''}: POST an AdmissionReview to /inject\n` };
    if (method !== 'POST') return { status: 405, body: 'use POST with an AdmissionReview body\n' };
    try {
      return await review(body, where);
    } catch (err) {
      return { status: 500, body: `sidecar injection failed: ${err instanceof Error ? err.message : String(err)}\n` };
    }
  };

  const listener = (req: IncomingMessage, res: ServerResponse): void => {
    const send = (reply: WebhookReply): void => {
      const text = typeof reply.body === 'string' ? reply.body : JSON.stringify(reply.body);
      res.writeHead(reply.status, { 'content-type': typeof reply.body === 'string' ? 'text/plain; charset=utf-8' : 'application/json' });
      res.end(text);
    };
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) tooLarge = true;
      else chunks.push(c);
    });
    req.on('error', () => res.destroy());
    req.on('end', () => {
      if (tooLarge) {
        send({ status: 413, body: `the request body is larger than ${MAX_BODY_BYTES} bytes\n` });
        return;
      }
      void handle(req.method ?? 'GET', req.url ?? '/', Buffer.concat(chunks).toString('utf8')).then(send);
    });
  };
  return { handle, listener };
}

export interface ServeOptions {
  /** PEM certificate chain and private key the API server will verify (its caBundle). */
  cert: string | Buffer;
  key: string | Buffer;
  /** Default 0 (any free port). */
  port?: number;
  host?: string;
}

export interface ServingWebhook {
  server: Server;
  port: number;
  close(): Promise<void>;
}

/** Serves the webhook over HTTPS. Rejects with MESH_ERR_WEBHOOK_SERVE for a bad certificate/key or a taken port. */
export async function serveInjectionWebhook(webhook: InjectionWebhook, opts: ServeOptions): Promise<ServingWebhook> {
  let server: Server;
  try {
    server = createServer({ cert: opts.cert, key: opts.key }, webhook.listener);
  } catch (err) {
    throw new MeshError('MESH_ERR_WEBHOOK_SERVE', `the webhook's TLS certificate or key is unusable: ${(err as Error).message}`, { cause: err });
  }
  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error): void => reject(new MeshError('MESH_ERR_WEBHOOK_SERVE', `the webhook cannot listen on ${opts.host ?? '*'}:${opts.port ?? 0}: ${err.message}`, { cause: err }));
    server.once('error', onError);
    server.listen(opts.port ?? 0, opts.host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
