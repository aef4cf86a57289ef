// Converts between tsmesh's xDS JSON convention (proto3 JSON mapping, snake_case names) and protobufjs wire objects; throws XdsShapeError naming the type and field path on any mismatch.
//
// The convention (see protos.ts and docs/xds.md): field names exactly as in the .proto files,
// Duration "3s" / "0.500s", Timestamp RFC 3339, enums by name, wrappers as plain values, Struct /
// Value / ListValue as plain JSON, int64 as decimal strings (numbers accepted on input), bytes as
// base64, Any as {"@type": "type.googleapis.com/<full name>", ...fields} (or {"@type", "value"} when
// the packed type is itself a well-known type with a special JSON form).

import protobuf from 'protobufjs';

type Json = unknown;
type JsonObject = Record<string, unknown>;

/** The wire form of google.protobuf.Any: what encodeAny returns and what travels in a DiscoveryResponse. */
export interface AnyWire {
  type_url: string;
  value: Uint8Array;
}

/** Thrown when a JSON object does not fit its proto type; `path` names the field, e.g. `Cluster.circuit_breakers.thresholds[0].max_connections`. */
export class XdsShapeError extends Error {
  readonly path: string;
  constructor(path: string, message: string) {
    super(path ? `${path}: ${message}` : message);
    this.name = 'XdsShapeError';
    this.path = path;
  }
}

const WRAPPERS = new Set([
  '.google.protobuf.DoubleValue', '.google.protobuf.FloatValue', '.google.protobuf.Int64Value',
  '.google.protobuf.UInt64Value', '.google.protobuf.Int32Value', '.google.protobuf.UInt32Value',
  '.google.protobuf.BoolValue', '.google.protobuf.StringValue', '.google.protobuf.BytesValue',
]);
/** Well-known types whose JSON form is not an object of fields; inside Any they travel as {"@type", "value"}. */
const SPECIAL = new Set([
  ...WRAPPERS, '.google.protobuf.Duration', '.google.protobuf.Timestamp', '.google.protobuf.Struct',
  '.google.protobuf.Value', '.google.protobuf.ListValue', '.google.protobuf.FieldMask', '.google.protobuf.Any',
]);
const INT64 = new Set(['int64', 'uint64', 'sint64', 'fixed64', 'sfixed64']);
const INT32 = new Set(['int32', 'uint32', 'sint32', 'fixed32', 'sfixed32']);
const MAX_DURATION_SECONDS = 315_576_000_000;

function isPlainObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

// protobufjs computes fullName on every read (walking the parents); the converter asks often
const fullNames = new WeakMap<protobuf.ReflectionObject, string>();
function fullNameOf(o: protobuf.ReflectionObject): string {
  let n = fullNames.get(o);
  if (n === undefined) {
    n = o.fullName;
    fullNames.set(o, n);
  }
  return n;
}

function shortName(type: protobuf.Type): string {
  const n = fullNameOf(type);
  return n.startsWith('.') ? n.slice(1) : n;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (v instanceof Uint8Array) return 'bytes';
  return `${typeof v} ${JSON.stringify(v)?.slice(0, 60) ?? ''}`.trim();
}

function snakeHint(name: string, type: protobuf.Type): string {
  const snake = name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
  if (snake !== name && Object.hasOwn(type.fields, snake)) return ` (did you mean '${snake}'? field names are snake_case as in the .proto)`;
  return '';
}

// ---- scalars --------------------------------------------------------------------------------

function longToString(v: unknown): string {
  return typeof v === 'object' && v !== null ? v.toString() : String(v);
}

function longToNumber(v: unknown): number {
  return typeof v === 'object' && v !== null ? Number(v.toString()) : Number(v);
}

/** Shortest decimal that reads back as the same float32 (the JSON printer's behaviour for `float`). */
function float32ToJson(v: number): number | string {
  if (!Number.isFinite(v)) return Number.isNaN(v) ? 'NaN' : v > 0 ? 'Infinity' : '-Infinity';
  for (let p = 1; p <= 9; p++) {
    const candidate = Number(v.toPrecision(p));
    if (Math.fround(candidate) === v) return candidate;
  }
  return v;
}

function doubleToJson(v: number): number | string {
  if (!Number.isFinite(v)) return Number.isNaN(v) ? 'NaN' : v > 0 ? 'Infinity' : '-Infinity';
  return v;
}

function parseNumber(path: string, v: unknown, kind: string): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && v.trim() !== '') {
    if (v === 'NaN') return NaN;
    if (v === 'Infinity') return Infinity;
    if (v === '-Infinity') return -Infinity;
    const n = Number(v);
    if (!Number.isNaN(n)) return n;
  }
  throw new XdsShapeError(path, `expected a number (${kind}), got ${describe(v)}`);
}

