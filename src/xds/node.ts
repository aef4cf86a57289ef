// Istio's proxy identity in an xDS Node: the `type~ip~pod.namespace~namespace.svc.cluster.local` id and the ISTIO_META metadata; parseNode throws MeshError MESH_ERR_XDS_DECODE naming what is malformed.

import { MeshError } from '../common/errors.ts';
import type { XdsNode } from './ads-service.ts';

/** What kind of client a proxy is: an Envoy-style sidecar, a gateway, or a proxyless gRPC client. */
export type ProxyType = 'sidecar' | 'router' | 'grpc';

/** A proxy's identity as the control plane understands it. */
export interface ProxyIdentity {
  /** node.id as sent. */
  readonly id: string;
  readonly type: ProxyType;
  /** The pod's primary IP: INSTANCE_IPS' first entry, else the IP in the id. */
  readonly ip: string;
  /** Every IP of the workload (INSTANCE_IPS, else the id's IP). */
  readonly ips: readonly string[];
  readonly podName: string;
  readonly namespace: string;
  /** The id's DNS domain, e.g. `bookinfo.svc.cluster.local`. */
  readonly dnsDomain: string;
  readonly labels: Readonly<Record<string, string>>;
  /** node.metadata as a plain object (NAMESPACE, LABELS, INSTANCE_IPS, NAME, SERVICE_ACCOUNT, GENERATOR, ISTIO_META_*...). */
  readonly metadata: Readonly<Record<string, unknown>>;
  readonly cluster: string;
  readonly locality: { readonly region?: string; readonly zone?: string; readonly sub_zone?: string };
}

const ID_FORM = 'type~ip~podName.namespace~namespace.svc.cluster.local';

/** Builds Istio's node id, e.g. `sidecar~10.1.0.5~reviews-v1-7d9f.bookinfo~bookinfo.svc.cluster.local`. */
export function formatNodeId(p: { type?: 'sidecar' | 'router'; ip: string; podName: string; namespace: string; domain?: string }): string {
  const domain = p.domain ?? `${p.namespace}.svc.cluster.local`;
  return `${p.type ?? 'sidecar'}~${p.ip}~${p.podName}.${p.namespace}~${domain}`;
}

function stringMap(v: unknown): Record<string, string> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return {};
  const out: Record<string, string> = {};
  for (const [k, e] of Object.entries(v as Record<string, unknown>)) {
    if (typeof e === 'string') out[k] = e;
    else if (typeof e === 'number' || typeof e === 'boolean') out[k] = String(e);
  }
  return out;
}

/** Reads a Node into a ProxyIdentity; throws when the id is not Istio's four-part form. */
export function parseNode(node: XdsNode | undefined): ProxyIdentity {
  const id = node?.id ?? '';
  const parts = id.split('~');
  if (parts.length !== 4 || parts.some((p) => p === '')) {
    throw new MeshError('MESH_ERR_XDS_DECODE', `node id ${JSON.stringify(id)} is not of the form ${ID_FORM}`);
  }
  const [kind, idIp, podDotNs, dnsDomain] = parts as [string, string, string, string];
  const metadata: Record<string, unknown> = { ...(node?.metadata ?? {}) };
  let type: ProxyType;
  if (metadata.GENERATOR === 'grpc') type = 'grpc';
  else if (kind === 'sidecar' || kind === 'router') type = kind;
  else throw new MeshError('MESH_ERR_XDS_DECODE', `node id ${JSON.stringify(id)}: proxy type ${JSON.stringify(kind)} is neither sidecar nor router`);

  const dot = podDotNs.lastIndexOf('.');
  const idNamespace = dot > 0 ? podDotNs.slice(dot + 1) : (dnsDomain.split('.')[0] ?? '');
  const podName = typeof metadata.NAME === 'string' && metadata.NAME !== '' ? metadata.NAME : dot > 0 ? podDotNs.slice(0, dot) : podDotNs;
  const namespace = typeof metadata.NAMESPACE === 'string' && metadata.NAMESPACE !== '' ? metadata.NAMESPACE : idNamespace;
  const metaIps = typeof metadata.INSTANCE_IPS === 'string'
    ? metadata.INSTANCE_IPS.split(',').map((s) => s.trim()).filter((s) => s !== '')
    : [];
  const ips = metaIps.length > 0 ? metaIps : [idIp];
  const locality = node?.locality ?? {};
  return {
    id,
    type,
    ip: ips[0] ?? idIp,
    ips,
    podName,
    namespace,
    dnsDomain,
    labels: stringMap(metadata.LABELS),
    metadata,
    cluster: node?.cluster ?? '',
    locality: { ...locality },
  };
}
