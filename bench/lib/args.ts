// Benchmark option parsing shared by the suites: a bad value throws an Error naming the flag.

/** `v` as a positive finite number, or an error naming `--name`. */
export function positiveNumber(v: string, name: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name}: expected a positive number, got ${v}`);
  return n;
}
