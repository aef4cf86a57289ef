// Serializes state-of-the-world DiscoveryResponses for the ADS server without protobufjs: the already encoded Anys are copied once, into a buffer reused from one response to the next (gRPC copies the bytes into its own frame before it serializes the next message). Throws only on a response that is not a DiscoveryResponse object.

import type { DiscoveryResponse } from '../../xds/ads-service.ts';

/** Responses up to this size are serialized into the reused buffer; larger ones get a buffer of their own. */
const REUSE_LIMIT = 16 * 2 ** 20;
let scratch: Buffer = Buffer.allocUnsafeSlow(2 ** 20);

function varintSize(n: number): number {
  let size = 1;
  while (n > 0x7f) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

function writeVarint(buf: Buffer, at: number, n: number): number {
  while (n > 0x7f) {
    buf[at++] = (n & 0x7f) | 0x80;
    n = Math.floor(n / 128);
  }
  buf[at++] = n;
  return at;
}

/** A length-delimited field: tag, length, then (for strings) the UTF-8 bytes. */
function stringFieldSize(s: string): number {
  const n = Buffer.byteLength(s);
  return 1 + varintSize(n) + n;
}

function writeString(buf: Buffer, at: number, tag: number, s: string): number {
  buf[at++] = tag;
  at = writeVarint(buf, at, Buffer.byteLength(s));
  return at + buf.write(s, at, 'utf8');
}

/**
 * The bytes of envoy.service.discovery.v3.DiscoveryResponse: version_info (1), resources (2, each an
 * Any of type_url (1) and value (2)), type_url (4), nonce (5), control_plane (6, its identifier (1)).
 * The result is valid until the next call: the caller copies it (as gRPC does) before serializing again.
 */
export function serializeDiscoveryResponse(r: DiscoveryResponse): Buffer {
  const urlSizes = new Map<string, number>();
  const anySizes: number[] = [];
  let size = stringFieldSize(r.version_info) + stringFieldSize(r.type_url) + stringFieldSize(r.nonce);
  for (const a of r.resources) {
    let url = urlSizes.get(a.type_url);
    if (url === undefined) urlSizes.set(a.type_url, (url = stringFieldSize(a.type_url)));
    const any = url + 1 + varintSize(a.value.length) + a.value.length;
    anySizes.push(any);
    size += 1 + varintSize(any) + any;
  }
  let cp = 0;
  if (r.control_plane) {
    cp = stringFieldSize(r.control_plane.identifier);
    size += 1 + varintSize(cp) + cp;
  }
  if (size > scratch.length && size <= REUSE_LIMIT) scratch = Buffer.allocUnsafeSlow(Math.min(REUSE_LIMIT, 2 ** Math.ceil(Math.log2(size))));
  const buf = size <= scratch.length ? scratch : Buffer.allocUnsafe(size);
  let at = writeString(buf, 0, 0x0a, r.version_info);
  r.resources.forEach((a, i) => {
    buf[at++] = 0x12;
    at = writeVarint(buf, at, anySizes[i] ?? 0);
    at = writeString(buf, at, 0x0a, a.type_url);
    buf[at++] = 0x12;
    at = writeVarint(buf, at, a.value.length);
    buf.set(a.value, at);
    at += a.value.length;
  });
  at = writeString(buf, at, 0x22, r.type_url);
  at = writeString(buf, at, 0x2a, r.nonce);
  if (r.control_plane) {
    buf[at++] = 0x32;
    at = writeVarint(buf, at, cp);
    at = writeString(buf, at, 0x0a, r.control_plane.identifier);
  }
  return buf.subarray(0, at);
}
