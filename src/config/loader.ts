// Loads Kubernetes and Istio resources from YAML: files, directories (recursively), stdin ('-') and
// strings; multi-document files and `kind: List`. Keeps file, line and column for every field.
// Fails softly: a bad document becomes a diagnostic and the other documents still load.

import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { LineCounter, isMap, isPair, isScalar, isSeq, parseAllDocuments, type Node as YamlNode, type Pair } from 'yaml';
import { MeshError } from '../common/errors.ts';
import type { Diagnostic } from './diagnostics.ts';
import { lookupKind, splitApiVersion } from './kinds.ts';
import type { FieldPath, ObjectMeta, Position, Resource, Source } from './resource.ts';

export interface LoadOptions {
  /** Namespace for namespaced resources that name none (kubectl's -n); default 'default'. */
  defaultNamespace?: string;
  /** Text to use for '-' (stdin); read from process.stdin when absent. */
  stdin?: string;
}

export interface LoadResult {
  resources: Resource[];
  diagnostics: Diagnostic[];
  /** Every file read, in order. */
  files: string[];
}

const YAML_EXT = /\.(ya?ml|json)$/i;

/** Loads every path (file, directory or '-') in order. Missing paths throw MESH_ERR_CONFIG_READ. */
export async function loadPaths(paths: readonly string[], opts: LoadOptions = {}): Promise<LoadResult> {
  const out: LoadResult = { resources: [], diagnostics: [], files: [] };
  for (const p of paths) {
    if (p === '-') {
      const text = opts.stdin ?? (await readStdin());
      merge(out, loadString(text, '-', opts));
      continue;
    }
    for (const file of await listYamlFiles(p)) {
      let text: string;
      try {
        text = await readFile(file, 'utf8');
      } catch (err) {
        throw new MeshError('MESH_ERR_CONFIG_READ', `${file}: cannot read: ${(err as Error).message}`, { cause: err });
      }
      merge(out, loadString(text, file, opts));
    }
  }
  return out;
}

function merge(into: LoadResult, from: LoadResult): void {
  into.resources.push(...from.resources);
  into.diagnostics.push(...from.diagnostics);
  into.files.push(...from.files);
}

