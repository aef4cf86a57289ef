// Envoy's v3 protos (from @grpc/grpc-js-xds's deps/), loaded once, and the one JSON convention for xDS objects; throws MeshError MESH_ERR_XDS_* on load failure or on an object that does not fit its proto.
//
// THE JSON CONVENTION (the whole project, control plane and sidecar alike):
//   xDS objects are plain objects in the proto3 JSON mapping with snake_case field names exactly as in
//   the .proto files (as Envoy's /config_dump and istioctl's config dumps print them):
//     - Duration as "3s" / "0.500s" (the printer writes 0, 3, 6 or 9 fractional digits);
//       Timestamp as RFC 3339 "2024-01-02T03:04:05Z";
//     - enums by name ("ROUND_ROBIN"); numbers are accepted on input;
//     - wrappers (UInt32Value, BoolValue, ...) as the plain value: {"max_connections": 1024};
//     - Struct as a plain object, Value as any JSON value, ListValue as an array;
//     - int64/uint64 as decimal strings on output (numbers accepted on input); bytes as base64;
//     - Any as {"@type": "type.googleapis.com/<full.name>", ...fields of the packed message}; a packed
//       well-known type with a special JSON form is {"@type": ..., "value": <its JSON>}; nested Any
//       fields (typed_config, typed_per_filter_config values, ...) carry "@type" the same way.
//   Unknown field names, wrong value types, two members of one oneof and unknown "@type"s throw
//   MESH_ERR_XDS_ENCODE with the type and the field path, so translator typos surface at once.
//   Absent fields are omitted; empty repeated fields and maps are omitted on output.

import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import protobuf from 'protobufjs';
import { MeshError } from '../common/errors.ts';
import { ProtoJson, XdsShapeError, type AnyWire } from './proto-json.ts';

export type { AnyWire } from './proto-json.ts';
export { formatDuration } from './proto-json.ts';

/** An xDS object in the JSON convention above; resources and typed configs carry "@type". */
export type XdsObject = Record<string, unknown>;

export const TYPE_PREFIX = 'type.googleapis.com/';

/** Type URLs of the resources ADS serves. */
export const TYPE_URLS = {
  LISTENER: 'type.googleapis.com/envoy.config.listener.v3.Listener',
  ROUTE: 'type.googleapis.com/envoy.config.route.v3.RouteConfiguration',
  CLUSTER: 'type.googleapis.com/envoy.config.cluster.v3.Cluster',
  ENDPOINT: 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment',
  SECRET: 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret',
} as const;

export type ResourceTypeUrl = (typeof TYPE_URLS)[keyof typeof TYPE_URLS];

/** The short names Envoy and istioctl use for each resource type. */
export const TYPE_SHORT_NAMES: Readonly<Record<string, string>> = {
  [TYPE_URLS.LISTENER]: 'LDS',
  [TYPE_URLS.ROUTE]: 'RDS',
  [TYPE_URLS.CLUSTER]: 'CDS',
  [TYPE_URLS.ENDPOINT]: 'EDS',
  [TYPE_URLS.SECRET]: 'SDS',
};

const E = 'envoy/extensions';
const LB = `${E}/load_balancing_policies`;
/**
 * The .proto files loaded (their imports follow). Typed extensions listed here can travel inside Any.
 * Istio's own filter protos (istio.stats, metadata_exchange, alpn, ...) are not in deps/ and are not loaded.
 */
