// Describes the machine a benchmark ran on (cores, CPU model, kernel, node, load) from os and /proc; a missing /proc file reads as 'unknown', never throws.

import { readFileSync } from 'node:fs';
import os from 'node:os';

export interface Machine {
  cores: number;
  cpuModel: string;
  kernel: string;
  node: string;
  memoryGiB: number;
  /** 1, 5 and 15 minute load averages. */
  load: [number, number, number];
}

function cpuModel(): string {
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (m?.[1]) return m[1].trim();
  } catch {
    // not Linux, or /proc unreadable
  }
  return os.cpus()[0]?.model ?? 'unknown';
}

export function machine(): Machine {
  const [l1 = 0, l5 = 0, l15 = 0] = os.loadavg();
  return {
    cores: os.availableParallelism(),
    cpuModel: cpuModel(),
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    load: [l1, l5, l15],
  };
}

/** `load 3.34 2.09 1.95` */
export function formatLoad(load: readonly number[]): string {
  return `load ${load.map((l) => l.toFixed(2)).join(' ')}`;
}
