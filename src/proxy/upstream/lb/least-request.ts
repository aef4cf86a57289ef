// LEAST_REQUEST: power of d choices (choice_count, default 2): d weighted random candidates, the one
// with the fewest requests in flight per unit of weight wins (ties: the first drawn); O(d) per pick.
//
// With equal weights this is Envoy's P2C. With unequal weights Envoy switches to an EDF whose weights
// are divided by the active requests; drawing the candidates by weight and comparing load per weight
// keeps the pick O(1) and still gives each host weight/sum of the traffic when load is even.

import type { HostImpl } from '../host.ts';
import { WeightedDraw } from './random.ts';
import type { HostPicker, PickerFactory } from './types.ts';

class LeastRequestPicker implements HostPicker {
  constructor(private readonly d: WeightedDraw, private readonly choices: number) {}
  pick(): HostImpl | undefined {
    let best = this.d.draw();
    if (!best) return undefined;
    let bestLoad = best.activeRequests / best.weight;
    for (let i = 1; i < this.choices; i++) {
      const c = this.d.draw() as HostImpl;
      const load = c.activeRequests / c.weight;
      if (load < bestLoad) {
        best = c;
        bestLoad = load;
      }
    }
    return best;
  }
}

export const leastRequest: PickerFactory = (hosts, opts) => {
  if (hosts.length === 1) return { pick: () => hosts[0] };
  return new LeastRequestPicker(new WeightedDraw(hosts, opts.random), opts.choiceCount);
};
