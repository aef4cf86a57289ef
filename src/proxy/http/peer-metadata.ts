// Istio's metadata exchange over HTTP: `x-envoy-peer-metadata` (base64 of a protobuf Struct with the
// workload's NAME, NAMESPACE, LABELS, WORKLOAD_NAME, CLUSTER_ID...) and `x-envoy-peer-metadata-id`.
// Decoding a malformed header yields undefined, never an exception. Decoded values are cached by the
// header's text (a proxy talks to few peers) and shared: callers must not mutate them.

import { decodeMessage, encodeMessage } from '../../xds/protos.ts';
import type { WorkloadMetadata } from '../stream-info.ts';

export const PEER_METADATA = 'x-envoy-peer-metadata';
export const PEER_METADATA_ID = 'x-envoy-peer-metadata-id';

export interface PeerFields {
  name: string;
  namespace: string;
  workloadName: string;
  labels: Record<string, string>;
  serviceAccount?: string;
  clusterId?: string;
  trustDomain?: string;
}

export function encodePeerMetadata(p: PeerFields): string {
  const struct = {
    NAME: p.name,
    NAMESPACE: p.namespace,
    WORKLOAD_NAME: p.workloadName,
    LABELS: p.labels,
    CLUSTER_ID: p.clusterId ?? 'Kubernetes',
    ...(p.serviceAccount ? { SERVICE_ACCOUNT: p.serviceAccount } : {}),
  };
  return Buffer.from(encodeMessage('google.protobuf.Struct', struct)).toString('base64');
}

export function workloadFromPeerFields(p: PeerFields, trustDomain = 'cluster.local'): WorkloadMetadata {
  const l = p.labels;
  const out: WorkloadMetadata = {
    workload: p.workloadName,
    namespace: p.namespace,
    canonicalService: l['service.istio.io/canonical-name'] ?? l['app.kubernetes.io/name'] ?? l.app ?? p.workloadName,
    canonicalRevision: l['service.istio.io/canonical-revision'] ?? l['app.kubernetes.io/version'] ?? l.version ?? 'latest',
    cluster: p.clusterId ?? 'Kubernetes',
  };
  if (l.app) out.app = l.app;
  if (l.version) out.version = l.version;
  if (p.serviceAccount) out.principal = `spiffe://${trustDomain}/ns/${p.namespace}/sa/${p.serviceAccount}`;
  return out;
}

/** At most this many distinct peer headers (and endpoint strings) are remembered; then the cache starts over. */
const CACHE_LIMIT = 1024;
const decoded = new Map<string, WorkloadMetadata | null>();
const fromEndpoint = new Map<string, WorkloadMetadata>();
let lastHeader = '';
let lastDecoded: WorkloadMetadata | undefined;

/** The peer's workload from its x-envoy-peer-metadata header; the same object for the same header text. */
export function decodePeerMetadata(header: string | undefined): WorkloadMetadata | undefined {
  if (!header) return undefined;
  // most requests come from (or go to) the same peer as the one before: a compare is cheaper than hashing
  if (header === lastHeader) return lastDecoded;
  let w = decoded.get(header);
  if (w === undefined) {
    w = decodeUncached(header) ?? null;
    if (decoded.size >= CACHE_LIMIT) decoded.clear();
    decoded.set(header, w);
  }
  lastHeader = header;
  lastDecoded = w ?? undefined;
  return lastDecoded;
}

function decodeUncached(header: string): WorkloadMetadata | undefined {
  try {
    const s = decodeMessage('google.protobuf.Struct', Buffer.from(header, 'base64')) as Record<string, unknown>;
    const labels = (typeof s.LABELS === 'object' && s.LABELS !== null ? s.LABELS : {}) as Record<string, string>;
    const fields: PeerFields = {
      name: String(s.NAME ?? ''),
      namespace: String(s.NAMESPACE ?? ''),
      workloadName: String(s.WORKLOAD_NAME ?? s.NAME ?? ''),
      labels,
    };
    if (typeof s.SERVICE_ACCOUNT === 'string') fields.serviceAccount = s.SERVICE_ACCOUNT;
    if (typeof s.CLUSTER_ID === 'string') fields.clusterId = s.CLUSTER_ID;
    return workloadFromPeerFields(fields);
  } catch {
    return undefined;
  }
}

/** Endpoint metadata `name;namespace;canonical;revision;cluster` (EDS filter_metadata.istio.workload). */
export function workloadFromEndpoint(w: string | undefined): WorkloadMetadata | undefined {
  if (!w) return undefined;
  let out = fromEndpoint.get(w);
  if (!out) {
    out = parseEndpointWorkload(w);
    if (fromEndpoint.size >= CACHE_LIMIT) fromEndpoint.clear();
    fromEndpoint.set(w, out);
  }
  return out;
}

function parseEndpointWorkload(w: string): WorkloadMetadata {
  const [workload, namespace, canonicalService, canonicalRevision, cluster] = w.split(';');
  const out: WorkloadMetadata = {};
  if (workload) out.workload = workload;
  if (namespace) out.namespace = namespace;
  if (canonicalService) {
    out.canonicalService = canonicalService;
    out.app = canonicalService;
  }
  if (canonicalRevision) {
    out.canonicalRevision = canonicalRevision;
    out.version = canonicalRevision;
  }
  if (cluster) out.cluster = cluster;
  return out;
}