/** The YAML/JSON files under a path, sorted; a file path is returned as is whatever its name. */
export async function listYamlFiles(path: string): Promise<string[]> {
  let st;
  try {
    st = await stat(path);
  } catch (err) {
    throw new MeshError('MESH_ERR_CONFIG_READ', `${path}: no such file or directory`, { cause: err });
  }
  if (!st.isDirectory()) return [path];
  const out: string[] = [];
  const entries = (await readdir(path, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name));
  for (const e of entries) {
    if (e.name.startsWith('.')) continue;
    const full = join(path, e.name);
    if (e.isDirectory()) out.push(...(await listYamlFiles(full)));
    else if (YAML_EXT.test(e.name)) out.push(full);
  }
  return out;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** Parses one file's text. Never throws: syntax errors and malformed objects become diagnostics. */
export function loadString(text: string, file: string, opts: LoadOptions = {}): LoadResult {
  const out: LoadResult = { resources: [], diagnostics: [], files: [file] };
  const lineCounter = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const toPos = (offset: number): Position => {
    const p = lineCounter.linePos(offset);
    return { line: p.line, col: p.col };
  };
  const docList = Array.isArray(docs) ? docs : [];
  if (!Array.isArray(docs)) {
    // An empty stream yields an EmptyStream object: nothing to load.
    return out;
  }
  for (const doc of docList) {
    if (doc.errors.length > 0) {
      for (const e of doc.errors) {
        const pos = toPos(e.pos[0]);
        out.diagnostics.push({ severity: 'error', file, line: pos.line, col: pos.col, resource: '', path: '', message: `YAML: ${e.message.split('\n')[0] ?? e.message}` });
      }
      continue;
    }
    for (const w of doc.warnings) {
      const pos = toPos(w.pos[0]);
      out.diagnostics.push({ severity: 'warning', file, line: pos.line, col: pos.col, resource: '', path: '', message: `YAML: ${w.message.split('\n')[0] ?? w.message}` });
    }
    const root = doc.contents;
    if (root === null || (isScalar(root) && (root.value === null || root.value === undefined))) continue;
    const value: unknown = doc.toJS({ maxAliasCount: 1000 });
    if (!isPlainObject(value)) {
      const pos = toPos(root.range?.[0] ?? 0);
      out.diagnostics.push({ severity: 'error', file, line: pos.line, col: pos.col, resource: '', path: '', message: 'a document must be a mapping with apiVersion, kind and metadata' });
      continue;
    }
    if (value.kind === 'List' || (typeof value.kind === 'string' && value.kind.endsWith('List') && Array.isArray(value.items))) {
      const items = Array.isArray(value.items) ? value.items : [];
      items.forEach((item, i) => {
        const node = childNode(root, ['items', i]);
        addObject(out, item, node ?? root, file, toPos, opts);
      });
      continue;
    }
    addObject(out, value, root, file, toPos, opts);
  }
  return out;
}

function addObject(out: LoadResult, value: unknown, node: YamlNode, file: string, toPos: (o: number) => Position, opts: LoadOptions): void {
  const start = toPos(node.range?.[0] ?? 0);
  const at = (path: FieldPath): Position => positionOf(node, path, toPos);
  const source: Source = { file, line: start.line, col: start.col, at };
  const diag = (path: FieldPath, message: string, severity: 'error' | 'warning' = 'error', resource = ''): void => {
    const p = at(path);
    out.diagnostics.push({ severity, file, line: p.line, col: p.col, resource, path: path.join('.'), message });
  };
  if (!isPlainObject(value)) {
    diag([], 'a list item must be a mapping with apiVersion, kind and metadata');
    return;
  }
  const apiVersion = value.apiVersion;
  const kind = value.kind;
  if (typeof apiVersion !== 'string' || apiVersion === '') {
    diag(['apiVersion'], 'apiVersion is required (e.g. networking.istio.io/v1)');
    return;
  }
  if (typeof kind !== 'string' || kind === '') {
    diag(['kind'], 'kind is required (e.g. VirtualService)');
    return;
  }
  const { group, version } = splitApiVersion(apiVersion);
  const info = lookupKind(group, kind);
  const rawMeta = isPlainObject(value.metadata) ? value.metadata : {};
  const name = typeof rawMeta.name === 'string' ? rawMeta.name : '';
  const namespaced = info ? info.scope === 'Namespaced' : true;
  const namespace = namespaced
    ? typeof rawMeta.namespace === 'string' && rawMeta.namespace !== ''
      ? rawMeta.namespace
      : (opts.defaultNamespace ?? 'default')
    : '';
  const ref = namespace ? `${kind} ${namespace}/${name}` : `${kind} ${name}`;
  if (!isPlainObject(value.metadata)) {
    diag(['metadata'], 'metadata is required, with at least a name', 'error', ref);
    return;
  }
  if (name === '' && typeof rawMeta.generateName !== 'string') {
    diag(['metadata', 'name'], 'metadata.name is required', 'error', ref);
    return;
  }
  const metadata: ObjectMeta = {
    name,
    namespace,
    labels: stringMap(rawMeta.labels),
    annotations: stringMap(rawMeta.annotations),
  };
  if (typeof rawMeta.generateName === 'string') metadata.generateName = rawMeta.generateName;
  if (typeof rawMeta.uid === 'string') metadata.uid = rawMeta.uid;
  if (typeof rawMeta.resourceVersion === 'string') metadata.resourceVersion = rawMeta.resourceVersion;
  if (typeof rawMeta.creationTimestamp === 'string') metadata.creationTimestamp = rawMeta.creationTimestamp;
  const spec = isPlainObject(value.spec) ? value.spec : {};
  out.resources.push({ apiVersion, group, version, kind, metadata, spec, body: value, source });
  if (!info) {
    diag(['kind'], `unknown kind ${kind} (apiVersion ${apiVersion}): loaded but not acted on`, 'warning', ref);
  } else if (!info.versions.includes(version)) {
    diag(['apiVersion'], `unknown version ${version} of ${kind}: known versions are ${info.versions.join(', ')}`, 'warning', ref);
  }
}

function stringMap(v: unknown): Record<string, string> {
  if (!isPlainObject(v)) return {};
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(v)) {
    if (val === null || val === undefined) continue;
    out[k] = typeof val === 'string' ? val : String(val);
  }
  return out;
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function childNode(node: YamlNode, path: FieldPath): YamlNode | undefined {
  let cur: YamlNode | undefined = node;
  for (const seg of path) {
    if (!cur) return undefined;
    if (isMap(cur)) {
      const pair: Pair | undefined = findPair(cur.items, seg);
      cur = pair && (pair.value as YamlNode | null) ? (pair.value as YamlNode) : undefined;
    } else if (isSeq(cur) && typeof seg === 'number') {
      cur = (cur.items[seg] as YamlNode | undefined) ?? undefined;
    } else {
      return undefined;
    }
  }
  return cur;
}

/** The position of the key (for map fields) or item (for list items) at `path`; else the nearest ancestor's. */
function positionOf(root: YamlNode, path: FieldPath, toPos: (o: number) => Position): Position {
  let cur: YamlNode | undefined = root;
  let best = toPos(root.range?.[0] ?? 0);
  for (const seg of path) {
    if (!cur) break;
    if (isMap(cur)) {
      const pair: Pair | undefined = findPair(cur.items, seg);
      if (!pair) break;
      const key = pair.key as YamlNode;
      if (key.range) best = toPos(key.range[0]);
      cur = (pair.value as YamlNode | null) ?? undefined;
    } else if (isSeq(cur) && typeof seg === 'number') {
      const item = cur.items[seg] as YamlNode | undefined;
      if (!item) break;
      if (item.range) best = toPos(item.range[0]);
      cur = item;
    } else {
      break;
    }
  }
  return best;
}

function findPair(items: readonly unknown[], seg: string | number): Pair | undefined {
  for (const p of items) {
    if (isPair(p) && isScalar(p.key) && String(p.key.value) === String(seg)) return p;
  }
  return undefined;
}
