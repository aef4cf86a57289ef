// One entry point for validation: the CRD schema (OpenAPI + CEL rules) and Istio's semantic rules.
// Returns diagnostics; never throws on bad input. A semantic error on a path the schema already
// reported is dropped, so each problem is said once.

import type { Diagnostic } from './diagnostics.ts';
import type { Resource } from './resource.ts';
import { validateSchema } from './schema/index.ts';
import { validateSemantics } from './validation/index.ts';

export function validateResource(r: Resource): Diagnostic[] {
  const schema = validateSchema(r);
  const seen = new Set(schema.filter((d) => d.severity === 'error').map((d) => d.path));
  const semantic = validateSemantics(r).filter((d) => !(d.severity === 'error' && seen.has(d.path)));
  return [...schema, ...semantic];
}

export function validateResources(rs: readonly Resource[]): Diagnostic[] {
  return rs.flatMap(validateResource);
}
