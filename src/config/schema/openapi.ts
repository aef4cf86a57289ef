// Compiles a CRD's OpenAPI v3 (structural) schema once into a typed tree, and validates a value
// against it the way the Kubernetes API server does: types, enums, bounds, patterns, formats,
// required, oneOf/anyOf/allOf/not, list-type uniqueness, x-kubernetes-validations (CEL), and unknown
// fields (warnings). Never throws on bad input; problems come back as issues with field paths.

import { isIP, isIPv4, isIPv6 } from 'node:net';
import type { CelInput } from '@bufbuild/cel';
import { compileRule, evaluate, evaluateMessage } from './cel.ts';
import { parseGoDuration } from './go-duration.ts';
import { parseRequestUri } from './go-url.ts';

export type SchemaType = 'string' | 'integer' | 'number' | 'boolean' | 'object' | 'array';

export interface ValidationRule {
  rule: string;
  message?: string;
  messageExpression?: string;
  fieldPath?: string;
}

/** One node of a compiled structural schema. */
export interface Schema {
  type?: SchemaType;
  intOrString: boolean;
  nullable: boolean;
  preserveUnknown: boolean;
  properties?: Map<string, Schema>;
  /** A schema for every other key (a map), or true/false as written. */
  additionalProperties?: Schema | boolean;
  items?: Schema;
  required: string[];
  enum?: unknown[];
  minimum?: number;
  maximum?: number;
  exclusiveMinimum: boolean;
  exclusiveMaximum: boolean;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
  uniqueItems: boolean;
  minProperties?: number;
  maxProperties?: number;
  pattern?: { source: string; re: RegExp | undefined };
  format?: string;
  allOf?: Schema[];
  anyOf?: Schema[];
  oneOf?: Schema[];
  not?: Schema;
  listType?: string;
  listMapKeys?: string[];
  rules: ValidationRule[];
}

export type Path = Array<string | number>;

export interface Issue {
  path: Path;
  message: string;
  severity: 'error' | 'warning';
}

/** Hooks the validator calls back into; the caller decides how often to report rule problems. */
export interface ValidateHooks {
  /** A rule that does not compile (report once, then it is skipped). */
  ruleCompileError(rule: string, error: string, path: Path): void;
}

const TYPES: ReadonlySet<string> = new Set(['string', 'integer', 'number', 'boolean', 'object', 'array']);

/** Compiles a raw openAPIV3Schema object (as parsed from YAML). Unknown keywords are ignored. */
export function compileSchema(raw: unknown): Schema {
  const o = isObj(raw) ? raw : {};
  const num = (k: string): number | undefined => (typeof o[k] === 'number' ? o[k] : undefined);
  const s: Schema = {
    intOrString: o['x-kubernetes-int-or-string'] === true,
    nullable: o.nullable === true,
    preserveUnknown: o['x-kubernetes-preserve-unknown-fields'] === true,
    required: Array.isArray(o.required) ? o.required.filter((x): x is string => typeof x === 'string') : [],
    exclusiveMinimum: o.exclusiveMinimum === true,
    exclusiveMaximum: o.exclusiveMaximum === true,
    uniqueItems: o.uniqueItems === true,
    rules: [],
  };
  if (typeof o.type === 'string' && TYPES.has(o.type)) s.type = o.type as SchemaType;
  if (isObj(o.properties)) {
    s.properties = new Map(Object.entries(o.properties).map(([k, v]) => [k, compileSchema(v)]));
  }
  if (typeof o.additionalProperties === 'boolean') s.additionalProperties = o.additionalProperties;
  else if (isObj(o.additionalProperties)) s.additionalProperties = compileSchema(o.additionalProperties);
  if (o.items !== undefined) s.items = compileSchema(o.items);
  if (Array.isArray(o.enum)) s.enum = o.enum;
  s.minimum = num('minimum');
  s.maximum = num('maximum');
  s.minLength = num('minLength');
  s.maxLength = num('maxLength');
  s.minItems = num('minItems');
  s.maxItems = num('maxItems');
  s.minProperties = num('minProperties');
  s.maxProperties = num('maxProperties');
  if (typeof o.pattern === 'string') s.pattern = { source: o.pattern, re: safeRegExp(o.pattern) };
  if (typeof o.format === 'string') s.format = o.format;
  const list = (k: string): Schema[] | undefined => {
    const v = o[k];
    if (!Array.isArray(v)) return undefined;
    // int-or-string spells its two types as anyOf branches; the type check covers them.
    const branches = s.intOrString ? v.filter((b) => !(isObj(b) && Object.keys(b).every((key) => key === 'type'))) : v;
    return branches.length > 0 ? branches.map(compileSchema) : undefined;
  };
  s.allOf = list('allOf');
  s.anyOf = list('anyOf');
  s.oneOf = list('oneOf');
  if (isObj(o.not)) s.not = compileSchema(o.not);
  if (typeof o['x-kubernetes-list-type'] === 'string') s.listType = o['x-kubernetes-list-type'];
  const mapKeys = o['x-kubernetes-list-map-keys'];
  if (Array.isArray(mapKeys)) s.listMapKeys = mapKeys.filter((x): x is string => typeof x === 'string');
  const rules = o['x-kubernetes-validations'];
  if (Array.isArray(rules)) {
    for (const r of rules) {
      if (!isObj(r) || typeof r.rule !== 'string') continue;
      const vr: ValidationRule = { rule: r.rule };
      if (typeof r.message === 'string') vr.message = r.message;
      if (typeof r.messageExpression === 'string') vr.messageExpression = r.messageExpression;
      if (typeof r.fieldPath === 'string') vr.fieldPath = r.fieldPath;
      s.rules.push(vr);
    }
  }
  return s;
}

