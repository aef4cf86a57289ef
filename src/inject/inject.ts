// Sidecar injection, one implementation for every entry point (kube-inject, the admission webhook, the
// local runtime): injectionDecision applies Istio's namespace/pod rules, injectPod adds istio-init and
// istio-proxy as Istio's template does. Bad annotations throw MeshError (MESH_ERR_INJECT_CONFIG, or
// MESH_ERR_CAPTURE_CONFIG for traffic.sidecar.istio.io/*) naming the annotation and what is allowed.

import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { MeshError } from '../common/errors.ts';
import { defaultMeshConfig, type MeshConfig } from '../config/mesh-config.ts';
import type { Container, EnvVar, PodSpec } from '../config/types.ts';
import { canonicalName, canonicalRevision } from '../registry/canonical.ts';
import {
  CAPTURE_ANNOTATIONS,
  DEFAULT_CAPTURE_CONFIG,
  IPTABLES_FLAGS,
  captureConfigFromFlags,
  captureConfigFromPod,
  parseInterceptionMode,
  type CaptureConfig,
  type IptablesFlag,
} from './capture-rules.ts';
import {
  DEFAULT_PROXY_RESOURCES,
  DEFAULT_STATUS_PORT,
  INIT_CONTAINER_NAME,
  PROXY_CONTAINER_NAME,
  VALIDATION_CONTAINER_NAME,
  fieldRef,
  initContainer,
  istioIptablesArgs,
  proxyContainer,
  sidecarVolumes,
  validationContainer,
  type InjectedContainer,
  type ProxyResources,
  type Volume,
} from './inject-sidecar.ts';
import { ownerUri, type OwnerReference } from './inject-workload.ts';

export { INIT_CONTAINER_NAME, PROXY_CONTAINER_NAME, VALIDATION_CONTAINER_NAME } from './inject-sidecar.ts';

const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/** tsmesh's sidecar image; the local runtime runs it as `tsmesh proxy`. */
export const DEFAULT_PROXY_IMAGE = `tsmesh/proxy:${VERSION}`;

/** The labels and annotations injection reads and writes. */
export const INJECT_KEYS = {
  inject: 'sidecar.istio.io/inject',
  status: 'sidecar.istio.io/status',
  rev: 'istio.io/rev',
  namespaceInjection: 'istio-injection',
  proxyImage: 'sidecar.istio.io/proxyImage',
  proxyConfig: 'proxy.istio.io/config',
  logLevel: 'sidecar.istio.io/logLevel',
  componentLogLevel: 'sidecar.istio.io/componentLogLevel',
  agentLogLevel: 'sidecar.istio.io/agentLogLevel',
  proxyCPU: 'sidecar.istio.io/proxyCPU',
  proxyMemory: 'sidecar.istio.io/proxyMemory',
  proxyCPULimit: 'sidecar.istio.io/proxyCPULimit',
  proxyMemoryLimit: 'sidecar.istio.io/proxyMemoryLimit',
  readinessInitialDelay: 'readiness.status.sidecar.istio.io/initialDelaySeconds',
  readinessPeriod: 'readiness.status.sidecar.istio.io/periodSeconds',
  readinessFailureThreshold: 'readiness.status.sidecar.istio.io/failureThreshold',
  mergeMetrics: 'prometheus.istio.io/merge-metrics',
  defaultContainer: 'kubectl.kubernetes.io/default-container',
  defaultLogsContainer: 'kubectl.kubernetes.io/default-logs-container',
  tlsMode: 'security.istio.io/tlsMode',
  canonicalName: 'service.istio.io/canonical-name',
  canonicalRevision: 'service.istio.io/canonical-revision',
} as const;

/** Namespaces Istio never injects, whatever their labels. */
export const IGNORED_NAMESPACES: readonly string[] = ['kube-system', 'kube-public', 'kube-node-lease', 'local-path-storage'];

// ---------------------------------------------------------------------------------------------
// The decision.

/** What injectionDecision looks at: the pod's (or pod template's) labels and annotations and its namespace. */
export interface InjectionPod {
  labels?: Readonly<Record<string, string>> | undefined;
  annotations?: Readonly<Record<string, string>> | undefined;
  namespace: string;
  hostNetwork?: boolean | undefined;
}

