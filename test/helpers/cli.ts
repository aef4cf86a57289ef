// Runs tsmesh commands in-process through cli/main.ts with captured output, as a user would see it.

import assert from 'node:assert/strict';
import { main, type CommandIO } from '../../src/cli/main.ts';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export async function runCli(args: string[], stdin?: string): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const io: CommandIO = {
    out: (t) => (stdout += t.endsWith('\n') ? t : t + '\n'),
    err: (t) => (stderr += t.endsWith('\n') ? t : t + '\n'),
    ...(stdin !== undefined ? { stdin } : {}),
  };
  const code = await main(args, io);
  return { code, stdout, stderr };
}

/** `tsmesh get <args>` (which must succeed) as a user reads its table: first column (NAME) -> every column by header. */
export async function getTable(args: string[]): Promise<Map<string, Record<string, string>>> {
  const r = await runCli(['get', ...args]);
  assert.equal(r.code, 0, r.stderr);
  const [head = '', ...rows] = r.stdout.trim().split('\n');
  const cols = head.trim().split(/\s+/);
  return new Map(rows.map((l) => {
    const v = l.trim().split(/\s+/);
    return [v[0] ?? '', Object.fromEntries(cols.map((c, i) => [c, v[i] ?? '']))];
  }));
}