function safeRegExp(source: string): RegExp | undefined {
  try {
    return new RegExp(source, 'u');
  } catch {
    try {
      return new RegExp(source);
    } catch {
      return undefined;
    }
  }
}

interface Ctx {
  issues: Issue[];
  /** Inside oneOf/anyOf/not: only counting failures; no unknown-field warnings, no CEL. */
  silent: boolean;
  hooks: ValidateHooks;
}

/**
 * Validates `value` at `path` against `schema`, appending issues. Returns false when the value (or
 * something under it) has the wrong type, in which case CEL rules above it are not run, as the API
 * server does.
 */
export function validateValue(schema: Schema, value: unknown, path: Path, issues: Issue[], hooks: ValidateHooks): boolean {
  return check(schema, value, path, { issues, silent: false, hooks });
}

/** Validates an object's members only (used for the resource root, whose metadata is checked apart). */
export function validateRoot(schema: Schema, body: Record<string, unknown>, issues: Issue[], hooks: ValidateHooks): void {
  const ctx: Ctx = { issues, silent: false, hooks };
  const implicit = new Set(['apiVersion', 'kind', 'metadata']);
  const props = schema.properties ?? new Map<string, Schema>();
  for (const [k, v] of Object.entries(body)) {
    if (implicit.has(k) || k === 'status') continue; // status is written by controllers; not checked
    const ps = props.get(k);
    if (ps) {
      if (v === null && !ps.nullable) continue;
      check(ps, v, [k], ctx);
    } else if (!schema.preserveUnknown) {
      ctx.issues.push(unknownField([k], k, [...implicit, ...props.keys()]));
    }
  }
  for (const req of schema.required) {
    if (body[req] === undefined || body[req] === null) issues.push({ path: [req], message: 'is required but missing', severity: 'error' });
  }
}