export interface InjectionOptions {
  /** This injector's revision (istio.io/rev); undefined or 'default' is the default revision. */
  revision?: string | undefined;
  /**
   * Istio's sidecarInjectorWebhook.enableNamespacesByDefault: a namespace with neither istio-injection nor
   * istio.io/rev is injected by the default revision (pods may still opt out). Default false.
   */
  defaultEnabled?: boolean | undefined;
  /** kube-inject: namespace labels are not consulted; skip rules and the pod's own opt-out still apply. */
  manual?: boolean | undefined;
  /** Istio's global.proxy.autoInject: 'disabled' injects only pods that ask with sidecar.istio.io/inject "true". Default 'enabled'. */
  policy?: 'enabled' | 'disabled' | undefined;
  /** The control plane's namespace, never injected. Default istio-system. */
  controlPlaneNamespace?: string | undefined;
}

export interface InjectionDecision {
  inject: boolean;
  /** Why, in words a user can act on (names the label, annotation or namespace that decided). */
  reason: string;
}

/** sidecar.istio.io/inject as Istio reads it: y/yes/true/on inject, '' or absent use the default, anything else opts out. */
function podChoice(pod: InjectionPod): { choice: boolean | undefined; source: string } {
  const label = pod.labels?.[INJECT_KEYS.inject];
  const annotation = pod.annotations?.[INJECT_KEYS.inject];
  // Values are strings in the API; a manifest may still hold an unquoted `false`.
  const [value, source] = label !== undefined ? [String(label), 'label'] : [String(annotation ?? ''), 'annotation'];
  const v = value.toLowerCase();
  const choice = v === '' ? undefined : ['y', 'yes', 'true', 'on'].includes(v);
  return { choice, source: `${source} ${INJECT_KEYS.inject}: "${value}"` };
}

/**
 * Whether a pod gets a sidecar, by Istio's rules (its webhook selectors plus the injector's own checks):
 * already-injected pods (sidecar.istio.io/status), hostNetwork pods, kube-system, kube-public,
 * kube-node-lease and the control plane's namespace are skipped; then the namespace decides which
 * revision's injector is called (istio-injection=enabled: the default revision; istio.io/rev=<rev>;
 * without either, the pod's own label istio.io/rev=<rev> or sidecar.istio.io/inject="true", or
 * defaultEnabled); then the pod's sidecar.istio.io/inject (label wins over annotation) opts in or out;
 * without one, the policy decides. Pure.
 */
export function injectionDecision(
  pod: InjectionPod,
  namespaceLabels: Readonly<Record<string, string>> | undefined,
  opts: InjectionOptions = {},
): InjectionDecision {
  const no = (reason: string): InjectionDecision => ({ inject: false, reason });
  const ns = pod.namespace;
  if (pod.annotations?.[INJECT_KEYS.status]) return no(`already injected (annotation ${INJECT_KEYS.status} is set)`);
  if (pod.hostNetwork === true) return no('the pod uses the host network (hostNetwork: true)');
  if (IGNORED_NAMESPACES.includes(ns)) return no(`namespace ${ns} is never injected`);
  const controlPlane = opts.controlPlaneNamespace ?? 'istio-system';
  if (ns === controlPlane) return no(`namespace ${ns} is the control plane's namespace`);

  const mine = opts.revision && opts.revision !== '' ? opts.revision : 'default';
  let selectedBy: string;
  if (opts.manual) {
    selectedBy = 'manual injection (kube-inject)';
  } else {
    const nsLabels = namespaceLabels ?? {};
    const nsInjection = nsLabels[INJECT_KEYS.namespaceInjection];
    const nsRev = nsLabels[INJECT_KEYS.rev];
    const podRev = pod.labels?.[INJECT_KEYS.rev];
    if (nsInjection !== undefined) {
      if (nsInjection !== 'enabled') return no(`namespace ${ns} is labelled ${INJECT_KEYS.namespaceInjection}=${nsInjection}`);
      if (mine !== 'default') return no(`namespace ${ns} is labelled ${INJECT_KEYS.namespaceInjection}=enabled, which selects the default revision, not ${mine}`);
      selectedBy = `namespace ${ns} is labelled ${INJECT_KEYS.namespaceInjection}=enabled`;
    } else if (nsRev !== undefined) {
      if (nsRev !== mine) return no(`namespace ${ns} is labelled ${INJECT_KEYS.rev}=${nsRev}; this injector is revision ${mine}`);
      selectedBy = `namespace ${ns} is labelled ${INJECT_KEYS.rev}=${nsRev}`;
    } else if (podRev !== undefined) {
      if (podRev !== mine) return no(`the pod is labelled ${INJECT_KEYS.rev}=${podRev}; this injector is revision ${mine}`);
      selectedBy = `the pod is labelled ${INJECT_KEYS.rev}=${podRev}`;
    } else if (pod.labels?.[INJECT_KEYS.inject] === 'true') {
      if (mine !== 'default') return no(`the pod's label ${INJECT_KEYS.inject}: "true" selects the default revision, not ${mine}`);
      selectedBy = `the pod is labelled ${INJECT_KEYS.inject}: "true"`;
    } else if (opts.defaultEnabled && mine === 'default') {
      selectedBy = `namespace ${ns} has no injection label and namespaces are injected by default`;
    } else {
      const hint = podChoice(pod).choice === true
        ? ` (the annotation ${INJECT_KEYS.inject} alone does not select a pod there: use the label)`
        : '';
      return no(`namespace ${ns} has neither ${INJECT_KEYS.namespaceInjection}=enabled nor ${INJECT_KEYS.rev}, and the pod has no ${INJECT_KEYS.inject}: "true" or ${INJECT_KEYS.rev} label${hint}`);
    }
  }
  const { choice, source } = podChoice(pod);
  if (choice === false) return no(`the pod opts out with ${source}`);
  if (choice === true) return { inject: true, reason: `the pod asks with ${source} (${selectedBy})` };
  if (opts.policy === 'disabled') return no(`the injection policy is disabled and the pod does not ask with ${INJECT_KEYS.inject}: "true" (${selectedBy})`);
  return { inject: true, reason: selectedBy };
}

