// TypeScript shapes of the Istio and Kubernetes specs tsmesh reads. Every field is optional, as in
// the YAML; validation (schema + semantic) decides what is required. Durations are strings ("3s").

// ---------- shared ----------
export type Labels = Record<string, string>;
export interface WorkloadSelector { labels?: Labels }
export interface LabelSelector { matchLabels?: Labels; matchExpressions?: Array<{ key: string; operator: string; values?: string[] }> }
export interface PortSelector { number?: number }
export interface StringMatch { exact?: string; prefix?: string; regex?: string }
export interface Percent { value?: number }

// ---------- networking.istio.io ----------
export interface Destination { host?: string; subset?: string; port?: PortSelector }

export interface HTTPMatchRequest {
  name?: string;
  uri?: StringMatch;
  scheme?: StringMatch;
  method?: StringMatch;
  authority?: StringMatch;
  headers?: Record<string, StringMatch>;
  port?: number;
  sourceLabels?: Labels;
  gateways?: string[];
  queryParams?: Record<string, StringMatch>;
  ignoreUriCase?: boolean;
  withoutHeaders?: Record<string, StringMatch>;
  sourceNamespace?: string;
  statPrefix?: string;
}
export interface HeaderOperations { set?: Record<string, string>; add?: Record<string, string>; remove?: string[] }
export interface Headers { request?: HeaderOperations; response?: HeaderOperations }
export interface HTTPRouteDestination { destination?: Destination; weight?: number; headers?: Headers }
export interface HTTPRedirect { uri?: string; authority?: string; port?: number; derivePort?: string; scheme?: string; redirectCode?: number }
export interface HTTPDirectResponse { status?: number; body?: { string?: string; bytes?: string } }
export interface HTTPRewrite { uri?: string; authority?: string; uriRegexRewrite?: { match?: string; rewrite?: string } }
export interface HTTPRetry { attempts?: number; perTryTimeout?: string; retryOn?: string; retryRemoteLocalities?: boolean; retryIgnorePreviousHosts?: boolean; backoff?: string }
export interface HTTPFaultInjection {
  delay?: { fixedDelay?: string; exponentialDelay?: string; percentage?: Percent; percent?: number };
  abort?: { httpStatus?: number; grpcStatus?: string; http2Error?: string; percentage?: Percent };
}
export interface CorsPolicy {
  allowOrigins?: StringMatch[];
  allowOrigin?: string[];
  allowMethods?: string[];
  allowHeaders?: string[];
  exposeHeaders?: string[];
  maxAge?: string;
  allowCredentials?: boolean;
  unmatchedPreflights?: string;
}
export interface HTTPRoute {
  name?: string;
  match?: HTTPMatchRequest[];
  route?: HTTPRouteDestination[];
  redirect?: HTTPRedirect;
  directResponse?: HTTPDirectResponse;
  delegate?: { name?: string; namespace?: string };
  rewrite?: HTTPRewrite;
  timeout?: string;
  retries?: HTTPRetry;
  fault?: HTTPFaultInjection;
  mirror?: Destination;
  mirrors?: Array<{ destination?: Destination; percentage?: Percent }>;
  mirrorPercentage?: Percent;
  corsPolicy?: CorsPolicy;
  headers?: Headers;
}
export interface L4MatchAttributes { destinationSubnets?: string[]; port?: number; sourceLabels?: Labels; gateways?: string[]; sourceNamespace?: string }
export interface TLSMatchAttributes extends L4MatchAttributes { sniHosts?: string[] }
export interface RouteDestination { destination?: Destination; weight?: number }
export interface TCPRoute { match?: L4MatchAttributes[]; route?: RouteDestination[] }
export interface TLSRoute { match?: TLSMatchAttributes[]; route?: RouteDestination[] }
export interface VirtualServiceSpec { hosts?: string[]; gateways?: string[]; http?: HTTPRoute[]; tls?: TLSRoute[]; tcp?: TCPRoute[]; exportTo?: string[] }