function parseInteger(path: string, v: unknown, kind: string): number {
  const n = parseNumber(path, v, kind);
  if (!Number.isInteger(n)) throw new XdsShapeError(path, `expected an integer (${kind}), got ${describe(v)}`);
  if (kind.startsWith('u') || kind === 'fixed32') {
    if (n < 0 || n > 0xffffffff) throw new XdsShapeError(path, `${n} is out of range for ${kind}`);
  } else if (n < -0x80000000 || n > 0x7fffffff) {
    throw new XdsShapeError(path, `${n} is out of range for ${kind}`);
  }
  return n;
}

function parseInt64(path: string, v: unknown, kind: string): string | number {
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v)) throw new XdsShapeError(path, `expected an integer (${kind}), got ${v}; pass large values as decimal strings`);
    return v;
  }
  if (typeof v === 'string' && /^-?\d+$/.test(v)) return v;
  throw new XdsShapeError(path, `expected an integer or a decimal string (${kind}), got ${describe(v)}`);
}

function scalarToWire(path: string, kind: string, v: unknown): unknown {
  if (kind === 'string') {
    if (typeof v !== 'string') throw new XdsShapeError(path, `expected a string, got ${describe(v)}`);
    return v;
  }
  if (kind === 'bool') {
    if (typeof v !== 'boolean') throw new XdsShapeError(path, `expected true or false, got ${describe(v)}`);
    return v;
  }
  if (kind === 'bytes') {
    if (v instanceof Uint8Array) return v;
    if (typeof v === 'string' && /^[A-Za-z0-9+/_-]*={0,2}$/.test(v)) return Buffer.from(v, 'base64');
    throw new XdsShapeError(path, `expected base64 bytes, got ${describe(v)}`);
  }
  if (kind === 'double' || kind === 'float') return parseNumber(path, v, kind);
  if (INT32.has(kind)) return parseInteger(path, v, kind);
  if (INT64.has(kind)) return parseInt64(path, v, kind);
  throw new XdsShapeError(path, `unsupported scalar type ${kind}`);
}

function scalarToJson(kind: string, v: unknown): unknown {
  if (kind === 'bytes') return Buffer.from(v as Uint8Array).toString('base64');
  if (INT64.has(kind)) return longToString(v);
  if (kind === 'float') return float32ToJson(v as number);
  if (kind === 'double') return doubleToJson(v as number);
  return v;
}

// ---- well-known types --------------------------------------------------------------------------

function formatNanos(nanos: number): string {
  if (nanos === 0) return '';
  if (nanos % 1_000_000 === 0) return `.${String(nanos / 1_000_000).padStart(3, '0')}`;
  if (nanos % 1_000 === 0) return `.${String(nanos / 1_000).padStart(6, '0')}`;
  return `.${String(nanos).padStart(9, '0')}`;
}

/** "3s", "0.500s", "-1.000000001s" -> {seconds, nanos}. */
export function parseDuration(path: string, v: unknown): { seconds: number; nanos: number } {
  const m = typeof v === 'string' ? /^(-)?(\d+)(?:\.(\d{1,9}))?s$/.exec(v) : null;
  if (!m) throw new XdsShapeError(path, `expected a Duration string such as "3s" or "0.500s", got ${describe(v)}`);
  const sign = m[1] ? -1 : 1;
  const seconds = Number(m[2]);
  const nanos = Number((m[3] ?? '').padEnd(9, '0'));
  if (seconds > MAX_DURATION_SECONDS) throw new XdsShapeError(path, `Duration ${String(v)} is out of range`);
  return { seconds: sign * seconds, nanos: seconds === 0 && nanos === 0 ? 0 : sign * nanos };
}

/** {seconds, nanos} -> "3s" / "0.500s" (0, 3, 6 or 9 fractional digits, as the proto3 JSON printer writes). */
export function formatDuration(seconds: number, nanos: number): string {
  const negative = seconds < 0 || nanos < 0;
  return `${negative ? '-' : ''}${Math.abs(seconds)}${formatNanos(Math.abs(nanos))}s`;
}

function parseTimestamp(path: string, v: unknown): { seconds: number; nanos: number } {
  const m = typeof v === 'string'
    ? /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/.exec(v)
    : null;
  const ms = m ? Date.parse(`${m[1]}${m[3]}`) : NaN;
  if (!m || Number.isNaN(ms)) throw new XdsShapeError(path, `expected an RFC 3339 Timestamp such as "2024-01-02T03:04:05Z", got ${describe(v)}`);
  return { seconds: Math.floor(ms / 1000), nanos: Number((m[2] ?? '').padEnd(9, '0')) };
}

