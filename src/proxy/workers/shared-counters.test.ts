import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, it } from 'node:test';
import { isMeshError } from '../../common/errors.ts';
import { ClusterResources } from '../upstream/pool/resources.ts';
import { SHARED_COUNTERS_ADDON_PATH, SharedCounterTable, SlotAllocator, formatSpec, parseSpec, sharedCountersAddon } from './shared-counters.ts';

const linux = process.platform === 'linux';
const ADDON = new URL(`../../../${SHARED_COUNTERS_ADDON_PATH}`, import.meta.url).pathname;
const LIMITS = { maxConnections: 3, maxPendingRequests: 2, maxRequests: 5, maxRetries: 1 };

/** A second process that maps the table from fd 3 and grabs `connections` slots of slot 0 as worker 1, then reports. */
function grabInChild(table: SharedCounterTable, attempts: number): Promise<{ got: number }> {
  const cells = SharedCounterTable.bytes(table.slots, table.workers);
  // cell of slot 0, limit 0 (connections): total at 4, worker 1's share at 4 + 2
  const src = `const a = require(${JSON.stringify(ADDON)}); const r = a.map(3, ${cells}); let got = 0;
    for (let i = 0; i < ${attempts}; i++) if (a.tryAcquire(r, 4, 6, 3)) got++;
    process.stdout.write(JSON.stringify({ got }));`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', src], { stdio: ['ignore', 'pipe', 'inherit', table.fd] });
    let out = '';
    child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(JSON.parse(out) as { got: number }) : reject(new Error(`child exited ${code}`))));
  });
}

describe('shared circuit-breaker counters (workers)', { skip: !linux }, () => {
  it('is built by npm ci', () => {
    assert.equal(typeof sharedCountersAddon().tryAcquire, 'function', 'run `npm rebuild` to build build/Release/shared_counters.node');
  });

  it('a limit holds across processes: what one worker holds, another cannot take', async () => {
    const table = SharedCounterTable.create(2, 2);
    const mine = new ClusterResources(LIMITS, undefined, table.counters(0, 0));
    assert.equal(mine.tryConnectionOpened(), true);
    assert.equal(mine.tryConnectionOpened(), true);
    const child = await grabInChild(table, 5);
    assert.equal(child.got, 1, 'the other process gets only the one slot left of max_connections 3');
    assert.equal(mine.tryConnectionOpened(), false);
    assert.deepEqual(table.totals(0), { connections: 3, pending: 0, requests: 0, retries: 0 });
    assert.equal(mine.connections, 2, 'this process counts only its own connections (its stats)');
    mine.connectionClosed();
    assert.equal(mine.tryConnectionOpened(), true);
    assert.equal(table.inUse(1), false, 'other clusters are untouched');
  });

  it('gives back what a dead worker held', async () => {
    const table = SharedCounterTable.create(1, 2);
    await grabInChild(table, 3);
    assert.equal(table.totals(0).connections, 3);
    assert.equal(table.reclaim(1), 3);
    assert.equal(table.totals(0).connections, 0);
    assert.equal(table.inUse(0), false);
  });

  it('requests, pending and retries are limited across workers too', () => {
    const table = SharedCounterTable.create(1, 2);
    const a = new ClusterResources(LIMITS, undefined, table.counters(0, 0));
    const b = new ClusterResources(LIMITS, undefined, table.counters(0, 1));
    assert.equal(a.tryRetry(), true);
    assert.equal(b.tryRetry(), false, 'max_retries 1 is for the cluster');
    assert.equal(b.stats.upstream_rq_retry_overflow, 1);
    a.releaseRetry();
    assert.equal(b.tryRetry(), true);
    assert.equal(a.tryPendingAdded(), true);
    assert.equal(b.tryPendingAdded(), true);
    assert.equal(a.tryPendingAdded(), false);
    for (let i = 0; i < 5; i++) assert.equal((i % 2 ? a : b).tryRequest(), true);
    assert.equal(a.tryRequest(), false);
    b.requestDone();
    assert.equal(a.tryRequest(), true);
  });

  it('keeps a cluster on its slot across updates and reuses a removed one only once it is idle', () => {
    const table = SharedCounterTable.create(2, 1);
    const slots = new SlotAllocator(table);
    assert.deepEqual(slots.assign(['a', 'b']), { a: 0, b: 1 });
    assert.deepEqual(slots.assign(['b', 'a']), { a: 0, b: 1 });
    table.counters(0, 0).connections.acquire(); // a connection of the removed cluster a is still draining
    assert.deepEqual(slots.assign(['b', 'c']), { b: 1 }, 'no free slot yet: c counts per worker');
    table.counters(0, 0).connections.release();
    assert.deepEqual(slots.assign(['b', 'c']), { b: 1, c: 0 });
  });

  it('refuses a descriptor that is not the table, with MESH_ERR_PROXY_WORKERS', () => {
    const table = SharedCounterTable.create(1, 1);
    assert.throws(() => SharedCounterTable.attach({ fd: table.fd, slots: 2, workers: 1 }), (e: unknown) => isMeshError(e) && e.code === 'MESH_ERR_PROXY_WORKERS');
    assert.deepEqual(parseSpec(formatSpec({ fd: 4, slots: 8, workers: 2 })), { fd: 4, slots: 8, workers: 2 });
    assert.equal(parseSpec('x'), undefined);
  });
});
