// IPv4/IPv6 CIDR ranges for filter chain and RBAC matching; parseCidr throws ConfigError on bad text.

import { isIP } from 'node:net';
import { ConfigError } from './errors.ts';

export interface Cidr {
  readonly text: string;
  readonly bits: number;
  contains(ip: string): boolean;
}

function v4(ip: string): number | undefined {
  const p = ip.split('.');
  if (p.length !== 4) return undefined;
  let n = 0;
  for (const x of p) {
    const b = Number(x);
    if (!Number.isInteger(b) || b < 0 || b > 255) return undefined;
    n = n * 256 + b;
  }
  return n;
}

function v6(ip: string): bigint | undefined {
  if (isIP(ip) !== 6) return undefined;
  const [head, tail] = ip.split('::') as [string, string | undefined];
  const parse = (s: string): string[] => (s === '' ? [] : s.split(':'));
  let hs = parse(head);
  let ts = tail === undefined ? [] : parse(tail);
  const last = (tail === undefined ? hs : ts).at(-1);
  if (last && last.includes('.')) {
    const n = v4(last) ?? 0;
    const repl = [(n >>> 16).toString(16), (n & 0xffff).toString(16)];
    if (tail === undefined) hs = [...hs.slice(0, -1), ...repl];
    else ts = [...ts.slice(0, -1), ...repl];
  }
  const fill = tail === undefined ? [] : new Array<string>(8 - hs.length - ts.length).fill('0');
  const groups = [...hs, ...fill, ...ts];
  let n = 0n;
  for (const g of groups) n = (n << 16n) + BigInt(parseInt(g || '0', 16));
  return n;
}

export function parseCidr(text: string): Cidr {
  const [addr, lenText] = text.split('/') as [string, string | undefined];
  const a4 = v4(addr);
  if (a4 !== undefined) {
    const bits = lenText === undefined ? 32 : Number(lenText);
    if (!Number.isInteger(bits) || bits < 0 || bits > 32) throw new ConfigError(`invalid CIDR ${text}: prefix length must be 0..32`);
    const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
    const net = (a4 & mask) >>> 0;
    return { text, bits, contains: (ip) => { const x = v4(ip.startsWith('::ffff:') ? ip.slice(7) : ip); return x !== undefined && ((x & mask) >>> 0) === net; } };
  }
  const a6 = v6(addr);
  if (a6 !== undefined) {
    const bits = lenText === undefined ? 128 : Number(lenText);
    if (!Number.isInteger(bits) || bits < 0 || bits > 128) throw new ConfigError(`invalid CIDR ${text}: prefix length must be 0..128`);
    const shift = BigInt(128 - bits);
    const net = a6 >> shift;
    return { text, bits, contains: (ip) => { const x = v6(ip); return x !== undefined && x >> shift === net; } };
  }
  throw new ConfigError(`invalid CIDR ${text}: not an IPv4 or IPv6 address`);
}
