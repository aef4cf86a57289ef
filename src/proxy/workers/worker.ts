// A worker process of a sidecar run with --concurrency N: the data path only (listeners shared through node:cluster,
// clusters, routes, telemetry), configured by the primary over IPC and answering its questions. It exits when the
// primary tells it to or when the IPC channel closes (the primary died: no orphan keeps serving); SIGTERM/SIGINT
// are the primary's to handle. A configuration it cannot apply is answered with the reason (the primary NACKs).

import { logger, setLogLevel, type Logger } from '../../common/log.ts';
import { DataPlane } from '../data-plane.ts';
import { agentEnvFrom } from '../identity.ts';
import { SinkRegistry } from '../telemetry/sink.ts';
import { localCounters, type LimitCounters } from '../upstream/pool/resources.ts';
import { SHARED_COUNTERS_ENV, STATS_PUSH_MS, WORKER_COUNT_ENV, WORKER_INDEX_ENV, isToWorker, type FromWorker, type ToWorker } from './protocol.ts';
import { SharedCounterTable, parseSpec } from './shared-counters.ts';

/** Bytes a pipe writes atomically on Linux: access log lines of several workers never interleave. */
const PIPE_BUF = 4096;
/** How long a stopping worker waits for its connections before it exits anyway. */
const STOP_GRACE_MS = 2000;

function send(m: FromWorker): void {
  if (process.connected) process.send?.(m);
}

/** Runs this process as worker TSMESH_PROXY_WORKER until the primary stops it or goes away. */
export async function runWorker(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const index = Number(env[WORKER_INDEX_ENV]);
  const workers = Number(env[WORKER_COUNT_ENV] ?? '1');
  const log: Logger = logger(`proxy/worker-${index}`);
  const agentEnv = agentEnvFrom(env);
  const spec = parseSpec(env[SHARED_COUNTERS_ENV]);
  let table: SharedCounterTable | undefined;
  if (spec) {
    try {
      table = SharedCounterTable.attach(spec);
    } catch (err) {
      log.error('shared circuit-breaker counters unavailable: each worker enforces its share of every limit', { error: (err as Error).message });
    }
  }
  let slots: Record<string, number> = {};
  const limitCounters = (name: string): LimitCounters | undefined => {
    const slot = slots[name];
    if (table && slot !== undefined) return table.counters(slot, index);
    return workers > 1 ? localCounters(workers) : undefined;
  };
  const data = new DataPlane({ env: agentEnv, log, workerId: index, limitCounters, sinks: new SinkRegistry({ maxWriteBytes: PIPE_BUF }) });

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      clearInterval(push);
      const deadline = new Promise<void>((r) => setTimeout(r, STOP_GRACE_MS).unref());
      await Promise.race([data.stop(), deadline]);
    })();
    return stopping;
  };
  const exitNow = (): void => {
    void stop().finally(() => process.exit(0));
  };
  // The primary decides when workers stop (it forwards SIGTERM as a stop message); a signal sent to the whole
  // process group must not take a worker down first, or the primary would restart it.
  process.on('SIGTERM', () => undefined);
  process.on('SIGINT', () => undefined);
  process.on('disconnect', exitNow);

  const push = setInterval(() => send({ t: 'stats', snapshot: data.snapshot() }), STATS_PUSH_MS);
  push.unref();

  const reply = (id: number, work: () => unknown): void => {
    Promise.resolve()
      .then(work)
      .then(
        (value) => send({ t: 'reply', id, ok: true, ...(value === undefined ? {} : { value }) }),
        (err: unknown) => send({ t: 'reply', id, ok: false, error: err instanceof Error ? err.message : String(err) }),
      );
  };

  process.on('message', (m: unknown) => {
    if (!isToWorker(m)) return;
    const msg: ToWorker = m;
    switch (msg.t) {
      case 'apply':
        reply(msg.id, async () => {
          for (const step of msg.steps) {
            if (step.slots) slots = step.slots;
            await data.apply(step.kind, step.resources);
          }
        });
        break;
      case 'snapshot':
        reply(msg.id, () => data.snapshot());
        break;
      case 'clusters':
        reply(msg.id, () => data.clusters.describe());
        break;
      case 'listeners':
        reply(msg.id, () => data.describeListeners());
        break;
      case 'drain':
        data.listeners.drain();
        break;
      case 'log-level':
        setLogLevel(msg.level);
        break;
      case 'stop':
        exitNow();
        break;
    }
  });
  send({ t: 'hello', index, pid: process.pid });
  log.debug('worker started', { pid: process.pid });
  await new Promise<never>(() => undefined);
}