export const PROTO_FILES: readonly string[] = [
  'envoy/service/discovery/v3/ads.proto',
  'envoy/config/listener/v3/listener.proto',
  'envoy/config/route/v3/route.proto',
  'envoy/config/cluster/v3/cluster.proto',
  'envoy/config/endpoint/v3/endpoint.proto',
  'envoy/admin/v3/config_dump.proto',
  `${E}/transport_sockets/tls/v3/tls.proto`,
  `${E}/transport_sockets/tls/v3/secret.proto`,
  `${E}/transport_sockets/raw_buffer/v3/raw_buffer.proto`,
  `${E}/filters/network/http_connection_manager/v3/http_connection_manager.proto`,
  `${E}/filters/network/tcp_proxy/v3/tcp_proxy.proto`,
  `${E}/filters/network/rbac/v3/rbac.proto`,
  `${E}/filters/http/router/v3/router.proto`,
  `${E}/filters/http/fault/v3/fault.proto`,
  `${E}/filters/http/cors/v3/cors.proto`,
  `${E}/filters/http/local_ratelimit/v3/local_rate_limit.proto`,
  `${E}/filters/http/rbac/v3/rbac.proto`,
  `${E}/filters/listener/original_dst/v3/original_dst.proto`,
  `${E}/filters/listener/tls_inspector/v3/tls_inspector.proto`,
  `${E}/filters/listener/http_inspector/v3/http_inspector.proto`,
  `${E}/access_loggers/file/v3/file.proto`,
  `${E}/access_loggers/stream/v3/stream.proto`,
  `${E}/request_id/uuid/v3/uuid.proto`,
  `${E}/retry/host/previous_hosts/v3/previous_hosts.proto`,
  `${E}/upstreams/http/v3/http_protocol_options.proto`,
  `${E}/clusters/aggregate/v3/cluster.proto`,
  // what @grpc/grpc-js-xds's client understands besides the above
  `${LB}/round_robin/v3/round_robin.proto`,
  `${LB}/least_request/v3/least_request.proto`,
  `${LB}/random/v3/random.proto`,
  `${LB}/ring_hash/v3/ring_hash.proto`,
  `${LB}/maglev/v3/maglev.proto`,
  `${LB}/pick_first/v3/pick_first.proto`,
  `${LB}/wrr_locality/v3/wrr_locality.proto`,
  `${LB}/client_side_weighted_round_robin/v3/client_side_weighted_round_robin.proto`,
  'udpa/type/v1/typed_struct.proto',
  'xds/type/v3/typed_struct.proto',
];

export interface LoadedProtos {
  readonly root: protobuf.Root;
  readonly json: ProtoJson;
  /** Wall time the load took, in milliseconds. */
  readonly loadMs: number;
  /** .proto files parsed (0 when the sidecar bundle's precompiled set was loaded instead). */
  readonly fileCount: number;
}

let loaded: LoadedProtos | undefined;

/**
 * The sidecar bundle's protos (proto-descriptor.ts's descriptor as JSON text), which scripts/proxy-bundle.mjs writes
 * in at build time; undeclared (so `typeof` is 'undefined') when the sources run, which parse PROTO_FILES.
 */
declare const TSMESH_SIDECAR_PROTOS: string | undefined;

function includeDirs(): string[] {
  const require = createRequire(import.meta.url);
  const xds = dirname(require.resolve('@grpc/grpc-js-xds/package.json'));
  const pbjs = dirname(require.resolve('protobufjs/package.json'));
  const deps = join(xds, 'deps');
  // protobufjs's own dir last: it holds google/protobuf/descriptor.proto, which validate.proto imports
  return [join(deps, 'envoy-api'), join(deps, 'xds'), join(deps, 'googleapis'), join(deps, 'protoc-gen-validate'), pbjs];
}

/**
 * Loads the protos on first use (about 0.2-0.3 s; the sidecar bundle's smaller precompiled set about 0.1 s) and
 * returns the same instance afterwards.
 */
