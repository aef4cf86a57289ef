// Checks a custom resource's metadata as the Kubernetes API server does (name, namespace, label and
// annotation syntax and types; unknown fields as warnings). Never throws; problems come back as issues.

import type { Issue } from './openapi.ts';

const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const QUALIFIED_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const MAX_ANNOTATIONS_BYTES = 256 * 1024;

const OBJECT_META_FIELDS: readonly string[] = [
  'annotations', 'creationTimestamp', 'deletionGracePeriodSeconds', 'deletionTimestamp', 'finalizers', 'generateName',
  'generation', 'labels', 'managedFields', 'name', 'namespace', 'ownerReferences', 'resourceVersion', 'selfLink', 'uid',
];
const SUBDOMAIN_RULE = "lower case letters, digits, '-' and '.', starting and ending with a letter or digit, at most 253 characters";

export function checkMetadata(meta: unknown): Issue[] {
  const out: Issue[] = [];
  const err = (path: Array<string | number>, message: string): void => {
    out.push({ path: ['metadata', ...path], message, severity: 'error' });
  };
  if (typeof meta !== 'object' || meta === null || Array.isArray(meta)) return out; // the loader reports it
  const m = meta as Record<string, unknown>;
  for (const k of Object.keys(m)) {
    if (!OBJECT_META_FIELDS.includes(k)) {
      out.push({ path: ['metadata', k], message: `unknown field ${JSON.stringify(k)}; known fields are ${OBJECT_META_FIELDS.join(', ')}`, severity: 'warning' });
    }
  }
  if (m.name !== undefined && m.name !== null) {
    if (typeof m.name !== 'string') err(['name'], `must be a string (got ${JSON.stringify(m.name)})`);
    else if (m.name !== '' && (m.name.length > 253 || !DNS1123_SUBDOMAIN.test(m.name))) {
      err(['name'], `must be a DNS subdomain: ${SUBDOMAIN_RULE} (got ${JSON.stringify(m.name)})`);
    }
  }
  if (m.namespace !== undefined && m.namespace !== null) {
    if (typeof m.namespace !== 'string') err(['namespace'], `must be a string (got ${JSON.stringify(m.namespace)})`);
    else if (m.namespace !== '' && (m.namespace.length > 63 || !DNS1123_LABEL.test(m.namespace))) {
      err(['namespace'], `must be a DNS label: lower case letters, digits and '-', starting and ending with a letter or digit, at most 63 characters (got ${JSON.stringify(m.namespace)})`);
    }
  }
  checkStringMap(m.labels, 'labels', err, (v) =>
    v.length <= 63 && LABEL_VALUE.test(v)
      ? undefined
      : "must be a label value: empty, or at most 63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit",
  );
  const annotationsSize = checkStringMap(m.annotations, 'annotations', err, () => undefined);
  if (annotationsSize > MAX_ANNOTATIONS_BYTES) err(['annotations'], `must total at most 256 KiB of keys and values (got ${annotationsSize} bytes)`);
  return out;
}

/** Checks keys and string values; returns the total size in bytes of keys and values. */
function checkStringMap(
  v: unknown,
  field: string,
  err: (path: Array<string | number>, message: string) => void,
  valueRule: (v: string) => string | undefined,
): number {
  if (v === undefined || v === null) return 0;
  if (typeof v !== 'object' || Array.isArray(v)) {
    err([field], `must be a mapping of string keys to string values (got ${Array.isArray(v) ? 'a list' : JSON.stringify(v)})`);
    return 0;
  }
  let size = 0;
  for (const [k, val] of Object.entries(v as Record<string, unknown>)) {
    size += Buffer.byteLength(k);
    const keyProblem = qualifiedNameProblem(k);
    if (keyProblem) err([field, k], `key ${keyProblem} (got ${JSON.stringify(k)})`);
    if (typeof val !== 'string') {
      err([field, k], `must be a string; quote it, e.g. "${String(val)}" (got ${val === null ? 'null' : typeof val} ${JSON.stringify(val)})`);
      continue;
    }
    size += Buffer.byteLength(val);
    const valueProblem = valueRule(val);
    if (valueProblem) err([field, k], `${valueProblem} (got ${JSON.stringify(val)})`);
  }
  return size;
}

function qualifiedNameProblem(key: string): string | undefined {
  const slash = key.indexOf('/');
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if (prefix !== undefined && (prefix === '' || prefix.length > 253 || !DNS1123_SUBDOMAIN.test(prefix))) {
    return `prefix must be a DNS subdomain (${SUBDOMAIN_RULE}) followed by '/'`;
  }
  if (name.length === 0 || name.length > 63 || !QUALIFIED_NAME.test(name)) {
    return "name must be at most 63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit, with an optional DNS subdomain prefix and '/'";
  }
  return undefined;
}
