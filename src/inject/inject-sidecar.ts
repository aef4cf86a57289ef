// The objects the injector adds to a pod, in the shape of Istio's injection template: the istio-init
// container (istio-iptables arguments), the istio-proxy container, their volumes and mounts. Pure
// builders over already-validated settings; never throw.

import type { Container, EnvVar, Probe, SecurityContext } from '../config/types.ts';
import type { CaptureConfig } from './capture-rules.ts';
import { expandVars } from './inject-env.ts';

export const INIT_CONTAINER_NAME = 'istio-init';
/** With the CNI plugin the node installs the capture rules; this init container only checks they work. */
export const VALIDATION_CONTAINER_NAME = 'istio-validation';
export const PROXY_CONTAINER_NAME = 'istio-proxy';
/** The proxy's UID and GID; its own traffic is never captured. */
export const PROXY_UID = 1337;
/** Health port: GET /healthz/ready answers 200 once the first configuration is applied. */
export const HEALTH_PORT = 15021;
export const READY_PATH = '/healthz/ready';
/** Envoy-style Prometheus stats port. */
export const ENVOY_PROM_PORT = 15090;
/** The agent's port: merged Prometheus metrics at /stats/prometheus. */
export const DEFAULT_STATUS_PORT = 15020;

/** A container as the injector writes it (Container plus the lifecycle hook of holdApplicationUntilProxyStarts). */
export type InjectedContainer = Container & { lifecycle?: { postStart?: { exec?: { command: string[] } } } };
export type Volume = Record<string, unknown>;

/** The volumes the sidecar uses, in the template's order (also the `volumes` list of sidecar.istio.io/status). */
export function sidecarVolumes(): Volume[] {
  return [
    { name: 'workload-socket', emptyDir: {} },
    { name: 'credential-socket', emptyDir: {} },
    { name: 'workload-certs', emptyDir: {} },
    { name: 'istio-envoy', emptyDir: { medium: 'Memory' } },
    { name: 'istio-data', emptyDir: {} },
    {
      name: 'istio-podinfo',
      downwardAPI: {
        items: [
          { path: 'labels', fieldRef: { fieldPath: 'metadata.labels' } },
          { path: 'annotations', fieldRef: { fieldPath: 'metadata.annotations' } },
        ],
      },
    },
    {
      name: 'istio-token',
      projected: { sources: [{ serviceAccountToken: { audience: 'istio-ca', expirationSeconds: 43200, path: 'istio-token' } }] },
    },
    { name: 'istiod-ca-cert', configMap: { name: 'istio-ca-root-cert' } },
  ];
}

function proxyVolumeMounts(): Array<Record<string, unknown>> {
  return [
    { name: 'workload-socket', mountPath: '/var/run/secrets/workload-spiffe-uds' },
    { name: 'credential-socket', mountPath: '/var/run/secrets/credential-uds' },
    { name: 'workload-certs', mountPath: '/var/run/secrets/workload-spiffe-credentials' },
    { name: 'istiod-ca-cert', mountPath: '/var/run/secrets/istio' },
    { name: 'istio-data', mountPath: '/var/lib/istio/data' },
    { name: 'istio-envoy', mountPath: '/etc/istio/proxy' },
    { name: 'istio-token', mountPath: '/var/run/secrets/tokens' },
    { name: 'istio-podinfo', mountPath: '/etc/istio/pod' },
  ];
}

/** CPU and memory of both injected containers (quantities as Kubernetes writes them). */
export type ProxyResources = { requests: { cpu: string; memory: string }; limits: { cpu: string; memory: string } };

export const DEFAULT_PROXY_RESOURCES: Readonly<ProxyResources> = Object.freeze({
  requests: { cpu: '100m', memory: '128Mi' },
  limits: { cpu: '2000m', memory: '1024Mi' },
});

const list = (xs: readonly (string | number)[]): string => xs.join(',');

/**
 * istio-init's arguments for a capture configuration, in the template's order:
 * `istio-iptables -p 15001 -z 15006 -u 1337 -m REDIRECT -i '*' -x "" -b '*' -d 15090,15021,15020`,
 * then -q/-o/-c when set, then the agent's log level.
 */
export function istioIptablesArgs(c: Readonly<CaptureConfig>, logOutputLevel: string): string[] {
  const args = [
    'istio-iptables',
    '-p', String(c.proxyPort),
    '-z', String(c.inboundCapturePort),
    '-u', String(c.proxyUid),
    '-m', c.mode,
    '-i', c.includeOutboundIPRanges === '*' ? '*' : list(c.includeOutboundIPRanges),
    '-x', list(c.excludeOutboundIPRanges),
    '-b', c.includeInboundPorts === '*' ? '*' : list(c.includeInboundPorts),
    '-d', list(c.excludeInboundPorts),
  ];
  if (c.proxyGid !== undefined && c.proxyGid !== c.proxyUid) args.push('-g', String(c.proxyGid));
  if (c.includeOutboundPorts.length > 0) args.push('-q', list(c.includeOutboundPorts));
  if (c.excludeOutboundPorts.length > 0) args.push('-o', list(c.excludeOutboundPorts));
  if (c.excludeInterfaces.length > 0) args.push('-c', list(c.excludeInterfaces));
  args.push(`--log_output_level=${logOutputLevel}`);
  return args;
}

