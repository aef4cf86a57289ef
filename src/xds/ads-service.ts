// The gRPC definition of Envoy's AggregatedDiscoveryService built on the loaded protos, for servers and clients alike; serializers throw MeshError MESH_ERR_XDS_ENCODE/DECODE on malformed messages.
//
// Requests travel in the JSON convention of protos.ts (node.metadata is a plain object, error_detail
// is {code, message}). Responses keep their resources as wire Anys ({type_url, value}) so a server
// encodes each resource once and a client decodes only what it uses (decodeAny).

import * as grpc from '@grpc/grpc-js';
import { decodeDiscoveryResponse, encodeDiscoveryRequest } from './ads-codec.ts';
import type { AnyWire } from './proto-json.ts';
import { decodeMessage, encodeMessage, messageType, protos } from './protos.ts';

export const ADS_SERVICE = 'envoy.service.discovery.v3.AggregatedDiscoveryService';
export const SOTW_METHOD = `/${ADS_SERVICE}/StreamAggregatedResources`;
export const DELTA_METHOD = `/${ADS_SERVICE}/DeltaAggregatedResources`;

/** envoy.config.core.v3.Node, in the JSON convention (only the fields the mesh reads are typed). */
export interface XdsNode {
  id?: string;
  cluster?: string;
  metadata?: Record<string, unknown>;
  locality?: { region?: string; zone?: string; sub_zone?: string };
  user_agent_name?: string;
  user_agent_version?: string;
  client_features?: string[];
  [field: string]: unknown;
}

/** google.rpc.Status as carried in a NACK. */
export interface RpcStatus {
  code?: number;
  message?: string;
  details?: unknown[];
}

/** envoy.service.discovery.v3.DiscoveryRequest (state of the world). */
export interface DiscoveryRequest {
  version_info?: string;
  node?: XdsNode;
  resource_names?: string[];
  type_url?: string;
  response_nonce?: string;
  error_detail?: RpcStatus;
}

/** envoy.service.discovery.v3.DiscoveryResponse with its resources still encoded. */
export interface DiscoveryResponse {
  version_info: string;
  resources: AnyWire[];
  type_url: string;
  nonce: string;
  control_plane?: { identifier: string };
}

/** envoy.service.discovery.v3.DeltaDiscoveryRequest. */
export interface DeltaDiscoveryRequest {
  node?: XdsNode;
  type_url?: string;
  resource_names_subscribe?: string[];
  resource_names_unsubscribe?: string[];
  initial_resource_versions?: Record<string, string>;
  response_nonce?: string;
  error_detail?: RpcStatus;
}

/** envoy.service.discovery.v3.DeltaDiscoveryResponse with its resources still encoded. */
export interface DeltaDiscoveryResponse {
  system_version_info?: string;
  resources: Array<{ name: string; version: string; resource?: AnyWire; aliases?: string[] }>;
  type_url: string;
  removed_resources?: string[];
  nonce: string;
  control_plane?: { identifier: string };
}

const REQ = 'envoy.service.discovery.v3.DiscoveryRequest';
const RES = 'envoy.service.discovery.v3.DiscoveryResponse';
const DREQ = 'envoy.service.discovery.v3.DeltaDiscoveryRequest';
const DRES = 'envoy.service.discovery.v3.DeltaDiscoveryResponse';

function rawEncode(name: string, msg: object): Buffer {
  const bytes = messageType(name).encode(msg).finish();
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function rawDecodeDeltaResponse(buf: Buffer): DeltaDiscoveryResponse {
  const m = messageType(DRES).decode(buf) as unknown as Partial<DeltaDiscoveryResponse>;
  return {
    system_version_info: m.system_version_info ?? '',
    resources: (m.resources ?? []).map((r) => {
      const res: DeltaDiscoveryResponse['resources'][number] = { name: r.name ?? '', version: r.version ?? '' };
      if (r.resource) res.resource = { type_url: r.resource.type_url ?? '', value: r.resource.value ?? new Uint8Array() };
      if (r.aliases && r.aliases.length > 0) res.aliases = [...r.aliases];
      return res;
    }),
    type_url: m.type_url ?? '',
    removed_resources: [...(m.removed_resources ?? [])],
    nonce: m.nonce ?? '',
  };
}

let definition: grpc.ServiceDefinition | undefined;

/** The service definition for grpc.Server#addService and grpc.makeGenericClientConstructor (loads the protos on first call). */
export function adsServiceDefinition(): grpc.ServiceDefinition {
  if (definition) return definition;
  protos();
  definition = {
    StreamAggregatedResources: {
      path: SOTW_METHOD,
      originalName: 'streamAggregatedResources',
      requestStream: true,
      responseStream: true,
      requestSerialize: encodeDiscoveryRequest,
      requestDeserialize: (buf: Buffer) => decodeMessage(REQ, buf) as DiscoveryRequest,
      responseSerialize: (res: DiscoveryResponse) => rawEncode(RES, res),
      responseDeserialize: decodeDiscoveryResponse,
    },
    DeltaAggregatedResources: {
      path: DELTA_METHOD,
      originalName: 'deltaAggregatedResources',
      requestStream: true,
      responseStream: true,
      requestSerialize: (req: DeltaDiscoveryRequest) => toBuffer(encodeMessage(DREQ, req as Record<string, unknown>)),
      requestDeserialize: (buf: Buffer) => decodeMessage(DREQ, buf) as DeltaDiscoveryRequest,
      responseSerialize: (res: DeltaDiscoveryResponse) => rawEncode(DRES, res),
      responseDeserialize: rawDecodeDeltaResponse,
    },
  };
  return definition;
}

/** A bidirectional ADS stream as a client sees it. */
export type AdsClientStream = grpc.ClientDuplexStream<DiscoveryRequest, DiscoveryResponse>;
export type DeltaAdsClientStream = grpc.ClientDuplexStream<DeltaDiscoveryRequest, DeltaDiscoveryResponse>;

/** A typed ADS client (for the sidecar and for tests). */
export interface AdsClient extends grpc.Client {
  StreamAggregatedResources(options?: grpc.CallOptions): AdsClientStream;
  DeltaAggregatedResources(options?: grpc.CallOptions): DeltaAdsClientStream;
}

/** Creates an ADS client to `address` ('127.0.0.1:15010'); insecure credentials unless given. */
export function createAdsClient(address: string, credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure(), options?: grpc.ClientOptions): AdsClient {
  const Ctor = grpc.makeGenericClientConstructor(adsServiceDefinition(), ADS_SERVICE);
  return new Ctor(address, credentials, options) as unknown as AdsClient;
}
