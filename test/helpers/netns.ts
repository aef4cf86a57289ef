// Test helpers for real network namespaces: why they cannot run here, a per-run name prefix, a free /24 in 10.250.0.0/16.
// Never touches anything not named with the run's prefix; the caller cleans up with cleanupAll(prefix).

import { execFileSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { findTool } from '../../src/runtime/netns.ts';

/** Undefined when namespace tests can run (Linux, root, ip + iptables present), else why not. */
export function netnsSkipReason(tools: readonly string[] = ['ip', 'iptables-restore', 'iptables-save', 'setpriv']): string | undefined {
  if (process.platform !== 'linux') return `needs Linux (this is ${process.platform})`;
  if (process.getuid?.() !== 0) return 'needs root (network namespaces and iptables)';
  const missing = tools.filter((t) => findTool(t) === undefined);
  // As root on Linux a missing tool is a setup error, not a reason to skip: CI installs them.
  if (missing.length > 0) throw new Error(`missing ${missing.join(', ')}: apt-get install -y iptables iproute2 util-linux`);
  return undefined;
}

/** A prefix unique to this test process, e.g. "tsm-12345-"; fits interface names (<= 12 characters). */
export function runPrefix(tag = ''): string {
  return `tsm-${process.pid % 1000000}${tag}-`;
}

/**
 * A /24 inside 10.250.0.0/16 that no host interface or route uses yet, starting from a pid-derived
 * offset so parallel runs pick different ones: returns e.g. { base: '10.250.37', cidr: '10.250.37.0/24' }.
 */
export function freeSubnet(): { base: string; cidr: string } {
  const ip = findTool('ip') ?? 'ip';
  const used = execFileSync(ip, ['-4', '-o', 'addr', 'show'], { encoding: 'utf8' }) + execFileSync(ip, ['-4', 'route', 'show'], { encoding: 'utf8' });
  const start = (process.pid * 7) % 250;
  for (let i = 0; i < 250; i++) {
    const n = ((start + i) % 250) + 1;
    const base = `10.250.${n}`;
    if (!used.includes(`${base}.`)) return { base, cidr: `${base}.0/24` };
  }
  throw new Error('no free /24 in 10.250.0.0/16');
}

/** Collects every JSON line `child` prints on stdout; waitFor resolves with the first line matching `pred`. */
export function jsonLines<T>(child: ChildProcess): { lines: T[]; waitFor(pred: (v: T) => boolean, timeoutMs?: number): Promise<T>; stderr(): string } {
  const lines: T[] = [];
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  if (child.stdout) {
    createInterface({ input: child.stdout }).on('line', (line) => {
      try {
        lines.push(JSON.parse(line) as T);
      } catch {
        // not ours
      }
    });
  }
  const waitFor = async (pred: (v: T) => boolean, timeoutMs = 20000): Promise<T> => {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const hit = lines.find(pred);
      if (hit !== undefined) return hit;
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`child exited (${child.exitCode ?? child.signalCode}); stderr: ${stderr}`);
      if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms; stderr: ${stderr}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  return { lines, waitFor, stderr: () => stderr };
}

/** Runs a child to completion and returns its stdout, stderr and exit code. */
export async function collect(child: ChildProcess, timeoutMs = 20000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const [code] = (await once(child, 'close')) as [number | null];
  clearTimeout(timer);
  return { code, stdout, stderr };
}
