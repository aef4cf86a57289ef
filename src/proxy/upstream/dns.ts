// DNS discovery for STRICT_DNS (every address of every hostname endpoint is a host) and LOGICAL_DNS
// (the first address of its one endpoint), re-resolved every dns_refresh_rate through an injectable
// resolver; a failed lookup keeps the last good addresses and retries at dns_failure_refresh_rate.

import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { Logger } from '../../common/log.ts';
import type { Clock, Timer } from './clock.ts';
import type { ClusterConfig } from './cluster-config.ts';
import type { EndpointSpec } from './host.ts';

/** Addresses for a name; family 4 or 6 restricts them, 0 allows both. Rejects when the name does not resolve. */
export type Resolver = (hostname: string, family: 0 | 4 | 6) => Promise<string[]>;

export const systemResolver: Resolver = async (hostname, family) => {
  const all = await lookup(hostname, { all: true, family, verbatim: true });
  return all.map((a) => a.address);
};

export interface DnsDeps {
  readonly resolver: Resolver;
  readonly clock: Clock;
  readonly log?: Logger;
  /** The hosts after each round (only called when resolution produced something new). */
  onUpdate(specs: EndpointSpec[]): void;
}

export class DnsDiscovery {
  private readonly targets: readonly EndpointSpec[];
  private readonly last = new Map<number, string[]>();
  private timer: Timer | undefined;
  private stopped = false;
  private lastSignature = '';
  /** Resolves after the first round, whatever its outcome (Envoy's cluster warming). */
  readonly firstRound: Promise<void>;
  private markFirst!: () => void;

  constructor(private readonly cfg: ClusterConfig, private readonly deps: DnsDeps) {
    this.targets = cfg.loadAssignment?.endpoints ?? [];
    this.firstRound = new Promise((r) => (this.markFirst = r));
  }

  start(): void {
    void this.round();
  }

  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
    this.timer = undefined;
  }

  /** One resolution of every target; schedules the next. */
  async round(): Promise<void> {
    let failed = false;
    await Promise.all(
      this.targets.map(async (t, i) => {
        if (isIP(t.address) !== 0) {
          this.last.set(i, [t.address]);
          return;
        }
        try {
          let addrs = await this.deps.resolver(t.address, this.cfg.dnsFamily);
          if (this.cfg.dnsV4Preferred) addrs = [...addrs.filter((a) => isIP(a) === 4), ...addrs.filter((a) => isIP(a) !== 4)];
          if (addrs.length === 0) throw new Error('no addresses');
          this.last.set(i, addrs);
        } catch (err) {
          failed = true;
          this.deps.log?.warn('DNS resolution failed; keeping the last addresses', { cluster: this.cfg.name, hostname: t.address, error: (err as Error).message });
        }
      }),
    );
    if (this.stopped) return;
    const specs: EndpointSpec[] = [];
    this.targets.forEach((t, i) => {
      const addrs = this.last.get(i) ?? [];
      const use = this.cfg.type === 'LOGICAL_DNS' ? addrs.slice(0, 1) : addrs;
      for (const a of use) specs.push({ ...t, address: a, ...(isIP(t.address) === 0 ? { hostname: t.address } : {}) });
    });
    const signature = specs.map((s) => `${s.address}:${s.port}`).join(',');
    if (signature !== this.lastSignature) {
      this.lastSignature = signature;
      this.deps.onUpdate(specs);
    }
    this.markFirst();
    this.timer = this.deps.clock.setTimer(failed ? this.cfg.dnsFailureRefreshMs : this.cfg.dnsRefreshMs, () => void this.round());
  }
}
