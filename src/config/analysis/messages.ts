// The analysis message catalog (the Istio codes tsmesh implements) and Go-style template formatting.
// Pure data and string functions; a template/argument mismatch prints Go's `%!v(MISSING)` marker, never throws.

export type Level = 'Error' | 'Warning' | 'Info';

/** Lower is worse, as istioctl orders levels. */
const LEVEL_ORDER: Readonly<Record<Level, number>> = { Error: 0, Warning: 1, Info: 2 };

export function levelRank(l: Level): number {
  return LEVEL_ORDER[l];
}

/** True when `l` is at least as severe as `threshold` (Error >= Warning >= Info). */
export function isAtLeast(l: Level, threshold: Level): boolean {
  return LEVEL_ORDER[l] <= LEVEL_ORDER[threshold];
}

/** Parses a level the way istioctl's flags do (case-insensitive); undefined when unknown. */
export function parseLevel(s: string): Level | undefined {
  const u = s.toUpperCase();
  return (Object.keys(LEVEL_ORDER) as Level[]).find((l) => l.toUpperCase() === u);
}

export interface MessageType {
  /** Istio's message name, e.g. ReferencedResourceNotFound. */
  name: string;
  /** IST0101 ... */
  code: string;
  level: Level;
  /** Go fmt template as in Istio's messages.yaml (%s %q %v %d). */
  template: string;
}

const t = (name: string, code: string, level: Level, template: string): MessageType => ({ name, code, level, template });

/**
 * The codes tsmesh reports. Levels and templates equal Istio's analysis/messages.yaml (a test checks it);
 * the table is ours so tsmesh runs without Istio's files.
 */
export const MESSAGES = {
  InternalError: t('InternalError', 'IST0001', 'Error', 'Internal error: %v'),
  ReferencedResourceNotFound: t('ReferencedResourceNotFound', 'IST0101', 'Error', 'Referenced %s not found: %q'),
  NamespaceNotInjected: t(
    'NamespaceNotInjected',
    'IST0102',
    'Info',
    "The namespace is not enabled for Istio injection. Run 'kubectl label namespace %s istio-injection=enabled' to enable it, or 'kubectl label namespace %s istio-injection=disabled' to explicitly mark it as not needing injection.",
  ),
  PodMissingProxy: t('PodMissingProxy', 'IST0103', 'Warning', 'The pod %s is missing the Istio proxy. This can often be resolved by restarting or redeploying the workload.'),
  SchemaValidationError: t('SchemaValidationError', 'IST0106', 'Error', 'Schema validation error: %v'),
  ConflictingMeshGatewayVirtualServiceHosts: t(
    'ConflictingMeshGatewayVirtualServiceHosts',
    'IST0109',
    'Error',
    'The VirtualServices %s associated with mesh gateway define the same host %s which can lead to undefined behavior. This can be fixed by merging the conflicting VirtualServices into a single resource.',
  ),
  ConflictingSidecarWorkloadSelectors: t(
    'ConflictingSidecarWorkloadSelectors',
    'IST0110',
    'Error',
    'The Sidecars %v in namespace %q select the same workload pod %q, which can lead to undefined behavior.',
  ),
  MultipleSidecarsWithoutWorkloadSelectors: t(
    'MultipleSidecarsWithoutWorkloadSelectors',
    'IST0111',
    'Error',
    'The Sidecars %v in namespace %q have no workload selector, which can lead to undefined behavior.',
  ),
  VirtualServiceDestinationPortSelectorRequired: t(
    'VirtualServiceDestinationPortSelectorRequired',
    'IST0112',
    'Error',
    'This VirtualService routes to a service %q that exposes multiple ports %v. Specifying a port in the destination is required to disambiguate.',
  ),
  PortNameIsNotUnderNamingConvention: t(
    'PortNameIsNotUnderNamingConvention',
    'IST0118',
    'Info',
    "Port name %s (port: %d, targetPort: %s) doesn't follow the naming convention of Istio port.",
  ),
  NamespaceMultipleInjectionLabels: t(
    'NamespaceMultipleInjectionLabels',
    'IST0123',
    'Warning',
    'The namespace has more than one type of injection labels %v, which may lead to undefined behavior. Make sure only one injection label exists.',
  ),
  VirtualServiceUnreachableRule: t('VirtualServiceUnreachableRule', 'IST0130', 'Warning', 'VirtualService rule %v not used (%s).'),
  VirtualServiceIneffectiveMatch: t(
    'VirtualServiceIneffectiveMatch',
    'IST0131',
    'Info',
    'VirtualService rule %v match %v is not used (duplicate/overlapping match in rule %v).',
  ),
  SchemaWarning: t('SchemaWarning', 'IST0133', 'Warning', 'Schema validation warning: %v'),
  InvalidApplicationUID: t('InvalidApplicationUID', 'IST0144', 'Warning', 'User ID (UID) 1337 is reserved for the sidecar proxy.'),
  ExternalNameServiceTypeInvalidPortName: t(
    'ExternalNameServiceTypeInvalidPortName',
    'IST0150',
    'Warning',
    'Port name for ExternalName service is invalid. Proxy may prevent tcp named ports and unmatched traffic for ports serving TCP protocol from being forwarded correctly',
  ),
  /** tsmesh uses this for kinds it validates but does not act on (EnvoyFilter, WasmPlugin, ...). */
  IneffectivePolicy: t('IneffectivePolicy', 'IST0167', 'Warning', 'The policy has no impact: %s.'),
  DestinationRuleSubsetNotSelectPods: t(
    'DestinationRuleSubsetNotSelectPods',
    'IST0173',
    'Error',
    'The Subset %s defined in the DestinationRule does not select any pods. Which may lead to 503 UH (NoHealthyUpstream).',
  ),
  UnknownDestinationRuleHost: t('UnknownDestinationRuleHost', 'IST0174', 'Warning', 'The host %s defined in the DestinationRule does not match any services in the mesh.'),
} as const satisfies Record<string, MessageType>;

