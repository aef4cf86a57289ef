// The client pod of the Istio tasks: idles (forever, or for the seconds given as its argument) so that `tsmesh exec` can run curl in its network namespace; exits 0 on SIGTERM/SIGINT, 2 on a bad argument.

const arg = process.argv[2] ?? 'infinity';
const seconds = arg === 'infinity' ? Infinity : Number(arg);
if (Number.isNaN(seconds) || seconds < 0) {
  console.error(`sleep: invalid time interval ${JSON.stringify(arg)}: use seconds or "infinity"`);
  process.exit(2);
}

console.log(`sleep: idle ${seconds === Infinity ? 'until SIGTERM' : `for ${seconds} s`} (pid ${process.pid})`);
// setTimeout takes at most 2^31-1 ms; re-arm until the time is up.
const MAX_MS = 2 ** 31 - 1;
const deadline = Date.now() + seconds * 1000;
let timer: NodeJS.Timeout | undefined;
const arm = (): void => {
  const left = deadline - Date.now();
  if (left <= 0) process.exit(0);
  timer = setTimeout(arm, Number.isFinite(left) ? Math.min(left, MAX_MS) : MAX_MS);
};
arm();

const stop = (signal: string): void => {
  clearTimeout(timer);
  console.log(`sleep: ${signal}, exiting`);
  process.exit(0);
};
process.once('SIGTERM', () => stop('SIGTERM'));
process.once('SIGINT', () => stop('SIGINT'));
