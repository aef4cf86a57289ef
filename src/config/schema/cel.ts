// Compiles and runs x-kubernetes-validations CEL rules with @bufbuild/cel plus the Kubernetes
// library functions Istio's CRDs use (Go durations, url(), isURL()). Each rule text is compiled once
// and cached. Never throws: a rule that does not compile becomes a compile error the caller reports.

import { CelScalar, celEnv, celFunc, celMethod, isCelError, objectType, parse, plan, type CelEnv, type CelFunc, type CelInput, type CelResult } from '@bufbuild/cel';
import { strings } from '@bufbuild/cel/ext';
import { create } from '@bufbuild/protobuf';
import { DurationSchema } from '@bufbuild/protobuf/wkt';
import { parseGoDuration } from './go-duration.ts';
import { parseRequestUri, urlHostname, urlPort, type GoUrl } from './go-url.ts';

const DURATION = objectType(DurationSchema);
const { STRING, BOOL } = CelScalar;

function goDuration(text: string): CelInput<typeof DURATION> {
  const r = parseGoDuration(text);
  if (!r.ok) throw new Error(r.error);
  const nanos = r.nanos;
  return create(DurationSchema, { seconds: nanos / 1_000_000_000n, nanos: Number(nanos % 1_000_000_000n) });
}

function mustUrl(text: string): GoUrl {
  const r = parseRequestUri(text);
  if (!r.ok) throw new Error(`URL parse error during conversion from string: ${r.error}`);
  return r.url;
}

// url(s) yields the (validated) string itself; the URL accessors are methods on strings that parse
// again. The library has no opaque object types, and the rules only ever chain url(x).getX().
const kubernetesFuncs: CelFunc[] = [
  celFunc('duration', [STRING], DURATION, goDuration),
  celFunc('isURL', [STRING], BOOL, (s) => parseRequestUri(s).ok),
  celFunc('url', [STRING], STRING, (s) => (mustUrl(s), s)),
  celMethod('getScheme', STRING, [], STRING, function () {
    return mustUrl(this).scheme;
  }),
  celMethod('getHost', STRING, [], STRING, function () {
    return mustUrl(this).host;
  }),
  celMethod('getHostname', STRING, [], STRING, function () {
    return urlHostname(mustUrl(this));
  }),
  celMethod('getPort', STRING, [], STRING, function () {
    return urlPort(mustUrl(this));
  }),
  celMethod('getEscapedPath', STRING, [], STRING, function () {
    return mustUrl(this).path;
  }),
];

let env: CelEnv | undefined;
function environment(): CelEnv {
  env ??= celEnv({ funcs: [...strings, ...kubernetesFuncs] });
  return env;
}

export type CelProgram = (self: CelInput) => CelResult;

export type CompiledRule =
  | { kind: 'program'; run: CelProgram }
  | { kind: 'error'; error: string }
  /** Transition rules (oldSelf) only apply to updates; validating files is a create. */
  | { kind: 'transition' };

const cache = new Map<string, CompiledRule>();

/** The rule compiled against the Kubernetes CEL environment, cached by its text. */
export function compileRule(rule: string): CompiledRule {
  let c = cache.get(rule);
  if (!c) {
    c = compileUncached(rule);
    cache.set(rule, c);
  }
  return c;
}

function compileUncached(rule: string): CompiledRule {
  const e = environment();
  let parsed;
  try {
    parsed = parse(rule);
  } catch (err) {
    return { kind: 'error', error: firstLine((err as Error).message) };
  }
  const refs = { oldSelf: false, unknown: [] as string[] };
  scanExpr(parsed.expr, e, refs);
  if (refs.unknown.length > 0) return { kind: 'error', error: `undeclared function ${refs.unknown.join(', ')}` };
  if (refs.oldSelf) return { kind: 'transition' };
  try {
    const program = plan(e, parsed);
    return { kind: 'program', run: (self) => program({ self }) };
  } catch (err) {
    return { kind: 'error', error: firstLine((err as Error).message) };
  }
}

/** Walks a parsed expression for calls the environment cannot resolve and for oldSelf. */
function scanExpr(node: unknown, e: CelEnv, refs: { oldSelf: boolean; unknown: string[] }): void {
  if (typeof node !== 'object' || node === null) return;
  if (Array.isArray(node)) {
    for (const n of node) scanExpr(n, e, refs);
    return;
  }
  const kind = (node as { exprKind?: { case?: string; value?: unknown } }).exprKind;
  if (kind?.case === 'callExpr') {
    const fn = (kind.value as { function: string }).function;
    const operator = /^[_@!]/.test(fn);
    if (!operator && e.funcs.find(fn) === undefined && !refs.unknown.includes(fn)) refs.unknown.push(fn);
  } else if (kind?.case === 'identExpr' && (kind.value as { name: string }).name === 'oldSelf') {
    refs.oldSelf = true;
  }
  for (const [k, v] of Object.entries(node)) {
    if (k !== '$typeName' && typeof v === 'object') scanExpr(v, e, refs);
  }
}

/** Runs a compiled program; `true` passes, anything else is a failure with an optional reason. */
export function evaluate(run: CelProgram, self: CelInput): { ok: true } | { ok: false; error?: string; value?: unknown } {
  let result: CelResult;
  try {
    result = run(self);
  } catch (err) {
    return { ok: false, error: firstLine((err as Error).message) };
  }
  if (isCelError(result)) return { ok: false, error: firstLine(result.message) };
  if (result === true) return { ok: true };
  return { ok: false, value: result };
}

/** Evaluates a messageExpression to a string, or undefined when it fails or is not a string. */
export function evaluateMessage(expr: string, self: CelInput): string | undefined {
  const c = compileRule(expr);
  if (c.kind !== 'program') return undefined;
  try {
    const r = c.run(self);
    return typeof r === 'string' && r.trim() !== '' ? r : undefined;
  } catch {
    return undefined;
  }
}

function firstLine(s: string): string {
  return s.split('\n')[0] ?? s;
}
