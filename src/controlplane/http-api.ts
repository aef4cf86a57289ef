// The control plane's HTTP API and debug endpoints (Istio's 15014): apply/delete/list resources for
// the CLI, /ready, /debug/syncz, /debug/config_dump, /debug/adsz. Bad requests get a JSON error with
// a 4xx status; nothing a client sends can crash the server.

import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { readFileSync } from 'node:fs';
import { formatDiagnostic, type Diagnostic } from '../config/diagnostics.ts';
import { loadString } from '../config/loader.ts';
import { resourceKey, resourceRef, type Resource } from '../config/resource.ts';
import { kindByName } from '../config/kinds.ts';
import { buildConfigDump } from './debug/config-dump.ts';
import { findWorkload, proxyInfoFor } from './debug/proxy-ref.ts';
import { proxyInfoOf } from './generators.ts';
import type { ControlPlane } from './server.ts';
import { isMeshError } from '../common/errors.ts';

export interface HttpApi {
  port: number;
  close(): Promise<void>;
}

/** Body of apply/delete: the documents as the CLI read them, so errors name the user's files. */
export interface ApplyRequest {
  documents: Array<{ file: string; text: string }>;
}

const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
const MAX_BODY = 32 * 1024 * 1024;

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body, null, 2);
  res.writeHead(status, { 'content-type': typeof body === 'string' ? 'text/plain; charset=utf-8' : 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > MAX_BODY) throw new HttpError(413, `request body larger than ${MAX_BODY} bytes`);
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

function parseApply(text: string, namespace: string | undefined): { resources: Resource[]; diagnostics: Diagnostic[] } {
  let body: ApplyRequest;
  try {
    body = JSON.parse(text) as ApplyRequest;
  } catch {
    throw new HttpError(400, 'body must be JSON: {"documents":[{"file":"...","text":"<yaml>"}]}');
  }
  if (!Array.isArray(body.documents)) throw new HttpError(400, 'body.documents must be an array of {file, text}');
  const resources: Resource[] = [];
  const diagnostics: Diagnostic[] = [];
  for (const d of body.documents) {
    if (typeof d?.text !== 'string') throw new HttpError(400, 'each document needs a text string');
    const r = loadString(d.text, typeof d.file === 'string' && d.file ? d.file : 'api', namespace ? { defaultNamespace: namespace } : {});
    resources.push(...r.resources);
    diagnostics.push(...r.diagnostics);
  }
  return { resources, diagnostics };
}

export async function startHttpApi(cp: ControlPlane, address: string): Promise<HttpApi> {
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const path = url.pathname;
    const ns = url.searchParams.get('namespace') ?? undefined;
    if (req.method === 'GET' && path === '/ready') return send(res, cp.ready ? 200 : 503, cp.ready ? 'ready\n' : 'not ready\n');
    if (req.method === 'GET' && path === '/version') return send(res, 200, { version: VERSION, node: process.version });
    if (req.method === 'POST' && (path === '/apis/v1/apply' || path === '/apis/v1/delete')) {
      const { resources, diagnostics } = parseApply(await readBody(req), ns);
      if (path === '/apis/v1/apply') {
        const result = cp.store.apply(resources, 'api', diagnostics);
        const errors = result.diagnostics.filter((d) => d.severity === 'error').map(formatDiagnostic);
        const warnings = result.diagnostics.filter((d) => d.severity === 'warning').map(formatDiagnostic);
        const configured = resources.map((r) => ({ ref: resourceRef(r), changed: result.change.keys.has(resourceKey(r)) }));
        return send(res, result.accepted ? 200 : 422, { accepted: result.accepted, version: result.version, errors, warnings, resources: configured });
      }
      const loadErrors = diagnostics.filter((d) => d.severity === 'error');
      if (loadErrors.length > 0) return send(res, 422, { accepted: false, errors: loadErrors.map(formatDiagnostic), warnings: [], resources: [] });
      const keys = resources.map(resourceKey);
      const existing = new Set(keys.filter((k) => cp.store.get(k)));
      const result = cp.store.delete(keys);
      return send(res, 200, { accepted: true, version: result.version, errors: [], warnings: [], resources: resources.map((r) => ({ ref: resourceRef(r), changed: existing.has(resourceKey(r)) })) });
    }
    if (req.method === 'GET' && path === '/apis/v1/resources') {
      const kindParam = url.searchParams.get('kind');
      const info = kindParam ? kindByName(kindParam) : undefined;
      if (kindParam && !info) throw new HttpError(400, `unknown kind ${kindParam}`);
      const items = cp.store.snapshot().filter((r) => (!info || (r.kind === info.kind && r.group === info.group)) && (!ns || r.metadata.namespace === ns));
      return send(res, 200, { items: items.map((r) => ({ ...r.body, metadata: { ...(r.body.metadata as object), namespace: r.metadata.namespace || undefined } })) });
    }
    if (req.method === 'GET' && path === '/debug/syncz') return send(res, 200, syncz(cp));
    if (req.method === 'GET' && path === '/debug/adsz') return send(res, 200, cp.ads.syncStatus());
    if (req.method === 'GET' && path === '/debug/config_dump') {
      const id = url.searchParams.get('proxyID');
      if (!id) throw new HttpError(400, 'proxyID is required: /debug/config_dump?proxyID=<pod>.<namespace>');
      const push = cp.pushContext();
      const connected = cp.ads.proxies().find((p) => `${p.podName}.${p.namespace}` === id || p.id === id);
      let info;
      if (connected) info = proxyInfoOf(connected, push);
      else {
        try {
          info = proxyInfoFor(findWorkload(push.registry, id, ns ?? 'default'));
        } catch (err) {
          if (isMeshError(err)) throw new HttpError(404, err.message);
          throw err;
        }
      }
      return send(res, 200, buildConfigDump(info, push));
    }
    if (req.method === 'GET' && path === '/debug/push_status') {
      const push = cp.pushContext();
      return send(res, 200, { version: push.version, storeVersion: cp.store.version, resources: cp.store.snapshot().length, services: push.registry.services.length, proxies: cp.ads.proxies().length });
    }
    throw new HttpError(404, `no such endpoint: ${req.method ?? ''} ${path}`);
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (err instanceof HttpError) send(res, err.status, { error: err.message });
      else {
        cp.log.error('http api error', { error: String(err) });
        send(res, 500, { error: String(err) });
      }
    });
  });
  const idx = address.lastIndexOf(':');
  const host = address.slice(0, idx).replace(/^\[|\]$/g, '') || '0.0.0.0';
  const port = Number(address.slice(idx + 1));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const bound = server.address();
  return {
    port: typeof bound === 'object' && bound ? bound.port : port,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

/** Istio's /debug/syncz: one object per connected proxy with sent/acked versions per type. */
function syncz(cp: ControlPlane): Array<Record<string, unknown>> {
  return cp.ads.syncStatus().map((p) => {
    const out: Record<string, unknown> = { proxy: `${p.podName}.${p.namespace}`, proxy_type: p.proxyType, istio_version: VERSION, connection_id: p.connectionId };
    const names: Record<string, string> = { CDS: 'cluster', LDS: 'listener', RDS: 'route', EDS: 'endpoint', SDS: 'secret' };
    for (const t of p.types) {
      const key = names[t.type] ?? t.type;
      out[`${key}_sent`] = t.sentNonce ?? '';
      out[`${key}_acked`] = t.ackedNonce ?? '';
      out[`${key}_state`] = t.state;
      if (t.nack) out[`${key}_nack`] = t.nack.message;
    }
    return out;
  });
}
