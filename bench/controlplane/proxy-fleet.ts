// A process of simulated Envoy sidecars on real ADS streams: each subscribes to CDS and LDS, then EDS and RDS by the names those carry, and ACKs every response as Envoy does; a stream that fails is counted and reported, never retried.

import * as grpc from '@grpc/grpc-js';
import { createAdsClient, type AdsClient, type AdsClientStream, type DiscoveryRequest, type DiscoveryResponse } from '../../src/xds/ads-service.ts';
import { formatNodeId } from '../../src/xds/node.ts';
import { decodeAny, TYPE_URLS } from '../../src/xds/protos.ts';
import { emit, serve } from '../lib/child.ts';
import { perType, type FleetConnectRequest, type FleetProgress, type FleetReport, type PerType, type ProxySpec, type XdsType } from './protocol.ts';
import { edsNameOfCluster } from './wire.ts';

const SHORT: Record<string, XdsType> = {
  [TYPE_URLS.CLUSTER]: 'CDS',
  [TYPE_URLS.ENDPOINT]: 'EDS',
  [TYPE_URLS.LISTENER]: 'LDS',
  [TYPE_URLS.ROUTE]: 'RDS',
};
const URL_OF: Record<XdsType, string> = { CDS: TYPE_URLS.CLUSTER, EDS: TYPE_URLS.ENDPOINT, LDS: TYPE_URLS.LISTENER, RDS: TYPE_URLS.ROUTE };
const ENVOY_WINDOW = 256 * 2 ** 20;
const HCM_TYPE = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';

interface TypeState {
  names: string[];
  version: string;
  nonce: string;
  /** The last response has been ACKed with `names` as they are now. */
  acked: boolean;
}

/** Route names a listener's HTTP connection managers ask RDS for. */
function rdsNames(listener: Record<string, unknown>): string[] {
  const out: string[] = [];
  const chains = [...((listener.filter_chains as unknown[] | undefined) ?? []), ...(listener.default_filter_chain ? [listener.default_filter_chain] : [])];
  for (const chain of chains as Array<{ filters?: Array<{ typed_config?: Record<string, unknown> }> }>) {
    for (const f of chain.filters ?? []) {
      const tc = f.typed_config;
      if (tc?.['@type'] !== HCM_TYPE) continue;
      const rds = tc.rds as { route_config_name?: string } | undefined;
      if (rds?.route_config_name) out.push(rds.route_config_name);
    }
  }
  return out;
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

class SimulatedProxy {
  readonly spec: ProxySpec;
  readonly client: AdsClient;
  readonly stream: AdsClientStream;
  readonly types = new Map<XdsType, TypeState>();
  readonly openedAt = performance.now();
  syncedAt: number | undefined;
  error: string | undefined;
  readonly bytes = perType();
  readonly responses = perType();
  readonly held = perType();
  syncBytes: PerType | undefined;
  syncResources: PerType | undefined;
  readonly laterBytes = perType();
  readonly laterResponses = perType();
  #first = true;
  readonly #onSynced: () => void;

  constructor(address: string, spec: ProxySpec, onSynced: () => void, onError: () => void) {
    this.spec = spec;
    this.#onSynced = onSynced;
    // one HTTP/2 connection per proxy, as real sidecars have; no message size cap (CDS of 5000 services is
    // megabytes); Envoy's HTTP/2 flow-control windows (initial_stream_window_size and
    // initial_connection_window_size default to 256 MiB), not grpc-js's 64 KiB
    this.client = createAdsClient(address, grpc.credentials.createInsecure(), {
      'grpc.use_local_subchannel_pool': 1,
      'grpc.max_receive_message_length': -1,
      'grpc-node.flow_control_window': ENVOY_WINDOW,
    });
    this.stream = this.client.StreamAggregatedResources();
    this.stream.on('data', (r: DiscoveryResponse) => {
      try {
        this.#onResponse(r);
      } catch (err) {
        this.error ??= `response handling: ${(err as Error).message}`;
      }
    });
    this.stream.on('error', (err: Error) => {
      if (this.error === undefined) {
        this.error = err.message;
        onError();
      }
    });
    this.#request('CDS', []);
    this.#request('LDS', []);
  }

  #request(type: XdsType, names: string[], ack?: { version: string; nonce: string }): void {
    let st = this.types.get(type);
    if (!st) this.types.set(type, (st = { names, version: '', nonce: '', acked: false }));
    st.names = names;
    const req: DiscoveryRequest = { type_url: URL_OF[type], resource_names: names, version_info: ack?.version ?? st.version, response_nonce: ack?.nonce ?? st.nonce };
    if (this.#first) {
      this.#first = false;
      req.node = {
        id: formatNodeId({ ip: this.spec.ip, podName: this.spec.pod, namespace: this.spec.namespace }),
        metadata: { NAMESPACE: this.spec.namespace, NAME: this.spec.pod, INSTANCE_IPS: this.spec.ip, LABELS: this.spec.labels },
      };
    }
    this.stream.write(req);
  }

  #onResponse(r: DiscoveryResponse): void {
    const type = SHORT[r.type_url];
    if (!type) return;
    const st = this.types.get(type);
    if (!st) return;
    let size = 0;
    for (const a of r.resources) size += a.value.length;
    if (this.syncedAt === undefined) {
      this.bytes[type] += size;
      this.responses[type]++;
    } else {
      this.laterBytes[type] += size;
      this.laterResponses[type]++;
    }
    this.held[type] = r.resources.length;
    st.version = r.version_info;
    st.nonce = r.nonce;
    // Envoy asks for the EDS/RDS names a new CDS/LDS carries before it ACKs that CDS/LDS
    if (type === 'CDS') {
      const eds: string[] = [];
      for (const a of r.resources) {
        const n = edsNameOfCluster(a.value);
        if (n !== undefined) eds.push(n);
      }
      eds.sort();
      this.#follow('EDS', eds);
    } else if (type === 'LDS') {
      const rds = new Set<string>();
      for (const a of r.resources) for (const n of rdsNames(decodeAny(a))) rds.add(n);
      this.#follow('RDS', [...rds].sort());
    }
    this.#request(type, st.names, { version: r.version_info, nonce: r.nonce });
    st.acked = true;
    this.#checkSynced();
  }

  /** Subscribes the dependent type to `names` when they changed (carrying its last nonce, as Envoy does). */
  #follow(type: XdsType, names: string[]): void {
    const st = this.types.get(type);
    if (st && sameList(st.names, names)) return;
    if (!st && names.length === 0) {
      // nothing to ask for: Envoy sends no request, and the type counts as in sync
      this.types.set(type, { names, version: '', nonce: '', acked: true });
      return;
    }
    this.#request(type, names);
    const now = this.types.get(type);
    if (now) now.acked = names.length === 0;
  }

  #checkSynced(): void {
    if (this.syncedAt !== undefined) return;
    for (const t of ['CDS', 'EDS', 'LDS', 'RDS'] as const) if (!this.types.get(t)?.acked) return;
    this.syncedAt = performance.now();
    this.syncBytes = { ...this.bytes };
    this.syncResources = { ...this.held };
    this.#onSynced();
  }

  close(): void {
    try {
      this.stream.end();
    } catch {
      // already gone
    }
    this.client.close();
  }
}

