// The table of resource kinds tsmesh knows: group, versions, scope, and whether tsmesh acts on them.
// A kind not in this table is loaded as an unknown kind and reported as a warning.

export type KindScope = 'Namespaced' | 'Cluster';

export interface KindInfo {
  group: string; // '' for the Kubernetes core group
  kind: string;
  versions: readonly string[];
  scope: KindScope;
  /** Defined by a CRD in Istio's crd-all.gen.yaml, so validated against its schema. */
  istioCrd: boolean;
  /** tsmesh reads this kind; Istio kinds with false are validated, then reported as unsupported. */
  supported: boolean;
  /** The short names kubectl accepts (`vs`, `dr`, ...), lower case. */
  shortNames: readonly string[];
  plural: string;
}

const k8s = (group: string, kind: string, versions: string[], plural: string, shortNames: string[] = [], scope: KindScope = 'Namespaced'): KindInfo => ({
  group, kind, versions, scope, istioCrd: false, supported: true, shortNames, plural,
});
const istio = (group: string, kind: string, versions: string[], plural: string, shortNames: string[], supported: boolean): KindInfo => ({
  group, kind, versions, scope: 'Namespaced', istioCrd: true, supported, shortNames, plural,
});

const NET = 'networking.istio.io';
const SEC = 'security.istio.io';
const TEL = 'telemetry.istio.io';
const EXT = 'extensions.istio.io';

export const KINDS: readonly KindInfo[] = [
  istio(NET, 'VirtualService', ['v1', 'v1beta1', 'v1alpha3'], 'virtualservices', ['vs'], true),
  istio(NET, 'DestinationRule', ['v1', 'v1beta1', 'v1alpha3'], 'destinationrules', ['dr'], true),
  istio(NET, 'ServiceEntry', ['v1', 'v1beta1', 'v1alpha3'], 'serviceentries', ['se'], true),
  istio(NET, 'Sidecar', ['v1', 'v1beta1', 'v1alpha3'], 'sidecars', [], true),
  istio(NET, 'Gateway', ['v1', 'v1beta1', 'v1alpha3'], 'gateways', ['gw'], true),
  istio(NET, 'WorkloadEntry', ['v1', 'v1beta1', 'v1alpha3'], 'workloadentries', ['we'], true),
  istio(NET, 'WorkloadGroup', ['v1', 'v1beta1', 'v1alpha3'], 'workloadgroups', ['wg'], true),
  istio(NET, 'EnvoyFilter', ['v1alpha3'], 'envoyfilters', [], false),
  istio(NET, 'ProxyConfig', ['v1beta1'], 'proxyconfigs', [], false),
  istio(SEC, 'PeerAuthentication', ['v1', 'v1beta1'], 'peerauthentications', ['pa'], true),
  istio(SEC, 'AuthorizationPolicy', ['v1', 'v1beta1'], 'authorizationpolicies', ['ap'], true),
  istio(SEC, 'RequestAuthentication', ['v1', 'v1beta1'], 'requestauthentications', ['ra'], true),
  istio(TEL, 'Telemetry', ['v1', 'v1alpha1'], 'telemetries', ['telemetry'], true),
  istio(EXT, 'WasmPlugin', ['v1alpha1'], 'wasmplugins', [], false),
  istio(EXT, 'TrafficExtension', ['v1alpha1'], 'trafficextensions', [], false),
  k8s('', 'Namespace', ['v1'], 'namespaces', ['ns'], 'Cluster'),
  k8s('', 'Service', ['v1'], 'services', ['svc']),
  k8s('', 'Endpoints', ['v1'], 'endpoints', ['ep']),
  k8s('', 'Pod', ['v1'], 'pods', ['po']),
  k8s('', 'ServiceAccount', ['v1'], 'serviceaccounts', ['sa']),
  k8s('', 'ConfigMap', ['v1'], 'configmaps', ['cm']),
  k8s('discovery.k8s.io', 'EndpointSlice', ['v1'], 'endpointslices', []),
  k8s('apps', 'Deployment', ['v1'], 'deployments', ['deploy']),
  k8s('apps', 'StatefulSet', ['v1'], 'statefulsets', ['sts']),
  k8s('apps', 'DaemonSet', ['v1'], 'daemonsets', ['ds']),
  k8s('apps', 'ReplicaSet', ['v1'], 'replicasets', ['rs']),
  k8s('batch', 'Job', ['v1'], 'jobs', []),
];

const byGroupKind = new Map<string, KindInfo>(KINDS.map((k) => [`${k.group}/${k.kind}`, k]));

/** Splits `networking.istio.io/v1` into group and version; `v1` is the core group. */
export function splitApiVersion(apiVersion: string): { group: string; version: string } {
  const slash = apiVersion.lastIndexOf('/');
  if (slash < 0) return { group: '', version: apiVersion };
  return { group: apiVersion.slice(0, slash), version: apiVersion.slice(slash + 1) };
}

export function lookupKind(group: string, kind: string): KindInfo | undefined {
  return byGroupKind.get(`${group}/${kind}`);
}

/** Finds a kind by the names kubectl accepts: kind, plural, singular or short name, any case. */
export function kindByName(name: string): KindInfo | undefined {
  const n = name.toLowerCase();
  return KINDS.find((k) => k.kind.toLowerCase() === n || k.plural === n || k.shortNames.includes(n));
}
