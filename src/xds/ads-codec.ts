// The state-of-the-world ADS messages on the wire, without any gRPC library (the sidecar's client and the ADS service
// definition share them): DiscoveryRequest from the JSON convention, DiscoveryResponse with its resources left as wire
// Anys. Throws MeshError MESH_ERR_XDS_ENCODE for a request that does not fit its proto; protobufjs's error for bytes
// that are not a DiscoveryResponse.

import type { DiscoveryRequest, DiscoveryResponse } from './ads-service.ts';
import { encodeMessage, messageType } from './protos.ts';

export const DISCOVERY_REQUEST = 'envoy.service.discovery.v3.DiscoveryRequest';
export const DISCOVERY_RESPONSE = 'envoy.service.discovery.v3.DiscoveryResponse';

/** A DiscoveryRequest's bytes. */
export function encodeDiscoveryRequest(req: DiscoveryRequest): Buffer {
  const bytes = encodeMessage(DISCOVERY_REQUEST, req as Record<string, unknown>);
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** A DiscoveryResponse from its bytes; each resource stays encoded ({type_url, value}) until decodeAny. */
export function decodeDiscoveryResponse(buf: Uint8Array): DiscoveryResponse {
  const m = messageType(DISCOVERY_RESPONSE).decode(buf) as unknown as Partial<DiscoveryResponse>;
  const out: DiscoveryResponse = {
    version_info: m.version_info ?? '',
    resources: (m.resources ?? []).map((r) => ({ type_url: r.type_url ?? '', value: r.value ?? new Uint8Array() })),
    type_url: m.type_url ?? '',
    nonce: m.nonce ?? '',
  };
  if (m.control_plane) out.control_plane = { identifier: m.control_plane.identifier ?? '' };
  return out;
}