const proxies: SimulatedProxy[] = [];
const progress: FleetProgress = { connected: 0, synced: 0, errors: 0 };
let ticker: NodeJS.Timeout | undefined;
let connectAt = 0;

function report(): FleetReport {
  const synced = proxies.filter((p) => p.syncedAt !== undefined);
  const cpu = process.cpuUsage();
  return {
    proxies: proxies.length,
    synced: synced.length,
    errors: proxies.filter((p) => p.error !== undefined).slice(0, 5).map((p) => `${p.spec.namespace}/${p.spec.pod}: ${p.error ?? ''}`),
    syncMs: synced.map((p) => (p.syncedAt ?? 0) - p.openedAt),
    syncAtMs: synced.map((p) => (p.syncedAt ?? 0) - connectAt),
    syncBytes: synced.map((p) => p.syncBytes ?? perType()),
    syncResources: synced.map((p) => p.syncResources ?? perType()),
    laterBytes: synced.map((p) => p.laterBytes),
    laterResponses: synced.map((p) => p.laterResponses),
    cpuS: (cpu.user + cpu.system) / 1e6,
    rssMB: process.memoryUsage.rss() / 2 ** 20,
  };
}

serve(
  {
    connect: (req: FleetConnectRequest) => {
      connectAt = performance.now();
      for (const spec of req.proxies) {
        proxies.push(new SimulatedProxy(req.address, spec, () => progress.synced++, () => progress.errors++));
        progress.connected++;
      }
      ticker = setInterval(() => emit('progress', { ...progress }), 100);
      return { connected: proxies.length };
    },
    report: () => report(),
  },
  async () => {
    clearInterval(ticker);
    for (const p of proxies) p.close();
  },
);
