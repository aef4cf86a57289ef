// kube-inject over YAML text: every workload document's pod template gets the sidecar, every other
// document is copied byte for byte, in order, separators kept. Bad YAML throws MESH_ERR_CONFIG_YAML and
// an uninjectable workload MESH_ERR_INJECT_CONFIG (or MESH_ERR_CAPTURE_CONFIG), naming file, document and line.

import { parseDocument, type Document } from 'yaml';
import { MeshError, isMeshError } from '../common/errors.ts';
import type { MeshConfig } from '../config/mesh-config.ts';
import { injectPod, injectionDecision, type PodTemplate } from './inject.ts';
import { WORKLOAD_KINDS } from './inject-workload.ts';

export interface KubeInjectOptions {
  /** Namespace of documents that name none (kubectl's -n); default 'default'. */
  namespace?: string | undefined;
  meshConfig?: MeshConfig | undefined;
  revision?: string | undefined;
  proxyImage?: string | undefined;
  discoveryAddress?: string | undefined;
  cni?: boolean | undefined;
  trustDomain?: string | undefined;
  clusterId?: string | undefined;
}

export interface KubeInjectResult {
  /** The manifests with the sidecar added: kubectl apply -f - ready. */
  text: string;
  /** `Deployment default/reviews-v1` for each injected workload. */
  injected: string[];
  /** Workloads left as they were, and why (opt-out, hostNetwork, already injected...). */
  skipped: Array<{ workload: string; reason: string }>;
}

interface Chunk {
  /** The `---` line that opened the document ('' for the first one). */
  sep: string;
  body: string;
  /** 1-based line of the body's first line. */
  line: number;
}

const DOC_START = /^---(?:[ \t].*)?\r?\n?$/;
const DOC_END = /^\.\.\.(?:[ \t].*)?\r?\n?$/;