/** The init container that installs the capture rules: root with NET_ADMIN and NET_RAW only. */
export function initContainer(image: string, capture: Readonly<CaptureConfig>, resources: ProxyResources, logOutputLevel: string): InjectedContainer {
  const securityContext: SecurityContext = {
    allowPrivilegeEscalation: false,
    capabilities: { add: ['NET_ADMIN', 'NET_RAW'], drop: ['ALL'] },
    privileged: false,
    readOnlyRootFilesystem: false,
    runAsGroup: 0,
    runAsNonRoot: false,
    runAsUser: 0,
  };
  return {
    name: INIT_CONTAINER_NAME,
    image,
    args: istioIptablesArgs(capture, logOutputLevel),
    resources: structuredClone(resources),
    securityContext,
  };
}

/**
 * CNI mode's istio-validation init container: istio-init's arguments plus --run-validation --skip-rule-apply,
 * running as 1337 with no capabilities (the rules are already there; it only checks that they redirect).
 */
export function validationContainer(image: string, capture: Readonly<CaptureConfig>, resources: ProxyResources, logOutputLevel: string): InjectedContainer {
  const securityContext: SecurityContext = {
    allowPrivilegeEscalation: false,
    capabilities: { drop: ['ALL'] },
    privileged: false,
    readOnlyRootFilesystem: true,
    runAsGroup: 1337,
    runAsNonRoot: true,
    runAsUser: 1337,
  };
  return {
    name: VALIDATION_CONTAINER_NAME,
    image,
    args: [...istioIptablesArgs(capture, logOutputLevel), '--run-validation', '--skip-rule-apply'],
    resources: structuredClone(resources),
    securityContext,
  };
}

export interface ProxyContainerSettings {
  image: string;
  env: EnvVar[];
  resources: ProxyResources;
  proxyLogLevel: string;
  proxyComponentLogLevel: string;
  logOutputLevel: string;
  readiness: { initialDelaySeconds?: number; periodSeconds: number; failureThreshold: number };
  /** holdApplicationUntilProxyStarts: a postStart hook that returns once the proxy is ready. */
  holdApplication: boolean;
  /** ProxyConfig concurrency: `--concurrency N` when above 0, as Istio's template writes it (0 and unset: no flag). */
  concurrency?: number;
}

const readyGet = (): NonNullable<Probe['httpGet']> => ({ path: READY_PATH, port: HEALTH_PORT });

/** The sidecar container: UID/GID 1337, read-only root, no capabilities, Prometheus port, readiness and startup probes. */
export function proxyContainer(s: ProxyContainerSettings): InjectedContainer {
  const readinessProbe: Probe = {
    httpGet: readyGet(),
    ...(s.readiness.initialDelaySeconds ? { initialDelaySeconds: s.readiness.initialDelaySeconds } : {}),
    periodSeconds: s.readiness.periodSeconds,
    timeoutSeconds: 3,
    failureThreshold: s.readiness.failureThreshold,
  };
  const c: InjectedContainer = {
    name: PROXY_CONTAINER_NAME,
    image: s.image,
    args: [
      'proxy',
      'sidecar',
      '--domain',
      '$(POD_NAMESPACE).svc.cluster.local',
      `--proxyLogLevel=${s.proxyLogLevel}`,
      `--proxyComponentLogLevel=${s.proxyComponentLogLevel}`,
      `--log_output_level=${s.logOutputLevel}`,
      ...(s.concurrency !== undefined && s.concurrency > 0 ? ['--concurrency', String(s.concurrency)] : []),
    ],
    env: s.env,
    ports: [{ containerPort: ENVOY_PROM_PORT, name: 'http-envoy-prom', protocol: 'TCP' }],
    readinessProbe,
    startupProbe: { httpGet: readyGet(), periodSeconds: 1, timeoutSeconds: 3, failureThreshold: 600 },
    resources: structuredClone(s.resources),
    securityContext: {
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
      privileged: false,
      readOnlyRootFilesystem: true,
      runAsGroup: PROXY_UID,
      runAsNonRoot: true,
      runAsUser: PROXY_UID,
    },
    volumeMounts: proxyVolumeMounts(),
  };
  // Istio's hook runs `pilot-agent wait` (poll the proxy until ready); tsmesh's image has `tsmesh` on its PATH instead.
  if (s.holdApplication) c.lifecycle = { postStart: { exec: { command: ['tsmesh', 'wait'] } } };
  return c;
}

/**
 * The `tsmesh` arguments that run an istio-proxy container (the local runtime): its args with $(VAR) expanded from
 * its environment, e.g. `proxy sidecar --domain demo.svc.cluster.local ... --concurrency 2`; `proxy` alone when it
 * has none.
 */
export function proxyCommandArgs(c: Pick<Container, 'args'>, env: Readonly<Record<string, string>>): string[] {
  const args = (c.args ?? []).map((a) => expandVars(a, env));
  return args[0] === 'proxy' ? args : ['proxy', ...args];
}

/** `{fieldRef: {fieldPath}}` for the downward API. */
export const fieldRef = (name: string, fieldPath: string): EnvVar => ({ name, valueFrom: { fieldRef: { fieldPath } } });
