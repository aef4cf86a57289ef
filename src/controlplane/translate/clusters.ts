// CDS: the clusters one sidecar gets, Istio's way: `outbound|port|subset|host` for every visible
// service port and DestinationRule subset, `inbound|port||` for the proxy's own workload, and the
// static BlackHole/Passthrough clusters. Pure function of (proxy, push, scope); never throws.

import { isIP } from 'node:net';
import { parseDuration, protoDuration } from '../../common/duration.ts';
import type { DestinationRuleSpec } from '../../config/types.ts';
import { resourceKey, type Resource } from '../../config/resource.ts';
import { parseProtocol, protocolForPort, type Protocol } from '../../registry/protocol.ts';
import type { MeshService, ServicePortInfo } from '../../registry/types.ts';
import type { PushContext } from '../model/push-context.ts';
import type { ProxyInfo, SidecarScope } from '../model/sidecar-scope.ts';
import { BLACKHOLE_CLUSTER, INBOUND_PASSTHROUGH_BIND_IPV4, INBOUND_PASSTHROUGH_CLUSTER, PASSTHROUGH_CLUSTER, clusterName } from './names.ts';
import { circuitBreakers, effectivePolicy, httpProtocolOptions, lbPolicyFields, outlierDetection } from './traffic-policy.ts';

export const CLUSTER_TYPE = 'type.googleapis.com/envoy.config.cluster.v3.Cluster';
const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

export type EnvoyCluster = Record<string, unknown> & { name: string; '@type': string };

/** Every cluster for this proxy, outbound first, then inbound, then the static ones. */
export function buildClusters(proxy: ProxyInfo, push: PushContext, scope: SidecarScope): EnvoyCluster[] {
  return [...buildOutboundClusters(push, scope), ...buildInboundClusters(proxy, push, scope), ...staticClusters(push)];
}

function connectTimeoutOf(push: PushContext): string {
  return protoDuration(parseDuration(String(push.mesh.connectTimeout ?? '')) ?? DEFAULT_CONNECT_TIMEOUT_MS);
}

/** The outbound clusters of a scope: one per visible service port and DestinationRule subset (no proxy identity in them). */
export function buildOutboundClusters(push: PushContext, scope: SidecarScope): EnvoyCluster[] {
  const connectTimeout = connectTimeoutOf(push);
  const out: EnvoyCluster[] = [];
  for (const svc of scope.services) {
    const dr = scope.destinationRules.get(svc.hostname);
    for (const port of svc.ports) {
      if (port.protocol === 'UDP') continue;
      out.push(sharedOutboundCluster(svc, port, '', dr, connectTimeout, push));
      for (const subset of dr?.spec.subsets ?? []) {
        if (!subset.name) continue;
        out.push(sharedOutboundCluster(svc, port, subset.name, dr, connectTimeout, push));
      }
    }
  }
  return out;
}

/** The inbound clusters of the proxy's own workload (or of its Sidecar's ingress listeners). */
export function buildInboundClusters(proxy: ProxyInfo, push: PushContext, scope: SidecarScope): EnvoyCluster[] {
  return inboundClusters(proxy, push, scope, connectTimeoutOf(push));
}

/** BlackHoleCluster, PassthroughCluster and InboundPassthroughCluster: the same for every proxy of a push. */
export function staticClusters(push: PushContext): EnvoyCluster[] {
  const connectTimeout = connectTimeoutOf(push);
  return [
    { '@type': CLUSTER_TYPE, name: BLACKHOLE_CLUSTER, type: 'STATIC', connect_timeout: connectTimeout },
    { '@type': CLUSTER_TYPE, name: PASSTHROUGH_CLUSTER, type: 'ORIGINAL_DST', connect_timeout: connectTimeout, lb_policy: 'CLUSTER_PROVIDED', circuit_breakers: circuitBreakers(undefined) },
    {
      '@type': CLUSTER_TYPE,
      name: INBOUND_PASSTHROUGH_CLUSTER,
      type: 'ORIGINAL_DST',
      connect_timeout: connectTimeout,
      lb_policy: 'CLUSTER_PROVIDED',
      circuit_breakers: circuitBreakers(undefined),
      upstream_bind_config: { source_address: { address: INBOUND_PASSTHROUGH_BIND_IPV4, port_value: 0 } },
    },
  ];
}

