import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const SINK = fileURLToPath(new URL('./sink.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** Node code writing 2000 lines of ~700 bytes tagged $TAG to /dev/stdout through a sink (batches of 200 per turn). */
const WRITER = `import { createAccessLogSink } from ${JSON.stringify(SINK)};
const tag = process.env.TAG;
const sink = createAccessLogSink('/dev/stdout', { maxWriteBytes: Number(process.env.MAX) });
for (let round = 0; round < 10; round++) {
  for (let n = 0; n < 200; n++) sink.write(tag + ' ' + round + ':' + n + ' ' + tag.repeat(700) + ' end\\n');
  await new Promise((r) => setImmediate(r));
}
await sink.close();`;

describe('access log sink shared by worker processes', () => {
  it('two processes writing to one pipe never interleave within a line (whole lines, PIPE_BUF at most per write)', async () => {
    const node = `"${process.execPath}" --import tsx --input-type=module -e "$WRITER"`;
    const child = spawn('sh', ['-c', `TAG=a ${node} & TAG=b ${node} & wait`], { cwd: ROOT, env: { ...process.env, WRITER, MAX: String(4096) }, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    // a slow reader: the pipe fills up, which is when larger writes would be split and interleaved
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      child.stdout.pause();
      setTimeout(() => child.stdout.resume(), 1);
    });
    const code = await new Promise<number | null>((r) => child.on('close', r));
    assert.equal(code, 0);
    const lines = out.split('\n').filter(Boolean);
    assert.equal(lines.length, 4000);
    const bad = lines.filter((l) => !/^([ab]) \d+:\d+ (\1{700}) end$/.test(l));
    assert.deepEqual(bad.map((l) => l.slice(0, 80)), [], 'every line whole');
  });
});