export type MessageName = keyof typeof MESSAGES;

const byCode = new Map<string, MessageType>(Object.values(MESSAGES).map((m) => [m.code, m]));

export function messageTypeByCode(code: string): MessageType | undefined {
  return byCode.get(code);
}

export function allMessageTypes(): MessageType[] {
  return [...byCode.values()].sort((a, b) => a.code.localeCompare(b.code));
}

/** Base of the per-code documentation pages (istioctl prints the versioned equivalent). */
export const DOC_BASE = 'https://istio.io/latest/docs/reference/config/analysis';

export function documentationUrl(code: string): string {
  return `${DOC_BASE}/${code.toLowerCase()}/`;
}

// ---------- Go fmt, the subset the templates use ----------

/** Go's strconv.Quote for the characters config can hold. */
export function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0) ?? 0;
    if (ch === '"') out += '\\"';
    else if (ch === '\\') out += '\\\\';
    else if (ch === '\n') out += '\\n';
    else if (ch === '\t') out += '\\t';
    else if (ch === '\r') out += '\\r';
    else if (c < 0x20 || c === 0x7f) out += `\\x${c.toString(16).padStart(2, '0')}`;
    else out += ch;
  }
  return out + '"';
}

function formatValue(verb: string, v: unknown): string {
  if (Array.isArray(v)) return `[${v.map((x) => formatValue(verb, x)).join(' ')}]`;
  if (v instanceof Error) return verb === 'q' ? goQuote(v.message) : v.message;
  switch (verb) {
    case 'q':
      return typeof v === 'string' ? goQuote(v) : typeof v === 'number' ? `'${String.fromCodePoint(v)}'` : goQuote(String(v));
    case 'd':
      return typeof v === 'number' && Number.isInteger(v) ? String(v) : `%!d(${typeof v}=${String(v)})`;
    default:
      if (v === undefined || v === null) return '<nil>';
      if (typeof v === 'object') return JSON.stringify(v);
      return String(v);
  }
}

/** Formats a Go template with %s %q %v %d and %%; `[a b]` for lists, as Go prints slices. */
export function formatTemplate(template: string, args: readonly unknown[]): string {
  let i = 0;
  return template.replace(/%([%sqvd])/g, (_m, verb: string) => {
    if (verb === '%') return '%';
    if (i >= args.length) return `%!${verb}(MISSING)`;
    return formatValue(verb, args[i++]);
  });
}
