// One upstream endpoint: its identity (address, port, locality, priority, weight) plus the mutable state
// the data path reads (health from EDS, outlier ejection, requests in flight, its connection pool).

import { isIPv6 } from 'node:net';
import type { Host, Locality } from './types.ts';

export type HealthStatus = 'UNKNOWN' | 'HEALTHY' | 'UNHEALTHY' | 'DRAINING' | 'TIMEOUT' | 'DEGRADED';

/** What EDS, a static load_assignment or DNS says about one endpoint. */
export interface EndpointSpec {
  address: string;
  port: number;
  /** Unix socket path (address is then the path and port 0). */
  pipe?: string;
  /** The DNS name the address came from (STRICT_DNS / LOGICAL_DNS), or EDS's endpoint.hostname. */
  hostname?: string;
  weight: number;
  locality: Locality;
  priority: number;
  healthStatus: HealthStatus;
  workload?: string;
}

/** Envoy's host key: "ip:port", "[v6]:port", or the pipe path. */
export function hostKey(address: string, port: number, pipe?: string): string {
  if (pipe !== undefined) return pipe;
  return isIPv6(address) ? `[${address}]:${port}` : `${address}:${port}`;
}

export function localityKey(l: Locality): string {
  return `${l.region ?? ''}/${l.zone ?? ''}/${l.sub_zone ?? ''}`;
}

/** Per-host outlier-detection state, owned by the OutlierDetector. */
export interface OutlierState {
  consecutive5xx: number;
  consecutiveGateway: number;
  consecutiveLocal: number;
  /** Times ejected, decremented while the host stays healthy (multiplies base_ejection_time). */
  numEjections: number;
  ejectedAt: number;
  lastUnejectedAt?: number;
  lastEjectionReason?: string;
}

/** The owner of a host's connections (a HostPool); kept abstract here to avoid an import cycle. */
export interface HostConnections {
  /** Connections open or being opened. */
  readonly size: number;
  /** Closes idle connections now and the others when their requests end; resolves when all are closed. */
  drain(): Promise<void>;
}

export class HostImpl implements Host {
  readonly address: string;
  readonly port: number;
  readonly key: string;
  readonly pipe: string | undefined;
  weight: number;
  locality: Locality;
  localityKey: string;
  priority: number;
  workload: string | undefined;
  hostname: string | undefined;
  healthStatus: HealthStatus;
  ejected = false;
  activeRequests = 0;
  /** For ORIGINAL_DST hosts: chosen since the last cleanup sweep. */
  used = false;
  outlier: OutlierState | undefined;
  pool: HostConnections | undefined;

  constructor(spec: EndpointSpec) {
    this.address = spec.address;
    this.port = spec.port;
    this.pipe = spec.pipe;
    this.key = hostKey(spec.address, spec.port, spec.pipe);
    this.weight = spec.weight;
    this.locality = spec.locality;
    this.localityKey = localityKey(spec.locality);
    this.priority = spec.priority;
    this.workload = spec.workload;
    this.hostname = spec.hostname;
    this.healthStatus = spec.healthStatus;
  }

  /** Updates what EDS may change in place; true when anything that affects balancing changed. */
  update(spec: EndpointSpec): boolean {
    const changed = this.weight !== spec.weight || this.priority !== spec.priority || this.healthStatus !== spec.healthStatus || this.localityKey !== localityKey(spec.locality);
    this.weight = spec.weight;
    this.locality = spec.locality;
    this.localityKey = localityKey(spec.locality);
    this.priority = spec.priority;
    this.healthStatus = spec.healthStatus;
    this.workload = spec.workload;
    this.hostname = spec.hostname;
    return changed;
  }

  healthy(): boolean {
    return !this.ejected && (this.healthStatus === 'HEALTHY' || this.healthStatus === 'UNKNOWN');
  }
}
