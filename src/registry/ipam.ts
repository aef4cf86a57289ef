// Deterministic address allocation from a CIDR: each key hashes to a stable address, probing past
// collisions. Throws MESH_ERR_CLI_USAGE on a malformed CIDR, and an Error naming the CIDR when it is full.

import { MeshError } from '../common/errors.ts';
import { fnv1a32 } from './naming.ts';

export function parseIpv4(ip: string): number | undefined {
  const parts = ip.split('.');
  if (parts.length !== 4) return undefined;
  let n = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p)) return undefined;
    const v = Number(p);
    if (v > 255) return undefined;
    n = n * 256 + v;
  }
  return n;
}

export function formatIpv4(n: number): string {
  return [(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

export interface Cidr { base: number; size: number; text: string }

export function parseCidr(text: string): Cidr {
  const [addr, bitsText] = text.split('/');
  const base = addr === undefined ? undefined : parseIpv4(addr);
  const bits = Number(bitsText);
  if (base === undefined || !Number.isInteger(bits) || bits < 8 || bits > 30) {
    throw new MeshError('MESH_ERR_CLI_USAGE', `bad CIDR ${JSON.stringify(text)}: expected an IPv4 range such as 10.244.0.0/16 (prefix 8..30)`);
  }
  const size = 2 ** (32 - bits);
  return { base: base - (base % size), size, text };
}

export function cidrContains(c: Cidr, ip: string): boolean {
  const n = parseIpv4(ip);
  return n !== undefined && n >= c.base && n < c.base + c.size;
}

/**
 * Hands out addresses in `cidr`: `allocate(key)` is the same for the same key as long as no earlier
 * key took that address (then it probes forward). Skips the network address, the broadcast address,
 * and, in every /24, the .0, .1 (gateway) and .255 addresses, plus any `reserved` offsets.
 */
export class Allocator {
  private readonly used = new Set<number>();
  constructor(private readonly cidr: Cidr, private readonly reservedOffsets: readonly number[] = []) {}

  /** Marks an address taken (an explicit clusterIP or podIP). Addresses outside the CIDR are ignored. */
  reserve(ip: string): void {
    const n = parseIpv4(ip);
    if (n !== undefined) this.used.add(n);
  }

  private usable(n: number): boolean {
    const off = n - this.cidr.base;
    if (off <= 0 || off >= this.cidr.size - 1) return false;
    if (this.cidr.size >= 256) {
      const last = n & 255;
      if (last === 0 || last === 1 || last === 255) return false;
    } else if (off === 1) {
      return false;
    }
    return !this.reservedOffsets.includes(off) && !this.used.has(n);
  }

  allocate(key: string): string {
    const size = this.cidr.size;
    let off = fnv1a32(key) % size;
    for (let i = 0; i < size; i++) {
      const n = this.cidr.base + off;
      if (this.usable(n)) {
        this.used.add(n);
        return formatIpv4(n);
      }
      off = (off + 1) % size;
    }
    throw new Error(`address range ${this.cidr.text} is full`);
  }
}