function check(s: Schema, v: unknown, path: Path, ctx: Ctx): boolean {
  const err = (message: string, at: Path = path): void => {
    ctx.issues.push({ path: at, message, severity: 'error' });
  };
  if (v === null || v === undefined) {
    if (s.nullable || (!s.type && !s.intOrString)) return true;
    err(`must be ${typeName(s)} (got null)`);
    return false;
  }
  // Type.
  if (s.intOrString) {
    if (!(typeof v === 'string' || (typeof v === 'number' && Number.isInteger(v)))) {
      err(`must be an integer or a string (got ${describe(v)})`);
      return false;
    }
  } else if (s.type && !hasType(v, s.type)) {
    err(`must be ${typeName(s)} (got ${describe(v)})`);
    return false;
  }
  let typeOk = true;
  if (s.enum && !s.enum.some((e) => deepEqual(e, v))) {
    err(`must be one of ${s.enum.map((e) => (typeof e === 'string' ? e : JSON.stringify(e))).join(', ')} (got ${show(v)})`);
  }
  if (typeof v === 'string') checkString(s, v, err);
  if (typeof v === 'number') checkNumber(s, v, err);
  if (Array.isArray(v)) {
    typeOk = checkArray(s, v, path, ctx) && typeOk;
  } else if (isObj(v)) {
    typeOk = checkObject(s, v, path, ctx) && typeOk;
  }
  checkJunctors(s, v, path, ctx);
  if (!ctx.silent && typeOk && s.rules.length > 0) runRules(s, v, path, ctx);
  return typeOk;
}

function checkString(s: Schema, v: string, err: (m: string) => void): void {
  const len = [...v].length; // the API server counts code points
  if (s.minLength !== undefined && len < s.minLength) {
    err(s.minLength === 1 ? 'must not be empty' : `must be at least ${s.minLength} characters long (got ${len})`);
  }
  if (s.maxLength !== undefined && len > s.maxLength) err(`must be at most ${s.maxLength} characters long (got ${len})`);
  if (s.pattern?.re && !s.pattern.re.test(v)) err(`must match the pattern ${s.pattern.source} (got ${show(v)})`);
  if (s.format) {
    const why = checkFormat(s.format, v);
    if (why) err(`${why} (got ${show(v)})`);
  }
}

function checkNumber(s: Schema, v: number, err: (m: string) => void): void {
  if (s.minimum !== undefined) {
    if (s.exclusiveMinimum ? v <= s.minimum : v < s.minimum) err(`must be ${s.exclusiveMinimum ? 'greater than' : 'at least'} ${s.minimum} (got ${v})`);
  }
  if (s.maximum !== undefined) {
    if (s.exclusiveMaximum ? v >= s.maximum : v > s.maximum) err(`must be ${s.exclusiveMaximum ? 'less than' : 'at most'} ${s.maximum} (got ${v})`);
  }
}

function checkArray(s: Schema, v: unknown[], path: Path, ctx: Ctx): boolean {
  const err = (message: string, at: Path = path): void => {
    ctx.issues.push({ path: at, message, severity: 'error' });
  };
  if (s.minItems !== undefined && v.length < s.minItems) {
    err(s.minItems === 1 ? 'must have at least one item (got an empty list)' : `must have at least ${s.minItems} items (got ${v.length})`);
  }
  if (s.maxItems !== undefined && v.length > s.maxItems) err(`must have at most ${s.maxItems} items (got ${v.length})`);
  let ok = true;
  if (s.items) {
    v.forEach((item, i) => {
      ok = check(s.items!, item, [...path, i], ctx) && ok;
    });
  }
  if (s.listType === 'map' && s.listMapKeys && s.listMapKeys.length > 0) {
    const keys = s.listMapKeys;
    const seen = new Map<string, number>();
    v.forEach((item, i) => {
      if (!isObj(item)) return;
      const id = JSON.stringify(keys.map((k) => item[k] ?? null));
      const first = seen.get(id);
      if (first === undefined) {
        seen.set(id, i);
        return;
      }
      const what = keys.map((k) => `${k}=${show(item[k] ?? null)}`).join(', ');
      err(`duplicate entry with ${what} (same as item [${first}]); each item's ${keys.join(', ')} must be unique`, [...path, i]);
    });
  } else if (s.listType === 'set' || s.uniqueItems) {
    const seen = new Map<string, number>();
    v.forEach((item, i) => {
      const id = canonical(item);
      const first = seen.get(id);
      if (first === undefined) seen.set(id, i);
      else err(`duplicate value ${show(item)} (same as item [${first}]); items must be unique`, [...path, i]);
    });
  }
  return ok;
}

