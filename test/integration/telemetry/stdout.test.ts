// meshConfig.accessLogFile: /dev/stdout in a real process: the lines reach the process's stdout (kubectl logs), and a
// reader that goes away (EPIPE) is counted, never a crash.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, it } from 'node:test';
import { REPO_ROOT } from '../../helpers/shared.ts';

async function run(script: string, opts: { closeStdoutAfterBytes?: number } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
    if (opts.closeStdoutAfterBytes !== undefined && stdout.length >= opts.closeStdoutAfterBytes) child.stdout.destroy();
  });
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  return { code, stdout, stderr };
}

const PRELUDE = `
const { accessLoggersFromXds, defaultSinks } = await import('./src/proxy/telemetry/access-log.ts');
const { newStreamInfo } = await import('./src/proxy/stream-info.ts');
const [logger] = accessLoggersFromXds([{ name: 'envoy.access_loggers.file', typed_config: {
  '@type': 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog', path: '/dev/stdout',
  log_format: { text_format_source: { inline_string: '%RESPONSE_CODE% %REQ(:METHOD)% %REQ(:PATH)%\\n' } } } }]);
const req = (n) => Object.assign(newStreamInfo('inbound', 'http', 0), { endTime: 1, responseCode: 200, method: 'GET', path: '/item/' + n });
`;

describe('access log to /dev/stdout', () => {
  it('writes the lines to the process\'s stdout, in order', async () => {
    const r = await run(`${PRELUDE}
for (let n = 0; n < 3; n++) logger.log(req(n));
await defaultSinks.closeAll();`);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '200 GET /item/0\n200 GET /item/1\n200 GET /item/2\n');
  });

  it('a closed stdout (EPIPE) is counted and the proxy keeps running', async () => {
    const r = await run(`${PRELUDE}
for (let k = 0; k < 400; k++) {
  for (let n = 0; n < 500; n++) logger.log(req(n));
  await new Promise((res) => setTimeout(res, 2));
}
await logger.sink.flush();
process.stderr.write('STATS ' + JSON.stringify(logger.sink.stats) + '\\n');`, { closeStdoutAfterBytes: 1 });
    assert.equal(r.code, 0, r.stderr);
    const stats = JSON.parse(/STATS (.*)/.exec(r.stderr)?.[1] ?? '{}') as { linesBuffered: number; linesDropped: number; writeErrors: number };
    assert.equal(stats.linesBuffered, 200_000);
    assert.ok(stats.writeErrors >= 1, r.stderr);
    assert.ok(stats.linesDropped > 0);
    assert.match(r.stderr, /access log write failed\tpath=\/dev\/stdout\terror=.*EPIPE/);
  });
});
