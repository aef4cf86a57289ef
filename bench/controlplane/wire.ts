// Reads the few Cluster fields a simulated proxy needs (name, type, eds_cluster_config.service_name) straight from protobuf bytes, so 1000 proxies need not decode every cluster; throws on truncated input.

const EDS = 3;

interface Field { no: number; wire: number; varint: number; start: number; end: number }

function* fields(buf: Uint8Array, start = 0, end = buf.length): Generator<Field> {
  let i = start;
  const varint = (): number => {
    let v = 0;
    let mul = 1;
    for (;;) {
      if (i >= end) throw new Error('protobuf: truncated varint');
      const b = buf[i++] as number;
      v += (b & 0x7f) * mul;
      if (b < 0x80) return v;
      mul *= 128;
    }
  };
  while (i < end) {
    const key = varint();
    const no = Math.floor(key / 8);
    const wire = key & 7;
    if (wire === 0) {
      yield { no, wire, varint: varint(), start: i, end: i };
    } else if (wire === 2) {
      const len = varint();
      if (i + len > end) throw new Error('protobuf: truncated field');
      yield { no, wire, varint: 0, start: i, end: i + len };
      i += len;
    } else if (wire === 1) {
      i += 8;
    } else if (wire === 5) {
      i += 4;
    } else {
      throw new Error(`protobuf: unsupported wire type ${wire}`);
    }
  }
}

const utf8 = new TextDecoder();

/** The EDS resource name Envoy asks for on behalf of a cluster (service_name, else its name); undefined when it is not an EDS cluster. */
export function edsNameOfCluster(buf: Uint8Array): string | undefined {
  let name = '';
  let serviceName = '';
  let type = -1;
  for (const f of fields(buf)) {
    if (f.no === 1 && f.wire === 2) name = utf8.decode(buf.subarray(f.start, f.end));
    else if (f.no === 2 && f.wire === 0) type = f.varint;
    else if (f.no === 3 && f.wire === 2) {
      for (const g of fields(buf, f.start, f.end)) if (g.no === 2 && g.wire === 2) serviceName = utf8.decode(buf.subarray(g.start, g.end));
    }
  }
  if (type !== EDS) return undefined;
  return serviceName || name;
}