export interface ConsistentHashLB {
  httpHeaderName?: string;
  httpCookie?: { name?: string; path?: string; ttl?: string };
  useSourceIp?: boolean;
  httpQueryParameterName?: string;
  ringHash?: { minimumRingSize?: number };
  maglev?: { tableSize?: number };
  minimumRingSize?: number;
}
export interface LocalityLbSetting {
  distribute?: Array<{ from?: string; to?: Record<string, number> }>;
  failover?: Array<{ from?: string; to?: string }>;
  failoverPriority?: string[];
  enabled?: boolean;
}
export interface LoadBalancerSettings {
  simple?: 'UNSPECIFIED' | 'LEAST_CONN' | 'RANDOM' | 'PASSTHROUGH' | 'ROUND_ROBIN' | 'LEAST_REQUEST';
  consistentHash?: ConsistentHashLB;
  localityLbSetting?: LocalityLbSetting;
  warmupDurationSecs?: string;
}
export interface ConnectionPoolSettings {
  tcp?: { maxConnections?: number; connectTimeout?: string; tcpKeepalive?: { probes?: number; time?: string; interval?: string }; maxConnectionDuration?: string; idleTimeout?: string };
  http?: {
    http1MaxPendingRequests?: number;
    http2MaxRequests?: number;
    maxRequestsPerConnection?: number;
    maxRetries?: number;
    idleTimeout?: string;
    h2UpgradePolicy?: 'DEFAULT' | 'DO_NOT_UPGRADE' | 'UPGRADE';
    useClientProtocol?: boolean;
    maxConcurrentStreams?: number;
  };
}
export interface OutlierDetection {
  splitExternalLocalOriginErrors?: boolean;
  consecutiveLocalOriginFailures?: number;
  consecutiveGatewayErrors?: number;
  consecutive5xxErrors?: number;
  consecutiveErrors?: number;
  interval?: string;
  baseEjectionTime?: string;
  maxEjectionPercent?: number;
  minHealthPercent?: number;
}
export interface ClientTLSSettings {
  mode?: 'DISABLE' | 'SIMPLE' | 'MUTUAL' | 'ISTIO_MUTUAL';
  clientCertificate?: string;
  privateKey?: string;
  caCertificates?: string;
  credentialName?: string;
  subjectAltNames?: string[];
  sni?: string;
  insecureSkipVerify?: boolean;
}
export interface PortTrafficPolicy { port?: PortSelector; loadBalancer?: LoadBalancerSettings; connectionPool?: ConnectionPoolSettings; outlierDetection?: OutlierDetection; tls?: ClientTLSSettings }
export interface TrafficPolicy {
  loadBalancer?: LoadBalancerSettings;
  connectionPool?: ConnectionPoolSettings;
  outlierDetection?: OutlierDetection;
  tls?: ClientTLSSettings;
  portLevelSettings?: PortTrafficPolicy[];
  tunnel?: { protocol?: string; targetHost?: string; targetPort?: number };
  proxyProtocol?: { version?: string };
}
export interface Subset { name?: string; labels?: Labels; trafficPolicy?: TrafficPolicy }
export interface DestinationRuleSpec { host?: string; trafficPolicy?: TrafficPolicy; subsets?: Subset[]; exportTo?: string[]; workloadSelector?: WorkloadSelector }

export interface ServicePort { number?: number; protocol?: string; name?: string; targetPort?: number }
export interface WorkloadEntrySpec { address?: string; ports?: Record<string, number>; labels?: Labels; network?: string; locality?: string; weight?: number; serviceAccount?: string }
export interface ServiceEntrySpec {
  hosts?: string[];
  addresses?: string[];
  ports?: ServicePort[];
  location?: 'MESH_EXTERNAL' | 'MESH_INTERNAL';
  resolution?: 'NONE' | 'STATIC' | 'DNS' | 'DNS_ROUND_ROBIN' | 'DYNAMIC_DNS';
  endpoints?: WorkloadEntrySpec[];
  workloadSelector?: WorkloadSelector;
  exportTo?: string[];
  subjectAltNames?: string[];
}
export interface WorkloadGroupSpec { metadata?: { labels?: Labels; annotations?: Record<string, string> }; template?: WorkloadEntrySpec; probe?: Record<string, unknown> }

export type CaptureMode = 'DEFAULT' | 'IPTABLES' | 'NONE';
export interface IstioIngressListener {
  port?: ServicePort;
  bind?: string;
  captureMode?: CaptureMode;
  defaultEndpoint?: string;
  tls?: Record<string, unknown>;
  connectionPool?: ConnectionPoolSettings;
}
export interface IstioEgressListener { port?: ServicePort; bind?: string; captureMode?: CaptureMode; hosts?: string[] }
export interface OutboundTrafficPolicy { mode?: 'REGISTRY_ONLY' | 'ALLOW_ANY'; egressProxy?: Destination }
export interface SidecarSpec {
  workloadSelector?: WorkloadSelector;
  ingress?: IstioIngressListener[];
  egress?: IstioEgressListener[];
  inboundConnectionPool?: ConnectionPoolSettings;
  outboundTrafficPolicy?: OutboundTrafficPolicy;
}
export interface GatewayServer { port?: ServicePort; bind?: string; hosts?: string[]; tls?: Record<string, unknown>; name?: string; defaultEndpoint?: string }
export interface GatewaySpec { servers?: GatewayServer[]; selector?: Labels }

