// Draws a small line chart as standalone SVG text (categorical x, linear or log y, one polyline per series, optional goal line); pure, never throws (empty or non-positive values are skipped on a log axis).

export interface Series {
  name: string;
  color: string;
  /** One value per x category; NaN for none. */
  values: number[];
  /** Drawn dashed. */
  dashed?: boolean;
  /** Per point annotation shown beside it (e.g. "300 proxies"). */
  notes?: Array<string | undefined>;
}

export interface Chart {
  title: string;
  xLabel: string;
  yLabel: string;
  categories: string[];
  series: Series[];
  log?: boolean;
  goal?: { value: number; label: string };
  footnote?: string;
}

const W = 720;
const H = 420;
const M = { left: 80, right: 180, top: 50, bottom: 70 };

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function niceTicks(lo: number, hi: number, log: boolean): number[] {
  if (log) {
    const out: number[] = [];
    for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) out.push(10 ** e);
    return out;
  }
  const step = 10 ** Math.floor(Math.log10((hi - lo) / 5 || 1));
  const mult = [1, 2, 5, 10].find((m) => (hi - lo) / (step * m) <= 6) ?? 10;
  const s = step * mult;
  const out: number[] = [];
  for (let v = Math.floor(lo / s) * s; v <= hi + s / 2; v += s) out.push(v);
  return out;
}

function fmt(v: number): string {
  if (v >= 1000) return `${v / 1000} s`;
  return `${v} ms`;
}

export function lineChart(c: Chart): string {
  const log = c.log ?? false;
  const all = c.series.flatMap((s) => s.values).concat(c.goal ? [c.goal.value] : []).filter((v) => Number.isFinite(v) && (!log || v > 0));
  const lo0 = all.length ? Math.min(...all) : 1;
  const hi0 = all.length ? Math.max(...all) : 10;
  const ticks = niceTicks(log ? lo0 : 0, hi0, log);
  const lo = log ? (ticks[0] ?? 1) : 0;
  const hi = ticks[ticks.length - 1] ?? hi0;
  const pw = W - M.left - M.right;
  const ph = H - M.top - M.bottom;
  const y = (v: number): number => {
    const f = log ? (Math.log10(v) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo) || 1) : (v - lo) / (hi - lo || 1);
    return M.top + ph - f * ph;
  };
  const x = (i: number): number => M.left + (c.categories.length === 1 ? pw / 2 : (i * pw) / (c.categories.length - 1));
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  parts.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  parts.push(`<text x="${W / 2}" y="24" text-anchor="middle" font-size="15" font-weight="bold">${esc(c.title)}</text>`);
  for (const t of ticks) {
    parts.push(`<line x1="${M.left}" x2="${M.left + pw}" y1="${y(t).toFixed(1)}" y2="${y(t).toFixed(1)}" stroke="#ddd"/>`);
    parts.push(`<text x="${M.left - 6}" y="${(y(t) + 4).toFixed(1)}" text-anchor="end">${esc(fmt(t))}</text>`);
  }
  c.categories.forEach((cat, i) => {
    parts.push(`<text x="${x(i).toFixed(1)}" y="${M.top + ph + 18}" text-anchor="middle">${esc(cat)}</text>`);
  });
  parts.push(`<line x1="${M.left}" x2="${M.left}" y1="${M.top}" y2="${M.top + ph}" stroke="black"/>`);
  parts.push(`<line x1="${M.left}" x2="${M.left + pw}" y1="${M.top + ph}" y2="${M.top + ph}" stroke="black"/>`);
  parts.push(`<text x="${M.left + pw / 2}" y="${M.top + ph + 40}" text-anchor="middle">${esc(c.xLabel)}</text>`);
  parts.push(`<text transform="translate(18 ${M.top + ph / 2}) rotate(-90)" text-anchor="middle">${esc(c.yLabel + (log ? ' (log scale)' : ''))}</text>`);
  if (c.goal && (!log || c.goal.value > 0)) {
    const gy = y(c.goal.value).toFixed(1);
    parts.push(`<line x1="${M.left}" x2="${M.left + pw}" y1="${gy}" y2="${gy}" stroke="#c00" stroke-dasharray="6 4"/>`);
    parts.push(`<text x="${M.left + pw + 6}" y="${Number(gy) + 4}" fill="#c00">${esc(c.goal.label)}</text>`);
  }
  c.series.forEach((s, si) => {
    const pts = s.values.map((v, i) => (Number.isFinite(v) && (!log || v > 0) ? [x(i), y(v)] : undefined));
    const path = pts.filter((p): p is number[] => p !== undefined).map((p) => `${(p[0] ?? 0).toFixed(1)},${(p[1] ?? 0).toFixed(1)}`).join(' ');
    parts.push(`<polyline points="${path}" fill="none" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="5 3"' : ''}/>`);
    pts.forEach((p, i) => {
      if (!p) return;
      parts.push(`<circle cx="${(p[0] ?? 0).toFixed(1)}" cy="${(p[1] ?? 0).toFixed(1)}" r="3.5" fill="${s.color}"/>`);
      const note = s.notes?.[i];
      // left of the point, clear of the legend on the right
      if (note) parts.push(`<text x="${((p[0] ?? 0) - 6).toFixed(1)}" y="${((p[1] ?? 0) - 8).toFixed(1)}" text-anchor="end" fill="${s.color}" font-size="10">${esc(note)}</text>`);
    });
    const ly = M.top + 10 + si * 20;
    parts.push(`<line x1="${M.left + pw + 10}" x2="${M.left + pw + 34}" y1="${ly}" y2="${ly}" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="5 3"' : ''}/>`);
    parts.push(`<text x="${M.left + pw + 40}" y="${ly + 4}">${esc(s.name)}</text>`);
  });
  if (c.footnote) parts.push(`<text x="${M.left}" y="${H - 10}" font-size="10" fill="#555">${esc(c.footnote)}</text>`);
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}
