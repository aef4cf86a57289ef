// Encodes resources whose one repeated message field holds objects shared between resources (a route configuration's virtual hosts): each shared element is encoded and hashed once, then spliced in, giving the bytes a whole-message encoding gives; throws MeshError MESH_ERR_XDS_ENCODE as encodeAny does.

import { createHash } from 'node:crypto';
import type protobuf from 'protobufjs';
import { MeshError } from '../../common/errors.ts';
import { encodeMessage, messageType, type AnyWire, type XdsObject } from '../../xds/protos.ts';

interface Part {
  /** Tag, length and the element's bytes: what the element adds to the message. */
  bytes: Uint8Array;
  digest: Buffer;
}

export interface EncodedResource {
  any: AnyWire;
  /** Changes exactly when the bytes change (a hash of the parts' hashes). */
  version: string;
}

function varint(n: number): number[] {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
}

/**
 * One encoder per (message type, repeated field). Elements are cached by identity: the objects must
 * not change once encoded (generators share them and never mutate them).
 */
export class PartEncoder {
  readonly #typeUrl: string;
  readonly #type: protobuf.Type;
  readonly #field: protobuf.Field;
  readonly #elementType: string;
  readonly #parts = new WeakMap<object, Part>();
  /** Elements encoded (cache misses), for tests and benchmarks. */
  encodedParts = 0;

  constructor(typeUrl: string, field: string) {
    this.#typeUrl = typeUrl;
    this.#type = messageType(typeUrl);
    const f = this.#type.fields[field];
    const rt = f?.resolvedType;
    if (!f || !f.repeated || !rt || !('fieldsArray' in rt)) {
      throw new MeshError('MESH_ERR_XDS_ENCODE', `${typeUrl}: '${field}' is not a repeated message field`);
    }
    this.#field = f;
    this.#elementType = rt.fullName.slice(1);
  }

  #part(element: unknown, index: number): Part {
    if (typeof element !== 'object' || element === null) {
      throw new MeshError('MESH_ERR_XDS_ENCODE', `${this.#typeUrl}: ${this.#field.name}[${index}] is not an object`);
    }
    let part = this.#parts.get(element);
    if (!part) {
      const body = encodeMessage(this.#elementType, element as XdsObject);
      const head = [...varint((this.#field.id << 3) | 2), ...varint(body.length)];
      const bytes = new Uint8Array(head.length + body.length);
      bytes.set(head, 0);
      bytes.set(body, head.length);
      part = { bytes, digest: createHash('sha1').update(bytes).digest() };
      this.#parts.set(element, part);
      this.encodedParts++;
    }
    return part;
  }

  /** The Any of `obj` (which carries "@type"), with the same bytes as encodeAny(obj). */
  encode(obj: XdsObject): EncodedResource {
    if (obj['@type'] !== this.#typeUrl) throw new MeshError('MESH_ERR_XDS_ENCODE', `expected a ${this.#typeUrl}, got ${String(obj['@type'])}`);
    const before: XdsObject = {};
    const after: XdsObject = {};
    for (const [k, v] of Object.entries(obj)) {
      if (k === '@type' || k === this.#field.name) continue;
      const f = this.#type.fields[k];
      // unknown fields go to `after`, where encodeMessage names them in its error
      if (f && f.id < this.#field.id) before[k] = v;
      else after[k] = v;
    }
    const list = obj[this.#field.name];
    if (list !== undefined && list !== null && !Array.isArray(list)) {
      throw new MeshError('MESH_ERR_XDS_ENCODE', `${this.#typeUrl}: ${this.#field.name} is not an array`);
    }
    const parts = (list ?? []).map((e, i) => this.#part(e, i));
    const name = this.#type.fullName.slice(1);
    const head = encodeMessage(name, before);
    const tail = encodeMessage(name, after);
    let length = head.length + tail.length;
    for (const p of parts) length += p.bytes.length;
    const value = Buffer.allocUnsafe(length);
    value.set(head, 0);
    let at = head.length;
    // lengths first, so that different splits of the same stream cannot hash alike
    const sizes = Buffer.allocUnsafe(8);
    sizes.writeUInt32BE(head.length, 0);
    sizes.writeUInt32BE(parts.length, 4);
    const hash = createHash('sha1').update(sizes).update(head);
    for (const p of parts) {
      value.set(p.bytes, at);
      at += p.bytes.length;
      hash.update(p.digest);
    }
    value.set(tail, at);
    hash.update(tail);
    return { any: { type_url: this.#typeUrl, value }, version: hash.digest('base64url').slice(0, 16) };
  }
}
