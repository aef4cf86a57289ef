// A loaded resource: the parsed object, its identity, and where it came from (file, line, column,
// and a lookup from any field path to its position), so every later error can name the spot.

export type FieldPath = ReadonlyArray<string | number>;

export interface Position {
  line: number; // 1-based
  col: number; // 1-based
}

export interface Source {
  file: string; // a path, or '-' for stdin, or a label such as 'api' for the control plane's API
  line: number;
  col: number;
  /** Position of a field path relative to the resource root (e.g. ['spec','http',0,'route']);
   *  the nearest existing ancestor when the path does not exist. */
  at(path: FieldPath): Position;
}

export interface ObjectMeta {
  name: string;
  namespace: string; // '' for cluster-scoped kinds
  labels: Record<string, string>;
  annotations: Record<string, string>;
  generateName?: string;
  uid?: string;
  resourceVersion?: string;
  creationTimestamp?: string;
}

export interface Resource<Spec = Record<string, unknown>> {
  apiVersion: string;
  group: string;
  version: string;
  kind: string;
  metadata: ObjectMeta;
  /** `spec` of the object ({} when absent). For ConfigMap, Endpoints etc. look at `body`. */
  spec: Spec;
  /** The whole document as parsed. */
  body: Record<string, unknown>;
  source: Source;
}

/** `Kind namespace/name` as istioctl prints an origin (no namespace for cluster-scoped kinds). */
export function resourceRef(r: Pick<Resource, 'kind' | 'metadata'>): string {
  return r.metadata.namespace ? `${r.kind} ${r.metadata.namespace}/${r.metadata.name}` : `${r.kind} ${r.metadata.name}`;
}

/** A stable key for maps: `group/Kind/namespace/name`. */
export function resourceKey(r: Pick<Resource, 'group' | 'kind' | 'metadata'>): string {
  return `${r.group}/${r.kind}/${r.metadata.namespace}/${r.metadata.name}`;
}

/** `spec.http[0].route` from ['spec','http',0,'route']. */
export function formatPath(path: FieldPath): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(seg)) out += out ? `.${seg}` : seg;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}

/** A Source for objects that did not come from a file (the API, tests, generated pods). */
export function syntheticSource(label: string): Source {
  return { file: label, line: 0, col: 0, at: () => ({ line: 0, col: 0 }) };
}
