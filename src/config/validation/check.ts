// Plumbing for the semantic rules: a collector of diagnostics for one resource, and readers for
// untyped YAML values. Never throws: a value of the wrong type reads as absent (the schema says so).

import { diagAt, type Diagnostic } from '../diagnostics.ts';
import type { FieldPath, Resource } from '../resource.ts';

export type Obj = Record<string, unknown>;
export type Path = readonly (string | number)[];

/** Collects the diagnostics of one resource. Rule helpers return a problem string or undefined. */
export class Checker {
  readonly diagnostics: Diagnostic[] = [];
  constructor(readonly r: Resource) {}

  error(path: FieldPath, message: string): void {
    this.diagnostics.push(diagAt(this.r, path, message));
  }

  warn(path: FieldPath, message: string): void {
    this.diagnostics.push(diagAt(this.r, path, message, 'warning'));
  }

  /** Records `problem` as an error at `path` when there is one; returns true when there was none. */
  check(path: FieldPath, problem: string | undefined): boolean {
    if (problem === undefined) return true;
    this.error(path, problem);
    return false;
  }
}

export function obj(v: unknown): Obj | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Obj) : undefined;
}

/** The items of an array, or [] for anything else. */
export function list(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

export function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

export function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

export function bool(v: unknown): boolean | undefined {
  return typeof v === 'boolean' ? v : undefined;
}

/** The strings of an array of strings (other items are skipped; the schema reports them). */
export function strings(v: unknown): Array<[number, string]> {
  const out: Array<[number, string]> = [];
  list(v).forEach((x, i) => {
    if (typeof x === 'string') out.push([i, x]);
  });
  return out;
}

/** The entries of a mapping, or [] for anything else. */
export function entries(v: unknown): Array<[string, unknown]> {
  const o = obj(v);
  return o ? Object.entries(o) : [];
}

/** True when `key` is present in `o` with a value other than null. */
export function isSet(o: Obj | undefined, key: string): boolean {
  return o !== undefined && o[key] !== undefined && o[key] !== null;
}

/** The value of a protobuf wrapper written either bare (`5`) or as `{value: 5}`. */
export function wrapped(v: unknown): unknown {
  const o = obj(v);
  return o && 'value' in o ? o.value : v;
}

export function quote(s: string): string {
  return JSON.stringify(s);
}
