// The load-balancing interfaces: a HostPicker chooses within one fixed host list (built when CDS/EDS or
// health change, O(1)/O(log n) per pick), a LoadBalancer chooses priority, locality, then host.

import type { Random } from '../clock.ts';
import type { HostImpl } from '../host.ts';
import type { LbContext } from '../types.ts';

export interface HostPicker {
  /**
   * One host of the list. `hash` is the request's hash for RING_HASH/MAGLEV (undefined: no hash
   * policy matched, pick at random); `attempt` is 0, then 1, 2... when the caller re-picks to avoid
   * `ctx.previousHosts`. Undefined only when the list is empty.
   */
  pick(ctx: LbContext, hash: number | undefined, attempt: number): HostImpl | undefined;
}

export interface PickerOptions {
  readonly random: Random;
  readonly minRingSize: number;
  readonly maxRingSize: number;
  readonly maglevTableSize: number;
  readonly choiceCount: number;
}

/** Builds a picker over `hosts` (non-empty); called when the host set or its health changes. */
export type PickerFactory = (hosts: readonly HostImpl[], opts: PickerOptions) => HostPicker;

export interface LoadBalancer {
  /** A host for the request; undefined when none can be used (→ 503 UH). Every ctx field may be absent. */
  chooseHost(ctx: LbContext): HostImpl | undefined;
}

export function allWeightsEqual(hosts: readonly HostImpl[]): boolean {
  const w = hosts[0]?.weight;
  for (const h of hosts) if (h.weight !== w) return false;
  return true;
}
