// Envoy-style stats of the proxy itself (envoy_cluster_upstream_rq_total{cluster_name}, envoy_server_live, ...):
// declared in lists, series cached by labels, exposed as Prometheus text and as Envoy's /stats lines. An undeclared
// name or a type mismatch logs one warning and still returns a usable cell; nothing here throws.

import { logger } from '../../common/log.ts';
import { Counter, Gauge, Histogram, MetricFamily, formatValue, renderFamilies, type MetricDef, type MetricType } from './prometheus.ts';

const log = logger('stats');

const C = 'cluster_name';
const H = 'http_conn_manager_prefix';
const L = 'listener_address';
const T = 'tcp_prefix';

/** The proxy's own stats, Envoy's names (dashboards and istioctl know them). Components may define more. */
export const ENVOY_STATS: readonly MetricDef[] = [
  { name: 'envoy_server_live', type: 'gauge', help: '1 when the server is live (initialized and not draining), else 0', labels: [] },
  { name: 'envoy_server_state', type: 'gauge', help: 'Server state: 0 live, 1 draining, 2 pre-initializing, 3 initializing', labels: [] },
  { name: 'envoy_server_uptime', type: 'gauge', help: 'Seconds since the proxy started', labels: [] },
  { name: 'envoy_server_concurrency', type: 'gauge', help: 'Worker count', labels: [] },
  { name: 'envoy_server_memory_allocated', type: 'gauge', help: 'Heap bytes in use', labels: [] },
  { name: 'envoy_server_memory_heap_size', type: 'gauge', help: 'Heap bytes reserved', labels: [] },
  { name: 'envoy_server_total_connections', type: 'gauge', help: 'Downstream connections open', labels: [] },
  { name: 'envoy_cluster_manager_cds_update_success', type: 'counter', help: 'CDS updates applied', labels: [] },
  { name: 'envoy_cluster_manager_cds_update_rejected', type: 'counter', help: 'CDS updates rejected (NACKed)', labels: [] },
  { name: 'envoy_listener_manager_lds_update_success', type: 'counter', help: 'LDS updates applied', labels: [] },
  { name: 'envoy_listener_manager_lds_update_rejected', type: 'counter', help: 'LDS updates rejected (NACKed)', labels: [] },
  { name: 'envoy_cluster_manager_active_clusters', type: 'gauge', help: 'Clusters configured', labels: [] },
  { name: 'envoy_listener_manager_total_listeners_active', type: 'gauge', help: 'Listeners configured', labels: [] },
  { name: 'envoy_cluster_upstream_rq_total', type: 'counter', help: 'Requests sent to the cluster', labels: [C] },
  { name: 'envoy_cluster_upstream_rq', type: 'counter', help: 'Upstream responses by status code', labels: ['response_code', C] },
  { name: 'envoy_cluster_upstream_rq_xx', type: 'counter', help: 'Upstream responses by status class', labels: ['envoy_response_code_class', C] },
  { name: 'envoy_cluster_upstream_rq_active', type: 'gauge', help: 'Requests in flight to the cluster', labels: [C] },
  { name: 'envoy_cluster_upstream_rq_pending_active', type: 'gauge', help: 'Requests waiting for a connection', labels: [C] },
  { name: 'envoy_cluster_upstream_rq_pending_overflow', type: 'counter', help: 'Requests refused by the pending-request circuit breaker', labels: [C] },
  { name: 'envoy_cluster_upstream_rq_timeout', type: 'counter', help: 'Requests that timed out waiting for the upstream', labels: [C] },
  { name: 'envoy_cluster_upstream_rq_per_try_timeout', type: 'counter', help: 'Attempts that hit the per-try timeout', labels: [C] },
  { name: 'envoy_cluster_upstream_rq_retry', type: 'counter', help: 'Retries sent', labels: [C] },
  { name: 'envoy_cluster_upstream_rq_retry_success', type: 'counter', help: 'Retries that succeeded', labels: [C] },
  { name: 'envoy_cluster_upstream_rq_retry_overflow', type: 'counter', help: 'Retries refused by the retry circuit breaker', labels: [C] },
  { name: 'envoy_cluster_upstream_rq_rx_reset', type: 'counter', help: 'Requests reset by the upstream', labels: [C] },
  { name: 'envoy_cluster_upstream_cx_total', type: 'counter', help: 'Upstream connections opened', labels: [C] },
  { name: 'envoy_cluster_upstream_cx_active', type: 'gauge', help: 'Upstream connections open', labels: [C] },
  { name: 'envoy_cluster_upstream_cx_connect_fail', type: 'counter', help: 'Upstream connection failures', labels: [C] },
  { name: 'envoy_cluster_upstream_cx_connect_timeout', type: 'counter', help: 'Upstream connection timeouts', labels: [C] },
  { name: 'envoy_cluster_upstream_cx_overflow', type: 'counter', help: 'Connections refused by the max-connections circuit breaker', labels: [C] },
  { name: 'envoy_cluster_upstream_cx_rx_bytes_total', type: 'counter', help: 'Bytes received from the upstream', labels: [C] },
  { name: 'envoy_cluster_upstream_cx_tx_bytes_total', type: 'counter', help: 'Bytes sent to the upstream', labels: [C] },
  { name: 'envoy_cluster_membership_total', type: 'gauge', help: 'Hosts in the cluster', labels: [C] },
  { name: 'envoy_cluster_membership_healthy', type: 'gauge', help: 'Healthy hosts in the cluster', labels: [C] },
  { name: 'envoy_cluster_outlier_detection_ejections_active', type: 'gauge', help: 'Hosts ejected by outlier detection now', labels: [C] },
  { name: 'envoy_cluster_outlier_detection_ejections_enforced_total', type: 'counter', help: 'Ejections enforced by outlier detection', labels: [C] },
  { name: 'envoy_cluster_upstream_rq_time', type: 'histogram', help: 'Upstream request time in milliseconds', labels: [C], buckets: [0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000] },
  { name: 'envoy_http_downstream_rq_total', type: 'counter', help: 'Requests received', labels: [H] },
  { name: 'envoy_http_downstream_rq_xx', type: 'counter', help: 'Responses sent by status class', labels: ['envoy_response_code_class', H] },
  { name: 'envoy_http_downstream_rq_active', type: 'gauge', help: 'Requests in progress', labels: [H] },
  { name: 'envoy_http_downstream_cx_total', type: 'counter', help: 'Downstream HTTP connections accepted', labels: [H] },
  { name: 'envoy_http_downstream_cx_active', type: 'gauge', help: 'Downstream HTTP connections open', labels: [H] },
  { name: 'envoy_http_no_route', type: 'counter', help: 'Requests with no matching route (404 NR)', labels: [H] },
  { name: 'envoy_http_rq_direct_response', type: 'counter', help: 'Requests answered by a direct response', labels: [H] },
  { name: 'envoy_listener_downstream_cx_total', type: 'counter', help: 'Connections accepted by the listener', labels: [L] },
  { name: 'envoy_listener_downstream_cx_active', type: 'gauge', help: 'Connections open on the listener', labels: [L] },
  { name: 'envoy_listener_no_filter_chain_match', type: 'counter', help: 'Connections matching no filter chain', labels: [L] },
  { name: 'envoy_tcp_downstream_cx_total', type: 'counter', help: 'Connections handled by a tcp_proxy', labels: [T] },
  { name: 'envoy_tcp_upstream_flush_total', type: 'counter', help: 'Upstream flushes after the downstream closed', labels: [T] },
  { name: 'envoy_tcp_downstream_cx_no_route', type: 'counter', help: 'Connections with no tcp_proxy route', labels: [T] },
];

