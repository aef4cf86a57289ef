// Readers for proto3 JSON values as xDS delivers them (wrappers, int64 strings, Durations, enums by
// name or number); each throws ClusterConfigError naming the field path when a value has the wrong shape.

/** A CDS/EDS resource the sidecar cannot apply; the message becomes the NACK's error_detail. */
export class ClusterConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ClusterConfigError';
  }
}

export type Json = Record<string, unknown>;

export function obj(v: unknown, path: string): Json | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'object' || Array.isArray(v)) throw new ClusterConfigError(`${path}: expected an object`);
  return v as Json;
}

export function arr(v: unknown, path: string): unknown[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new ClusterConfigError(`${path}: expected a list`);
  return v;
}

export function str(v: unknown, path: string): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new ClusterConfigError(`${path}: expected a string`);
  return v;
}

/** A number, an int64 as a decimal string, or a wrapper `{value}`. */
export function num(v: unknown, path: string): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'object' && !Array.isArray(v) && 'value' in v) return num((v as Json).value, path);
  const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isFinite(n)) throw new ClusterConfigError(`${path}: expected a number, got ${JSON.stringify(v)}`);
  return n;
}

export function bool(v: unknown, path: string): boolean | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'object' && !Array.isArray(v) && 'value' in v) return bool((v as Json).value, path);
  if (typeof v !== 'boolean') throw new ClusterConfigError(`${path}: expected a boolean`);
  return v;
}

/** google.protobuf.Duration as "1.5s" or {seconds, nanos}, in milliseconds. */
export function durationMs(v: unknown, path: string): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') {
    const m = /^(-?\d+(?:\.\d{1,9})?)s$/.exec(v);
    if (!m) throw new ClusterConfigError(`${path}: malformed duration ${JSON.stringify(v)} (expected e.g. "1.5s")`);
    return Number(m[1]) * 1000;
  }
  if (typeof v === 'object' && !Array.isArray(v)) {
    const o = v as Json;
    return (num(o.seconds, `${path}.seconds`) ?? 0) * 1000 + (num(o.nanos, `${path}.nanos`) ?? 0) / 1e6;
  }
  throw new ClusterConfigError(`${path}: expected a duration`);
}

/** An enum given by name or number; `names[i]` is the name of value i. */
export function enumName<T extends string>(v: unknown, names: readonly T[], path: string): T | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'number') {
    const n = names[v];
    if (n === undefined) throw new ClusterConfigError(`${path}: unknown enum value ${v}`);
    return n;
  }
  if (typeof v === 'string' && (names as readonly string[]).includes(v)) return v as T;
  throw new ClusterConfigError(`${path}: unknown value ${JSON.stringify(v)} (expected one of ${names.filter((n) => !n.startsWith('_')).join(', ')})`);
}
