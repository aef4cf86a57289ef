// The one error catalog: every error tsmesh raises has a stable MESH_ERR_<AREA>_<WHAT> code.
// A code that is added here must be documented in docs/errors.md (a test checks it).

export const ErrorCodes = {
  MESH_ERR_CONFIG_READ: 'a configuration file or directory could not be read',
  MESH_ERR_CONFIG_YAML: 'a YAML document could not be parsed',
  MESH_ERR_CONFIG_INVALID: 'a resource failed validation',
  MESH_ERR_CLI_USAGE: 'a command was called with wrong arguments or flags',
  MESH_ERR_REGISTRY_NOT_FOUND: 'a pod, workload or service named on the command line does not exist',
  MESH_ERR_XDS_PROTO_LOAD: "Envoy's .proto files could not be loaded from @grpc/grpc-js-xds's deps/",
  MESH_ERR_XDS_ENCODE: 'an xDS object does not fit its Envoy proto (unknown field, wrong value type, unknown @type)',
  MESH_ERR_XDS_DECODE: 'bytes received over xDS could not be decoded as the Envoy message they claim to be',
  MESH_ERR_CAPTURE_CONFIG: 'capture settings (istio-iptables flags or traffic.sidecar.istio.io annotations) are invalid or unsupported',
  MESH_ERR_CAPTURE_UNAVAILABLE: 'capture rules cannot be applied here: not Linux, not root/CAP_NET_ADMIN, or iptables/iproute2 missing',
  MESH_ERR_CAPTURE_APPLY: 'iptables-restore or ip rejected the capture rules or the network namespace operation',
  MESH_ERR_ORIGDST_UNAVAILABLE: 'the SO_ORIGINAL_DST addon is not built or the platform is not Linux',
  MESH_ERR_ORIGDST_LOOKUP: 'getsockopt(SO_ORIGINAL_DST) failed for a connection (it was not redirected, or the socket is closed)',
  MESH_ERR_CONTROLPLANE_UNREACHABLE: 'the CLI could not connect to the control plane API',
  MESH_ERR_CONTROLPLANE_REQUEST: 'the control plane API refused a request',
  MESH_ERR_PROXY_BOOTSTRAP: 'the sidecar was started without the environment it needs',
  MESH_ERR_PROXY_WORKERS: 'the sidecar could not start or keep its worker processes (--concurrency): bad value, fork failure, or the shared counters addon is missing',
  MESH_ERR_PROXY_NOT_READY: "`tsmesh wait` gave up: the sidecar's readiness URL did not answer 200 within the timeout",
  MESH_ERR_RUNTIME_POD: 'a local pod could not be started (namespace, capture rules, sidecar or container)',
  MESH_ERR_RUNTIME_DNS: 'the mesh DNS server could not listen: the address is not on this machine, the port is taken, or port 53 needs root',
  MESH_ERR_RUNTIME_SERVICES: 'the service proxy (kube-proxy equivalent) has invalid settings, or iptables/sysctl rejected its rules',
  MESH_ERR_INJECT_CONFIG: 'a pod cannot be injected: a sidecar.istio.io/proxy.istio.io annotation is invalid, or a manifest document has no usable pod template',
  MESH_ERR_WEBHOOK_SERVE: 'the injection webhook could not start: bad TLS certificate or key, or the address is in use',
} as const;

export type ErrorCode = keyof typeof ErrorCodes;

/** An error with a stable code; `message` is for people, `code` is for programs and docs. */
export class MeshError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'MeshError';
    this.code = code;
  }
}

export function isMeshError(err: unknown): err is MeshError {
  return err instanceof MeshError;
}