/**
 * An outbound cluster depends on the service port, the subset and the DestinationRule, not on the
 * proxy: it is built once per push context and the same object is shared by every proxy that sees it
 * (so the ADS server encodes it once too), as Istio's CDS cache does.
 */
const outboundClusters = new WeakMap<PushContext, Map<MeshService, Map<string, EnvoyCluster>>>();

function sharedOutboundCluster(svc: MeshService, port: ServicePortInfo, subset: string, dr: Resource<DestinationRuleSpec> | undefined, connectTimeout: string, push: PushContext): EnvoyCluster {
  let perPush = outboundClusters.get(push);
  if (!perPush) outboundClusters.set(push, (perPush = new Map()));
  let perSvc = perPush.get(svc);
  if (!perSvc) perPush.set(svc, (perSvc = new Map()));
  const key = `${port.port}|${subset}|${dr ? resourceKey(dr) : ''}`;
  let c = perSvc.get(key);
  if (!c) perSvc.set(key, (c = outboundCluster(svc, port, subset, dr, connectTimeout, push)));
  return c;
}

function drMetadataPath(dr: Resource<DestinationRuleSpec>): string {
  return `/apis/${dr.group}/${dr.version}/namespaces/${dr.metadata.namespace}/destination-rule/${dr.metadata.name}`;
}

function outboundCluster(svc: MeshService, port: ServicePortInfo, subset: string, dr: Resource<DestinationRuleSpec> | undefined, connectTimeout: string, push: PushContext): EnvoyCluster {
  const name = clusterName('outbound', port.port, subset, svc.hostname);
  const subsetPolicy = subset ? dr?.spec.subsets?.find((s) => s.name === subset)?.trafficPolicy : undefined;
  const policy = effectivePolicy(dr?.spec.trafficPolicy, subsetPolicy, port.port);
  const c: EnvoyCluster = { '@type': CLUSTER_TYPE, name, connect_timeout: connectTimeout };
  const istioMeta: Record<string, unknown> = { services: [{ host: svc.hostname, name: svc.name, namespace: svc.namespace }] };
  if (dr) istioMeta.config = drMetadataPath(dr);
  if (subset) istioMeta.subset = subset;

  const passthrough = svc.resolution === 'Passthrough' || policy.loadBalancer?.simple === 'PASSTHROUGH';
  if (passthrough) {
    c.type = 'ORIGINAL_DST';
    c.lb_policy = 'CLUSTER_PROVIDED';
  } else if (svc.resolution === 'DNS' || svc.resolution === 'DNSRoundRobin') {
    c.type = svc.resolution === 'DNS' ? 'STRICT_DNS' : 'LOGICAL_DNS';
    c.dns_lookup_family = 'V4_ONLY';
    Object.assign(c, lbPolicyFields(policy.loadBalancer));
    c.load_assignment = dnsLoadAssignment(name, svc, port, push);
  } else {
    c.type = 'EDS';
    c.eds_cluster_config = { eds_config: { ads: {}, initial_fetch_timeout: '0s', resource_api_version: 'V3' }, service_name: name };
    Object.assign(c, lbPolicyFields(policy.loadBalancer));
  }
  const cpTimeout = policy.connectionPool?.tcp?.connectTimeout ? parseDuration(policy.connectionPool.tcp.connectTimeout) : undefined;
  if (cpTimeout !== undefined) c.connect_timeout = protoDuration(cpTimeout);
  c.circuit_breakers = circuitBreakers(policy.connectionPool);
  const od = outlierDetection(policy.outlierDetection);
  if (od) {
    c.outlier_detection = od;
    if (policy.outlierDetection?.minHealthPercent !== undefined) c.common_lb_config = { healthy_panic_threshold: { value: policy.outlierDetection.minHealthPercent } };
  }
  const proto = httpProtocolOptions(isHttp2Protocol(port.protocol), policy.connectionPool);
  if (proto) c.typed_extension_protocol_options = proto;
  const ka = policy.connectionPool?.tcp?.tcpKeepalive;
  if (ka) {
    const keep: Record<string, unknown> = {};
    if (ka.probes !== undefined) keep.keepalive_probes = ka.probes;
    const t = ka.time ? parseDuration(ka.time) : undefined;
    if (t !== undefined) keep.keepalive_time = Math.round(t / 1000);
    const iv = ka.interval ? parseDuration(ka.interval) : undefined;
    if (iv !== undefined) keep.keepalive_interval = Math.round(iv / 1000);
    c.upstream_connection_options = { tcp_keepalive: keep };
  }
  c.metadata = { filter_metadata: { istio: istioMeta } };
  return c;
}

