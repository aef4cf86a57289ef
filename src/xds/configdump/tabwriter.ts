// Aligned text columns the way Go's text/tabwriter lays out istioctl's tables (minwidth 0, padding 5,
// last column unpadded). Pure; never throws.

export function tabulate(rows: ReadonlyArray<readonly string[]>, padding = 5): string {
  const widths: number[] = [];
  for (const row of rows) {
    row.forEach((cell, i) => {
      if (i === row.length - 1) return;
      widths[i] = Math.max(widths[i] ?? 0, [...cell].length);
    });
  }
  return rows
    .map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell + ' '.repeat((widths[i] ?? 0) - [...cell].length + padding))).join(''))
    .join('\n');
}
