// The picker for each lb_policy (CLUSTER_PROVIDED is handled by the ORIGINAL_DST cluster itself);
// pure lookup, never throws.

import type { ClusterInfo } from '../types.ts';
import { leastRequest } from './least-request.ts';
import { maglev } from './maglev.ts';
import { random } from './random.ts';
import { ringHash } from './ring-hash.ts';
import { roundRobin } from './round-robin.ts';
import type { PickerFactory } from './types.ts';

export function pickerFor(policy: ClusterInfo['lbPolicy']): { factory: PickerFactory; hashing: boolean } {
  switch (policy) {
    case 'LEAST_REQUEST':
      return { factory: leastRequest, hashing: false };
    case 'RANDOM':
      return { factory: random, hashing: false };
    case 'RING_HASH':
      return { factory: ringHash, hashing: true };
    case 'MAGLEV':
      return { factory: maglev, hashing: true };
    default:
      return { factory: roundRobin, hashing: false };
  }
}

export { PriorityLoadBalancer } from './priority.ts';
export type { HostPicker, LoadBalancer, PickerFactory, PickerOptions } from './types.ts';
