// Builds a synthetic Kubernetes + Istio mesh as Resource objects (deterministic for given options) and the config change the benchmark applies; pure, throws only on impossible options (no services or namespaces).

import { syntheticSource, type Resource } from '../../src/config/resource.ts';

export interface MeshOptions {
  /** Kubernetes Services, spread round-robin over the namespaces. */
  services: number;
  /** Application namespaces `ns-000`... (istio-system comes on top). */
  namespaces: number;
  /** true: a root-namespace Sidecar limits every proxy's egress to `./*` and `istio-system/*`. */
  scoped: boolean;
  /** At least this many pods overall (replicas are raised evenly when 2-3 per service would be fewer). */
  minPods: number;
}

export interface MeshShape {
  resources: Resource[];
  /** Replicas of a plain service's v1 Deployment (2 or 3 unless raised to reach minPods). */
  replicas: [number, number];
  canaries: number;
  destinationRules: number;
  virtualServices: number;
}

/** Every 5th service runs a canary: v1 and v2 Deployments, a DestinationRule with subsets, a 90/10 VirtualService. */
export const CANARY_EVERY = 5;
/** Every 10th service also serves gRPC on 9090. */
const GRPC_EVERY = 10;
export const ROOT_NAMESPACE = 'istio-system';

const source = syntheticSource('bench');

function res(apiVersion: string, kind: string, namespace: string, name: string, spec: Record<string, unknown>, labels: Record<string, string> = {}): Resource {
  const slash = apiVersion.indexOf('/');
  const group = slash < 0 ? '' : apiVersion.slice(0, slash);
  const version = slash < 0 ? apiVersion : apiVersion.slice(slash + 1);
  const metadata = { name, namespace, labels, annotations: {}, creationTimestamp: '2024-01-01T00:00:00Z' };
  const body: Record<string, unknown> = { apiVersion, kind, metadata: { name, namespace, labels, creationTimestamp: metadata.creationTimestamp }, spec };
  return { apiVersion, group, version, kind, metadata, spec, body, source };
}

export function namespaceName(i: number): string {
  return `ns-${String(i).padStart(3, '0')}`;
}

function deployment(ns: string, app: string, version: string, replicas: number, ports: number[]): Resource {
  const labels = { app, version };
  return res('apps/v1', 'Deployment', ns, `${app}-${version}`, {
    replicas,
    selector: { matchLabels: labels },
    template: {
      metadata: { labels },
      spec: { containers: [{ name: app, image: `bench/${app}:${version}`, ports: ports.map((p) => ({ containerPort: p })) }] },
    },
  }, { app });
}

/** The canary VirtualService of a service: `weight`% to v1, the rest to v2. */
export function canaryVirtualService(ns: string, app: string, weight: number): Resource {
  return res('networking.istio.io/v1', 'VirtualService', ns, app, {
    hosts: [app],
    http: [
      {
        match: [{ headers: { 'end-user': { exact: 'tester' } } }],
        route: [{ destination: { host: app, subset: 'v2' } }],
      },
      {
        route: [
          { destination: { host: app, subset: 'v1' }, weight },
          { destination: { host: app, subset: 'v2' }, weight: 100 - weight },
        ],
        timeout: '5s',
        retries: { attempts: 2, perTryTimeout: '2s', retryOn: '5xx,connect-failure' },
      },
    ],
  });
}

function canaryDestinationRule(ns: string, app: string): Resource {
  return res('networking.istio.io/v1', 'DestinationRule', ns, app, {
    host: app,
    trafficPolicy: {
      loadBalancer: { simple: 'LEAST_REQUEST' },
      connectionPool: { tcp: { maxConnections: 100 }, http: { http1MaxPendingRequests: 64 } },
      outlierDetection: { consecutive5xxErrors: 5, interval: '10s', baseEjectionTime: '30s' },
    },
    subsets: [
      { name: 'v1', labels: { version: 'v1' } },
      { name: 'v2', labels: { version: 'v2' } },
    ],
  });
}

/** The service the change targets: the first canary, `svc-00000` in `ns-000`. */
export function changeTarget(): { namespace: string; app: string } {
  return { namespace: namespaceName(0), app: serviceName(0) };
}

export function serviceName(i: number): string {
  return `svc-${String(i).padStart(5, '0')}`;
}

export function buildMesh(opts: MeshOptions): MeshShape {
  if (opts.services < 1 || opts.namespaces < 1) throw new Error(`mesh: need at least one service and one namespace (got ${opts.services}, ${opts.namespaces})`);
  const out: Resource[] = [];
  out.push(res('v1', 'Namespace', '', ROOT_NAMESPACE, {}));
  for (let n = 0; n < opts.namespaces; n++) out.push(res('v1', 'Namespace', '', namespaceName(n), {}, { 'istio-injection': 'enabled' }));
  // istiod itself, as every mesh has it: what a `istio-system/*`-scoped proxy still sees
  out.push(res('v1', 'Service', ROOT_NAMESPACE, 'istiod', {
    selector: { app: 'istiod' },
    ports: [
      { name: 'grpc-xds', port: 15010, targetPort: 15010 },
      { name: 'https-dns', port: 15012, targetPort: 15012 },
      { name: 'https-webhook', port: 443, targetPort: 15017 },
      { name: 'http-monitoring', port: 15014, targetPort: 15014 },
    ],
  }, { app: 'istiod' }));
  out.push(deployment(ROOT_NAMESPACE, 'istiod', 'v1', 1, [15010, 15012, 15014, 15017]));
  if (opts.scoped) {
    out.push(res('networking.istio.io/v1', 'Sidecar', ROOT_NAMESPACE, 'default', { egress: [{ hosts: ['./*', `${ROOT_NAMESPACE}/*`] }] }));
  }

  const canaries = Math.ceil(opts.services / CANARY_EVERY);
  // pods at 2-3 replicas: plain services alternate 2 and 3, canaries have 2 (v1) + 1 (v2)
  const basePods = opts.services * 2.5;
  const scale = basePods >= opts.minPods ? 1 : Math.ceil(opts.minPods / basePods);
  const replicas: [number, number] = [2 * scale, 3 * scale];
  for (let i = 0; i < opts.services; i++) {
    const ns = namespaceName(i % opts.namespaces);
    const app = serviceName(i);
    const grpc = i % GRPC_EVERY === GRPC_EVERY - 1;
    const ports = [{ name: 'http', port: 8080, targetPort: 8080 }];
    if (grpc) ports.push({ name: 'grpc-api', port: 9090, targetPort: 9090 });
    out.push(res('v1', 'Service', ns, app, { selector: { app }, ports }, { app }));
    const containerPorts = ports.map((p) => p.targetPort);
    if (i % CANARY_EVERY === 0) {
      out.push(deployment(ns, app, 'v1', replicas[0], containerPorts));
      out.push(deployment(ns, app, 'v2', Math.max(1, Math.round(replicas[0] / 2)), containerPorts));
      out.push(canaryDestinationRule(ns, app));
      out.push(canaryVirtualService(ns, app, 90));
    } else {
      out.push(deployment(ns, app, 'v1', i % 2 === 0 ? replicas[0] : replicas[1], containerPorts));
    }
  }
  return { resources: out, replicas, canaries, destinationRules: canaries, virtualServices: canaries };
}