// ---------------------------------------------------------------------------------------------
// The mutation.

export interface PodMetadata {
  name?: string;
  namespace?: string;
  generateName?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: OwnerReference[];
  [k: string]: unknown;
}

/** A pod or pod template: `{metadata, spec}` (other fields, e.g. a Pod's apiVersion/kind/status, are kept). */
export interface PodTemplate {
  metadata?: PodMetadata | undefined;
  spec?: PodSpec | undefined;
  [k: string]: unknown;
}

export interface InjectContext {
  /** The pod's namespace (ISTIO_META_OWNER, the decision's namespace). */
  namespace: string;
  /** The workload's name (Deployment name, or the pod's own for a bare pod): ISTIO_META_WORKLOAD_NAME, canonical name fallback. */
  workloadName: string;
  /** Kind of the workload (Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob, Pod); default Pod. */
  ownerKind?: string | undefined;
  /** API version of ownerKind when not the usual one (apps/v1, batch/v1, v1). */
  ownerApiVersion?: string | undefined;
  /** Mesh config (defaultConfig = the ProxyConfig every sidecar gets); default Istio's defaults. */
  meshConfig?: MeshConfig | undefined;
  /** The sidecar image; default DEFAULT_PROXY_IMAGE. The pod's sidecar.istio.io/proxyImage wins. */
  proxyImage?: string | undefined;
  /** host:port of the control plane's xDS; default meshConfig.defaultConfig.discoveryAddress. */
  discoveryAddress?: string | undefined;
  /** The injector's revision, recorded in sidecar.istio.io/status; default 'default'. */
  revision?: string | undefined;
  /** Capture is installed from the node (M3): no istio-init; the capture settings go to annotations. */
  cni?: boolean | undefined;
  /** Default meshConfig.trustDomain. */
  trustDomain?: string | undefined;
  /** ISTIO_META_CLUSTER_ID; default Kubernetes. */
  clusterId?: string | undefined;
}

/** The status annotation's JSON (sidecar.istio.io/status). */
export interface SidecarStatus {
  initContainers: string[] | null;
  containers: string[];
  volumes: string[];
  imagePullSecrets: string[] | null;
  revision: string;
}

