// Metric families as plain data, and back: a worker process sends a snapshot of its stats and Istio metrics to the
// sidecar's primary, which merges every worker's into one set (counters and histograms add up; gauges add up or,
// for those that describe shared config such as cluster membership, take the largest). Never throws.

import { Counter, Gauge, Histogram, MetricFamily, type MetricDef } from './prometheus.ts';

export interface SeriesSnapshot {
  values: string[];
  /** Counter or gauge value. */
  v?: number;
  /** Histogram: per-bucket counts (not cumulative; the last is +Inf), sum and count. */
  h?: { counts: number[]; sum: number; count: number };
}

export interface FamilySnapshot {
  def: MetricDef;
  series: SeriesSnapshot[];
}

/** Plain, serialisable copies of these families (series and all). */
export function snapshotFamilies(families: Iterable<MetricFamily>): FamilySnapshot[] {
  const out: FamilySnapshot[] = [];
  for (const f of families) {
    const series: SeriesSnapshot[] = [];
    for (const s of f.series()) {
      const c = s.cell;
      series.push(c instanceof Histogram ? { values: [...s.values], h: { counts: [...c.counts], sum: c.sum, count: c.count } } : { values: [...s.values], v: c.value });
    }
    out.push({ def: f.def, series });
  }
  return out;
}

/**
 * Gauges that say the same thing in every worker (each has the whole config): merged with max, not sum.
 * Everything else that is a gauge counts something each worker has its own share of (connections, requests).
 */
const SAME_IN_EVERY_WORKER = new Set([
  'envoy_cluster_manager_active_clusters',
  'envoy_listener_manager_total_listeners_active',
  'envoy_cluster_membership_total',
  'envoy_cluster_membership_healthy',
  'envoy_cluster_outlier_detection_ejections_active',
]);

export function gaugeMergeOf(name: string): 'sum' | 'max' {
  return SAME_IN_EVERY_WORKER.has(name) ? 'max' : 'sum';
}

/** One set of families from many snapshots, in first-seen order. `keepGauges: false` drops gauges (a dead worker's). */
export function mergeSnapshots(snapshots: Iterable<readonly FamilySnapshot[]>, opts: { keepGauges?: boolean } = {}): MetricFamily[] {
  const keepGauges = opts.keepGauges ?? true;
  const byName = new Map<string, MetricFamily>();
  for (const snap of snapshots) {
    for (const fs of snap) {
      if (fs.def.type === 'gauge' && !keepGauges) continue;
      let f = byName.get(fs.def.name);
      if (!f) byName.set(fs.def.name, (f = new MetricFamily(fs.def)));
      if (f.def.type !== fs.def.type) continue;
      const max = f.def.type === 'gauge' && gaugeMergeOf(f.def.name) === 'max';
      for (const s of fs.series) {
        const cell = f.get(s.values);
        if (cell instanceof Histogram) {
          if (!s.h || s.h.counts.length !== cell.counts.length) continue;
          for (let i = 0; i < cell.counts.length; i++) cell.counts[i] = (cell.counts[i] as number) + (s.h.counts[i] ?? 0);
          cell.sum += s.h.sum;
          cell.count += s.h.count;
        } else if (cell instanceof Gauge) {
          const v = s.v ?? 0;
          cell.value = max ? Math.max(cell.value, v) : cell.value + v;
        } else if (cell instanceof Counter) {
          cell.value += s.v ?? 0;
        }
      }
    }
  }
  return [...byName.values()];
}
