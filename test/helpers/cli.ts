// Runs tsmesh commands in-process through cli/main.ts with captured output, as a user would see it.

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
