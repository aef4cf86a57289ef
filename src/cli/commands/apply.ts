// `tsmesh apply -f PATH`: sends resources to the running control plane, which validates them and
// pushes the change; a rejected change prints every error with file:line and changes nothing.

import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { MeshError } from '../../common/errors.ts';
import { listYamlFiles } from '../../config/loader.ts';
import { callControlPlane, controlPlaneUrl } from '../client.ts';
import type { CommandIO } from '../main.ts';

export const summary = 'Apply Kubernetes and Istio YAML to the running mesh (kubectl apply)';
export const usage = `Usage: tsmesh apply -f PATH... [-n NS] [--controlplane URL]

PATH may be a file, a directory (recursive) or '-' for stdin, and -f may repeat. The control plane
validates the whole change first: if anything is invalid nothing is applied and every error is printed
as file:line:col: Kind namespace/name: field: what is wrong.`;

export interface ApiResult {
  accepted: boolean;
  errors: string[];
  warnings: string[];
  resources: Array<{ ref: string; changed: boolean }>;
}

/** Reads -f arguments into the documents the API takes. */
export async function readDocuments(paths: readonly string[], io: CommandIO): Promise<Array<{ file: string; text: string }>> {
  const docs: Array<{ file: string; text: string }> = [];
  for (const p of paths) {
    if (p === '-') {
      let text = io.stdin;
      if (text === undefined) {
        const chunks: Buffer[] = [];
        for await (const c of process.stdin) chunks.push(c as Buffer);
        text = Buffer.concat(chunks).toString('utf8');
      }
      docs.push({ file: '-', text });
      continue;
    }
    for (const f of await listYamlFiles(p)) docs.push({ file: f, text: await readFile(f, 'utf8') });
  }
  return docs;
}

export async function sendDocuments(verb: 'apply' | 'delete', args: string[], io: CommandIO): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { filename: { type: 'string', short: 'f', multiple: true }, namespace: { type: 'string', short: 'n' }, controlplane: { type: 'string' } } });
  const paths = [...(values.filename ?? []), ...positionals];
  if (paths.length === 0) throw new MeshError('MESH_ERR_CLI_USAGE', `${verb}: give the YAML with -f PATH`);
  const documents = await readDocuments(paths, io);
  const q = values.namespace ? `?namespace=${encodeURIComponent(values.namespace)}` : '';
  const { body } = await callControlPlane<ApiResult>(controlPlaneUrl(values.controlplane), `/apis/v1/${verb}${q}`, { method: 'POST', body: { documents } });
  for (const w of body.warnings) io.err(`Warning: ${w}`);
  if (!body.accepted) {
    for (const e of body.errors) io.err(e);
    io.err(`Error: ${verb} rejected: ${body.errors.length} error(s); nothing was changed`);
    return 1;
  }
  const done = verb === 'apply' ? 'configured' : 'deleted';
  for (const r of body.resources) io.out(`${r.ref.replace(/^(\S+) /, (_m, k: string) => `${k.toLowerCase()}/`)} ${r.changed ? done : verb === 'apply' ? 'unchanged' : 'not found'}`);
  return 0;
}

export async function run(args: string[], io: CommandIO): Promise<number> {
  return sendDocuments('apply', args, io);
}
