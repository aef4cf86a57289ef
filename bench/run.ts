// `npm run bench -- [suite] [options]`: runs one benchmark suite by name, or every suite with no name; an unknown suite or a failed one gives a non-zero exit code. Benchmarks print figures and never gate a test run.

interface Suite {
  summary: string;
  /** Loaded on demand, so one suite's imports never slow down another. */
  load(): Promise<{ run(args: string[]): Promise<number>; usage: string }>;
}

const SUITES: Record<string, Suite> = {
  controlplane: {
    summary: 'the control plane at scale: meshes of 100-5000 services, 1000 simulated proxies over ADS',
    load: () => import('./controlplane/bench.ts'),
  },
  dataplane: {
    summary: 'the sidecar pair against a direct call, an nginx pair and a HAProxy pair: added latency at a fixed rate, CPU, RSS, maximum throughput',
    load: () => import('./dataplane/bench.ts'),
  },
};

async function main(argv: string[]): Promise<number> {
  const [first, ...rest] = argv;
  if (first === '--help' || first === '-h') {
    process.stdout.write(`npm run bench -- [suite] [options]\n\nsuites:\n${Object.entries(SUITES).map(([n, s]) => `  ${n.padEnd(14)} ${s.summary}`).join('\n')}\n`);
    for (const s of Object.values(SUITES)) process.stdout.write(`\n${(await s.load()).usage}\n`);
    return 0;
  }
  if (first === undefined || first.startsWith('-')) {
    let code = 0;
    for (const [name, suite] of Object.entries(SUITES)) {
      process.stderr.write(`== ${name}\n`);
      code = Math.max(code, await (await suite.load()).run(argv));
    }
    return code;
  }
  const suite = SUITES[first];
  if (!suite) {
    process.stderr.write(`unknown benchmark suite ${first}; known: ${Object.keys(SUITES).join(', ')}\n`);
    return 2;
  }
  return (await suite.load()).run(rest);
}

process.exitCode = await main(process.argv.slice(2));
