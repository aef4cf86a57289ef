// The primary's worker processes (node:cluster, round-robin hand-off of accepted connections): forks N workers,
// forwards each xDS update to all of them and resolves once every one applied it (rejects with a worker's reason,
// after putting the others back on the previous config), restarts a worker that dies with the current config and
// gives back its circuit-breaker counts, and asks the workers for stats and cluster state. Start failures throw
// MESH_ERR_PROXY_WORKERS; nothing here kills the primary.

import cluster, { type Worker } from 'node:cluster';
import { fileURLToPath } from 'node:url';
import { MeshError } from '../../common/errors.ts';
import type { Logger, LogLevel } from '../../common/log.ts';
import { ConfigError } from '../config/errors.ts';
import { mergeSnapshots, snapshotFamilies, type FamilySnapshot } from '../telemetry/snapshot.ts';
import type { ClusterDescription } from '../upstream/cluster-manager.ts';
import { APPLY_ORDER, SHARED_COUNTERS_ENV, SHARED_COUNTERS_FD, WORKER_COUNT_ENV, WORKER_INDEX_ENV, isFromWorker, type ApplyStep, type DataPlaneSnapshot, type FromWorker, type ToWorker, type XdsKind } from './protocol.ts';
import { SharedCounterTable, SlotAllocator, formatSpec } from './shared-counters.ts';

type Json = Record<string, unknown>;
type Ask = Extract<ToWorker, { id: number }>;
type AskWithoutId = Ask extends infer M ? (M extends Ask ? Omit<M, 'id'> : never) : never;

/** The tsmesh launcher (it registers tsx, then `tsmesh proxy` sees it is a worker). */
export const DEFAULT_WORKER_EXEC = fileURLToPath(new URL('../../../bin/tsmesh', import.meta.url));

const START_TIMEOUT_MS = 30_000;
const APPLY_TIMEOUT_MS = 30_000;
const ASK_TIMEOUT_MS = 3_000;
const STOP_TIMEOUT_MS = 4_000;
/** A worker that lived less than this before dying is restarted after a growing delay (100 ms doubling to 10 s). */
const STABLE_MS = 10_000;
/** Cluster slots in the shared circuit-breaker table (more clusters than this count per worker). */
const DEFAULT_COUNTER_SLOTS = 4096;

export interface WorkerPoolOptions {
  count: number;
  log: Logger;
  /** The script workers run and its arguments (default bin/tsmesh proxy). */
  exec?: string;
  args?: string[];
  /** The workers' environment (default this process's), to which the worker settings are added. */
  env?: NodeJS.ProcessEnv;
  counterSlots?: number;
}

export interface WorkerInfo {
  id: number;
  pid: number;
  state: WorkerState['state'];
  restarts: number;
}

interface WorkerState {
  index: number;
  worker: Worker;
  pid: number;
  state: 'starting' | 'syncing' | 'ready' | 'gone';
  pending: Map<number, { resolve(v: unknown): void; reject(e: WorkerReplyError): void }>;
  last?: DataPlaneSnapshot;
  startedAt: number;
  hello: Promise<void>;
}

class WorkerReplyError extends Error {
  constructor(readonly kind: 'gone' | 'timeout' | 'refused', message: string) {
    super(message);
    this.name = 'WorkerReplyError';
  }
}

export class WorkerPool {
  readonly count: number;
  readonly #opts: WorkerPoolOptions;
  readonly #log: Logger;
  readonly #workers: Array<WorkerState | undefined> = [];
  readonly #restarts: number[] = [];
  readonly #delays: number[] = [];
  readonly #current = new Map<XdsKind, ApplyStep>();
  #retired: { stats: FamilySnapshot[]; metrics: FamilySnapshot[] } = { stats: [], metrics: [] };
  #table: SharedCounterTable | undefined;
  #slots: SlotAllocator | undefined;
  #queue: Promise<unknown> = Promise.resolve();
  #seq = 0;
  #stopping = false;
  /** While start() waits: a worker that exits before it is up fails the start (no restart loop). */
  #startFailed: ((err: Error) => void) | undefined;

  constructor(opts: WorkerPoolOptions) {
    this.#opts = opts;
    this.count = opts.count;
    this.#log = opts.log;
  }

