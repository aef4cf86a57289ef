// Sums self time by function over a V8 .cpuprofile (what `node --cpu-prof` writes) and lists the top frames; throws on a file that is not a CPU profile.

import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface Frame {
  /** `functionName file:line` (file relative to the repository when inside it). */
  frame: string;
  selfMs: number;
  /** Share of all sampled time, idle included. */
  share: number;
}

function label(n: ProfileNode, root: string, byFile: boolean): string {
  const { functionName, url, lineNumber } = n.callFrame;
  const file = url.replace(/^file:\/\//, '').replace(root, '').replace(/^\//, '');
  const name = functionName || '(anonymous)';
  if (byFile) return file || name;
  // tsx-compiled modules report line 1 for everything: the file alone is then more honest
  return file ? (lineNumber > 0 ? `${name} ${file}:${lineNumber + 1}` : `${name} ${file}`) : name;
}

/** Top `limit` functions (or files) by self time; `(idle)`, `(program)` and `(garbage collector)` are V8's own buckets. */
export function topFrames(file: string, limit = 15, root = process.cwd(), byFile = false): { totalMs: number; frames: Frame[] } {
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  if (!Array.isArray(p.nodes) || !Array.isArray(p.samples) || !Array.isArray(p.timeDeltas)) throw new Error(`${file}: not a .cpuprofile`);
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  let total = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const n = byId.get(p.samples[i] as number);
    // a sample's time is the delta to the next sample
    const dt = (p.timeDeltas[i + 1] ?? 0) / 1000;
    total += dt;
    if (!n) continue;
    const key = label(n, root, byFile);
    self.set(key, (self.get(key) ?? 0) + dt);
  }
  const frames = [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, limit)
    .map(([frame, selfMs]) => ({ frame, selfMs, share: total > 0 ? selfMs / total : 0 }));
  return { totalMs: total, frames };
}