function formatTimestamp(seconds: number, nanos: number): string {
  const base = new Date(seconds * 1000).toISOString().replace(/\.\d{3}Z$/, '');
  return `${base}${formatNanos(nanos)}Z`;
}

/**
 * Field names of google.protobuf.Value as this Root spells them: protobufjs's bundled struct.proto
 * uses camelCase (`structValue`), a Root parsed from the .proto with keepCase uses snake_case.
 */
interface ValueNames { null: string; number: string; string: string; bool: string; struct: string; list: string }

function valueNamesOf(root: protobuf.Root): ValueNames {
  const byId = root.lookupType('google.protobuf.Value').fieldsById;
  const name = (id: number, fallback: string): string => byId[id]?.name ?? fallback;
  return {
    null: name(1, 'null_value'), number: name(2, 'number_value'), string: name(3, 'string_value'),
    bool: name(4, 'bool_value'), struct: name(5, 'struct_value'), list: name(6, 'list_value'),
  };
}

function valueToWire(vn: ValueNames, path: string, v: unknown): JsonObject {
  if (v === null) return { [vn.null]: 0 };
  if (typeof v === 'number') return { [vn.number]: v };
  if (typeof v === 'string') return { [vn.string]: v };
  if (typeof v === 'boolean') return { [vn.bool]: v };
  if (Array.isArray(v)) return { [vn.list]: { values: v.map((e, i) => valueToWire(vn, `${path}[${i}]`, e)) } };
  if (isPlainObject(v)) return { [vn.struct]: structToWire(vn, path, v) };
  throw new XdsShapeError(path, `expected a JSON value, got ${describe(v)}`);
}

function structToWire(vn: ValueNames, path: string, v: unknown): JsonObject {
  if (!isPlainObject(v)) throw new XdsShapeError(path, `expected an object (Struct), got ${describe(v)}`);
  const fields: JsonObject = {};
  for (const [k, e] of Object.entries(v)) {
    if (e !== undefined) fields[k] = valueToWire(vn, `${path}.${k}`, e);
  }
  return { fields };
}

function valueToJson(vn: ValueNames, m: JsonObject): unknown {
  // decoded oneof members that were not on the wire read as null/undefined or a prototype default
  const own = (k: string): unknown => (Object.hasOwn(m, k) ? m[k] : undefined);
  const struct = own(vn.struct);
  if (struct != null) return structToJson(vn, struct as JsonObject);
  const list = own(vn.list);
  if (list != null) return ((list as JsonObject).values as JsonObject[] | undefined ?? []).map((e) => valueToJson(vn, e));
  const str = own(vn.string);
  if (str != null) return str;
  const num = own(vn.number);
  if (num != null) return num;
  const bool = own(vn.bool);
  if (bool != null) return bool;
  return null;
}

function structToJson(vn: ValueNames, m: JsonObject): JsonObject {
  const out: JsonObject = {};
  const fields = (m.fields ?? {}) as Record<string, JsonObject>;
  for (const [k, e] of Object.entries(fields)) out[k] = valueToJson(vn, e);
  return out;
}

// ---- the converter ------------------------------------------------------------------------------

/** Converts objects of one protobufjs Root between the JSON convention and wire objects. */
export class ProtoJson {
  readonly #root: protobuf.Root;
  readonly #types = new Map<string, protobuf.Type | null>();
  readonly #vn: ValueNames;

  constructor(root: protobuf.Root) {
    this.#root = root;
    this.#vn = valueNamesOf(root);
  }

  /** The message type for a type URL or a full name (leading dot optional); undefined when not loaded. */
  lookup(typeUrlOrName: string): protobuf.Type | undefined {
    let hit = this.#types.get(typeUrlOrName);
    if (hit === undefined) {
      const name = typeUrlOrName.slice(typeUrlOrName.lastIndexOf('/') + 1).replace(/^\./, '');
      try {
        hit = this.#root.lookupType(name);
      } catch {
        hit = null;
      }
      this.#types.set(typeUrlOrName, hit);
    }
    return hit ?? undefined;
  }