function checkObject(s: Schema, v: Record<string, unknown>, path: Path, ctx: Ctx): boolean {
  let ok = true;
  let count = 0;
  for (const [k, child] of Object.entries(v)) {
    const ps = s.properties?.get(k);
    const childSchema = ps ?? (typeof s.additionalProperties === 'object' ? s.additionalProperties : undefined);
    if (childSchema) {
      // The API server prunes null values of non-nullable fields before validating.
      if (child === null && !childSchema.nullable) continue;
      count++;
      ok = check(childSchema, child, [...path, k], ctx) && ok;
    } else if (s.preserveUnknown || s.additionalProperties === true || (!s.type && !s.properties)) {
      count++;
    } else if (!ctx.silent) {
      ctx.issues.push(unknownField([...path, k], k, [...(s.properties?.keys() ?? [])]));
    }
  }
  for (const req of s.required) {
    if (v[req] === undefined || v[req] === null) ctx.issues.push({ path: [...path, req], message: 'is required but missing', severity: 'error' });
  }
  if (s.minProperties !== undefined && count < s.minProperties) {
    ctx.issues.push({ path, message: s.minProperties === 1 ? 'must have at least one entry (got none)' : `must have at least ${s.minProperties} entries (got ${count})`, severity: 'error' });
  }
  if (s.maxProperties !== undefined && count > s.maxProperties) {
    ctx.issues.push({ path, message: `must have at most ${s.maxProperties} entries (got ${count})`, severity: 'error' });
  }
  return ok;
}

/** Does `v` satisfy `s` (value validations only)? */
function passes(s: Schema, v: unknown, ctx: Ctx): boolean {
  const sub: Ctx = { issues: [], silent: true, hooks: ctx.hooks };
  check(s, v, [], sub);
  return !sub.issues.some((i) => i.severity === 'error');
}

function checkJunctors(s: Schema, v: unknown, path: Path, ctx: Ctx): void {
  const err = (message: string): void => {
    ctx.issues.push({ path, message, severity: 'error' });
  };
  if (s.allOf) {
    // Each branch's own problems are the user's problems: report them as they are.
    for (const b of s.allOf) check(b, v, path, { ...ctx, silent: true });
  }
  if (s.oneOf) {
    const matched = s.oneOf.filter((b) => passes(b, v, ctx)).length;
    if (matched !== 1) err(exclusiveMessage(s.oneOf, v, matched) ?? `must match exactly one of ${s.oneOf.length} allowed forms (matched ${matched})`);
  }
  if (s.anyOf && !s.anyOf.some((b) => passes(b, v, ctx))) {
    const fields = s.anyOf.map(requiredOnly);
    if (fields.every((f) => f !== undefined)) err(`must set at least one of ${fields.flat().join(', ')}`);
    else err(`must match at least one of ${s.anyOf.length} allowed forms`);
  }
  if (s.not && passes(s.not, v, ctx)) {
    const fields = requiredOnly(s.not);
    err(fields ? `must not set ${fields.join(' and ')}` : 'must not match the excluded form');
  }
}

/** `oneOf: [not: {anyOf: [required: [a], ...]}, required: [a], required: [b], ...]`: Istio's "one of these fields". */
function exclusiveMessage(branches: Schema[], v: unknown, matched: number): string | undefined {
  if (!isObj(v)) return undefined;
  const fields: string[] = [];
  let allowNone = false;
  for (const b of branches) {
    const req = requiredOnly(b);
    if (req && req.length === 1 && req[0] !== undefined) {
      fields.push(req[0]);
      continue;
    }
    const none = b.not?.anyOf?.map(requiredOnly);
    if (b.not && isBare(b, 'not') && none && none.every((f) => f?.length === 1)) {
      allowNone = true;
      continue;
    }
    return undefined;
  }
  const set = fields.filter((f) => v[f] !== undefined && v[f] !== null);
  if (matched > 1 || set.length > 1) return `only one of ${fields.join(', ')} may be set (got ${set.join(' and ')})`;
  if (set.length === 0 && !allowNone) return `exactly one of ${fields.join(', ')} must be set (got none)`;
  return undefined;
}

/** The fields of a branch that says nothing but `required: [...]`. */
function requiredOnly(s: Schema | undefined): string[] | undefined {
  if (!s || s.required.length === 0 || !isBare(s, 'required')) return undefined;
  return s.required;
}

