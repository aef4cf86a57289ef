// Renders rows as an aligned text table or a Markdown table; cells are strings, never throws.

export function textTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ').trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/** `align`: one letter per column, l(eft), r(ight) or c(enter); default: the first left, the rest right. */
export function markdownTable(header: readonly string[], rows: readonly (readonly string[])[], align?: string): string {
  const esc = (c: string): string => c.replace(/\|/g, '\\|');
  const rule = (i: number): string => {
    const a = align?.[i] ?? (i === 0 ? 'l' : 'r');
    return a === 'r' ? '---:' : a === 'c' ? ':---:' : '---';
  };
  return [
    `| ${header.map(esc).join(' | ')} |`,
    `|${header.map((_, i) => rule(i)).join('|')}|`,
    ...rows.map((r) => `| ${r.map(esc).join(' | ')} |`),
  ].join('\n');
}
