// Passive outlier detection as Envoy does it: consecutive 5xx, consecutive gateway failures (502/503/504)
// and, when split, consecutive local-origin failures eject a host at once (within max_ejection_percent
// and the enforcing percentages); a sweep every `interval` returns hosts after base_ejection_time ×
// times ejected (capped by max_ejection_time). Driven by the injected clock; never throws.

import { channel } from 'node:diagnostics_channel';
import type { Clock, Random, Timer } from './clock.ts';
import type { OutlierConfig } from './cluster-config.ts';
import type { HostImpl, OutlierState } from './host.ts';
import type { HostOutcome } from './types.ts';
import type { Logger } from '../../common/log.ts';

/** `tsmesh:upstream:outlier` events: {cluster, host, action: 'eject' | 'uneject', reason?}. */
export const outlierChannel = channel('tsmesh:upstream:outlier');

export type EjectionReason = 'consecutive_5xx' | 'consecutive_gateway_failure' | 'consecutive_local_origin_failure';

/** Envoy's outlier_detection.* stats for one cluster. */
export interface OutlierStats {
  ejections_active: number;
  ejections_enforced_total: number;
  ejections_overflow: number;
  ejections_enforced_consecutive_5xx: number;
  ejections_detected_consecutive_5xx: number;
  ejections_enforced_consecutive_gateway_failure: number;
  ejections_detected_consecutive_gateway_failure: number;
  ejections_enforced_consecutive_local_origin_failure: number;
  ejections_detected_consecutive_local_origin_failure: number;
}

export interface OutlierDeps {
  readonly clusterName: string;
  readonly clock: Clock;
  readonly random: Random;
  /** The cluster's current hosts (max_ejection_percent is a share of them; the sweep visits them). */
  hosts(): readonly HostImpl[];
  /** A host was ejected or returned: the cluster rebuilds its load balancer. */
  onHealthChange(): void;
  readonly log?: Logger;
}

function newState(): OutlierState {
  return { consecutive5xx: 0, consecutiveGateway: 0, consecutiveLocal: 0, numEjections: 0, ejectedAt: 0 };
}

export class OutlierDetector {
  readonly stats: OutlierStats = {
    ejections_active: 0,
    ejections_enforced_total: 0,
    ejections_overflow: 0,
    ejections_enforced_consecutive_5xx: 0,
    ejections_detected_consecutive_5xx: 0,
    ejections_enforced_consecutive_gateway_failure: 0,
    ejections_detected_consecutive_gateway_failure: 0,
    ejections_enforced_consecutive_local_origin_failure: 0,
    ejections_detected_consecutive_local_origin_failure: 0,
  };
  private timer: Timer | undefined;
  private stopped = false;

  constructor(readonly config: OutlierConfig, private readonly deps: OutlierDeps) {}

  start(): void {
    if (this.timer || this.stopped) return;
    this.timer = this.deps.clock.setTimer(this.config.intervalMs, () => this.sweep());
  }

  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
    this.timer = undefined;
  }

  /** A host left the cluster while ejected: it no longer counts as ejected. */
  forget(host: HostImpl): void {
    if (host.ejected) this.stats.ejections_active--;
  }

  report(host: HostImpl, outcome: HostOutcome): void {
    if (host.ejected) return;
    const s = (host.outlier ??= newState());
    const cfg = this.config;
    if (outcome.kind === 'response') {
      s.consecutiveLocal = 0; // the connection worked
      this.httpCode(host, s, outcome.status);
      return;
    }
    if (cfg.splitExternalLocalOriginErrors) {
      if (++s.consecutiveLocal === cfg.consecutiveLocalOriginFailure) this.eject(host, 'consecutive_local_origin_failure', cfg.enforcingConsecutiveLocalOriginFailure);
      return;
    }
    // Not split: local-origin failures count as the gateway error a client would see.
    this.httpCode(host, s, outcome.kind === 'timeout' ? 504 : 503);
  }

  private httpCode(host: HostImpl, s: OutlierState, code: number): void {
    const cfg = this.config;
    if (code >= 500 && code < 600) {
      if (code === 502 || code === 503 || code === 504) {
        if (++s.consecutiveGateway === cfg.consecutiveGatewayFailure) this.eject(host, 'consecutive_gateway_failure', cfg.enforcingConsecutiveGatewayFailure);
      } else {
        s.consecutiveGateway = 0;
      }
      if (!host.ejected && ++s.consecutive5xx === cfg.consecutive5xx) this.eject(host, 'consecutive_5xx', cfg.enforcingConsecutive5xx);
    } else {
      s.consecutive5xx = 0;
      s.consecutiveGateway = 0;
    }
  }

  private eject(host: HostImpl, reason: EjectionReason, enforcing: number): void {
    this.stats[`ejections_detected_${reason}`]++;
    if (enforcing <= 0 || this.deps.random.next() * 100 >= enforcing) return;
    const total = this.deps.hosts().length;
    const active = this.stats.ejections_active;
    const allowed = (100 * (active + 1)) / Math.max(1, total) <= this.config.maxEjectionPercent || (this.config.alwaysEjectOneHost && active === 0);
    if (!allowed) {
      this.stats.ejections_overflow++;
      return;
    }
    const s = (host.outlier ??= newState());
    const cap = Math.ceil(this.config.maxEjectionTimeMs / this.config.baseEjectionTimeMs);
    s.numEjections = Math.min(s.numEjections + 1, Math.max(1, cap));
    s.ejectedAt = this.deps.clock.now();
    s.lastEjectionReason = reason;
    s.consecutive5xx = 0;
    s.consecutiveGateway = 0;
    s.consecutiveLocal = 0;
    host.ejected = true;
    this.stats.ejections_active++;
    this.stats.ejections_enforced_total++;
    this.stats[`ejections_enforced_${reason}`]++;
    this.deps.log?.info('outlier detection ejected a host', { cluster: this.deps.clusterName, host: host.key, reason, ejections: s.numEjections });
    if (outlierChannel.hasSubscribers) outlierChannel.publish({ cluster: this.deps.clusterName, host: host.key, action: 'eject', reason });
    this.deps.onHealthChange();
  }

  /** The interval sweep: returns hosts whose ejection time has passed, decays the ejection multiplier. */
  sweep(): void {
    this.timer = undefined;
    if (this.stopped) return;
    const now = this.deps.clock.now();
    const base = this.config.baseEjectionTimeMs;
    let changed = false;
    for (const host of this.deps.hosts()) {
      const s = host.outlier;
      if (!s) continue;
      if (!host.ejected) {
        if (s.numEjections > 0 && s.lastUnejectedAt !== undefined && now - s.lastUnejectedAt >= base) s.numEjections--;
        continue;
      }
      const ejectFor = Math.min(base * s.numEjections, this.config.maxEjectionTimeMs);
      if (now - s.ejectedAt < ejectFor) continue;
      host.ejected = false;
      s.consecutive5xx = 0;
      s.consecutiveGateway = 0;
      s.consecutiveLocal = 0;
      s.lastUnejectedAt = now;
      this.stats.ejections_active--;
      changed = true;
      this.deps.log?.info('outlier detection returned a host', { cluster: this.deps.clusterName, host: host.key });
      if (outlierChannel.hasSubscribers) outlierChannel.publish({ cluster: this.deps.clusterName, host: host.key, action: 'uneject' });
    }
    if (changed) this.deps.onHealthChange();
    this.start();
  }
}