function isBare(s: Schema, keep: 'required' | 'not'): boolean {
  return (
    s.type === undefined && !s.properties && s.additionalProperties === undefined && !s.items && !s.enum &&
    s.minimum === undefined && s.maximum === undefined && s.minLength === undefined && s.maxLength === undefined &&
    s.minItems === undefined && s.maxItems === undefined && s.minProperties === undefined && s.maxProperties === undefined &&
    !s.pattern && !s.format && !s.allOf && !s.anyOf && !s.oneOf && s.rules.length === 0 &&
    (keep === 'not' ? s.required.length === 0 : !s.not)
  );
}

const DURATION_RULE = /^duration\(self\)\s*>=\s*duration\('([^']+)'\)$/;

function runRules(s: Schema, v: unknown, path: Path, ctx: Ctx): void {
  let self: CelInput | undefined;
  for (const r of s.rules) {
    const compiled = compileRule(r.rule);
    if (compiled.kind === 'transition') continue;
    if (compiled.kind === 'error') {
      ctx.hooks.ruleCompileError(r.rule, compiled.error, path);
      continue;
    }
    self ??= toCel(s, v);
    const result = evaluate(compiled.run, self);
    if (result.ok) continue;
    const at = r.fieldPath ? [...path, ...parseFieldPath(r.fieldPath)] : path;
    ctx.issues.push({ path: at, message: ruleMessage(r, v, self, result.error), severity: 'error' });
  }
}

function ruleMessage(r: ValidationRule, v: unknown, self: CelInput, error: string | undefined): string {
  const got = isScalar(v) ? ` (got ${show(v)})` : '';
  const min = DURATION_RULE.exec(r.rule)?.[1];
  if (min !== undefined && typeof v === 'string') {
    // The CRDs' text ("must be a valid duration greater than 1ms") says neither the form nor that 1ms itself is fine.
    return parseGoDuration(v).ok
      ? `must be a duration of at least ${min}${got}`
      : `must be a duration such as "1.5s", "100ms" or "1h30m", of at least ${min}${got}`;
  }
  const base = (r.messageExpression ? evaluateMessage(r.messageExpression, self) : undefined) ?? r.message ?? `failed rule: ${r.rule}`;
  return error ? `${base}${got} (${error})` : `${base}${got}`;
}

/** `.a.b['c']` -> ['a', 'b', 'c'] (fieldPath of a rule, relative to the node). */
function parseFieldPath(fp: string): Path {
  const out: Path = [];
  const re = /\.([A-Za-z_][A-Za-z0-9_-]*)|\[\s*'([^']*)'\s*\]|\[(\d+)\]/gy;
  let m: RegExpExecArray | null;
  while ((m = re.exec(fp)) !== null) {
    if (m[1] !== undefined) out.push(m[1]);
    else if (m[2] !== undefined) out.push(m[2]);
    else if (m[3] !== undefined) out.push(Number(m[3]));
  }
  return out;
}

/** The value as CEL sees it: integers as int (bigint), objects as maps of their known, non-null fields. */
export function toCel(s: Schema | undefined, v: unknown): CelInput {
  if (v === null || v === undefined) return null;
  if (typeof v === 'number') {
    const asInt = s ? s.type === 'integer' || s.intOrString : Number.isInteger(v);
    return asInt && Number.isInteger(v) ? BigInt(v) : v;
  }
  if (typeof v === 'string' || typeof v === 'boolean') return v;
  if (Array.isArray(v)) return v.map((x) => toCel(s?.items, x));
  if (isObj(v)) {
    const m = new Map<string, CelInput>();
    for (const [k, child] of Object.entries(v)) {
      const ps = s?.properties?.get(k) ?? (typeof s?.additionalProperties === 'object' ? s.additionalProperties : undefined);
      const keep = !s || ps !== undefined || s.preserveUnknown;
      if (!keep || (child === null && !(ps?.nullable ?? false))) continue;
      m.set(k, toCel(ps, child));
    }
    return m;
  }
  return null;
}

