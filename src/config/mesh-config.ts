// The mesh config (Istio's MeshConfig): defaults, the `istio` ConfigMap's `mesh` key, and --set overrides.
// Bad YAML or bad values in the ConfigMap become diagnostics; a bad --set key or value throws MESH_ERR_CLI_USAGE.

import { parse as parseYaml } from 'yaml';
import { MeshError } from '../common/errors.ts';
import { diagAt, type Diagnostic } from './diagnostics.ts';
import type { Resource } from './resource.ts';

export interface MeshConfig {
  /** Where mesh-wide config lives (root Sidecar, PeerAuthentication, ...). Default istio-system. */
  rootNamespace: string;
  /** Default cluster.local. */
  trustDomain: string;
  /** ALLOW_ANY unless set. */
  outboundTrafficPolicy: { mode: 'ALLOW_ANY' | 'REGISTRY_ONLY' };
  /** '' = access logging off; '/dev/stdout' is the usual value. */
  accessLogFile: string;
  accessLogEncoding: 'TEXT' | 'JSON';
  /** '' = Envoy's default format. */
  accessLogFormat: string;
  defaultServiceExportTo: string[];
  defaultVirtualServiceExportTo: string[];
  defaultDestinationRuleExportTo: string[];
  enableAutoMtls: boolean;
  enablePrometheusMerge: boolean;
  defaultConfig: { discoveryAddress: string; holdApplicationUntilProxyStarts?: boolean; [k: string]: unknown };
  [k: string]: unknown;
}

/** Istio's defaults for the fields tsmesh reads. A fresh object on every call. */
export function defaultMeshConfig(): MeshConfig {
  return {
    rootNamespace: 'istio-system',
    trustDomain: 'cluster.local',
    outboundTrafficPolicy: { mode: 'ALLOW_ANY' },
    accessLogFile: '',
    accessLogEncoding: 'TEXT',
    accessLogFormat: '',
    defaultServiceExportTo: ['*'],
    defaultVirtualServiceExportTo: ['*'],
    defaultDestinationRuleExportTo: ['*'],
    enableAutoMtls: true,
    enablePrometheusMerge: true,
    defaultConfig: { discoveryAddress: 'istiod.istio-system.svc:15012' },
  };
}

/** Top-level MeshConfig fields Istio defines (proto field names in camelCase); others are rejected by --set
 *  and warned about in the ConfigMap. */
export const MESH_CONFIG_FIELDS: ReadonlySet<string> = new Set([
  'proxyListenPort', 'proxyInboundListenPort', 'proxyHttpPort', 'connectTimeout', 'protocolDetectionTimeout',
  'tcpKeepalive', 'ingressClass', 'ingressService', 'ingressControllerMode', 'ingressSelector', 'enableTracing',
  'accessLogFile', 'accessLogFormat', 'accessLogEncoding', 'enableEnvoyAccessLogService', 'disableEnvoyListenerLog',
  'defaultConfig', 'outboundTrafficPolicy', 'inboundTrafficPolicy', 'configSources', 'enableAutoMtls', 'trustDomain',
  'trustDomainAliases', 'caCertificates', 'defaultServiceExportTo', 'defaultVirtualServiceExportTo',
  'defaultDestinationRuleExportTo', 'rootNamespace', 'localityLbSetting', 'dnsRefreshRate', 'h2UpgradePolicy',
  'inboundClusterStatName', 'outboundClusterStatName', 'certificates', 'serviceSettings', 'enablePrometheusMerge',
  'verifyCertificateAtClient', 'ca', 'extensionProviders', 'defaultProviders', 'discoverySelectors',
  'pathNormalization', 'defaultHttpRetryPolicy', 'meshMTLS', 'tlsDefaults', 'serviceScopeConfigs', 'meshNetworks',
  'thriftConfig', 'enableSdsTokenMount', 'sdsUdsPath', 'mixerCheckServer', 'mixerReportServer',
]);

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Deep merge: objects merge key by key, everything else (arrays included) replaces. */
function mergeInto(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    if (v === null || v === undefined) continue;
    const cur = out[k];
    out[k] = isObject(cur) && isObject(v) ? mergeInto(cur, v) : v;
  }
  return out;
}

function cloneMesh(m: MeshConfig): MeshConfig {
  return structuredClone(m);
}

/** Problems with the values of a merged mesh config, as [dotted path, message] pairs. */
function checkMesh(m: Record<string, unknown>): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  const str = (k: string): void => {
    if (typeof m[k] !== 'string') out.push([k, `must be a string, got ${JSON.stringify(m[k])}`]);
  };
  const bool = (k: string): void => {
    if (typeof m[k] !== 'boolean') out.push([k, `must be true or false, got ${JSON.stringify(m[k])}`]);
  };
  const strList = (k: string): void => {
    const v = m[k];
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) out.push([k, `must be a list of namespaces ('*', '.', or names), got ${JSON.stringify(v)}`]);
  };
  str('rootNamespace');
  str('trustDomain');
  str('accessLogFile');
  str('accessLogFormat');
  bool('enableAutoMtls');
  bool('enablePrometheusMerge');
  strList('defaultServiceExportTo');
  strList('defaultVirtualServiceExportTo');
  strList('defaultDestinationRuleExportTo');
  if (m.accessLogEncoding !== 'TEXT' && m.accessLogEncoding !== 'JSON') {
    out.push(['accessLogEncoding', `must be TEXT or JSON, got ${JSON.stringify(m.accessLogEncoding)}`]);
  }
  const otp = m.outboundTrafficPolicy;
  if (!isObject(otp)) out.push(['outboundTrafficPolicy', 'must be a mapping with mode ALLOW_ANY or REGISTRY_ONLY']);
  else if (otp.mode !== 'ALLOW_ANY' && otp.mode !== 'REGISTRY_ONLY') {
    out.push(['outboundTrafficPolicy.mode', `must be ALLOW_ANY or REGISTRY_ONLY, got ${JSON.stringify(otp.mode)}`]);
  }
  const dc = m.defaultConfig;
  if (!isObject(dc)) out.push(['defaultConfig', 'must be a mapping (ProxyConfig)']);
  else {
    if (typeof dc.discoveryAddress !== 'string') out.push(['defaultConfig.discoveryAddress', 'must be a host:port string']);
    if (dc.holdApplicationUntilProxyStarts !== undefined && typeof dc.holdApplicationUntilProxyStarts !== 'boolean') {
      out.push(['defaultConfig.holdApplicationUntilProxyStarts', 'must be true or false']);
    }
  }
  return out;
}

