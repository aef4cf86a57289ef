// Listener inspection of a connection's first bytes: a TLS ClientHello's SNI and ALPN, or whether the
// bytes start an HTTP/1.x request or an HTTP/2 prior-knowledge preface. Pure parsing of one buffer;
// anything malformed just yields "not TLS" / "not HTTP".

export interface Inspection {
  transportProtocol: 'tls' | 'raw_buffer';
  serverName?: string;
  /** ALPN offered in the ClientHello, or ['http/1.1'] / ['h2c'] detected from plain text. */
  applicationProtocols: string[];
  /** Plain-text HTTP/2 with prior knowledge. */
  h2c: boolean;
}

const H2_PREFACE = 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n';
const METHODS = ['GET ', 'POST ', 'PUT ', 'DELETE ', 'HEAD ', 'OPTIONS ', 'PATCH ', 'TRACE ', 'CONNECT '];

/** True when `buf` begins a TLS handshake record carrying a ClientHello. */
export function looksLikeTls(buf: Buffer): boolean {
  return buf.length >= 6 && buf[0] === 0x16 && buf[1] === 0x03 && buf[5] === 0x01;
}

/** SNI and ALPN from a ClientHello (first record only); undefined when it is not one or is cut short. */
export function parseClientHello(buf: Buffer): { serverName?: string; alpn: string[] } | undefined {
  if (!looksLikeTls(buf)) return undefined;
  try {
    let p = 5 + 4; // record header + handshake header
    p += 2 + 32; // client version + random
    const sid = buf.readUInt8(p);
    p += 1 + sid;
    const cs = buf.readUInt16BE(p);
    p += 2 + cs;
    const comp = buf.readUInt8(p);
    p += 1 + comp;
    if (p + 2 > buf.length) return { alpn: [] };
    const extEnd = p + 2 + buf.readUInt16BE(p);
    p += 2;
    const out: { serverName?: string; alpn: string[] } = { alpn: [] };
    while (p + 4 <= Math.min(extEnd, buf.length)) {
      const type = buf.readUInt16BE(p);
      const len = buf.readUInt16BE(p + 2);
      const body = p + 4;
      if (body + len > buf.length) break;
      if (type === 0) {
        // server_name: list length, then (type, length, name)
        let q = body + 2;
        while (q + 3 <= body + len) {
          const nameType = buf.readUInt8(q);
          const nameLen = buf.readUInt16BE(q + 1);
          if (nameType === 0) out.serverName = buf.toString('ascii', q + 3, q + 3 + nameLen).toLowerCase();
          q += 3 + nameLen;
        }
      } else if (type === 16) {
        let q = body + 2;
        while (q < body + len) {
          const l = buf.readUInt8(q);
          out.alpn.push(buf.toString('ascii', q + 1, q + 1 + l));
          q += 1 + l;
        }
      }
      p = body + len;
    }
    return out;
  } catch {
    return undefined;
  }
}

export function inspect(buf: Buffer): Inspection {
  const hello = parseClientHello(buf);
  if (hello) {
    const out: Inspection = { transportProtocol: 'tls', applicationProtocols: hello.alpn, h2c: false };
    if (hello.serverName) out.serverName = hello.serverName;
    return out;
  }
  const head = buf.toString('latin1', 0, Math.min(buf.length, H2_PREFACE.length));
  if (head.length > 0 && H2_PREFACE.startsWith(head)) return { transportProtocol: 'raw_buffer', applicationProtocols: ['h2c'], h2c: true };
  if (METHODS.some((m) => head.startsWith(m) || (head.length < m.length && m.startsWith(head)))) {
    const line = buf.toString('latin1', 0, Math.min(buf.length, 8192)).split('\r\n')[0] ?? '';
    const proto = / HTTP\/1\.[01]$/.test(line) || line.length === buf.length ? ['http/1.1'] : [];
    return { transportProtocol: 'raw_buffer', applicationProtocols: proto, h2c: false };
  }
  return { transportProtocol: 'raw_buffer', applicationProtocols: [], h2c: false };
}
