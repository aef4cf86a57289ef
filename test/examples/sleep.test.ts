// The sleep sample app (the client pod of the Istio tasks) as a real process: it idles until SIGTERM and
// exits 0, ends by itself after the seconds it is given, and rejects a bad argument with exit 2.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { setTimeout as wait } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { EXAMPLES } from './helpers.ts';

describe('sleep', () => {
  it('idles until SIGTERM, then exits 0', async () => {
    const run = (args: string[]): { exit: Promise<number | null>; started: Promise<void>; kill: () => void; alive: () => boolean } => {
      const child = spawn(process.execPath, ['--import', 'tsx', join(EXAMPLES, 'sleep/sleep.ts'), ...args], { stdio: ['ignore', 'pipe', 'ignore'] });
      const started = new Promise<void>((r) => child.stdout.once('data', () => r()));
      return { exit: new Promise((r) => child.once('exit', (code) => r(code))), started, kill: () => child.kill('SIGTERM'), alive: () => child.exitCode === null };
    };
    const idle = run([]);
    await idle.started;
    await wait(1000);
    assert.ok(idle.alive(), 'still running');
    idle.kill();
    assert.equal(await idle.exit, 0);
    assert.equal(await run(['0.2']).exit, 0, 'a number of seconds ends by itself');
    assert.equal(await run(['soon']).exit, 2, 'a bad argument is exit 2');
  });
});
