// The sidecar's identity, read from the environment the injector sets (pilot-agent's variables):
// POD_NAME, POD_NAMESPACE, INSTANCE_IP, SERVICE_ACCOUNT, ISTIO_METAJSON_LABELS, ISTIO_META_*, and the
// control plane address. Missing required variables throw a MeshError naming them.

import { MeshError } from '../common/errors.ts';
import { formatNodeId } from '../xds/node.ts';
import type { XdsNode } from '../xds/ads-service.ts';
import type { ProxyIdentity } from './context.ts';
import { encodePeerMetadata, workloadFromPeerFields } from './http/peer-metadata.ts';

export interface AgentEnv {
  identity: ProxyIdentity;
  node: XdsNode;
  /** host:port of the control plane's ADS. */
  discoveryAddress: string;
  labels: Record<string, string>;
  serviceAccount: string;
  trustDomain: string;
}

/** Workload name from the pod name the way Istio derives it: strip the ReplicaSet/pod hash suffixes. */
export function workloadNameOf(podName: string, labels: Record<string, string>, owner?: string): string {
  if (owner) return owner.split('/').at(-1) ?? owner;
  const hash = labels['pod-template-hash'];
  if (hash) {
    const i = podName.indexOf(`-${hash}-`);
    if (i > 0) return podName.slice(0, i);
  }
  const parts = podName.split('-');
  return parts.length > 1 ? parts.slice(0, -1).join('-') : podName;
}

export function agentEnvFrom(env: NodeJS.ProcessEnv): AgentEnv {
  const missing = ['POD_NAME', 'POD_NAMESPACE', 'INSTANCE_IP'].filter((k) => !env[k]);
  if (missing.length > 0) throw new MeshError('MESH_ERR_PROXY_BOOTSTRAP', `the sidecar needs ${missing.join(', ')} in its environment (the injector sets them)`);
  const podName = env.POD_NAME ?? '';
  const namespace = env.POD_NAMESPACE ?? '';
  const ip = env.INSTANCE_IP ?? '';
  let labels: Record<string, string> = {};
  if (env.ISTIO_METAJSON_LABELS) {
    try {
      labels = JSON.parse(env.ISTIO_METAJSON_LABELS) as Record<string, string>;
    } catch {
      throw new MeshError('MESH_ERR_PROXY_BOOTSTRAP', 'ISTIO_METAJSON_LABELS must be a JSON object of the pod labels');
    }
  }
  if (env.CANONICAL_SERVICE) labels['service.istio.io/canonical-name'] ??= env.CANONICAL_SERVICE;
  if (env.CANONICAL_REVISION) labels['service.istio.io/canonical-revision'] ??= env.CANONICAL_REVISION;
  const serviceAccount = env.SERVICE_ACCOUNT ?? 'default';
  const trustDomain = env.TRUST_DOMAIN ?? 'cluster.local';
  const clusterId = env.ISTIO_META_CLUSTER_ID ?? 'Kubernetes';
  const workloadName = env.ISTIO_META_WORKLOAD_NAME ?? workloadNameOf(podName, labels, env.ISTIO_META_OWNER);
  let discoveryAddress = env.XDS_ADDRESS ?? env.PILOT_ADDRESS ?? '';
  if (!discoveryAddress && env.PROXY_CONFIG) {
    try {
      discoveryAddress = String((JSON.parse(env.PROXY_CONFIG) as { discoveryAddress?: string }).discoveryAddress ?? '');
    } catch {
      throw new MeshError('MESH_ERR_PROXY_BOOTSTRAP', 'PROXY_CONFIG must be JSON (e.g. {"discoveryAddress":"istiod.istio-system.svc:15010"})');
    }
  }
  if (!discoveryAddress) discoveryAddress = 'istiod.istio-system.svc:15010';
  const metadata: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(env)) if (k.startsWith('ISTIO_META_') && v !== undefined) metadata[k.slice('ISTIO_META_'.length)] = v;
  Object.assign(metadata, {
    NAME: podName,
    NAMESPACE: namespace,
    INSTANCE_IPS: ip,
    LABELS: labels,
    SERVICE_ACCOUNT: serviceAccount,
    CLUSTER_ID: clusterId,
    WORKLOAD_NAME: workloadName,
  });
  const fields = { name: podName, namespace, workloadName, labels, serviceAccount, clusterId };
  const nodeId = formatNodeId({ type: 'sidecar', ip, podName, namespace });
  return {
    identity: {
      nodeId,
      podName,
      namespace,
      ip,
      workload: workloadFromPeerFields(fields, trustDomain),
      peerMetadataHeader: encodePeerMetadata(fields),
    },
    node: { id: nodeId, cluster: clusterId, metadata },
    discoveryAddress,
    labels,
    serviceAccount,
    trustDomain,
  };
}
