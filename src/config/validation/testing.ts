// Test helpers for the semantic rules: build a resource from a spec object (through the real loader,
// so positions exist) and pick out errors and warnings. Used by the *.test.ts files only.

import assert from 'node:assert/strict';
import { stringify } from 'yaml';
import type { Diagnostic } from '../diagnostics.ts';
import { loadString } from '../loader.ts';
import { validateSemantics } from './index.ts';

const API: Record<string, string> = {
  VirtualService: 'networking.istio.io/v1', DestinationRule: 'networking.istio.io/v1', ServiceEntry: 'networking.istio.io/v1',
  Sidecar: 'networking.istio.io/v1', Gateway: 'networking.istio.io/v1', WorkloadEntry: 'networking.istio.io/v1',
  WorkloadGroup: 'networking.istio.io/v1', PeerAuthentication: 'security.istio.io/v1', AuthorizationPolicy: 'security.istio.io/v1',
  RequestAuthentication: 'security.istio.io/v1', Telemetry: 'telemetry.istio.io/v1', Service: 'v1', Pod: 'v1', Namespace: 'v1',
  Endpoints: 'v1', Deployment: 'apps/v1', StatefulSet: 'apps/v1', DaemonSet: 'apps/v1', ReplicaSet: 'apps/v1', Job: 'batch/v1',
  EndpointSlice: 'discovery.k8s.io/v1',
};

/** Semantic diagnostics of one `kind` with `spec` (or extra top-level fields via `top`). */
export function validate(kind: string, spec: unknown, opts: { name?: string; namespace?: string; metadata?: Record<string, unknown>; top?: Record<string, unknown> } = {}): Diagnostic[] {
  const metadata = { name: opts.name ?? 'test', namespace: opts.namespace ?? 'default', ...opts.metadata };
  const doc: Record<string, unknown> = { apiVersion: API[kind] ?? 'v1', kind, metadata, ...opts.top };
  if (spec !== undefined) doc.spec = spec;
  const loaded = loadString(stringify(doc), 'test.yaml');
  assert.equal(loaded.resources.length, 1, `the test resource must load: ${JSON.stringify(loaded.diagnostics)}`);
  const r = loaded.resources[0];
  assert.ok(r);
  return validateSemantics(r);
}

export function errors(ds: Diagnostic[]): string[] {
  return ds.filter((d) => d.severity === 'error').map((d) => `${d.path}: ${d.message}`);
}

export function warnings(ds: Diagnostic[]): string[] {
  return ds.filter((d) => d.severity === 'warning').map((d) => `${d.path}: ${d.message}`);
}

/** Asserts exactly one error, at `path`, whose message contains `fragment`. */
export function assertOneError(ds: Diagnostic[], path: string, fragment: string): void {
  const es = errors(ds);
  assert.equal(es.length, 1, `expected one error at ${path} (${fragment}), got:\n${es.join('\n')}`);
  assertHas(es, path, fragment);
}

/** Asserts some error is at `path` and its message contains `fragment`. */
export function assertError(ds: Diagnostic[], path: string, fragment: string): void {
  assertHas(errors(ds), path, fragment);
}

export function assertWarning(ds: Diagnostic[], path: string, fragment: string): void {
  assertHas(warnings(ds), path, fragment);
}

export function assertNoErrors(ds: Diagnostic[]): void {
  assert.deepEqual(errors(ds), []);
}

function assertHas(lines: string[], path: string, fragment: string): void {
  assert.ok(lines.some((l) => l.startsWith(`${path}: `) && l.includes(fragment)), `expected ${path}: ...${fragment}... in:\n${lines.join('\n')}`);
}