function bad(annotation: string, value: string, allowed: string): MeshError {
  return new MeshError('MESH_ERR_INJECT_CONFIG', `annotation ${annotation}: invalid value ${JSON.stringify(value)}; allowed: ${allowed}`);
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The ProxyConfig a sidecar gets: meshConfig.defaultConfig, the injector's discovery address, then proxy.istio.io/config. */
function proxyConfigFor(mesh: MeshConfig, discoveryAddress: string | undefined, annotation: string | undefined): Record<string, unknown> {
  const base: Record<string, unknown> = structuredClone(mesh.defaultConfig);
  if (discoveryAddress) base.discoveryAddress = discoveryAddress;
  if (annotation === undefined || annotation.trim() === '') return base;
  const name = INJECT_KEYS.proxyConfig;
  let parsed: unknown;
  try {
    parsed = parseYaml(annotation);
  } catch {
    throw bad(name, annotation, 'a ProxyConfig mapping in YAML or JSON, e.g. {"holdApplicationUntilProxyStarts": true}');
  }
  if (!isObject(parsed)) throw bad(name, annotation, 'a ProxyConfig mapping in YAML or JSON, e.g. {"holdApplicationUntilProxyStarts": true}');
  const types: Record<string, 'string' | 'boolean' | 'number' | 'object'> = {
    discoveryAddress: 'string', holdApplicationUntilProxyStarts: 'boolean', interceptionMode: 'string', statusPort: 'number', meshId: 'string', proxyMetadata: 'object',
    concurrency: 'number',
  };
  for (const [k, t] of Object.entries(types)) {
    const v = parsed[k];
    if (v !== undefined && (t === 'object' ? !isObject(v) : typeof v !== t)) throw bad(name, annotation, `${k} must be ${t === 'object' ? 'a mapping' : `a ${t}`}`);
  }
  const merged = { ...base, ...parsed };
  if (isObject(base.proxyMetadata) && isObject(parsed.proxyMetadata)) merged.proxyMetadata = { ...base.proxyMetadata, ...parsed.proxyMetadata };
  return merged;
}

const QUANTITY = /^\d+(\.\d+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$/;

function resourcesFor(a: Readonly<Record<string, string>>): ProxyResources {
  const r: ProxyResources = structuredClone(DEFAULT_PROXY_RESOURCES);
  const q = (key: string, set: (v: string) => void): void => {
    const v = a[key];
    if (v === undefined) return;
    if (!QUANTITY.test(v.trim())) throw bad(key, v, 'a Kubernetes quantity such as 100m, 0.5, 128Mi or 1Gi');
    set(v.trim());
  };
  q(INJECT_KEYS.proxyCPU, (v) => (r.requests.cpu = v));
  q(INJECT_KEYS.proxyMemory, (v) => (r.requests.memory = v));
  q(INJECT_KEYS.proxyCPULimit, (v) => (r.limits.cpu = v));
  q(INJECT_KEYS.proxyMemoryLimit, (v) => (r.limits.memory = v));
  return r;
}

const LOG_LEVELS = ['trace', 'debug', 'info', 'warning', 'warn', 'error', 'critical', 'off'];

function logLevel(a: Readonly<Record<string, string>>, key: string, fallback: string, scoped: boolean): string {
  const v = a[key];
  if (v === undefined) return fallback;
  const t = v.trim();
  const level = `(${LOG_LEVELS.join('|')})`;
  const ok = scoped ? new RegExp(`^([a-z_]+:${level})(,[a-z_]+:${level})*$`).test(t) : LOG_LEVELS.includes(t);
  if (!ok) throw bad(key, v, scoped ? `scope:level pairs such as misc:error,upstream:debug (levels ${LOG_LEVELS.join(', ')})` : LOG_LEVELS.join(', '));
  return t;
}

function seconds(a: Readonly<Record<string, string>>, key: string, fallback: number | undefined, min: number): number | undefined {
  const v = a[key];
  if (v === undefined) return fallback;
  if (!/^\d+$/.test(v.trim()) || Number(v) < min) throw bad(key, v, `a whole number, ${min} or more`);
  return Number(v);
}

function statusPortOf(a: Readonly<Record<string, string>>, proxyConfig: Record<string, unknown>): number | undefined {
  const v = a[CAPTURE_ANNOTATIONS.statusPort];
  if (v === undefined) return typeof proxyConfig.statusPort === 'number' ? proxyConfig.statusPort : DEFAULT_STATUS_PORT;
  if (v.trim() === '0') return undefined;
  const n = Number(v.trim());
  if (!/^\d+$/.test(v.trim()) || n < 1 || n > 65535) throw bad(CAPTURE_ANNOTATIONS.statusPort, v, 'a port 1-65535, or 0 for none');
  return n;
}

/** ISTIO_META_POD_PORTS: the application containers' ports, one JSON object a line, as Istio writes them. */
function podPortsJson(containers: readonly Container[]): string {
  const ports = containers.flatMap((c) => (Array.isArray(c.ports) ? c.ports : []));
  return ports.length === 0 ? '[\n]' : `[\n${ports.map((p) => `    ${JSON.stringify(p)}`).join(',\n')}\n]`;
}

/** Istio's metrics merge: the app's own prometheus.io/* settings move to ISTIO_PROMETHEUS_ANNOTATIONS, the pod is scraped on the agent. */
function mergePrometheus(mesh: MeshConfig, annotations: Record<string, string>, statusPort: number | undefined, env: EnvVar[]): void {
  if (mesh.enablePrometheusMerge === false || statusPort === undefined) return;
  if ((annotations[INJECT_KEYS.mergeMetrics] ?? '').toLowerCase() === 'false') return;
  if ((annotations['prometheus.io/scrape'] ?? '').toLowerCase() === 'false') return;
  const port = String(statusPort);
  if (annotations['prometheus.io/port'] === port) return;
  const app = { scrape: annotations['prometheus.io/scrape'] ?? '', path: annotations['prometheus.io/path'] ?? '', port: annotations['prometheus.io/port'] ?? '' };
  if (app.scrape !== '' || app.path !== '' || app.port !== '') env.push({ name: 'ISTIO_PROMETHEUS_ANNOTATIONS', value: JSON.stringify(app) });
  annotations['prometheus.io/port'] = port;
  annotations['prometheus.io/path'] = '/stats/prometheus';
  annotations['prometheus.io/scrape'] = 'true';
}

/** The capture settings written as pod annotations, so a node-side (CNI) installer derives the same rules. */
function captureAnnotations(c: Readonly<CaptureConfig>, annotations: Record<string, string>): void {
  const A = CAPTURE_ANNOTATIONS;
  const join = (xs: readonly (string | number)[]): string => xs.join(',');
  annotations[A.interceptionMode] = c.mode;
  if (c.mode === 'NONE') return;
  annotations[A.includeOutboundIPRanges] = c.includeOutboundIPRanges === '*' ? '*' : join(c.includeOutboundIPRanges);
  if (c.excludeOutboundIPRanges.length > 0) annotations[A.excludeOutboundIPRanges] = join(c.excludeOutboundIPRanges);
  annotations[A.includeInboundPorts] = c.includeInboundPorts === '*' ? '*' : join(c.includeInboundPorts);
  // Istio's template writes the user's ports and the status port ("15020" by default); 15090 and 15021 are
  // added by whoever installs the rules (the CNI plugin, and captureConfigFromPod here)
  annotations[A.excludeInboundPorts] = join(c.excludeInboundPorts.filter((p) => p !== 15090 && p !== 15021));
  if (c.includeOutboundPorts.length > 0) annotations[A.includeOutboundPorts] = join(c.includeOutboundPorts);
  if (c.excludeOutboundPorts.length > 0) annotations[A.excludeOutboundPorts] = join(c.excludeOutboundPorts);
  if (c.excludeInterfaces.length > 0) annotations[A.excludeInterfaces] = join(c.excludeInterfaces);
}

/** Lists Kubernetes merges by a key (strategic merge patch) rather than replaces. */
const MERGE_KEYS: Record<string, string> = { env: 'name', ports: 'containerPort', volumeMounts: 'mountPath' };

/** `over` merged onto `base` as a strategic merge patch does for a container: maps deeply, env/ports/volumeMounts by key, other values replaced. */
function overlay(base: unknown, over: unknown, key = ''): unknown {
  const mergeKey = MERGE_KEYS[key];
  if (mergeKey && Array.isArray(base) && Array.isArray(over)) {
    const out: unknown[] = base.map((b) => {
      const match = over.find((o) => isObject(o) && isObject(b) && o[mergeKey] === b[mergeKey]);
      return match === undefined ? b : overlay(b, match);
    });
    for (const o of over) if (!base.some((b) => isObject(o) && isObject(b) && o[mergeKey] === b[mergeKey])) out.push(o);
    return out;
  }
  if (!isObject(base) || !isObject(over)) return structuredClone(over);
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = k in base ? overlay(base[k], v, k) : structuredClone(v);
  return out;
}

/** A copy of a labels/annotations map; a value that is not a string (an unquoted number or boolean in YAML) is an error. */
function stringMap(map: Record<string, string> | undefined, what: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(map ?? {})) {
    if (typeof v !== 'string') throw new MeshError('MESH_ERR_INJECT_CONFIG', `${what} ${k}: the value must be a string; quote it (${k}: "${String(v)}")`);
    out[k] = v;
  }
  return out;
}

/** True when the pod (template) carries sidecar.istio.io/status: injectPod leaves it as it is. */
export function isInjected(pod: Pick<PodTemplate, 'metadata'>): boolean {
  return Boolean(pod.metadata?.annotations?.[INJECT_KEYS.status]);
}

/**
 * Adds the sidecar to a pod or pod template and returns the result (the argument is not modified):
 * the istio-init init container (first; omitted with interceptionMode NONE) whose istio-iptables
 * arguments come from the traffic.sidecar.istio.io annotations — with cni, istio-validation in its place (the
 * same arguments plus --run-validation --skip-rule-apply, no NET_ADMIN) and the capture settings also written
 * as annotations for the node-side plugin; the istio-proxy container (last, or
 * first with a postStart hook when holdApplicationUntilProxyStarts is set in meshConfig.defaultConfig
 * or proxy.istio.io/config); the sidecar volumes; labels security.istio.io/tlsMode and the canonical
 * name/revision; annotations sidecar.istio.io/status, istio.io/rev, kubectl's default container and
 * prometheus.io/* (the app's own scrape settings move to ISTIO_PROMETHEUS_ANNOTATIONS). A container
 * named istio-proxy already in the pod is merged over the injected one. A pod that is already injected
 * (sidecar.istio.io/status) is returned unchanged. Throws MESH_ERR_INJECT_CONFIG for a pod without containers
 * or a bad sidecar.istio.io/proxy.istio.io annotation, MESH_ERR_CAPTURE_CONFIG for a bad capture one.
 */
export function injectPod<T extends PodTemplate>(pod: T, ctx: InjectContext): T {
  const out = structuredClone(pod);
  if (isInjected(out)) return out;
  const spec = out.spec;
  if (!spec || !Array.isArray(spec.containers) || spec.containers.length === 0) {
    throw new MeshError('MESH_ERR_INJECT_CONFIG', 'the pod has no containers (spec.containers): nothing to put a sidecar beside');
  }
  const meta: PodMetadata = out.metadata ?? {};
  out.metadata = meta;
  const original: Readonly<Record<string, string>> = stringMap(meta.annotations, 'annotation');
  const annotations: Record<string, string> = { ...original };
  const labels: Record<string, string> = stringMap(meta.labels, 'label');

  const mesh = ctx.meshConfig ?? defaultMeshConfig();
  const proxyConfig = proxyConfigFor(mesh, ctx.discoveryAddress, original[INJECT_KEYS.proxyConfig]);
  const captureDefaults: CaptureConfig = { ...DEFAULT_CAPTURE_CONFIG };
  if (typeof mesh.proxyListenPort === 'number') captureDefaults.proxyPort = mesh.proxyListenPort;
  if (typeof mesh.proxyInboundListenPort === 'number') captureDefaults.inboundCapturePort = mesh.proxyInboundListenPort;
  if (typeof proxyConfig.interceptionMode === 'string') captureDefaults.mode = parseInterceptionMode(proxyConfig.interceptionMode, `${INJECT_KEYS.proxyConfig} interceptionMode`);
  const capture = captureConfigFromPod(original, captureDefaults);
  const statusPort = statusPortOf(original, proxyConfig);
  const image = original[INJECT_KEYS.proxyImage]?.trim() || ctx.proxyImage || DEFAULT_PROXY_IMAGE;
  const resources = resourcesFor(original);
  const agentLogLevel = logLevel(original, INJECT_KEYS.agentLogLevel, 'default:info', true);
  const trustDomain = ctx.trustDomain ?? mesh.trustDomain;
  const revision = ctx.revision && ctx.revision !== '' ? ctx.revision : 'default';
  // A container named istio-proxy in the pod customises the injected one (Istio merges it over the template).
  const custom = spec.containers.find((c) => c.name === PROXY_CONTAINER_NAME);
  const apps = spec.containers.filter((c) => c.name !== PROXY_CONTAINER_NAME);
  const appNames = apps.map((c) => c.name);

  labels[INJECT_KEYS.tlsMode] = 'istio';
  labels[INJECT_KEYS.canonicalName] = canonicalName(labels, ctx.workloadName);
  labels[INJECT_KEYS.canonicalRevision] = canonicalRevision(labels);

  const env: EnvVar[] = [
    { name: 'JWT_POLICY', value: 'third-party-jwt' },
    { name: 'PILOT_CERT_PROVIDER', value: 'istiod' },
    { name: 'CA_ADDR', value: typeof proxyConfig.caAddress === 'string' && proxyConfig.caAddress !== '' ? proxyConfig.caAddress : String(proxyConfig.discoveryAddress) },
    fieldRef('POD_NAME', 'metadata.name'),
    fieldRef('POD_NAMESPACE', 'metadata.namespace'),
    fieldRef('INSTANCE_IP', 'status.podIP'),
    fieldRef('SERVICE_ACCOUNT', 'spec.serviceAccountName'),
    fieldRef('HOST_IP', 'status.hostIP'),
    { name: 'ISTIO_CPU_LIMIT', valueFrom: { resourceFieldRef: { resource: 'limits.cpu' } } },
    { name: 'PROXY_CONFIG', value: JSON.stringify(proxyConfig) },
    { name: 'ISTIO_META_POD_PORTS', value: podPortsJson(apps) },
    { name: 'ISTIO_META_APP_CONTAINERS', value: appNames.join(',') },
    { name: 'ISTIO_META_CLUSTER_ID', value: ctx.clusterId ?? 'Kubernetes' },
    fieldRef('ISTIO_META_NODE_NAME', 'spec.nodeName'),
    { name: 'ISTIO_META_INTERCEPTION_MODE', value: capture.mode },
    { name: 'ISTIO_META_WORKLOAD_NAME', value: ctx.workloadName },
    { name: 'ISTIO_META_OWNER', value: ownerUri(ctx.ownerKind ?? 'Pod', ctx.namespace, ctx.workloadName, ctx.ownerApiVersion) },
    { name: 'ISTIO_META_MESH_ID', value: typeof proxyConfig.meshId === 'string' && proxyConfig.meshId !== '' ? proxyConfig.meshId : trustDomain },
    { name: 'TRUST_DOMAIN', value: trustDomain },
    fieldRef('CANONICAL_SERVICE', `metadata.labels['${INJECT_KEYS.canonicalName}']`),
    fieldRef('CANONICAL_REVISION', `metadata.labels['${INJECT_KEYS.canonicalRevision}']`),
    { name: 'ISTIO_METAJSON_LABELS', value: JSON.stringify(labels) },
  ];
  if (isObject(proxyConfig.proxyMetadata)) {
    for (const [k, v] of Object.entries(proxyConfig.proxyMetadata)) env.push({ name: k, value: String(v) });
  }
  mergePrometheus(mesh, annotations, statusPort, env);

  const hold = proxyConfig.holdApplicationUntilProxyStarts === true;
  const concurrency = proxyConfig.concurrency;
  if (concurrency !== undefined && (typeof concurrency !== 'number' || !Number.isInteger(concurrency) || concurrency < 0)) {
    throw new MeshError('MESH_ERR_INJECT_CONFIG', `ProxyConfig concurrency (${INJECT_KEYS.proxyConfig} or meshConfig.defaultConfig) must be a whole number, 0 or more; it is ${JSON.stringify(concurrency)}`);
  }
  const injected = proxyContainer({
    image,
    env,
    resources,
    proxyLogLevel: logLevel(original, INJECT_KEYS.logLevel, 'warning', false),
    proxyComponentLogLevel: logLevel(original, INJECT_KEYS.componentLogLevel, 'misc:error', true),
    logOutputLevel: agentLogLevel,
    readiness: {
      ...(() => {
        const d = seconds(original, INJECT_KEYS.readinessInitialDelay, undefined, 0);
        return d === undefined ? {} : { initialDelaySeconds: d };
      })(),
      periodSeconds: seconds(original, INJECT_KEYS.readinessPeriod, 15, 1) ?? 15,
      failureThreshold: seconds(original, INJECT_KEYS.readinessFailureThreshold, 4, 1) ?? 4,
    },
    holdApplication: hold,
    ...(typeof concurrency === 'number' ? { concurrency } : {}),
  });
  // `image: auto` (Istio's convention) keeps the injected image.
  const proxy = custom ? (overlay(injected, custom.image === 'auto' ? { ...custom, image: injected.image } : custom) as InjectedContainer) : injected;
  spec.containers = hold ? [proxy, ...apps] : [...apps, proxy];

  const initName = capture.mode === 'NONE' ? undefined : ctx.cni ? VALIDATION_CONTAINER_NAME : INIT_CONTAINER_NAME;
  // Istio's reorderPod: istio-validation first (it blocks every user container until the CNI rules are there),
  // istio-init last (the application's init containers run before the capture rules, so their traffic passes)
  if (initName) {
    const own = (ctx.cni ? validationContainer : initContainer)(image, capture, resources, agentLogLevel);
    spec.initContainers = ctx.cni ? [own, ...(spec.initContainers ?? [])] : [...(spec.initContainers ?? []), own];
  }
  if (ctx.cni) captureAnnotations(capture, annotations);

  const volumes = sidecarVolumes();
  const existing = new Set((spec.volumes ?? []).map((v) => v.name));
  spec.volumes = [...(spec.volumes ?? []), ...volumes.filter((v) => !existing.has(v.name))];

  const first = appNames[0] ?? '';
  if (first !== '') {
    annotations[INJECT_KEYS.defaultContainer] ??= first;
    annotations[INJECT_KEYS.defaultLogsContainer] ??= first;
  }
  annotations[INJECT_KEYS.rev] = revision;
  const status: SidecarStatus = {
    initContainers: initName ? [initName] : null,
    containers: [PROXY_CONTAINER_NAME],
    volumes: volumes.map((v) => String(v.name)),
    imagePullSecrets: null,
    revision,
  };
  annotations[INJECT_KEYS.status] = JSON.stringify(status);
  meta.labels = labels;
  meta.annotations = annotations;
  return out;
}

// ---------------------------------------------------------------------------------------------
// Reading an injected pod back (the local runtime runs what the injector wrote).

const FLAG_BY_LETTER = new Map(Object.entries(IPTABLES_FLAGS).map(([long, short]) => [short as string, long as IptablesFlag]));

/**
 * The capture settings istio-init's arguments ask for (`istio-iptables -p 15001 ... --log_output_level=...`).
 * Throws MESH_ERR_INJECT_CONFIG for an unknown flag, MESH_ERR_CAPTURE_CONFIG for a bad value.
 */
export function captureConfigFromInitArgs(args: readonly string[]): CaptureConfig {
  const flags: Partial<Record<IptablesFlag, string>> = {};
  const rest = args[0] === 'istio-iptables' ? args.slice(1) : [...args];
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i] ?? '';
    if (arg.startsWith('--log_output_level') || arg.startsWith('--log_as_json')) continue;
    let name: IptablesFlag | undefined;
    let value: string | undefined;
    if (/^-[a-z]$/.test(arg)) name = FLAG_BY_LETTER.get(arg.slice(1));
    else if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      const long = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
      if (long in IPTABLES_FLAGS) name = long as IptablesFlag;
      if (eq >= 0) value = arg.slice(eq + 1);
    }
    if (!name) throw new MeshError('MESH_ERR_INJECT_CONFIG', `${INIT_CONTAINER_NAME}: unknown istio-iptables argument ${JSON.stringify(arg)}`);
    if (value === undefined) {
      value = rest[i + 1];
      i++;
      if (value === undefined) throw new MeshError('MESH_ERR_INJECT_CONFIG', `${INIT_CONTAINER_NAME}: ${arg} needs a value`);
    }
    flags[name] = value;
  }
  return captureConfigFromFlags(flags);
}

/**
 * The capture rules an injected pod needs: from its istio-init arguments, or (injected with cni) from the
 * capture annotations; undefined when the pod has no sidecar or its interception mode is NONE.
 */
export function podCaptureConfig(pod: PodTemplate): CaptureConfig | undefined {
  const init = (pod.spec?.initContainers ?? []).find((c) => c.name === INIT_CONTAINER_NAME);
  if (init) return captureConfigFromInitArgs(init.args ?? []);
  if (!isInjected(pod) || !(pod.spec?.containers ?? []).some((c) => c.name === PROXY_CONTAINER_NAME)) return undefined;
  const cfg = captureConfigFromPod(pod.metadata?.annotations);
  return cfg.mode === 'NONE' ? undefined : cfg;
}

export { istioIptablesArgs };
export type { InjectedContainer, Volume };