/** Envoy's stat scopes: the label that names the scope instance in Envoy's dotted /stats names. */
const SCOPES: ReadonlyArray<[prefix: string, scope: string, label: string | undefined]> = [
  ['envoy_cluster_manager_', 'cluster_manager', undefined],
  ['envoy_listener_manager_', 'listener_manager', undefined],
  ['envoy_cluster_', 'cluster', C],
  ['envoy_http_', 'http', H],
  ['envoy_listener_', 'listener', L],
  ['envoy_tcp_', 'tcp', T],
  ['envoy_server_', 'server', undefined],
];

type Labels = Readonly<Record<string, string>>;

/** The registry of the proxy's own stats. Keep the returned cells: the lookup is for config time, not per request. */
export class StatsRegistry {
  readonly #families = new Map<string, MetricFamily>();
  readonly #warned = new Set<string>();

  constructor(defs: readonly MetricDef[] = ENVOY_STATS) {
    this.define(defs);
  }

  /** Declares a component's stats (its one list). Re-declaring a name with the same type is harmless. */
  define(defs: readonly MetricDef[]): void {
    for (const d of defs) {
      const old = this.#families.get(d.name);
      if (old && old.def.type !== d.type) {
        this.#warnOnce(`redefine:${d.name}`, `stat ${d.name} declared as ${old.def.type} and as ${d.type}; keeping ${old.def.type}`);
        continue;
      }
      if (!old) {
        const family = new MetricFamily(d);
        this.#families.set(d.name, family);
        if (d.labels.length === 0) family.get([]); // unlabelled stats show 0 from the start, as Envoy's do
      }
    }
  }

