// Prometheus text exposition (format 0.0.4): metric families declared once, series cached by label values, cells
// (counter, gauge, histogram) updated in place; rendering escapes label values and HELP text. Never throws.

export type MetricType = 'counter' | 'gauge' | 'histogram';

export interface MetricDef {
  /** Prometheus name with its unit, e.g. istio_request_duration_milliseconds. */
  readonly name: string;
  readonly type: MetricType;
  readonly help: string;
  /** Label names, in exposition order. */
  readonly labels: readonly string[];
  /** Histogram upper bounds, ascending (+Inf is implicit). */
  readonly buckets?: readonly number[];
}

export class Counter {
  value = 0;
  inc(n = 1): void {
    if (n > 0) this.value += n;
  }
}

export class Gauge {
  value = 0;
  set(v: number): void {
    this.value = v;
  }
  inc(n = 1): void {
    this.value += n;
  }
  dec(n = 1): void {
    this.value -= n;
  }
}

export class Histogram {
  readonly bounds: readonly number[];
  /** Per-bucket (not cumulative) counts; the last slot is +Inf. */
  readonly counts: number[];
  sum = 0;
  count = 0;

  constructor(bounds: readonly number[]) {
    this.bounds = bounds;
    this.counts = new Array<number>(bounds.length + 1).fill(0);
  }

  observe(v: number): void {
    const b = this.bounds;
    let lo = 0;
    let hi = b.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (v <= (b[mid] as number)) hi = mid;
      else lo = mid + 1;
    }
    this.counts[lo] = (this.counts[lo] as number) + 1;
    this.sum += v;
    this.count++;
  }
}

export type Cell = Counter | Gauge | Histogram;
type CellFor<T extends MetricType> = T extends 'histogram' ? Histogram : T extends 'gauge' ? Gauge : Counter;

/** Escapes a label value: backslash, double quote and newline. */
export function escapeLabelValue(v: string): string {
  let needs = false;
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c === 92 || c === 34 || c === 10) {
      needs = true;
      break;
    }
  }
  if (!needs) return v;
  let out = '';
  for (const ch of v) out += ch === '\\' ? '\\\\' : ch === '"' ? '\\"' : ch === '\n' ? '\\n' : ch;
  return out;
}

function escapeHelp(v: string): string {
  let out = '';
  for (const ch of v) out += ch === '\\' ? '\\\\' : ch === '\n' ? '\\n' : ch;
  return out;
}

/** A sample value: integers as is, +Inf/-Inf/NaN spelled Prometheus's way. */
export function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Number.POSITIVE_INFINITY) return '+Inf';
  if (v === Number.NEGATIVE_INFINITY) return '-Inf';
  return String(v);
}

export interface Series<C extends Cell> {
  readonly values: readonly string[];
  readonly cell: C;
  /** `a="x",b="y"` (escaped), computed once. */
  readonly labelText: string;
}

/** One metric name: its declaration and its series by label values. */
export class MetricFamily<T extends MetricType = MetricType> {
  readonly def: MetricDef & { type: T };
  readonly #series = new Map<string, Series<CellFor<T>>>();

  constructor(def: MetricDef & { type: T }) {
    this.def = def;
  }

  /** The cell for these label values (in the declared order), created on first use. */
  get(values: readonly string[]): CellFor<T> {
    const key = values.length === 1 ? (values[0] as string) : values.join('\u0001');
    let s = this.#series.get(key);
    if (!s) {
      const labels = this.def.labels;
      let labelText = '';
      for (let i = 0; i < labels.length; i++) labelText += `${i === 0 ? '' : ','}${labels[i]}="${escapeLabelValue(values[i] ?? '')}"`;
      const cell = (this.def.type === 'histogram' ? new Histogram(this.def.buckets ?? []) : this.def.type === 'gauge' ? new Gauge() : new Counter()) as CellFor<T>;
      s = { values: [...values], cell, labelText };
      this.#series.set(key, s);
    }
    return s.cell;
  }

  series(): IterableIterator<Series<CellFor<T>>> {
    return this.#series.values();
  }

  get size(): number {
    return this.#series.size;
  }

  clear(): void {
    this.#series.clear();
  }

  /** HELP, TYPE and every sample; '' when the family has no series. */
  render(): string {
    if (this.#series.size === 0) return '';
    const { name, type } = this.def;
    let out = `# HELP ${name} ${escapeHelp(this.def.help)}\n# TYPE ${name} ${type}\n`;
    for (const s of this.#series.values()) {
      const cell = s.cell;
      if (cell instanceof Histogram) {
        const prefix = s.labelText ? `${name}_bucket{${s.labelText},le="` : `${name}_bucket{le="`;
        let cumulative = 0;
        for (let i = 0; i < cell.bounds.length; i++) {
          cumulative += cell.counts[i] as number;
          out += `${prefix}${formatValue(cell.bounds[i] as number)}"} ${cumulative}\n`;
        }
        out += `${prefix}+Inf"} ${cell.count}\n`;
        const braces = s.labelText ? `{${s.labelText}}` : '';
        out += `${name}_sum${braces} ${formatValue(cell.sum)}\n${name}_count${braces} ${cell.count}\n`;
      } else {
        out += `${name}${s.labelText ? `{${s.labelText}}` : ''} ${formatValue(cell.value)}\n`;
      }
    }
    return out;
  }
}

/** Renders families in order; the result is a complete 0.0.4 text exposition. */
export function renderFamilies(families: Iterable<MetricFamily>): string {
  let out = '';
  for (const f of families) out += f.render();
  return out;
}

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
