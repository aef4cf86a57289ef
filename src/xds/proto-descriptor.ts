// The sidecar's own set of Envoy protos, as a protobufjs JSON descriptor made from the full set protos.ts parses: the
// types a DiscoveryResponse can carry to a sidecar (every message of the loaded .proto files but the admin dumps,
// and whatever their fields reach), without options or comments. The sidecar bundle loads it instead of parsing the
// .proto files: a third fewer types, no parse. Throws MeshError MESH_ERR_XDS_PROTO_LOAD when a root is missing.

import { isAbsolute } from 'node:path';
import protobuf from 'protobufjs';
import { MeshError } from '../common/errors.ts';

/** .proto files whose messages a sidecar never receives (the admin config dumps are the control plane's). */
const NOT_FOR_SIDECARS = ['envoy/admin/'];

/** Messages a sidecar encodes or decodes besides the resources: ADS itself and the peer metadata header (Struct). */
const EXTRA_ROOTS = ['envoy.service.discovery.v3.DiscoveryRequest', 'envoy.service.discovery.v3.DiscoveryResponse', 'google.protobuf.Any', 'google.protobuf.Struct'];
/** Well-known types that may travel inside an Any ({"@type", "value"} in the JSON convention), kept when loaded. */
const WELL_KNOWN = ['Duration', 'Timestamp', 'FieldMask', 'Empty', 'DoubleValue', 'FloatValue', 'Int64Value', 'UInt64Value', 'Int32Value', 'UInt32Value',
  'BoolValue', 'StringValue', 'BytesValue'].map((n) => `google.protobuf.${n}`);

type Json = Record<string, unknown>;

/**
 * A descriptor (for protobuf.Root.fromJSON) of the message types of `files` (top level, not under NOT_FOR_SIDECARS)
 * and EXTRA_ROOTS, plus every type their fields reach, with the enclosing types of each (field type names are
 * resolved relative to them). Also returns every .proto file `root` was read from (protobufjs's built-in google/protobuf
 * files are not files), for the bundle's staleness check.
 */
export function sidecarDescriptor(root: protobuf.Root, files: readonly string[]): { descriptor: Json; types: number; sources: string[] } {
  const rootFiles = files.filter((f) => !NOT_FOR_SIDECARS.some((p) => f.startsWith(p)));
  const starts: protobuf.ReflectionObject[] = [];
  const collect = (ns: protobuf.NamespaceBase): void => {
    for (const o of ns.nestedArray) {
      if (o instanceof protobuf.Type) {
        if (!(o.parent instanceof protobuf.Type) && rootFiles.some((f) => (o.filename ?? '').endsWith(f))) starts.push(o);
      } else if (o instanceof protobuf.Namespace) collect(o);
    }
  };
  collect(root);
  for (const name of EXTRA_ROOTS) {
    const t = root.lookup(name);
    if (!t) throw new MeshError('MESH_ERR_XDS_PROTO_LOAD', `the sidecar's protos need ${name}, which is not loaded`);
    starts.push(t);
  }
  for (const name of WELL_KNOWN) {
    const t = root.lookup(name);
    if (t) starts.push(t);
  }
  const keep = new Set<protobuf.ReflectionObject>();
  const visited = new Set<protobuf.ReflectionObject>();
  const visit = (o: protobuf.ReflectionObject): void => {
    if (visited.has(o)) return;
    visited.add(o);
    keep.add(o);
    for (let p = o.parent; p; p = p.parent) {
      if (p instanceof protobuf.Type) visit(p);
      else keep.add(p);
    }
    if (o instanceof protobuf.Type) {
      for (const f of o.fieldsArray) {
        f.resolve();
        if (f.resolvedType) visit(f.resolvedType);
      }
    }
  };
  starts.forEach(visit);

  const describe = (o: protobuf.ReflectionObject): Json | undefined => {
    const nested = (ns: protobuf.NamespaceBase): Json | undefined => {
      const entries = ns.nestedArray.filter((n) => keep.has(n)).flatMap((n) => {
        const d = describe(n);
        return d ? [[n.name, d] as const] : [];
      });
      return entries.length > 0 ? Object.fromEntries(entries) : undefined;
    };
    if (o instanceof protobuf.Type) {
      const fields: Json = {};
      for (const f of o.fieldsArray) {
        const j = f.toJSON() as unknown as Json & { options?: Json };
        // of the options only `packed` changes the bytes; validation rules, deprecation marks and the like go
        const packed = j.options?.packed;
        delete j.options;
        delete j.comment;
        if (packed !== undefined) j.options = { packed };
        fields[f.name] = j;
      }
      const out: Json = { fields };
      if (o.oneofsArray.length > 0) out.oneofs = Object.fromEntries(o.oneofsArray.map((x) => [x.name, { oneof: [...x.oneof] }]));
      const n = nested(o);
      if (n) out.nested = n;
      return out;
    }
    if (o instanceof protobuf.Enum) return { values: { ...o.values } };
    if (o instanceof protobuf.Namespace) {
      const n = nested(o);
      return n ? { nested: n } : undefined;
    }
    return undefined; // services
  };
  return { descriptor: describe(root) ?? {}, types: [...keep].filter((o) => o instanceof protobuf.Type).length, sources: root.files.filter((f) => isAbsolute(f)).sort() };
}