  /** JSON -> wire object for `type` (ready for type.encode). */
  toWire(type: protobuf.Type, json: Json, path: string = shortName(type)): unknown {
    const name = fullNameOf(type);
    if (SPECIAL.has(name)) return this.#specialToWire(type, json, path);
    if (!isPlainObject(json)) throw new XdsShapeError(path, `expected an object (${shortName(type)}), got ${describe(json)}`);
    const out: JsonObject = {};
    let oneofsSeen: Map<protobuf.OneOf, string> | undefined;
    for (const key of Object.keys(json)) {
      const value = json[key];
      if (value === undefined || value === null) continue;
      const field = Object.hasOwn(type.fields, key) ? type.fields[key] : undefined;
      if (!field) {
        throw new XdsShapeError(`${path}.${key}`, `unknown field '${key}' in ${shortName(type)}${snakeHint(key, type)}`);
      }
      const fpath = `${path}.${key}`;
      const oneof = field.partOf;
      if (oneof && oneof.oneof.length > 1) {
        oneofsSeen ??= new Map();
        const prior = oneofsSeen.get(oneof);
        if (prior !== undefined) {
          throw new XdsShapeError(fpath, `'${key}' and '${prior}' are both set but belong to the same oneof '${oneof.name}' of ${shortName(type)}`);
        }
        oneofsSeen.set(oneof, key);
      }
      out[key] = this.#fieldToWire(field, value, fpath);
    }
    return out;
  }

  /** Wire object (decoded message or plain object) -> JSON for `type`. */
  toJson(type: protobuf.Type, msg: unknown): unknown {
    const name = fullNameOf(type);
    if (SPECIAL.has(name)) return this.#specialToJson(type, msg as JsonObject);
    const m = msg as JsonObject;
    const out: JsonObject = {};
    for (const field of type.fieldsArray) {
      // decoded messages keep proto3 defaults on their prototype: only own properties were on the wire
      if (!Object.hasOwn(m, field.name)) continue;
      const v = m[field.name];
      if (v === undefined || v === null) continue;
      if (field.map) {
        const entries = Object.entries(v as JsonObject);
        if (entries.length === 0) continue;
        const obj: JsonObject = {};
        for (const [k, e] of entries) obj[k] = this.#valueToJson(field, e);
        out[field.name] = obj;
      } else if (field.repeated) {
        const arr = v as unknown[];
        if (arr.length === 0) continue;
        out[field.name] = arr.map((e) => this.#valueToJson(field, e));
      } else {
        out[field.name] = this.#valueToJson(field, v);
      }
    }
    return out;
  }

  /** JSON Any ({"@type", ...}) -> wire Any with the packed message encoded. */
  anyToWire(json: Json, path = ''): AnyWire {
    if (!isPlainObject(json)) throw new XdsShapeError(path, `expected an object with "@type", got ${describe(json)}`);
    if (json.value instanceof Uint8Array && typeof json.type_url === 'string' && Object.keys(json).length === 2) {
      return { type_url: json.type_url, value: json.value }; // already on the wire (pre-encoded)
    }
    const url = json['@type'];
    if (typeof url !== 'string' || url === '') {
      throw new XdsShapeError(path, `an Any needs "@type": "type.googleapis.com/<message>"; keys present: ${Object.keys(json).join(', ') || 'none'}`);
    }
    const type = this.lookup(url);
    if (!type) {
      if (typeof json['@bytes'] === 'string') return { type_url: url, value: Buffer.from(json['@bytes'], 'base64') };
      throw new XdsShapeError(path, `unknown "@type" ${url}: the type is not among the loaded Envoy protos`);
    }
    const typeName = shortName(type);
    const ipath = path === '' ? typeName : `${path}(${typeName.slice(typeName.lastIndexOf('.') + 1)})`;
    let wire: unknown;
    if (SPECIAL.has(fullNameOf(type))) {
      wire = this.toWire(type, json.value, `${ipath}.value`);
    } else {
      const rest: JsonObject = {};
      for (const k of Object.keys(json)) if (k !== '@type') rest[k] = json[k];
      wire = this.toWire(type, rest, ipath);
    }
    return { type_url: url, value: type.encode(wire as JsonObject).finish() };
  }

  /** Wire Any -> JSON Any; a packed type that is not loaded comes back as {"@type", "@bytes": base64}. */
  anyToJson(any: { type_url?: string; value?: Uint8Array }): JsonObject {
    const url = any.type_url ?? '';
    const value = any.value ?? new Uint8Array();
    const type = this.lookup(url);
    if (!type) return { '@type': url, '@bytes': Buffer.from(value).toString('base64') };
    const decoded = type.decode(value);
    const json = this.toJson(type, decoded);
    if (SPECIAL.has(fullNameOf(type))) return { '@type': url, value: json };
    return { '@type': url, ...(json as JsonObject) };
  }

  #fieldToWire(field: protobuf.Field, value: unknown, path: string): unknown {
    if (field.map) {
      if (!isPlainObject(value)) throw new XdsShapeError(path, `expected an object (map), got ${describe(value)}`);
      const out: JsonObject = {};
      for (const [k, e] of Object.entries(value)) {
        if (e === undefined) continue;
        out[k] = this.#valueToWire(field, e, `${path}[${JSON.stringify(k)}]`);
      }
      return out;
    }
    if (field.repeated) {
      if (!Array.isArray(value)) throw new XdsShapeError(path, `expected an array, got ${describe(value)}`);
      return value.map((e, i) => this.#valueToWire(field, e, `${path}[${i}]`));
    }
    return this.#valueToWire(field, value, path);
  }

  #valueToWire(field: protobuf.Field, value: unknown, path: string): unknown {
    const rt = field.resolvedType;
    if (rt instanceof protobuf.Type) {
      if (fullNameOf(rt) === '.google.protobuf.Value') return valueToWire(this.#vn, path, value);
      return this.toWire(rt, value, path);
    }
    if (rt instanceof protobuf.Enum) return enumToWire(rt, value, path);
    return scalarToWire(path, field.type, value);
  }

  #valueToJson(field: protobuf.Field, v: unknown): unknown {
    const rt = field.resolvedType;
    if (rt instanceof protobuf.Type) return this.toJson(rt, v);
    if (rt instanceof protobuf.Enum) {
      if (fullNameOf(rt) === '.google.protobuf.NullValue') return null;
      return rt.valuesById[v as number] ?? v;
    }
    return scalarToJson(field.type, v);
  }

