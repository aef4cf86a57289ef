// Replaces one suite's section of bench/results/latest.md (between its HTML comment markers), keeping the other suites' sections; creates the file when absent, throws only on I/O errors.

import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

const TITLE = '# tsmesh benchmark results\n\nWritten by `npm run bench`; each suite replaces only its own section. How to read them: docs/benchmarks.md.\n';

export function writeSection(file: string, suite: string, markdown: string): void {
  const begin = `<!-- bench:${suite}:begin -->`;
  const end = `<!-- bench:${suite}:end -->`;
  const block = `${begin}\n${markdown.trimEnd()}\n${end}`;
  const current = existsSync(file) ? readFileSync(file, 'utf8') : TITLE;
  const i = current.indexOf(begin);
  const j = current.indexOf(end);
  const next = i >= 0 && j > i ? current.slice(0, i) + block + current.slice(j + end.length) : `${current.trimEnd()}\n\n${block}\n`;
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, next.endsWith('\n') ? next : `${next}\n`);
}