  counter(name: string, labels?: Labels): Counter {
    return this.#cell(name, 'counter', labels) as Counter;
  }

  gauge(name: string, labels?: Labels): Gauge {
    return this.#cell(name, 'gauge', labels) as Gauge;
  }

  histogram(name: string, labels?: Labels): Histogram {
    return this.#cell(name, 'histogram', labels) as Histogram;
  }

  /**
   * Puts these families in place of the ones of the same name (the sidecar's primary: every worker's stats,
   * merged); families not named keep theirs. Cells handed out before for a replaced name are no longer exported.
   */
  replace(families: Iterable<MetricFamily>): void {
    for (const f of families) this.#families.set(f.def.name, f);
  }

  families(): IterableIterator<MetricFamily> {
    return this.#families.values();
  }

  /** Prometheus exposition of every stat that has a series. */
  render(): string {
    return renderFamilies(this.#families.values());
  }

  /** Envoy's /stats lines (`cluster.<name>.upstream_rq_total: 5`), sorted. */
  textLines(): StatLine[] {
    return statLines(this.#families.values());
  }

  #cell(name: string, type: MetricType, labels: Labels | undefined): Counter | Gauge | Histogram {
    let family = this.#families.get(name);
    if (!family) {
      this.#warnOnce(`undeclared:${name}`, `stat ${name} used without a declaration; declaring it as a ${type}`);
      family = new MetricFamily({ name, type, help: name, labels: labels ? Object.keys(labels) : [] });
      this.#families.set(name, family);
    }
    if (family.def.type !== type) {
      this.#warnOnce(`type:${name}`, `stat ${name} is a ${family.def.type}, used as a ${type}; the value is not exported`);
      return type === 'histogram' ? new Histogram([]) : type === 'gauge' ? new Gauge() : new Counter();
    }
    const names = family.def.labels;
    const values = names.length === 0 ? [] : names.map((n) => labels?.[n] ?? '');
    return family.get(values);
  }

  #warnOnce(key: string, msg: string): void {
    if (this.#warned.has(key)) return;
    this.#warned.add(key);
    log.warn(msg);
  }
}

/** envoy_cluster_upstream_rq_total{cluster_name="c"} -> cluster.c.upstream_rq_total; other labels stay as {k="v"}. */
export function envoyStatName(def: MetricDef, values: readonly string[]): string {
  let base = def.name;
  let scopeLabel: string | undefined;
  let scoped = false;
  for (const [prefix, scope, label] of SCOPES) {
    if (!def.name.startsWith(prefix)) continue;
    // per-worker stats: envoy_listener_worker_0_downstream_cx_total -> listener.<address>.worker_0.downstream_cx_total
    const rest = def.name.slice(prefix.length).replace(/^worker_(\d+)_/, 'worker_$1.');
    const i = label === undefined ? -1 : def.labels.indexOf(label);
    base = i >= 0 ? `${scope}.${values[i] ?? ''}.${rest}` : `${scope}.${rest}`;
    scopeLabel = i >= 0 ? label : undefined;
    scoped = true;
    break;
  }
  const extra: string[] = [];
  def.labels.forEach((l, i) => {
    if (l !== scopeLabel) extra.push(`${l}="${values[i] ?? ''}"`);
  });
  if (!scoped && extra.length === 0) return base;
  return extra.length > 0 ? `${base}{${extra.join(',')}}` : base;
}

export interface StatLine {
  name: string;
  /** A counter or gauge value; a histogram as its count and sum. */
  value: number | { count: number; sum: number };
}

/** One /stats line per series of these families, sorted by name. */
export function statLines(families: Iterable<MetricFamily>): StatLine[] {
  const out: StatLine[] = [];
  for (const f of families) {
    for (const s of f.series()) {
      const cell = s.cell;
      out.push({ name: envoyStatName(f.def, s.values), value: cell instanceof Histogram ? { count: cell.count, sum: cell.sum } : cell.value });
    }
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** Envoy's /stats text body. */
export function formatStatsText(lines: readonly StatLine[]): string {
  let out = '';
  for (const l of lines) out += `${l.name}: ${typeof l.value === 'number' ? formatValue(l.value) : `count=${l.value.count} sum=${formatValue(l.value.sum)}`}\n`;
  return out;
}