export function protos(): LoadedProtos {
  if (loaded) return loaded;
  const start = performance.now();
  if (typeof TSMESH_SIDECAR_PROTOS === 'string') {
    try {
      const root = protobuf.Root.fromJSON(JSON.parse(TSMESH_SIDECAR_PROTOS) as protobuf.INamespace);
      root.resolveAll();
      loaded = { root, json: new ProtoJson(root), loadMs: performance.now() - start, fileCount: 0 };
      return loaded;
    } catch (err) {
      throw new MeshError('MESH_ERR_XDS_PROTO_LOAD', `loading the sidecar's precompiled Envoy protos failed: ${(err as Error).message}`, { cause: err });
    }
  }
  const dirs = includeDirs();
  const missing: string[] = [];
  const root = new protobuf.Root();
  root.resolvePath = (_origin: string, target: string): string => {
    if (isAbsolute(target)) return target;
    for (const d of dirs) {
      const p = join(d, target);
      if (existsSync(p)) return p;
    }
    missing.push(target);
    return target;
  };
  try {
    root.loadSync([...PROTO_FILES], { keepCase: true });
    root.resolveAll();
  } catch (err) {
    const detail = missing.length > 0 ? ` (not found under ${dirs.join(', ')}: ${missing.join(', ')})` : '';
    throw new MeshError('MESH_ERR_XDS_PROTO_LOAD', `loading Envoy protos failed: ${(err as Error).message}${detail}`, { cause: err });
  }
  loaded = { root, json: new ProtoJson(root), loadMs: performance.now() - start, fileCount: root.files.length };
  return loaded;
}

/** The message type for a type URL or full name; throws MESH_ERR_XDS_ENCODE when it is not loaded. */
export function messageType(typeUrlOrName: string): protobuf.Type {
  const t = protos().json.lookup(typeUrlOrName);
  if (!t) throw new MeshError('MESH_ERR_XDS_ENCODE', `unknown message type ${typeUrlOrName}: not among the loaded Envoy protos`);
  return t;
}

/** True when the type URL (or full name) names a loaded message type. */
export function hasType(typeUrlOrName: string): boolean {
  return protos().json.lookup(typeUrlOrName) !== undefined;
}

function encodeError(err: unknown): never {
  if (err instanceof XdsShapeError) throw new MeshError('MESH_ERR_XDS_ENCODE', err.message, { cause: err });
  throw err;
}

/** Encodes an object carrying "@type" (nested Anys carry theirs) into the Any that goes on the wire. */
export function encodeAny(obj: XdsObject): AnyWire {
  try {
    return protos().json.anyToWire(obj);
  } catch (err) {
    return encodeError(err);
  }
}

/** Decodes a wire Any into the JSON convention (nested Anys expanded; unloaded packed types stay as {"@type", "@bytes"}). */
export function decodeAny(any: { type_url?: string; value?: Uint8Array }): XdsObject {
  const url = any.type_url ?? '';
  if (!hasType(url)) throw new MeshError('MESH_ERR_XDS_DECODE', `cannot decode Any of unknown type ${JSON.stringify(url)}`);
  try {
    return protos().json.anyToJson(any);
  } catch (err) {
    throw new MeshError('MESH_ERR_XDS_DECODE', `decoding ${url} failed: ${(err as Error).message}`, { cause: err });
  }
}

/** Encodes a message given by full name (e.g. 'envoy.service.discovery.v3.DiscoveryRequest') from the JSON convention. */
export function encodeMessage(fullName: string, json: XdsObject): Uint8Array {
  const type = messageType(fullName);
  try {
    return type.encode(protos().json.toWire(type, json) as XdsObject).finish();
  } catch (err) {
    return encodeError(err);
  }
}

/** Decodes bytes of a message given by full name into the JSON convention. */
export function decodeMessage(fullName: string, bytes: Uint8Array): XdsObject {
  const type = messageType(fullName);
  try {
    return protos().json.toJson(type, type.decode(bytes)) as XdsObject;
  } catch (err) {
    throw new MeshError('MESH_ERR_XDS_DECODE', `decoding ${fullName} failed: ${(err as Error).message}`, { cause: err });
  }
}

/** Checks an object against its "@type" without keeping the bytes; returns the error message or undefined. */
export function checkShape(obj: XdsObject): string | undefined {
  try {
    encodeAny(obj);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}
