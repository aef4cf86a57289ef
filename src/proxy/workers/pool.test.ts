import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { isMeshError } from '../../common/errors.ts';
import type { Logger } from '../../common/log.ts';
import { ConfigError } from '../config/errors.ts';
import { WorkerPool } from './pool.ts';

const lines: string[] = [];
const log: Logger = { debug: () => undefined, info: (m) => void lines.push(m), warn: (m) => void lines.push(m), error: (m) => void lines.push(m) };
const ENV = { ...process.env, POD_NAME: 'pool-test', POD_NAMESPACE: 'test', INSTANCE_IP: '127.0.0.1', XDS_ADDRESS: '127.0.0.1:9', TSMESH_LOG_LEVEL: 'error' };
const CLUSTER = { name: 'outbound|80||echo.test.svc.cluster.local', type: 'STATIC', connect_timeout: '1s', load_assignment: { cluster_name: 'x', endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: 9 } } } }] }] } };
const dir = mkdtempSync(join(tmpdir(), 'tsmesh-pool-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function until<T>(what: string, fn: () => Promise<T | undefined> | T | undefined): Promise<T> {
  for (let i = 0; i < 200; i++) {
    const v = await fn();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`gave up waiting for ${what}`);
}

describe('the primary\'s worker processes', { timeout: 60_000 }, () => {
  it('applies each update in every worker, NACKs what a worker refuses, and replaces a dead worker with the current config', async () => {
    const pool = new WorkerPool({ count: 2, log, env: ENV });
    try {
      await pool.start();
      const [a, b] = pool.info();
      assert.ok(a && b && a.pid !== b.pid && a.pid !== process.pid, 'two worker processes');
      await pool.apply('clusters', [CLUSTER]);
      const names = (await pool.clusters()).map((view) => view.map((c) => c.name));
      assert.deepEqual(names, [[CLUSTER.name], [CLUSTER.name]], 'both workers have the cluster');
      await assert.rejects(pool.apply('clusters', [CLUSTER, { name: 'bad', type: 'ORIGINAL_DST' }]), (e: unknown) => e instanceof ConfigError && /cluster 'bad'/.test(e.message));
      assert.deepEqual((await pool.clusters()).map((view) => view.map((c) => c.name)), [[CLUSTER.name], [CLUSTER.name]], 'the refused update changed nothing');

      process.kill(b.pid, 'SIGKILL');
      const replaced = await until('a replacement worker 1', () => pool.info().find((w) => w.id === 1 && w.pid !== b.pid && w.state === 'ready'));
      assert.equal(replaced.restarts, 1);
      assert.deepEqual((await pool.clusters()).map((view) => view.map((c) => c.name)), [[CLUSTER.name], [CLUSTER.name]], 'the replacement got the current config');
      assert.ok(lines.some((l) => l.includes(`proxy worker 1 (pid ${b.pid}) exited (SIGKILL)`)), lines.join('\n'));
      assert.equal(pool.sharedLimits, true, 'the circuit-breaker counts are shared');
    } finally {
      const pids = pool.info().map((w) => w.pid);
      await pool.stop();
      assert.deepEqual(pids.filter(alive), [], 'no worker left after stop');
    }
  });

  it('fails to start, naming the worker, when a worker exits before it is up', async () => {
    const script = join(dir, 'exit.mjs');
    writeFileSync(script, 'process.exit(3);\n');
    const pool = new WorkerPool({ count: 2, log, env: ENV, exec: script, args: [] });
    await assert.rejects(pool.start(), (e: unknown) => isMeshError(e) && e.code === 'MESH_ERR_PROXY_WORKERS' && /proxy worker \d \(pid \d+\) exited \(code 3\) before it was up/.test(e.message));
  });
});
