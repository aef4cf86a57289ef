// Finds and reads Istio's CRD file (crd-all.gen.yaml) and indexes its CustomResourceDefinitions by
// group and kind, parsing each CRD's YAML only when first asked for. Fails softly: a missing file or
// a CRD that does not parse yields undefined plus a reason, never an exception.

import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

/** One served (or unserved) version of a CRD: its name and its openAPIV3Schema. */
export interface CrdVersion {
  name: string;
  served: boolean;
  schema: unknown;
}

export interface Crd {
  group: string;
  kind: string;
  versions: CrdVersion[];
}

/** Where a CRD file was found, or every place that was tried when none was. */
export interface CrdLocation {
  path: string | undefined;
  tried: string[];
}

/** The CRD file: env TSMESH_ISTIO_CRDS, else ../shared/istio/crds/crd-all.gen.yaml beside the checkout. */
export function locateCrdFile(env: NodeJS.ProcessEnv = process.env): CrdLocation {
  const candidates: string[] = [];
  if (env.TSMESH_ISTIO_CRDS) candidates.push(env.TSMESH_ISTIO_CRDS);
  candidates.push(fileURLToPath(new URL('../../../../shared/istio/crds/crd-all.gen.yaml', import.meta.url)));
  for (const c of candidates) {
    if (existsSync(c)) return { path: c, tried: candidates };
  }
  return { path: undefined, tried: candidates };
}

/** The CRDs of one file, each parsed on first lookup and kept. */
export class CrdCatalog {
  private readonly raw = new Map<string, string>(); // `group/Kind` -> YAML text of that CRD
  private readonly parsed = new Map<string, Crd | undefined>();
  private unindexed: string[] = []; // documents whose group/kind the cheap scan could not read

  constructor(text: string) {
    for (const part of text.split(/^---[ \t]*$/m)) {
      if (!/\S/.test(part)) continue;
      const group = /^spec:\s*$[\s\S]*?^ {2}group: *['"]?([^'"\s]+)/m.exec(part)?.[1];
      const kind = /^ {2}names:\s*$[\s\S]*?^ {4}kind: *['"]?([^'"\s]+)/m.exec(part)?.[1];
      if (group && kind) this.raw.set(`${group}/${kind}`, part);
      else this.unindexed.push(part);
    }
  }

  static fromFile(path: string): CrdCatalog {
    return new CrdCatalog(readFileSync(path, 'utf8'));
  }

  /** The CRD for group/kind, or undefined when the file defines none (or it does not parse). */
  get(group: string, kind: string): Crd | undefined {
    const key = `${group}/${kind}`;
    if (this.parsed.has(key)) return this.parsed.get(key);
    if (!this.raw.has(key) && this.unindexed.length > 0) {
      this.indexSlowly();
      if (this.parsed.has(key)) return this.parsed.get(key);
    }
    const text = this.raw.get(key);
    const crd = text === undefined ? undefined : toCrd(safeParse(text));
    this.parsed.set(key, crd);
    return crd;
  }

  /** Parses the documents the cheap scan could not place (unusual formatting), once. */
  private indexSlowly(): void {
    const rest = this.unindexed;
    this.unindexed = [];
    for (const part of rest) {
      const crd = toCrd(safeParse(part));
      if (crd) this.parsed.set(`${crd.group}/${crd.kind}`, crd);
    }
  }
}

function safeParse(text: string): unknown {
  try {
    return parse(text, { maxAliasCount: -1 });
  } catch {
    return undefined;
  }
}

function toCrd(doc: unknown): Crd | undefined {
  if (!isObj(doc) || doc.kind !== 'CustomResourceDefinition' || !isObj(doc.spec)) return undefined;
  const spec = doc.spec;
  const names = isObj(spec.names) ? spec.names : {};
  if (typeof spec.group !== 'string' || typeof names.kind !== 'string') return undefined;
  const versions: CrdVersion[] = [];
  if (Array.isArray(spec.versions)) {
    for (const v of spec.versions) {
      if (!isObj(v) || typeof v.name !== 'string') continue;
      const schema = isObj(v.schema) ? v.schema.openAPIV3Schema : undefined;
      versions.push({ name: v.name, served: v.served !== false, schema });
    }
  }
  return { group: spec.group, kind: names.kind, versions };
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