// ---------- security.istio.io ----------
export type MtlsMode = 'UNSET' | 'DISABLE' | 'PERMISSIVE' | 'STRICT';
export interface PeerAuthenticationSpec { selector?: WorkloadSelector; mtls?: { mode?: MtlsMode }; portLevelMtls?: Record<string, { mode?: MtlsMode }> }
export interface AuthzSource { principals?: string[]; notPrincipals?: string[]; requestPrincipals?: string[]; notRequestPrincipals?: string[]; namespaces?: string[]; notNamespaces?: string[]; ipBlocks?: string[]; notIpBlocks?: string[]; remoteIpBlocks?: string[]; notRemoteIpBlocks?: string[] }
export interface AuthzOperation { hosts?: string[]; notHosts?: string[]; ports?: string[]; notPorts?: string[]; methods?: string[]; notMethods?: string[]; paths?: string[]; notPaths?: string[] }
export interface AuthzRule { from?: Array<{ source?: AuthzSource }>; to?: Array<{ operation?: AuthzOperation }>; when?: Array<{ key?: string; values?: string[]; notValues?: string[] }> }
export interface AuthorizationPolicySpec { selector?: WorkloadSelector; targetRef?: Record<string, unknown>; targetRefs?: Array<Record<string, unknown>>; rules?: AuthzRule[]; action?: 'ALLOW' | 'DENY' | 'AUDIT' | 'CUSTOM'; provider?: { name?: string } }

// ---------- telemetry.istio.io ----------
export interface TelemetrySpec {
  selector?: WorkloadSelector;
  accessLogging?: Array<{ providers?: Array<{ name?: string }>; disabled?: boolean; filter?: { expression?: string }; match?: { mode?: string } }>;
  metrics?: Array<Record<string, unknown>>;
  tracing?: Array<Record<string, unknown>>;
}

// ---------- Kubernetes ----------
export interface ContainerPort { name?: string; containerPort?: number; protocol?: string }
export interface EnvVar { name: string; value?: string; valueFrom?: Record<string, unknown> }
export interface Probe { httpGet?: { path?: string; port?: number | string; scheme?: string }; tcpSocket?: { port?: number | string }; exec?: { command?: string[] }; initialDelaySeconds?: number; periodSeconds?: number; timeoutSeconds?: number; failureThreshold?: number }
export interface SecurityContext { runAsUser?: number; runAsGroup?: number; runAsNonRoot?: boolean; privileged?: boolean; capabilities?: { add?: string[]; drop?: string[] }; allowPrivilegeEscalation?: boolean; readOnlyRootFilesystem?: boolean }
export interface Container {
  name: string;
  image?: string;
  command?: string[];
  args?: string[];
  env?: EnvVar[];
  ports?: ContainerPort[];
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  startupProbe?: Probe;
  securityContext?: SecurityContext;
  resources?: Record<string, unknown>;
  volumeMounts?: Array<Record<string, unknown>>;
  imagePullPolicy?: string;
  workingDir?: string;
  /** postStart/preStop hooks (the local runtime runs postStart exec hooks). */
  lifecycle?: { postStart?: LifecycleHandler; preStop?: LifecycleHandler };
}
export interface LifecycleHandler { exec?: { command?: string[] }; httpGet?: { path?: string; port?: number | string; host?: string }; sleep?: { seconds?: number } }
export interface PodSpec {
  containers: Container[];
  initContainers?: Container[];
  serviceAccountName?: string;
  serviceAccount?: string;
  hostNetwork?: boolean;
  securityContext?: { runAsUser?: number; runAsGroup?: number; fsGroup?: number };
  volumes?: Array<Record<string, unknown>>;
  restartPolicy?: string;
  hostname?: string;
  subdomain?: string;
  nodeName?: string;
  terminationGracePeriodSeconds?: number;
}
export interface PodTemplateSpec { metadata?: { labels?: Labels; annotations?: Record<string, string>; name?: string }; spec?: PodSpec }
export interface WorkloadControllerSpec { replicas?: number; selector?: LabelSelector; template?: PodTemplateSpec; serviceName?: string; completions?: number; parallelism?: number }
export interface KubeServicePort { name?: string; port?: number; targetPort?: number | string; protocol?: string; appProtocol?: string; nodePort?: number }
export interface KubeServiceSpec {
  selector?: Labels;
  ports?: KubeServicePort[];
  clusterIP?: string;
  clusterIPs?: string[];
  type?: 'ClusterIP' | 'NodePort' | 'LoadBalancer' | 'ExternalName';
  externalName?: string;
  publishNotReadyAddresses?: boolean;
}
