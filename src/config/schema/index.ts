// Validates Istio custom resources against the CRD schemas in Istio's crd-all.gen.yaml (OpenAPI v3
// plus x-kubernetes-validations CEL rules), as the Kubernetes API server would. Never throws: when the
// CRD file cannot be found, each validator says so once (one warning per process for validateSchema)
// and validates nothing; a rule that does not compile is reported once as a warning and skipped.

import { diagAt, type Diagnostic } from '../diagnostics.ts';
import { lookupKind } from '../kinds.ts';
import type { Resource } from '../resource.ts';
import { CrdCatalog, locateCrdFile, type Crd } from './crd-file.ts';
import { checkMetadata } from './metadata.ts';
import { compileSchema, validateRoot, type Issue, type Schema, type ValidateHooks } from './openapi.ts';

export { locateCrdFile } from './crd-file.ts';

export interface SchemaValidatorOptions {
  /** The CRD file to read; default: locateCrdFile(). */
  crdPath?: string;
  /** The CRD file's text (tests); wins over crdPath. */
  crdText?: string;
}

/** Validates resources against one CRD file. Schemas and CEL programs are compiled once, on first use. */
export class SchemaValidator {
  private catalog: CrdCatalog | undefined;
  private unavailable: string | undefined; // why there is no catalog
  private unavailableReported = false;
  private readonly schemas = new Map<string, Schema | undefined>();
  private readonly reportedRules = new Set<string>();

  constructor(private readonly opts: SchemaValidatorOptions = {}) {}

  /** Diagnostics for one resource: errors for what the API server would reject, warnings for unknown fields. */
  validate(r: Resource): Diagnostic[] {
    const info = lookupKind(r.group, r.kind);
    if (info ? !info.istioCrd : !r.group.endsWith('istio.io')) return [];
    const catalog = this.load();
    if (!catalog) {
      if (this.unavailableReported) return [];
      this.unavailableReported = true;
      return [diagAt(r, [], `schema validation is unavailable: ${this.unavailable ?? 'no CRD file'}; only semantic checks ran`, 'warning')];
    }
    const crd = catalog.get(r.group, r.kind);
    if (!crd) {
      // An Istio group but a kind the CRD file does not define: the loader already warned if unknown.
      return info ? [diagAt(r, ['kind'], `no CRD for ${r.kind} in the CRD file; its schema was not checked`, 'warning')] : [];
    }
    const version = crd.versions.find((v) => v.name === r.version);
    if (!version || !version.served) {
      const served = crd.versions.filter((v) => v.served).map((v) => v.name);
      const what = version ? `version ${r.version} of ${r.kind} is not served` : `unknown version ${r.version} of ${r.kind}`;
      return [diagAt(r, ['apiVersion'], `${what}; the CRD serves ${served.map((v) => `${r.group}/${v}`).join(', ')}`)];
    }
    const schema = this.schemaFor(crd, r.version, version.schema);
    const issues: Issue[] = [...checkMetadata(r.body.metadata)];
    const diagnostics: Diagnostic[] = [];
    const hooks: ValidateHooks = {
      ruleCompileError: (rule, error, path) => {
        const key = `${crd.group}/${crd.kind}/${rule}`;
        if (this.reportedRules.has(key)) return;
        this.reportedRules.add(key);
        diagnostics.push(diagAt(r, path, `internal: the CRD's validation rule ${JSON.stringify(rule)} does not compile (${error}); rule skipped`, 'warning'));
      },
    };
    if (schema) validateRoot(schema, r.body, issues, hooks);
    const seen = new Set<string>();
    for (const i of issues) {
      const d = diagAt(r, i.path, i.message, i.severity);
      const key = `${d.severity}|${d.path}|${d.message}`;
      if (seen.has(key)) continue; // the same rule reached twice (allOf branches) says it once
      seen.add(key);
      diagnostics.push(d);
    }
    // Report in file order, whatever order the schema walk found them in (sort is stable).
    return diagnostics.sort((a, b) => a.line - b.line || a.col - b.col);
  }

  private load(): CrdCatalog | undefined {
    if (this.catalog || this.unavailable) return this.catalog;
    try {
      if (this.opts.crdText !== undefined) {
        this.catalog = new CrdCatalog(this.opts.crdText);
      } else {
        const where = this.opts.crdPath !== undefined ? { path: this.opts.crdPath, tried: [this.opts.crdPath] } : locateCrdFile();
        if (!where.path) this.unavailable = `Istio's CRD file was not found (looked in ${where.tried.join(', ')}; set TSMESH_ISTIO_CRDS)`;
        else this.catalog = CrdCatalog.fromFile(where.path);
      }
    } catch (err) {
      this.unavailable = `cannot read Istio's CRD file: ${(err as Error).message}`;
    }
    return this.catalog;
  }

  private schemaFor(crd: Crd, version: string, raw: unknown): Schema | undefined {
    const key = `${crd.group}/${crd.kind}/${version}`;
    if (!this.schemas.has(key)) this.schemas.set(key, raw === undefined ? undefined : compileSchema(raw));
    return this.schemas.get(key);
  }
}

let shared: SchemaValidator | undefined;

/** Validates one resource with the process-wide validator (CRD file from locateCrdFile()). */
export function validateSchema(r: Resource): Diagnostic[] {
  shared ??= new SchemaValidator();
  return shared.validate(r);
}
