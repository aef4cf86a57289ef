// A push request is data that merges: why the control plane pushes, what changed, whether it is full; pure, never throws.

/** Why a push happens: a closed set, so metric labels stay bounded. */
export type PushReason = 'config' | 'endpoint' | 'proxy' | 'secret' | 'global' | 'debug';

export const PUSH_REASONS: readonly PushReason[] = ['config', 'endpoint', 'proxy', 'secret', 'global', 'debug'];

export interface PushRequest {
  /** true: every watched type may have changed; false: an incremental (endpoint/secret) push. */
  readonly full: boolean;
  readonly reasons: ReadonlySet<PushReason>;
  /** Config kinds that changed (e.g. 'VirtualService'); absent = unknown, anything may have changed. */
  readonly kinds?: ReadonlySet<string>;
  /** Namespaces whose config changed; absent = unknown or all. */
  readonly namespaces?: ReadonlySet<string>;
}

function union<T>(a: ReadonlySet<T> | undefined, b: ReadonlySet<T> | undefined): Set<T> | undefined {
  if (a === undefined || b === undefined) return undefined; // unknown absorbs everything
  return new Set([...a, ...b]);
}

/** Merges two requests: full if either is, reasons united, kinds/namespaces united (unknown wins). */
export function mergePushRequests(a: PushRequest, b: PushRequest): PushRequest {
  const merged: { full: boolean; reasons: Set<PushReason>; kinds?: Set<string>; namespaces?: Set<string> } = {
    full: a.full || b.full,
    reasons: new Set([...a.reasons, ...b.reasons]),
  };
  const kinds = union(a.kinds, b.kinds);
  if (kinds) merged.kinds = kinds;
  const namespaces = union(a.namespaces, b.namespaces);
  if (namespaces) merged.namespaces = namespaces;
  return merged;
}

/** A full push for everything (used at start-up, by `debug`, and when the whole mesh config changes). */
export function fullPush(reason: PushReason = 'global'): PushRequest {
  return { full: true, reasons: new Set([reason]) };
}

/** A readable summary for logs: `full config[VirtualService,DestinationRule] ns=bookinfo`. */
export function describePush(req: PushRequest): string {
  let s = `${req.full ? 'full' : 'incremental'} ${[...req.reasons].sort().join(',')}`;
  if (req.kinds) s += `[${[...req.kinds].sort().join(',')}]`;
  if (req.namespaces) s += ` ns=${[...req.namespaces].sort().join(',')}`;
  return s;
}
