// Image → local command mappings (tsmesh.local.yaml, kind LocalImages): images cannot be pulled here,
// so each container runs a local command instead. Reads the files beside the manifests and the ones
// shipped under examples/; an unreadable or malformed file throws MeshError naming it.

import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { MeshError } from '../common/errors.ts';
import type { Container } from '../config/types.ts';
import { REPO_ROOT } from './pod-runner.ts';

export const MAPPING_FILE = 'tsmesh.local.yaml';

/** An "external" test host a mapping file declares: `externalHosts: {httpbin.org: {image: ..., port: 80}}`. */
export interface ExternalHostDecl {
  image?: string;
  command?: string[];
  port: number;
  env?: Record<string, string>;
}

export interface ImageCommand {
  command: string[];
  env: Record<string, string>;
  /** The mapping file's directory: commands run there. */
  cwd: string;
}

function tsxImportFlag(): string {
  return `--import=${import.meta.resolve('tsx')}`;
}

function readMapping(file: string, into: Map<string, ImageCommand>, hosts?: Map<string, ExternalHostDecl>): void {
  let docs;
  try {
    docs = parseAllDocuments(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new MeshError('MESH_ERR_CONFIG_READ', `${file}: cannot read: ${(err as Error).message}`);
  }
  for (const d of Array.isArray(docs) ? docs : []) {
    const v = d.toJS() as { images?: Record<string, { command?: string[]; env?: Record<string, string> }>; externalHosts?: Record<string, ExternalHostDecl> } | null;
    for (const [name, h] of Object.entries(v?.externalHosts ?? {})) {
      if (!Number.isInteger(h.port) || h.port < 1 || h.port > 65535) throw new MeshError('MESH_ERR_CONFIG_INVALID', `${file}: externalHosts["${name}"].port must be 1..65535`);
      hosts?.set(name, h);
    }
    for (const [image, m] of Object.entries(v?.images ?? {})) {
      if (!Array.isArray(m.command) || m.command.length === 0) throw new MeshError('MESH_ERR_CONFIG_INVALID', `${file}: images["${image}"].command must be a non-empty list`);
      const cwd = dirname(resolve(file));
      const command = m.command.map((a) => (a === '{node}' ? process.execPath : a === '{tsx}' ? tsxImportFlag() : a));
      into.set(image, { command, env: Object.fromEntries(Object.entries(m.env ?? {}).map(([k, x]) => [k, String(x)])), cwd });
    }
  }
}

/** Mappings from the shipped examples, then from `dirs` (later files win). */
export function loadImageMappings(dirs: readonly string[]): Map<string, ImageCommand> {
  const out = new Map<string, ImageCommand>();
  const examples = join(REPO_ROOT, 'examples');
  if (existsSync(examples)) {
    for (const name of readdirSync(examples).sort()) {
      const f = join(examples, name, MAPPING_FILE);
      if (existsSync(f)) readMapping(f, out);
    }
  }
  for (const d of dirs) {
    const f = existsSync(d) && statSync(d).isDirectory() ? join(d, MAPPING_FILE) : join(dirname(d), MAPPING_FILE);
    if (existsSync(f)) readMapping(f, out);
  }
  return out;
}

/** The external test hosts declared by the mapping files beside the manifests (not the shipped examples'). */
export function loadExternalHosts(dirs: readonly string[]): Map<string, ExternalHostDecl> {
  const hosts = new Map<string, ExternalHostDecl>();
  const ignore = new Map<string, ImageCommand>();
  for (const d of dirs) {
    const f = existsSync(d) && statSync(d).isDirectory() ? join(d, MAPPING_FILE) : join(dirname(d), MAPPING_FILE);
    if (existsSync(f)) readMapping(f, ignore, hosts);
  }
  return hosts;
}

/** argv and cwd for a container, Kubernetes' rule: its own command wins; else the image's command + its args. */
export function containerCommand(c: Container, images: ReadonlyMap<string, ImageCommand>, annotations: Record<string, string>): { argv: string[]; env: Record<string, string>; cwd?: string } {
  const override = annotations[`tsmesh.io/command.${c.name}`] ?? annotations['tsmesh.io/command'];
  if (override) return { argv: ['/bin/sh', '-c', override], env: {} };
  if (c.command && c.command.length > 0) return { argv: [...c.command, ...(c.args ?? [])], env: images.get(c.image ?? '')?.env ?? {} };
  const m = images.get(c.image ?? '');
  if (!m) throw new MeshError('MESH_ERR_RUNTIME_POD', `container ${c.name}: no local command for image "${c.image ?? ''}": map it in ${MAPPING_FILE} beside the manifests, or set the pod annotation tsmesh.io/command`);
  return { argv: [...m.command, ...(c.args ?? [])], env: m.env, cwd: m.cwd };
}
