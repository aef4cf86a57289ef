// CPU time and memory of a process and its descendants from /proc (utime+stime of each live process plus what it reaped, VmRSS, VmHWM); a process that has gone reads as zero, never throws.

import { readdirSync, readFileSync } from 'node:fs';

/** Clock ticks per second of /proc/PID/stat (USER_HZ: 100 on every Linux build that matters). */
const HZ = 100;

export interface TreeUsage {
  /** User + system CPU seconds of the tree (live processes and the children they reaped). */
  cpuS: number;
  /** Sum of VmRSS over the tree, MB. */
  rssMB: number;
  /** Sum of VmHWM (each process's peak RSS) over the tree, MB. */
  hwmMB: number;
  pids: number[];
}

function stat(pid: number): { ppid: number; ticks: number } | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // the command name may hold spaces and parentheses: the fields start after the last ')'
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    // f[0] is field 3 (state); utime, stime, cutime, cstime are fields 14-17
    const n = (i: number): number => Number(f[i - 3] ?? 0);
    return { ppid: n(4), ticks: n(14) + n(15) + n(16) + n(17) };
  } catch {
    return undefined;
  }
}

function statusKB(pid: number, field: string): number {
  try {
    const m = new RegExp(`^${field}:\\s*(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** `pid` and every live descendant. */
export function processTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const s = stat(Number(name));
    if (!s) continue;
    let l = children.get(s.ppid);
    if (!l) children.set(s.ppid, (l = []));
    l.push(Number(name));
  }
  const out: number[] = [];
  const walk = (p: number): void => {
    out.push(p);
    for (const c of children.get(p) ?? []) walk(c);
  };
  if (stat(pid)) walk(pid);
  return out;
}

export function treeUsage(pid: number): TreeUsage {
  const pids = processTree(pid);
  let ticks = 0;
  let rss = 0;
  let hwm = 0;
  for (const p of pids) {
    ticks += stat(p)?.ticks ?? 0;
    rss += statusKB(p, 'VmRSS');
    hwm += statusKB(p, 'VmHWM');
  }
  return { cpuS: ticks / HZ, rssMB: rss / 1024, hwmMB: hwm / 1024, pids };
}