  #specialToWire(type: protobuf.Type, json: Json, path: string): unknown {
    switch (fullNameOf(type)) {
      case '.google.protobuf.Any': return this.anyToWire(json, path);
      case '.google.protobuf.Duration': return parseDuration(path, json);
      case '.google.protobuf.Timestamp': return parseTimestamp(path, json);
      case '.google.protobuf.Struct': return structToWire(this.#vn, path, json);
      case '.google.protobuf.Value': return valueToWire(this.#vn, path, json);
      case '.google.protobuf.ListValue':
        if (!Array.isArray(json)) throw new XdsShapeError(path, `expected an array (ListValue), got ${describe(json)}`);
        return { values: json.map((e, i) => valueToWire(this.#vn, `${path}[${i}]`, e)) };
      case '.google.protobuf.FieldMask':
        if (typeof json !== 'string') throw new XdsShapeError(path, `expected a comma-separated FieldMask string, got ${describe(json)}`);
        return { paths: json === '' ? [] : json.split(',') };
      default: {
        // wrappers: the plain value of their single `value` field
        const inner = type.fields.value;
        if (!inner) throw new XdsShapeError(path, `unsupported well-known type ${fullNameOf(type)}`);
        return { value: scalarToWire(path, inner.type, json) };
      }
    }
  }

  #specialToJson(type: protobuf.Type, m: JsonObject): unknown {
    switch (fullNameOf(type)) {
      case '.google.protobuf.Any': return this.anyToJson(m);
      case '.google.protobuf.Duration': return formatDuration(longToNumber(m.seconds ?? 0), Number(m.nanos ?? 0));
      case '.google.protobuf.Timestamp': return formatTimestamp(longToNumber(m.seconds ?? 0), Number(m.nanos ?? 0));
      case '.google.protobuf.Struct': return structToJson(this.#vn, m);
      case '.google.protobuf.Value': return valueToJson(this.#vn, m);
      case '.google.protobuf.ListValue': return ((m.values as JsonObject[] | undefined) ?? []).map((e) => valueToJson(this.#vn, e));
      case '.google.protobuf.FieldMask': return ((m.paths as string[] | undefined) ?? []).join(',');
      default: {
        const inner = type.fields.value;
        const kind = inner?.type ?? 'string';
        const v = m.value ?? defaultScalar(kind);
        return scalarToJson(kind, v);
      }
    }
  }
}

function defaultScalar(kind: string): unknown {
  if (kind === 'bool') return false;
  if (kind === 'string') return '';
  if (kind === 'bytes') return new Uint8Array();
  return 0;
}

function enumToWire(e: protobuf.Enum, value: unknown, path: string): number {
  if (fullNameOf(e) === '.google.protobuf.NullValue') return 0;
  if (typeof value === 'string') {
    const n = e.values[value];
    if (n !== undefined) return n;
  } else if (typeof value === 'number' && Number.isInteger(value)) {
    return value;
  }
  const names = Object.keys(e.values);
  const listed = names.length > 12 ? `${names.slice(0, 12).join(', ')}, ...` : names.join(', ');
  throw new XdsShapeError(path, `${describe(value)} is not a value of enum ${fullNameOf(e).slice(1)} (one of ${listed})`);
}