/** Splits a YAML stream at its document markers (YAML forbids `---`/`...` at column 0 inside a scalar). */
function splitDocuments(text: string): Chunk[] {
  const chunks: Chunk[] = [];
  let cur: Chunk = { sep: '', body: '', line: 1 };
  let lineNo = 0;
  for (const line of text.match(/[^\n]*\n|[^\n]+$/g) ?? []) {
    lineNo++;
    if (DOC_START.test(line)) {
      chunks.push(cur);
      cur = { sep: line, body: '', line: lineNo + 1 };
    } else if (DOC_END.test(line)) {
      cur.body += line;
      chunks.push(cur);
      cur = { sep: '', body: '', line: lineNo + 1 };
    } else {
      cur.body += line;
    }
  }
  chunks.push(cur);
  return chunks.filter((c) => c.sep !== '' || c.body !== '');
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function getIn(root: unknown, path: readonly (string | number)[]): unknown {
  let v: unknown = root;
  for (const seg of path) {
    if (typeof seg === 'number' ? !Array.isArray(v) : !isObject(v)) return undefined;
    v = (v as Record<string | number, unknown>)[seg];
  }
  return v;
}

/**
 * Injects every Deployment, StatefulSet, DaemonSet, ReplicaSet, ReplicationController, Job, CronJob and
 * Pod in `text` (also inside `kind: List`), as istioctl kube-inject does: namespace labels are not
 * consulted, but sidecar.istio.io/inject "false" on the pod template, hostNetwork, system namespaces and
 * already-injected templates are left alone. Other documents, and documents with nothing to inject, are
 * returned exactly as written; injected documents are re-serialised with their comments.
 */
export function kubeInjectText(text: string, file: string, opts: KubeInjectOptions = {}): KubeInjectResult {
  const result: KubeInjectResult = { text: '', injected: [], skipped: [] };
  let docNo = 0;
  for (const chunk of splitDocuments(text)) {
    // The separator line is parsed too: `--- {kind: ...}` may carry content.
    const source = chunk.sep + chunk.body;
    const doc = parseDocument(source, { prettyErrors: false });
    const value: unknown = doc.errors.length === 0 ? doc.toJS({ maxAliasCount: 1000 }) : undefined;
    if (doc.errors.length === 0 && (value === null || value === undefined)) {
      result.text += source;
      continue;
    }
    docNo++;
    const where = `${file}: document ${docNo} (line ${chunk.line})`;
    const first = doc.errors[0];
    if (first) {
      const line = chunk.line - (chunk.sep === '' ? 0 : 1) + (source.slice(0, first.pos[0]).match(/\n/g)?.length ?? 0);
      throw new MeshError('MESH_ERR_CONFIG_YAML', `${file}: document ${docNo} line ${line}: YAML: ${first.message.split('\n')[0] ?? first.message}`);
    }
    let changed = false;
    const visit = (obj: unknown, prefix: (string | number)[]): void => {
      if (!isObject(obj)) return;
      if (Array.isArray(obj.items) && typeof obj.kind === 'string' && obj.kind.endsWith('List')) {
        obj.items.forEach((item, i) => visit(item, [...prefix, 'items', i]));
        return;
      }
      if (injectDocument(doc, obj, prefix, where, opts, result)) changed = true;
    };
    visit(value, []);
    result.text += changed ? doc.toString({ lineWidth: 0, indentSeq: false }) : source;
  }
  return result;
}

/** Injects one object's pod template in place in `doc`; false when it is not a workload or is skipped. */
function injectDocument(doc: Document, obj: Record<string, unknown>, prefix: (string | number)[], where: string, opts: KubeInjectOptions, result: KubeInjectResult): boolean {
  const kind = typeof obj.kind === 'string' ? obj.kind : '';
  const info = WORKLOAD_KINDS.get(kind);
  if (!info) return false;
  const meta = isObject(obj.metadata) ? obj.metadata : {};
  const name = typeof meta.name === 'string' ? meta.name : typeof meta.generateName === 'string' ? meta.generateName.replace(/-$/, '') : '';
  const namespace = typeof meta.namespace === 'string' && meta.namespace !== '' ? meta.namespace : opts.namespace ?? 'default';
  const ref = `${kind} ${namespace}/${name}`;
  const template = info.templatePath.length === 0 ? obj : getIn(obj, info.templatePath);
  if (!isObject(template) || !isObject(template.spec)) {
    const path = [...info.templatePath, 'spec'].join('.');
    throw new MeshError('MESH_ERR_INJECT_CONFIG', `${where}, ${ref}: ${path} is missing: a ${kind} needs a pod template to inject`);
  }
  const tmpl = template as PodTemplate;
  const decision = injectionDecision(
    { labels: tmpl.metadata?.labels, annotations: tmpl.metadata?.annotations, namespace, hostNetwork: tmpl.spec?.hostNetwork },
    undefined,
    { manual: true, revision: opts.revision, controlPlaneNamespace: opts.meshConfig?.rootNamespace },
  );
  if (!decision.inject) {
    result.skipped.push({ workload: ref, reason: decision.reason });
    return false;
  }
  let injected: PodTemplate;
  try {
    injected = injectPod(tmpl, {
      namespace,
      workloadName: name,
      ownerKind: kind,
      meshConfig: opts.meshConfig,
      proxyImage: opts.proxyImage,
      discoveryAddress: opts.discoveryAddress,
      revision: opts.revision,
      cni: opts.cni,
      trustDomain: opts.trustDomain,
      clusterId: opts.clusterId,
    });
  } catch (err) {
    if (isMeshError(err)) throw new MeshError(err.code, `${where}, ${ref}: ${err.message}`, { cause: err });
    throw err;
  }
  const base = [...prefix, ...info.templatePath];
  if (info.templatePath.length === 0) {
    doc.setIn([...base, 'metadata'], doc.createNode(injected.metadata));
    doc.setIn([...base, 'spec'], doc.createNode(injected.spec));
  } else {
    doc.setIn(base, doc.createNode(injected));
  }
  result.injected.push(ref);
  return true;
}