/**
 * The mesh config from ConfigMap `istio` in the root namespace (of `base`, default istio-system), key
 * `mesh` (YAML text), merged over `base` (default: Istio's defaults). Without the ConfigMap, `base` is
 * returned. Bad YAML, unknown fields (warnings) and bad values (errors, the value is then ignored) are
 * diagnostics naming the ConfigMap and `data.mesh`.
 */
export function meshConfigFromResources(resources: readonly Resource[], base: MeshConfig = defaultMeshConfig()): { mesh: MeshConfig; diagnostics: Diagnostic[] } {
  const diagnostics: Diagnostic[] = [];
  const cm = resources.find((r) => r.kind === 'ConfigMap' && r.group === '' && r.metadata.name === 'istio' && r.metadata.namespace === base.rootNamespace);
  if (!cm) return { mesh: cloneMesh(base), diagnostics };
  const data = cm.body.data;
  const text = isObject(data) ? data.mesh : undefined;
  if (text === undefined) return { mesh: cloneMesh(base), diagnostics };
  const at = ['data', 'mesh'];
  if (typeof text !== 'string') {
    diagnostics.push(diagAt(cm, at, 'the mesh config must be YAML text (a string)'));
    return { mesh: cloneMesh(base), diagnostics };
  }
  let parsed: unknown;
  try {
    parsed = parseYaml(text);
  } catch (err) {
    diagnostics.push(diagAt(cm, at, `the mesh config is not valid YAML: ${((err as Error).message.split('\n')[0] ?? '')}`));
    return { mesh: cloneMesh(base), diagnostics };
  }
  if (parsed === null || parsed === undefined) return { mesh: cloneMesh(base), diagnostics };
  if (!isObject(parsed)) {
    diagnostics.push(diagAt(cm, at, 'the mesh config must be a YAML mapping of MeshConfig fields'));
    return { mesh: cloneMesh(base), diagnostics };
  }
  for (const k of Object.keys(parsed)) {
    if (!MESH_CONFIG_FIELDS.has(k)) diagnostics.push(diagAt(cm, at, `unknown MeshConfig field ${k}: ignored`, 'warning'));
  }
  let merged = mergeInto(cloneMesh(base), parsed);
  const problems = checkMesh(merged);
  if (problems.length > 0) {
    for (const [path, msg] of problems) diagnostics.push(diagAt(cm, at, `${path}: ${msg}`));
    // Keep the good values: drop the bad top-level fields back to base.
    const bad = new Set(problems.map(([p]) => p.split('.')[0] ?? p));
    const good: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(parsed)) if (!bad.has(k)) good[k] = v;
    merged = mergeInto(cloneMesh(base), good);
  }
  return { mesh: merged as MeshConfig, diagnostics };
}

/** Parses a --set value: YAML scalars and flow collections (true, 5, "x", [a, b], {mode: X}). */
function parseSetValue(v: string): unknown {
  try {
    const parsed: unknown = parseYaml(v);
    return parsed === null ? '' : parsed;
  } catch {
    return v;
  }
}

/**
 * Applies `key=value` overrides ('meshConfig.outboundTrafficPolicy.mode=REGISTRY_ONLY'; the
 * 'meshConfig.' prefix is optional) and returns a new config. Throws MeshError MESH_ERR_CLI_USAGE on a
 * missing '=', an unknown top-level field, or a value that makes the config invalid.
 */
export function applyMeshOverrides(mesh: MeshConfig, sets: string[]): MeshConfig {
  let out: Record<string, unknown> = cloneMesh(mesh);
  for (const set of sets) {
    const eq = set.indexOf('=');
    if (eq <= 0) throw new MeshError('MESH_ERR_CLI_USAGE', `--set ${set}: expected key=value, e.g. meshConfig.outboundTrafficPolicy.mode=REGISTRY_ONLY`);
    let key = set.slice(0, eq).trim();
    if (key.startsWith('meshConfig.')) key = key.slice('meshConfig.'.length);
    const parts = key.split('.');
    if (parts.some((p) => p === '') || !MESH_CONFIG_FIELDS.has(parts[0] ?? '')) {
      throw new MeshError('MESH_ERR_CLI_USAGE', `--set ${set}: unknown mesh config field ${JSON.stringify(key)}`);
    }
    let patch: unknown = parseSetValue(set.slice(eq + 1));
    for (let i = parts.length - 1; i >= 0; i--) patch = { [parts[i] ?? '']: patch };
    const candidate = mergeInto(out, patch as Record<string, unknown>);
    // Arrays and scalars given at a leaf replace; nested leaves were merged above.
    const problems = checkMesh(candidate);
    const first = problems[0];
    if (first) throw new MeshError('MESH_ERR_CLI_USAGE', `--set ${set}: ${first[0]} ${first[1]}`);
    out = candidate;
  }
  return out as MeshConfig;
}
