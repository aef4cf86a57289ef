// `node --import tsx bench/cpuprofile-top.ts FILE.cpuprofile [N] [--by-file]`: the N functions (or files) with the most self time in a V8 CPU profile; exits 2 on a bad argument, throws on a file that is not a profile.

import { topFrames } from './lib/cpuprofile.ts';

const args = process.argv.slice(2);
const byFile = args.includes('--by-file');
const [file, n] = args.filter((a) => !a.startsWith('--'));
if (!file) {
  process.stderr.write('usage: node --import tsx bench/cpuprofile-top.ts FILE.cpuprofile [N] [--by-file]\n');
  process.exit(2);
}
const top = topFrames(file, Number(n ?? 25), process.cwd(), byFile);
process.stdout.write(`${file}: ${(top.totalMs / 1000).toFixed(1)} s sampled\n`);
for (const f of top.frames) process.stdout.write(`${(f.selfMs / 1000).toFixed(2).padStart(8)} s ${(f.share * 100).toFixed(1).padStart(5)}%  ${f.frame}\n`);
