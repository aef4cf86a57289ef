// Encodes the ADS server's responses as chunks for the transport: a DiscoveryResponse's small fields and small resources are copied into one buffer, while large encoded resources are passed by reference (the same bytes go to every proxy that gets them, never copied). Throws only on a response that is not a DiscoveryResponse object.

import { adsServiceDefinition, type DeltaDiscoveryResponse, type DiscoveryResponse } from '../../xds/ads-service.ts';
import type { AnyWire } from '../../xds/protos.ts';

/** Encoded resources at least this large are written by reference rather than copied. */
export const SHARED_CHUNK_MIN = 16 * 1024;

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

/** Size of a length-delimited string field: tag, length, UTF-8 bytes. */
function stringFieldSize(s: string): number {
  const n = Buffer.byteLength(s);
  return 1 + varintSize(n) + n;
}

function writeString(buf: Buffer, at: number, tag: number, s: string): number {
  buf[at++] = tag;
  at = writeVarint(buf, at, Buffer.byteLength(s));
  return at + buf.write(s, at, 'utf8');
}

/** What precedes an Any's value in a DiscoveryResponse: the resources tag, the Any's length, its type_url, the value's tag and length. */
const anyHeads = new WeakMap<AnyWire, Buffer>();

function anyHead(a: AnyWire): Buffer {
  let head = anyHeads.get(a);
  if (!head) {
    const url = stringFieldSize(a.type_url);
    const any = url + 1 + varintSize(a.value.length) + a.value.length;
    head = Buffer.allocUnsafe(1 + varintSize(any) + url + 1 + varintSize(a.value.length));
    head[0] = 0x12;
    let at = writeVarint(head, 1, any);
    at = writeString(head, at, 0x0a, a.type_url);
    head[at++] = 0x12;
    writeVarint(head, at, a.value.length);
    anyHeads.set(a, head);
  }
  return head;
}

/**
 * The bytes of envoy.service.discovery.v3.DiscoveryResponse — version_info (1), resources (2, each an
 * Any of type_url (1) and value (2)), type_url (4), nonce (5), control_plane (6, its identifier (1)) —
 * as chunks whose concatenation is what protobufjs encodes. Large resource values are chunks of their
 * own (the caller's bytes, which must not change until written); the framing of each resource is
 * computed once per resource object.
 */
export function discoveryResponseChunks(r: DiscoveryResponse): Uint8Array[] {
  let copied = stringFieldSize(r.version_info) + stringFieldSize(r.type_url) + stringFieldSize(r.nonce);
  const heads: Buffer[] = [];
  for (const a of r.resources) {
    const head = anyHead(a);
    heads.push(head);
    copied += head.length + (a.value.length >= SHARED_CHUNK_MIN ? 0 : a.value.length);
  }
  let cp = 0;
  if (r.control_plane) {
    cp = stringFieldSize(r.control_plane.identifier);
    copied += 1 + varintSize(cp) + cp;
  }
  const buf = Buffer.allocUnsafe(copied);
  const chunks: Uint8Array[] = [];
  let from = 0;
  let at = writeString(buf, 0, 0x0a, r.version_info);
  r.resources.forEach((a, i) => {
    const head = heads[i] ?? anyHead(a);
    buf.set(head, at);
    at += head.length;
    if (a.value.length >= SHARED_CHUNK_MIN) {
      chunks.push(buf.subarray(from, at), a.value);
      from = at;
    } else {
      buf.set(a.value, at);
      at += a.value.length;
    }
  });
  at = writeString(buf, at, 0x22, r.type_url);
  at = writeString(buf, at, 0x2a, r.nonce);
  if (r.control_plane) {
    buf[at++] = 0x32;
    at = writeVarint(buf, at, cp);
    at = writeString(buf, at, 0x0a, r.control_plane.identifier);
  }
  chunks.push(buf.subarray(from, at));
  return chunks;
}

let deltaSerialize: ((r: DeltaDiscoveryResponse) => Buffer) | undefined;

/** A DeltaDiscoveryResponse as one chunk (protobufjs). */
export function deltaResponseChunks(r: DeltaDiscoveryResponse): Uint8Array[] {
  if (!deltaSerialize) {
    const m = adsServiceDefinition().DeltaAggregatedResources;
    if (!m) throw new Error('the ADS service definition lacks DeltaAggregatedResources');
    deltaSerialize = m.responseSerialize as (r: DeltaDiscoveryResponse) => Buffer;
  }
  return [deltaSerialize(r)];
}
