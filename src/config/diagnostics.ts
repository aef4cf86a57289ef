// Diagnostics: one shape for every validation or load problem, printed as
// `file:line:col: Kind namespace/name: spec.field.path: what is wrong and what is allowed`.

import { formatPath, resourceRef, type FieldPath, type Resource } from './resource.ts';

export type Severity = 'error' | 'warning';

export interface Diagnostic {
  severity: Severity;
  file: string;
  line: number;
  col: number;
  /** `Kind namespace/name`, or '' when the problem is not inside a resource (a YAML syntax error). */
  resource: string;
  /** Dotted field path such as `spec.http[0].route[0].weight`, or '' for the whole resource. */
  path: string;
  message: string;
}

export function formatDiagnostic(d: Diagnostic): string {
  const where = `${d.file}:${d.line}:${d.col}`;
  const parts = [where];
  if (d.resource) parts.push(d.resource);
  if (d.path) parts.push(d.path);
  const prefix = d.severity === 'warning' ? 'warning: ' : '';
  return `${parts.join(': ')}: ${prefix}${d.message}`;
}

/** A diagnostic located at `path` inside resource `r`. */
export function diagAt(r: Resource<unknown>, path: FieldPath, message: string, severity: Severity = 'error'): Diagnostic {
  const pos = r.source.at(path);
  return {
    severity,
    file: r.source.file,
    line: pos.line,
    col: pos.col,
    resource: resourceRef(r),
    path: formatPath(path),
    message,
  };
}

export function hasErrors(ds: readonly Diagnostic[]): boolean {
  return ds.some((d) => d.severity === 'error');
}
