// Runs the analyzers over loaded resources, turns validation diagnostics into IST0106/IST0133 messages,
// and filters (namespace, suppressions), sorts and dedupes the result as istioctl does.
// Never throws on bad input: an analyzer that throws becomes an IST0001 InternalError message.

import { MeshError } from '../../common/errors.ts';
import { buildRegistry, DEFAULT_DOMAIN, type Registry } from '../../registry/index.ts';
import type { Diagnostic } from '../diagnostics.ts';
import { meshConfigFromResources } from '../mesh-config.ts';
import { resourceKey, resourceRef, type Resource } from '../resource.ts';
import { kindKey, type AnalysisContext, type Analyzer, type KindKey } from './analyzer.ts';
import { ALL_ANALYZERS } from './analyzers/index.ts';
import { messageNamespace, messageOrigin, newMessage, sortAndDedupe, type AnalysisMessage } from './message.ts';
import { MESSAGES, messageTypeByCode } from './messages.ts';

export { ALL_ANALYZERS } from './analyzers/index.ts';
export type { Analyzer, AnalysisContext } from './analyzer.ts';
export * from './message.ts';
export * from './messages.ts';

/** `CODE=Kind namespace/name`, where the resource part may use '*' wildcards (istioctl's --suppress). */
export interface Suppression {
  code: string;
  resource: string;
}

/** Parses one --suppress value; throws MESH_ERR_CLI_USAGE unless it has exactly one '='. */
export function parseSuppression(s: string): Suppression {
  const parts = s.split('=');
  if (parts.length !== 2 || parts[0] === undefined || parts[1] === undefined) {
    throw new MeshError('MESH_ERR_CLI_USAGE', `${s} is not a valid suppression value. See tsmesh analyze --help`);
  }
  return { code: parts[0], resource: parts[1] };
}

/** True when `code` is one tsmesh can report (unknown codes in --suppress only warn, as in istioctl). */
export function isKnownCode(code: string): boolean {
  return messageTypeByCode(code) !== undefined;
}

/** istioctl's glob: '*' matches any run of characters, everything else literally. */
export function globMatch(pattern: string, s: string): boolean {
  const re = new RegExp('^' + pattern.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*') + '$', 's');
  return re.test(s);
}

/** Resource annotation listing codes (or '*') never to report on it, as istioctl honours it. */
export const SUPPRESS_ANNOTATION = 'galley.istio.io/analyze-suppress';

export interface AnalyzeOptions {
  /** Keep only messages about resources in this namespace, cluster-scoped ones and resource-less ones;
   *  undefined keeps all namespaces (-A). */
  namespace?: string;
  suppressions?: readonly Suppression[];
  /** Load and validation diagnostics; those inside a resource become IST0106 (errors) / IST0133 (warnings). */
  diagnostics?: readonly Diagnostic[];
  /** Default: every analyzer. */
  analyzers?: readonly Analyzer[];
  /** Default: built from `resources`. */
  registry?: Registry;
}

export interface AnalysisResult {
  /** Filtered, sorted and deduplicated messages. */
  messages: AnalysisMessage[];
  /** Diagnostics that belong to no loaded resource (YAML syntax errors, documents without a name). */
  unattached: Diagnostic[];
  /** Names of the analyzers that ran. */
  executed: string[];
}

function diagnosticMessages(resources: readonly Resource[], ds: readonly Diagnostic[]): { messages: AnalysisMessage[]; unattached: Diagnostic[] } {
  const byRef = new Map<string, Resource>();
  for (const r of resources) byRef.set(`${r.source.file}\u0000${resourceRef(r)}`, r);
  const messages: AnalysisMessage[] = [];
  const unattached: Diagnostic[] = [];
  for (const d of ds) {
    const r = d.resource ? byRef.get(`${d.file}\u0000${d.resource}`) : undefined;
    if (!r) {
      unattached.push(d);
      continue;
    }
    const detail = d.path ? `${d.path}: ${d.message}` : d.message;
    const type = d.severity === 'error' ? MESSAGES.SchemaValidationError : MESSAGES.SchemaWarning;
    messages.push({ type, args: [detail], resource: r, line: d.line });
  }
  return { messages, unattached };
}

function suppressed(m: AnalysisMessage, suppressions: readonly Suppression[]): boolean {
  const r = m.resource;
  if (!r) return false;
  const anno = r.metadata.annotations[SUPPRESS_ANNOTATION];
  if (anno && anno.split(',').some((c) => c.trim() === '*' || c.trim() === m.type.code)) return true;
  const origin = messageOrigin(m);
  return suppressions.some((s) => s.code === m.type.code && globMatch(s.resource, origin));
}

/** Runs every analyzer (and the diagnostics conversion) over `resources`. */
export function analyzeResources(allResources: readonly Resource[], opts: AnalyzeOptions = {}): AnalysisResult {
  // Like istioctl's store (and `kubectl apply` of the same files), a later resource with the same
  // kind, namespace and name replaces an earlier one.
  const latest = new Map<string, Resource>();
  for (const r of allResources) {
    const key = resourceKey(r);
    latest.delete(key);
    latest.set(key, r);
  }
  const resources = [...latest.values()];
  const byKind = new Map<KindKey, Resource[]>();
  for (const r of resources) {
    const k = kindKey(r);
    const list = byKind.get(k) ?? [];
    list.push(r);
    byKind.set(k, list);
  }
  // The mesh config (ConfigMap istio) shapes the registry (defaultServiceExportTo); its problems are reported too.
  const meshConfig = meshConfigFromResources(resources);
  let registry = opts.registry;
  const getRegistry = (): Registry => (registry ??= buildRegistry(resources, { meshConfig: meshConfig.mesh }));

  const raw: AnalysisMessage[] = [];
  const executed: string[] = [];
  for (const a of opts.analyzers ?? ALL_ANALYZERS) {
    const declared = new Set(a.inputs);
    const ctx: AnalysisContext = {
      list: <Spec>(kind: KindKey) => {
        if (!declared.has(kind)) throw new Error(`analyzer ${a.name} read ${kind}, which it does not declare`);
        return (byKind.get(kind) ?? []) as unknown as ReadonlyArray<Resource<Spec>>;
      },
      get registry() {
        if (!a.registry) throw new Error(`analyzer ${a.name} read the registry, which it does not declare`);
        return getRegistry();
      },
      get domain() {
        return registry?.domain ?? DEFAULT_DOMAIN;
      },
      report: (m) => raw.push(m),
    };
    try {
      a.analyze(ctx);
    } catch (err) {
      raw.push(newMessage(MESSAGES.InternalError, undefined, [`analyzer ${a.name}: ${(err as Error).message}`]));
    }
    executed.push(a.name);
  }
  const fromDiags = diagnosticMessages(allResources, [...(opts.diagnostics ?? []), ...meshConfig.diagnostics]);
  raw.push(...fromDiags.messages);

  const ns = opts.namespace;
  const suppressions = opts.suppressions ?? [];
  const kept = raw.filter((m) => {
    if (ns !== undefined) {
      const mns = messageNamespace(m);
      if (mns !== '' && mns !== ns) return false;
    }
    return !suppressed(m, suppressions);
  });
  return { messages: sortAndDedupe(kept), unattached: fromDiags.unattached, executed };
}