function checkFormat(format: string, v: string): string | undefined {
  switch (format) {
    case 'byte':
      return /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(v.replace(/[\r\n]/g, ''))
        ? undefined
        : 'must be base64-encoded bytes';
    case 'date-time':
      return /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/.test(v) && !Number.isNaN(Date.parse(v))
        ? undefined
        : 'must be an RFC 3339 date-time such as 2024-01-02T15:04:05Z';
    case 'date':
      return /^\d{4}-\d{2}-\d{2}$/.test(v) && !Number.isNaN(Date.parse(v)) ? undefined : 'must be a date such as 2024-01-02';
    case 'ipv4':
      return isIPv4(v) ? undefined : 'must be an IPv4 address';
    case 'ipv6':
      return isIPv6(v) ? undefined : 'must be an IPv6 address';
    case 'cidr': {
      const [ip, bits, extra] = v.split('/');
      const max = isIPv4(ip ?? '') ? 32 : isIPv6(ip ?? '') ? 128 : 0;
      return max > 0 && extra === undefined && /^\d{1,3}$/.test(bits ?? '') && Number(bits) <= max ? undefined : 'must be a CIDR such as 10.0.0.0/8';
    }
    case 'hostname':
      return v.length <= 253 && /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/i.test(v) ? undefined : 'must be an RFC 1123 host name';
    case 'uuid':
      return /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i.test(v) ? undefined : 'must be a UUID';
    case 'uri':
      return parseRequestUri(v).ok ? undefined : 'must be an absolute URI';
    case 'duration':
      return parseGoDuration(v).ok ? undefined : 'must be a duration such as "1.5s"';
    case 'ip':
      return isIP(v) ? undefined : 'must be an IP address';
    default:
      return undefined; // int32, int64, double, float, password...: not checked by the API server
  }
}

function unknownField(path: Path, key: string, known: string[]): Issue {
  const sorted = [...new Set(known)].sort();
  const near = sorted.find((k) => k.toLowerCase() === key.toLowerCase()) ?? sorted.find((k) => editDistance(k, key) <= 2);
  const hint = near ? ` (did you mean ${near}?)` : '';
  const list = sorted.length > 0 ? `known fields are ${sorted.join(', ')}` : 'no fields are allowed here';
  return { path, message: `unknown field ${JSON.stringify(key)}${hint}; ${list}`, severity: 'warning' };
}

function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 2) return 3;
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      cur.push(Math.min((prev[j] ?? 0) + 1, (cur[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + cost));
    }
    prev = cur;
  }
  return prev[b.length] ?? 0;
}

function hasType(v: unknown, t: SchemaType): boolean {
  switch (t) {
    case 'string':
      return typeof v === 'string';
    case 'integer':
      return typeof v === 'number' && Number.isInteger(v);
    case 'number':
      return typeof v === 'number' && Number.isFinite(v);
    case 'boolean':
      return typeof v === 'boolean';
    case 'object':
      return isObj(v);
    case 'array':
      return Array.isArray(v);
  }
}

function typeName(s: Schema): string {
  if (s.intOrString) return 'an integer or a string';
  switch (s.type) {
    case 'string':
      return 'a string';
    case 'integer':
      return 'an integer';
    case 'number':
      return 'a number';
    case 'boolean':
      return 'a boolean (true or false)';
    case 'object':
      return 'a mapping of fields';
    case 'array':
      return 'a list';
    default:
      return 'a value';
  }
}

/** A short description of a value's type and value for "(got ...)". */
function describe(v: unknown): string {
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'string') return `string ${show(v)}`;
  if (typeof v === 'number') return Number.isInteger(v) ? `integer ${v}` : `number ${v}`;
  if (typeof v === 'boolean') return `boolean ${v}`;
  if (Array.isArray(v)) return 'a list';
  return 'a mapping';
}

function show(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 80 ? `${v.slice(0, 77)}...` : v);
  if (isScalar(v)) return String(v);
  const j = JSON.stringify(v);
  return j.length > 80 ? `${j.slice(0, 77)}...` : j;
}

function isScalar(v: unknown): v is string | number | boolean | null {
  return v === null || typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean';
}

function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (isObj(v)) return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonical(v[k])}`).join(',')}}`;
  return JSON.stringify(v) ?? 'null';
}

function deepEqual(a: unknown, b: unknown): boolean {
  return a === b || canonical(a) === canonical(b);
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
