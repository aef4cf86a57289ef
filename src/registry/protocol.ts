// Istio's port protocols and how a port's protocol is chosen (appProtocol, then the name prefix).
// Pure functions; an unknown or missing protocol is 'UNSUPPORTED', which means "auto-detect".

export type Protocol = 'HTTP' | 'HTTP2' | 'HTTPS' | 'GRPC' | 'GRPC-Web' | 'TLS' | 'TCP' | 'MONGO' | 'REDIS' | 'MYSQL' | 'UDP' | 'UNSUPPORTED';

const BY_NAME: ReadonlyMap<string, Protocol> = new Map<string, Protocol>([
  ['http', 'HTTP'],
  ['http_proxy', 'HTTP'],
  ['http2', 'HTTP2'],
  ['https', 'HTTPS'],
  ['grpc', 'GRPC'],
  ['grpc-web', 'GRPC-Web'],
  ['tls', 'TLS'],
  ['tcp', 'TCP'],
  ['mongo', 'MONGO'],
  ['redis', 'REDIS'],
  ['mysql', 'MYSQL'],
  ['udp', 'UDP'],
]);

/** Istio treats these server-first ports as their protocol when the name says nothing. */
const WELL_KNOWN_PORTS: ReadonlyMap<number, Protocol> = new Map<number, Protocol>([
  [3306, 'MYSQL'],
  [27017, 'MONGO'],
  [6379, 'REDIS'],
]);

/** Parses a protocol name as written in a ServiceEntry / Gateway / Sidecar port (case-insensitive). */
export function parseProtocol(s: string | undefined): Protocol {
  if (!s) return 'UNSUPPORTED';
  return BY_NAME.get(s.toLowerCase()) ?? 'UNSUPPORTED';
}

/**
 * The protocol of a Kubernetes Service port, by Istio's rules: L4 protocol UDP -> UDP; otherwise
 * appProtocol when set (it replaces the name entirely; 'kubernetes.io/h2c' -> HTTP2, '.../ws' -> HTTP,
 * '.../wss' -> HTTPS), else the port name; a 'grpc-web' prefix, else the part before the first '-'
 * ('http-foo' -> HTTP). Unknown names fall back to well-known port numbers (3306, 27017, 6379),
 * else 'UNSUPPORTED'.
 */
export function protocolForPort(p: { name?: string; appProtocol?: string; protocol?: string; port?: number }): Protocol {
  if (p.protocol?.toUpperCase() === 'UDP') return 'UDP';
  let name = p.name ?? '';
  if (p.appProtocol !== undefined && p.appProtocol !== '') {
    name = p.appProtocol;
    if (name === 'kubernetes.io/h2c') return 'HTTP2';
    if (name === 'kubernetes.io/ws') return 'HTTP';
    if (name === 'kubernetes.io/wss') return 'HTTPS';
  }
  const lower = name.toLowerCase();
  if (lower.startsWith('grpc-web')) return 'GRPC-Web';
  const dash = lower.indexOf('-');
  const prefix = dash >= 0 ? lower.slice(0, dash) : lower;
  const parsed = parseProtocol(prefix);
  if (parsed === 'UNSUPPORTED' && p.port !== undefined) return WELL_KNOWN_PORTS.get(p.port) ?? 'UNSUPPORTED';
  return parsed;
}

/** HTTP-family protocols (served by the HTTP connection manager): HTTP, HTTP2, GRPC, GRPC-Web. */
export function isHttpProtocol(p: Protocol): boolean {
  return p === 'HTTP' || p === 'HTTP2' || p === 'GRPC' || p === 'GRPC-Web';
}

/** Protocols carried as opaque TCP by the proxy (everything that is neither HTTP nor UDP nor auto). */
export function isTcpProtocol(p: Protocol): boolean {
  return p === 'TCP' || p === 'HTTPS' || p === 'TLS' || p === 'MONGO' || p === 'REDIS' || p === 'MYSQL';
}