  /** True when the workers share exact circuit-breaker counts (else each enforces ceil(limit / N)). */
  get sharedLimits(): boolean {
    return this.#table !== undefined;
  }

  /** Forks the workers and waits until each is up. Throws MESH_ERR_PROXY_WORKERS (and stops what started). */
  async start(): Promise<void> {
    if (!cluster.isPrimary) throw new MeshError('MESH_ERR_PROXY_WORKERS', 'a worker process cannot start workers of its own');
    try {
      this.#table = SharedCounterTable.create(this.#opts.counterSlots ?? DEFAULT_COUNTER_SLOTS, this.count);
      this.#slots = new SlotAllocator(this.#table);
    } catch (err) {
      this.#log.warn('circuit-breaker limits cannot be shared by the workers: each enforces ceil(limit / workers)', { error: (err as Error).message });
    }
    // Round robin: the primary accepts and hands each connection to the next worker (an even spread, as Envoy's
    // SO_REUSEPORT listeners give; with SCHED_NONE the kernel's wake-ups favour one busy worker).
    cluster.schedulingPolicy = cluster.SCHED_RR;
    cluster.setupPrimary({
      exec: this.#opts.exec ?? DEFAULT_WORKER_EXEC,
      args: this.#opts.args ?? ['proxy'],
      stdio: ['inherit', 'inherit', 'inherit', 'ipc', ...(this.#table ? [this.#table.fd] : [])],
    });
    for (let i = 0; i < this.count; i++) this.#fork(i);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new MeshError('MESH_ERR_PROXY_WORKERS', `the ${this.count} proxy workers did not all start within ${START_TIMEOUT_MS / 1000} s`)), START_TIMEOUT_MS);
      this.#startFailed = reject;
    });
    try {
      await Promise.race([Promise.all(this.#workers.flatMap((w) => (w ? [w.hello] : []))), timeout]);
    } catch (err) {
      await this.stop();
      throw err;
    } finally {
      clearTimeout(timer);
      this.#startFailed = undefined;
    }
  }

  #envFor(index: number): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = { ...(this.#opts.env ?? process.env), [WORKER_INDEX_ENV]: String(index), [WORKER_COUNT_ENV]: String(this.count) };
    if (this.#table) env[SHARED_COUNTERS_ENV] = formatSpec({ fd: SHARED_COUNTERS_FD, slots: this.#table.slots, workers: this.count });
    return env;
  }

  #fork(index: number): WorkerState {
    const worker = cluster.fork(this.#envFor(index));
    let helloed: () => void = () => undefined;
    const st: WorkerState = {
      index, worker, pid: worker.process.pid ?? 0, state: 'starting', pending: new Map(), startedAt: Date.now(),
      hello: new Promise<void>((r) => (helloed = r)),
    };
    this.#workers[index] = st;
    worker.on('message', (m: unknown) => {
      if (!isFromWorker(m)) return;
      this.#onMessage(st, m);
      if (m.t === 'hello') helloed();
    });
    worker.on('exit', (code: number | null, signal: string | null) => this.#onExit(st, code, signal));
    worker.on('error', (err: Error) => this.#log.debug('worker channel error', { worker: index, error: err.message }));
    return st;
  }

  #onMessage(st: WorkerState, m: FromWorker): void {
    if (m.t === 'stats') st.last = m.snapshot;
    else if (m.t === 'reply') {
      const p = st.pending.get(m.id);
      if (!p) return;
      st.pending.delete(m.id);
      if (m.ok) p.resolve(m.value);
      else p.reject(new WorkerReplyError('refused', m.error));
    } else if (m.t === 'hello') {
      st.pid = m.pid;
      if (this.#current.size === 0) {
        st.state = 'ready';
        return;
      }
      st.state = 'syncing';
      void this.#enqueue(() => this.#sync(st));
    }
  }

  #onExit(st: WorkerState, code: number | null, signal: string | null): void {
    if (this.#workers[st.index] !== st || st.state === 'gone') return;
    st.state = 'gone';
    for (const p of st.pending.values()) p.reject(new WorkerReplyError('gone', `worker ${st.index} exited`));
    st.pending.clear();
    const freed = this.#table?.reclaim(st.index) ?? 0;
    if (st.last) {
      // its counters and histograms stay in the totals (what it counted happened); its gauges go with it
      this.#retired = {
        stats: snapshotFamilies(mergeSnapshots([this.#retired.stats, st.last.stats], { keepGauges: false })),
        metrics: snapshotFamilies(mergeSnapshots([this.#retired.metrics, st.last.metrics], { keepGauges: false })),
      };
    }
    if (this.#stopping) return;
    if (this.#startFailed) {
      this.#startFailed(new MeshError('MESH_ERR_PROXY_WORKERS', `proxy worker ${st.index} (pid ${st.pid}) exited (${signal ?? `code ${code}`}) before it was up; its output above says why`));
      return;
    }
    const lived = Date.now() - st.startedAt;
    const delay = lived >= STABLE_MS ? 100 : Math.min((this.#delays[st.index] ?? 50) * 2, 10_000);
    this.#delays[st.index] = delay;
    this.#restarts[st.index] = (this.#restarts[st.index] ?? 0) + 1;
    this.#log.error(`proxy worker ${st.index} (pid ${st.pid}) exited (${signal ?? `code ${code}`}); starting a replacement with the current configuration`, { inMs: delay, ...(freed ? { circuitBreakerCountsReleased: freed } : {}) });
    setTimeout(() => {
      if (!this.#stopping) this.#fork(st.index);
    }, delay).unref();
  }

  #enqueue<T>(op: () => Promise<T>): Promise<T> {
    const next = this.#queue.then(op, op);
    this.#queue = next.catch(() => undefined);
    return next;
  }

  #ask(st: WorkerState, msg: AskWithoutId, timeoutMs: number): Promise<unknown> {
    const id = ++this.#seq;
    return new Promise((resolve, reject) => {
      if (st.state === 'gone' || !st.worker.isConnected()) {
        reject(new WorkerReplyError('gone', `worker ${st.index} is gone`));
        return;
      }
      const timer = setTimeout(() => {
        st.pending.delete(id);
        reject(new WorkerReplyError('timeout', `worker ${st.index} did not answer within ${timeoutMs} ms`));
      }, timeoutMs);
      st.pending.set(id, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      const m: ToWorker = { ...msg, id };
      st.worker.send(m, (err: Error | null) => {
        if (!err) return;
        st.pending.delete(id);
        clearTimeout(timer);
        reject(new WorkerReplyError('gone', `worker ${st.index}: ${err.message}`));
      });
    });
  }

  #ready(): WorkerState[] {
    return this.#workers.filter((w): w is WorkerState => w !== undefined && w.state === 'ready');
  }

  #kill(st: WorkerState, why: string): void {
    this.#log.error(`proxy worker ${st.index} (pid ${st.pid}) ${why}; killing it (a replacement gets the current configuration)`);
    try {
      st.worker.process.kill('SIGKILL');
    } catch {
      /* already gone */
    }
  }

  /** A restarted worker: the whole current config, routes before listeners, then it takes connections. */
  async #sync(st: WorkerState): Promise<void> {
    if (st.state !== 'syncing') return;
    const steps = APPLY_ORDER.flatMap((k) => {
      const s = this.#current.get(k);
      return s ? [s] : [];
    });
    try {
      await this.#ask(st, { t: 'apply', steps }, APPLY_TIMEOUT_MS);
      if (st.state !== 'syncing') return;
      st.state = 'ready';
      this.#log.info(`proxy worker ${st.index} (pid ${st.pid}) serving with the current configuration`);
    } catch (err) {
      const e = err as WorkerReplyError;
      if (e.kind !== 'gone') this.#kill(st, `could not apply the current configuration (${e.message})`);
    }
  }

  /**
   * Applies one xDS type's resources in every worker. Rejects with ConfigError (the NACK's message) when a worker
   * refuses them; the workers that had applied them go back to the previous set, so all serve the same config.
   */
  apply(kind: XdsKind, resources: Json[]): Promise<void> {
    return this.#enqueue(async () => {
      const step: ApplyStep = { kind, resources };
      if (kind === 'clusters' && this.#slots) step.slots = this.#slots.assign(resources.map((r) => String(r.name)));
      const targets = this.#ready();
      const results = await Promise.all(targets.map((st) => this.#ask(st, { t: 'apply', steps: [step] }, APPLY_TIMEOUT_MS).then(() => undefined, (err: unknown) => err as WorkerReplyError)));
      const refused: Array<[WorkerState, WorkerReplyError]> = [];
      targets.forEach((st, i) => {
        const e = results[i];
        if (e?.kind === 'refused') refused.push([st, e]);
        else if (e?.kind === 'timeout') this.#kill(st, `did not apply a ${kind} update within ${APPLY_TIMEOUT_MS / 1000} s`);
      });
      if (refused.length === 0) {
        this.#current.set(kind, step);
        return;
      }
      const previous = this.#current.get(kind) ?? { kind, resources: [] };
      const applied = targets.filter((_, i) => results[i] === undefined);
      await Promise.all(applied.map((st) => this.#ask(st, { t: 'apply', steps: [previous] }, APPLY_TIMEOUT_MS).catch((err: unknown) => this.#kill(st, `could not go back to the previous ${kind} (${(err as Error).message})`))));
      const [first] = refused;
      const message = first ? first[1].message : 'refused';
      throw new ConfigError(refused.length === targets.length ? message : `proxy worker ${first?.[0].index ?? '?'}: ${message}`);
    });
  }

  /** Every live worker's stats (a worker that does not answer in time counts with its last snapshot). */
  async snapshots(): Promise<DataPlaneSnapshot[]> {
    const live = this.#workers.filter((w): w is WorkerState => w !== undefined && w.state !== 'gone');
    await Promise.all(live.map((st) => this.#ask(st, { t: 'snapshot' }, ASK_TIMEOUT_MS).then((v) => (st.last = v as DataPlaneSnapshot), () => undefined)));
    return live.flatMap((st) => (st.last ? [st.last] : []));
  }

  /** What workers that died had counted (counters and histograms). */
  get retired(): { stats: readonly FamilySnapshot[]; metrics: readonly FamilySnapshot[] } {
    return this.#retired;
  }

  /** Each ready worker's /clusters view. */
  async clusters(): Promise<ClusterDescription[][]> {
    const answers = await Promise.all(this.#ready().map((st) => this.#ask(st, { t: 'clusters' }, ASK_TIMEOUT_MS).then((v) => v as ClusterDescription[], () => undefined)));
    return answers.filter((a): a is ClusterDescription[] => a !== undefined);
  }

  /** The listeners (the same in every worker: the first ready one answers). */
  async listeners(): Promise<Array<{ name: string; address: string }>> {
    for (const st of this.#ready()) {
      try {
        return (await this.#ask(st, { t: 'listeners' }, ASK_TIMEOUT_MS)) as Array<{ name: string; address: string }>;
      } catch {
        /* try the next */
      }
    }
    return [];
  }

  drain(opts: { inboundOnly: boolean; graceful: boolean }): void {
    this.#broadcast({ t: 'drain', ...opts });
  }

  setLogLevel(level: LogLevel): void {
    this.#broadcast({ t: 'log-level', level });
  }

  #broadcast(m: ToWorker): void {
    for (const st of this.#workers) if (st && st.state !== 'gone' && st.worker.isConnected()) st.worker.send(m, () => undefined);
  }

  info(): WorkerInfo[] {
    return this.#workers.flatMap((st) => (st ? [{ id: st.index, pid: st.pid, state: st.state, restarts: this.#restarts[st.index] ?? 0 }] : []));
  }

  /** Stops every worker (a stop message, then SIGKILL for one that has not exited in time). */
  async stop(): Promise<void> {
    this.#stopping = true;
    const live = this.#workers.filter((w): w is WorkerState => w !== undefined && w.state !== 'gone' && w.worker.process.exitCode === null && w.worker.process.signalCode === null);
    await Promise.all(live.map(async (st) => {
      const exited = new Promise<void>((r) => st.worker.process.once('exit', () => r()));
      if (st.worker.isConnected()) st.worker.send({ t: 'stop' } satisfies ToWorker, () => undefined);
      const timer = setTimeout(() => {
        try {
          st.worker.process.kill('SIGKILL');
        } catch {
          /* gone */
        }
      }, STOP_TIMEOUT_MS);
      await exited;
      clearTimeout(timer);
    }));
  }
}