function dnsLoadAssignment(name: string, svc: MeshService, port: ServicePortInfo, push: PushContext): Record<string, unknown> {
  const eps = push.registry.endpoints(svc, port.port);
  const targets = eps.length > 0 ? eps.map((e) => ({ address: e.address, port: e.port, weight: e.weight })) : [{ address: svc.hostname, port: Number(port.targetPort) || port.port, weight: undefined }];
  return {
    cluster_name: name,
    endpoints: [
      {
        lb_endpoints: targets.map((t) => ({
          endpoint: { address: { socket_address: { address: t.address, port_value: t.port } } },
          load_balancing_weight: t.weight ?? 1,
        })),
      },
    ],
  };
}

function inboundClusters(proxy: ProxyInfo, push: PushContext, scope: SidecarScope, connectTimeout: string): EnvoyCluster[] {
  const out: EnvoyCluster[] = [];
  const seen = new Set<number>();
  // Sidecar ingress listeners replace the service-derived inbound clusters (Istio does the same).
  if (scope.ingress.length > 0) {
    for (const ing of scope.ingress) {
      const port = ing.port?.number;
      if (!port || seen.has(port)) continue;
      seen.add(port);
      const c = sidecarIngressCluster(port, ing.defaultEndpoint, proxy.ip, connectTimeout, scope);
      if (c) out.push(c);
    }
    return out;
  }
  const workload = proxy.name ? push.registry.workload(proxy.name, proxy.namespace) : undefined;
  if (!workload) return out;
  for (const svc of push.registry.servicesForWorkload(workload)) {
    for (const port of svc.ports) {
      const target = resolveTargetPort(port, workload.podSpec?.containers);
      if (target === undefined || seen.has(target)) continue;
      seen.add(target);
      const c: EnvoyCluster = {
        '@type': CLUSTER_TYPE,
        name: clusterName('inbound', target, '', ''),
        type: 'ORIGINAL_DST',
        connect_timeout: connectTimeout,
        lb_policy: 'CLUSTER_PROVIDED',
        circuit_breakers: circuitBreakers(scope.inboundConnectionPool),
        upstream_bind_config: { source_address: { address: INBOUND_PASSTHROUGH_BIND_IPV4, port_value: 0 } },
        metadata: { filter_metadata: { istio: { services: [{ host: svc.hostname, name: svc.name, namespace: svc.namespace }] } } },
      };
      // As Istio's setUpstreamProtocol: an HTTP/2 or gRPC port talks HTTP/2 to the application too
      // (a gRPC server speaks nothing else).
      const proto = isHttp2Protocol(port.protocol) ? httpProtocolOptions(true, undefined) : undefined;
      if (proto) c.typed_extension_protocol_options = proto;
      out.push(c);
    }
  }
  return out;
}

/**
 * The `inbound|port||` cluster of a Sidecar ingress listener, as Istio's buildInboundClustersFromSidecar:
 * no defaultEndpoint is an ordinary inbound cluster (ORIGINAL_DST, from 127.0.0.6); otherwise a STATIC
 * cluster to the endpoint `ingressEndpoint` resolves, from 127.0.0.6 unless that is loopback. Undefined
 * (no cluster, as Istio skips it) when the defaultEndpoint's port does not parse.
 */
