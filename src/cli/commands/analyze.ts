// `tsmesh analyze PATH...`: istioctl analyze over files: validation plus analyzers, istioctl's output
// and exit codes (79 when messages reach --failure-threshold, 65 when only parsing failed). Bad flags
// throw MESH_ERR_CLI_USAGE; unreadable paths throw MESH_ERR_CONFIG_READ.

import { parseArgs } from 'node:util';
import { MeshError } from '../../common/errors.ts';
import {
  ALL_ANALYZERS,
  DOC_BASE,
  analyzeResources,
  isAtLeast,
  isKnownCode,
  parseLevel,
  parseSuppression,
  type Level,
} from '../../config/analysis/index.ts';
import { formatMessages, parseOutputFormat } from '../../config/analysis/output.ts';
import { formatDiagnostic } from '../../config/diagnostics.ts';
import { loadPaths } from '../../config/loader.ts';
import { validateResources } from '../../config/validate.ts';
import type { CommandIO } from '../main.ts';

/** istioctl's exit codes (istioctl/cmd/sysexits.go). */
export const EXIT_ANALYZER_FOUND_ISSUES = 79;
export const EXIT_DATA_ERROR = 65;

export const summary = 'Analyze Istio configuration files and print validation messages (istioctl analyze)';

export const usage = `Usage: tsmesh analyze [flags] PATH...

Analyzes Kubernetes and Istio resources in files, directories (recursively) and stdin ('-'),
and prints istioctl's messages, e.g.
  Error [IST0101] (VirtualService default/reviews reviews.yaml:12) Referenced host not found: "bogus"
For the message codes see ${DOC_BASE}.

Flags:
  -f, --filename PATH           a file, directory or '-' to analyze (repeatable; same as a PATH argument)
  -n, --namespace NS            namespace for resources that name none, and whose messages are shown (default "default")
  -A, --all-namespaces          show messages for every namespace
  -o, --output FORMAT           log (or text), json or yaml (default log)
      --failure-threshold LVL   exit 79 when a message is at least this level: Info, Warning, Error (default Error)
      --output-threshold LVL    print messages at least this level (default Info)
  -S, --suppress CODE=RESOURCE  do not report CODE on RESOURCE ('Kind namespace/name', '*' wildcards; repeatable)
      --ignore-unknown          do not fail because some documents could not be parsed
  -L, --list-analyzers          list the analyzers and exit

Exit codes (as istioctl): 0 no issue at the failure threshold; 79 issues found (log output only, as
istioctl); 65 some files could not be parsed; 1 a path could not be read; 2 wrong flags.`;

function level(flag: string, value: string | undefined, dflt: Level): Level {
  if (value === undefined) return dflt;
  const l = parseLevel(value);
  if (!l) throw new MeshError('MESH_ERR_CLI_USAGE', `--${flag}: ${value} is not a level; use Info, Warning or Error`);
  return l;
}

export async function run(args: string[], io: CommandIO): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: {
        filename: { type: 'string', short: 'f', multiple: true },
        namespace: { type: 'string', short: 'n' },
        'all-namespaces': { type: 'boolean', short: 'A' },
        output: { type: 'string', short: 'o' },
        'failure-threshold': { type: 'string' },
        'output-threshold': { type: 'string' },
        suppress: { type: 'string', short: 'S', multiple: true },
        'ignore-unknown': { type: 'boolean' },
        'list-analyzers': { type: 'boolean', short: 'L' },
      },
    });
  } catch (err) {
    throw new MeshError('MESH_ERR_CLI_USAGE', `${(err as Error).message}; see tsmesh analyze --help`);
  }
  const { values, positionals } = parsed;

  const format = parseOutputFormat(values.output ?? 'log');
  if (!format) throw new MeshError('MESH_ERR_CLI_USAGE', `${values.output ?? ''} not a valid option for format; use log (text), json or yaml`);
  const failureThreshold = level('failure-threshold', values['failure-threshold'], 'Error');
  const outputThreshold = level('output-threshold', values['output-threshold'], 'Info');

  if (values['list-analyzers']) {
    const lines: string[] = [];
    for (const a of [...ALL_ANALYZERS].sort((x, y) => x.name.localeCompare(y.name))) lines.push(`* ${a.name}:`, `    ${a.description}`);
    io.out(lines.join('\n'));
    return 0;
  }

  const paths = [...(values.filename ?? []), ...positionals];
  if (paths.length === 0) {
    throw new MeshError('MESH_ERR_CLI_USAGE', 'tsmesh analyze needs files to analyze: tsmesh analyze PATH... (see --help)');
  }

  const suppressions = (values.suppress ?? []).map(parseSuppression);
  for (const s of suppressions) {
    if (!isKnownCode(s.code)) io.err(`Warning: Supplied message code '${s.code}' is an unknown message code and will not have any effect.`);
  }

  const all = values['all-namespaces'] === true;
  const namespace = values.namespace ?? 'default';
  const target = all ? 'all namespaces' : `namespace: ${namespace}`;

  const loaded = await loadPaths(paths, { defaultNamespace: namespace, stdin: io.stdin });
  const diagnostics = [...loaded.diagnostics, ...validateResources(loaded.resources)];
  const result = analyzeResources(loaded.resources, { namespace: all ? undefined : namespace, suppressions, diagnostics });

  // Problems outside any resource (YAML syntax errors): istioctl reports them as unparseable files.
  const unparsed = new Set<string>();
  for (const d of result.unattached) {
    if (d.severity !== 'error') continue;
    unparsed.add(d.file);
    io.err(`Error(s) adding files: ${formatDiagnostic(d)}`);
  }

  const shown = result.messages.filter((m) => isAtLeast(m.type.level, outputThreshold));
  if (format !== 'log' || shown.length > 0) io.out(formatMessages(shown, format));

  if (shown.length === 0) {
    if (unparsed.size === 0) {
      const files = loaded.files;
      if (files.length > 1) io.err(`\u2714 No validation issues found when analyzing:\n  - ${files.join('\n  - ')}`);
      else io.err(`\u2714 No validation issues found when analyzing ${files.length === 1 ? (files[0] ?? '') : target}.`);
    } else {
      io.err(`No validation issues found when analyzing ${target} (but ${unparsed.size} ${unparsed.size === 1 ? 'file' : 'files'} could not be parsed).`);
    }
  }

  // Like istioctl: the exit code follows the unfiltered messages, and only for the log format.
  if (format !== 'log') return 0;
  if (result.messages.some((m) => isAtLeast(m.type.level, failureThreshold))) {
    io.err(`Error: Analyzers found issues when analyzing ${target}.\nSee ${DOC_BASE} for more information about causes and resolutions.`);
    return EXIT_ANALYZER_FOUND_ISSUES;
  }
  if (unparsed.size > 0 && values['ignore-unknown'] !== true) {
    io.err("Error: Some files couldn't be parsed.");
    return EXIT_DATA_ERROR;
  }
  return 0;
}
