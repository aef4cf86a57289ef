// The tsmesh command line: finds the command module under ./commands/<name>.ts and runs it.
// Each command parses its own flags and calls library functions; errors print one line and exit 1/2.

import { readdirSync } from 'node:fs';
import { isMeshError } from '../common/errors.ts';

export interface CommandModule {
  /** One line for `tsmesh help`. */
  summary: string;
  /** Usage text for `tsmesh <cmd> --help`. */
  usage: string;
  /** Runs the command; resolves to the process exit code. */
  run(args: string[], io: CommandIO): Promise<number>;
}

export interface CommandIO {
  out(text: string): void;
  err(text: string): void;
  /** Text of stdin when the command reads '-', supplied by tests; undefined reads process.stdin. */
  stdin?: string;
}

const commandsDir = new URL('./commands/', import.meta.url);

/** Names of every command (files in ./commands, without .ts), sorted. */
export function commandNames(): string[] {
  return readdirSync(commandsDir)
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts') && !f.startsWith('_'))
    .map((f) => f.slice(0, -3))
    .sort();
}

export async function loadCommand(name: string): Promise<CommandModule | undefined> {
  if (!/^[a-z][a-z0-9-]*$/.test(name) || !commandNames().includes(name)) return undefined;
  return (await import(new URL(`./${name}.ts`, commandsDir).href)) as CommandModule;
}

const processIO: CommandIO = {
  out: (t) => process.stdout.write(t.endsWith('\n') ? t : t + '\n'),
  err: (t) => process.stderr.write(t.endsWith('\n') ? t : t + '\n'),
};

async function help(io: CommandIO): Promise<void> {
  const lines = ['tsmesh: a service mesh that implements Istio\'s sidecar mode and reads Istio\'s YAML.', '', 'Usage: tsmesh <command> [flags]', '', 'Commands:'];
  for (const name of commandNames()) {
    const mod = await loadCommand(name);
    lines.push(`  ${name.padEnd(16)}${mod?.summary ?? ''}`);
  }
  lines.push('', 'Run `tsmesh <command> --help` for a command\'s flags.');
  io.out(lines.join('\n'));
}

export async function main(argv: string[], io: CommandIO = processIO): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === 'help' || name === '--help' || name === '-h') {
    await help(io);
    return name ? 0 : 2;
  }
  const mod = await loadCommand(name);
  if (!mod) {
    io.err(`tsmesh: unknown command "${name}"; run \`tsmesh help\` for the list`);
    return 2;
  }
  return runCommand(mod, rest, io);
}

/** Runs one command module as `tsmesh <name> ...rest` does: --help prints its usage; a MeshError prints one line and gives 1 (2 for usage errors). */
export async function runCommand(mod: CommandModule, rest: string[], io: CommandIO = processIO): Promise<number> {
  if (rest.includes('--help') || rest.includes('-h')) {
    io.out(mod.usage);
    return 0;
  }
  try {
    return await mod.run(rest, io);
  } catch (err) {
    if (isMeshError(err)) {
      io.err(`Error: ${err.message}`);
      return err.code === 'MESH_ERR_CLI_USAGE' ? 2 : 1;
    }
    throw err;
  }
}