function sidecarIngressCluster(port: number, defaultEndpoint: string | undefined, proxyIp: string | undefined, connectTimeout: string, scope: SidecarScope): EnvoyCluster | undefined {
  const target = ingressEndpoint(defaultEndpoint, proxyIp);
  if (target === null) return undefined;
  const name = clusterName('inbound', port, '', '');
  const ingress = scope.ingress.find((i) => i.port?.number === port);
  const c: EnvoyCluster = { '@type': CLUSTER_TYPE, name, type: target ? 'STATIC' : 'ORIGINAL_DST', connect_timeout: connectTimeout };
  if (!target) c.lb_policy = 'CLUSTER_PROVIDED';
  c.circuit_breakers = circuitBreakers(ingress?.connectionPool ?? scope.inboundConnectionPool);
  if (target) c.load_assignment = { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: target } }] }] };
  // Istio binds to 127.0.0.6 unless the endpoint is loopback (iptables lets 127.0.0.6 through instead of
  // capturing the sidecar's own connection to the pod IP); a unix socket is left without (nothing to bind).
  const host = (target?.socket_address as { address?: string } | undefined)?.address;
  if (!target || (host !== undefined && host !== '127.0.0.1' && host !== '::1')) {
    c.upstream_bind_config = { source_address: { address: INBOUND_PASSTHROUGH_BIND_IPV4, port_value: 0 } };
  }
  const proto = ingress && isHttp2Protocol(ingressPortProtocol(ingress.port)) ? httpProtocolOptions(true, undefined) : undefined;
  if (proto) c.typed_extension_protocol_options = proto;
  return c;
}

/** A Sidecar ingress port's protocol: as written, else from its name or number (as the inbound listener reads it). */
function ingressPortProtocol(port: { protocol?: string; name?: string; number?: number } | undefined): Protocol {
  const p = parseProtocol(port?.protocol);
  return p !== 'UNSUPPORTED' ? p : protocolForPort({ name: port?.name ?? '', port: port?.number ?? 0 });
}

/** Istio's Protocol.IsHTTP2(): HTTP2, GRPC and GRPC-Web upstreams are spoken to in HTTP/2. */
function isHttp2Protocol(p: string | undefined): boolean {
  return p === 'HTTP2' || p === 'GRPC' || p === 'GRPC-Web';
}

/**
 * The Envoy address a Sidecar ingress defaultEndpoint sends to, as Istio resolves it: `unix:///path` a
 * pipe; `0.0.0.0:P` the proxy's own IPv4 (INSTANCE_IP) at P, else 127.0.0.1:P; `[::]:P` its IPv6, else
 * [::1]:P; `127.0.0.1:P` and `[::1]:P` the loopback of the proxy's IP family. Undefined (ORIGINAL_DST) when
 * there is no defaultEndpoint or another host; null when the port does not parse.
 */
export function ingressEndpoint(defaultEndpoint: string | undefined, proxyIp: string | undefined): Record<string, unknown> | undefined | null {
  if (!defaultEndpoint) return undefined;
  if (defaultEndpoint.startsWith('unix://')) return { pipe: { path: defaultEndpoint.slice('unix://'.length) } };
  const idx = defaultEndpoint.lastIndexOf(':');
  if (idx < 0) return null;
  const host = defaultEndpoint.slice(0, idx).replace(/^\[|\]$/g, '');
  const portText = defaultEndpoint.slice(idx + 1);
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port > 65535) return null;
  const family = proxyIp ? isIP(proxyIp) : 0;
  const loopback = family === 6 ? '::1' : '127.0.0.1';
  let address: string | undefined;
  if (host === '0.0.0.0') address = family === 4 && proxyIp ? proxyIp : '127.0.0.1';
  else if (host === '::') address = family === 6 && proxyIp ? proxyIp : '::1';
  else if (host === '127.0.0.1' || host === '::1') address = loopback;
  return address === undefined ? undefined : { socket_address: { address, port_value: port } };
}

/** A service port's target port as a number: numeric targetPort, or the container port of that name. */
export function resolveTargetPort(port: ServicePortInfo, containers: ReadonlyArray<{ ports?: Array<{ name?: string; containerPort?: number }> }> | undefined): number | undefined {
  if (typeof port.targetPort === 'number') return port.targetPort;
  const asNum = Number(port.targetPort);
  if (port.targetPort !== '' && Number.isInteger(asNum)) return asNum;
  for (const c of containers ?? []) {
    for (const p of c.ports ?? []) if (p.name === port.targetPort && p.containerPort) return p.containerPort;
  }
  return undefined;
}
