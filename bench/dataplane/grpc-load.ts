// Closed-loop gRPC load (@grpc/grpc-js): C channels, each its own HTTP/2 connection, each keeping S unary calls in flight; latency histogram after a warm-up. Run as its own process like loadgen.ts; prints the same JSON lines (`measure-start`, `measure-end`, `result`); failed calls are counted, never thrown.

import grpc from '@grpc/grpc-js';
import { Histogram, type Summary } from './histogram.ts';
import { BENCH_SERVICE, GRPC_METHOD } from './origin.ts';

export interface GrpcSpec {
  /** host:port */
  target: string;
  authority?: string;
  channels: number;
  streams: number;
  warmupS: number;
  durationS: number;
}

export interface GrpcResult {
  spec: GrpcSpec;
  completed: number;
  errors: number;
  firstError?: string;
  achievedRps: number;
  latency: Summary;
}

function emit(v: unknown): void {
  process.stdout.write(`${JSON.stringify(v)}\n`);
}

async function run(spec: GrpcSpec): Promise<GrpcResult> {
  const Client = grpc.makeGenericClientConstructor(BENCH_SERVICE, 'Bench');
  const options: grpc.ChannelOptions = {
    // without it grpc-js shares one connection among channels to the same target
    'grpc.use_local_subchannel_pool': 1,
    ...(spec.authority ? { 'grpc.default_authority': spec.authority } : {}),
  };
  const clients = Array.from({ length: spec.channels }, () => new Client(spec.target, grpc.credentials.createInsecure(), options));
  await Promise.all(clients.map((c) => new Promise<void>((resolve, reject) => c.waitForReady(Date.now() + 10_000, (err) => (err ? reject(err) : resolve())))));
  const request = Buffer.alloc(16, 0x61);
  const hist = new Histogram();
  let completed = 0;
  let errors = 0;
  let firstError: string | undefined;
  const t0 = performance.now();
  const tStart = t0 + spec.warmupS * 1000;
  const tEnd = tStart + spec.durationS * 1000;
  setTimeout(() => emit({ event: 'measure-start' }), tStart - t0);
  setTimeout(() => emit({ event: 'measure-end' }), tEnd - t0);
  const loop = async (client: grpc.Client): Promise<void> => {
    for (;;) {
      const sent = performance.now();
      if (sent >= tEnd) return;
      await new Promise<void>((resolve) => {
        client.makeUnaryRequest(GRPC_METHOD, (b: Buffer) => b, (b: Buffer) => b, request, { deadline: Date.now() + 10_000 }, (err) => {
          const t = performance.now();
          if (sent >= tStart && sent < tEnd) {
            if (err) {
              errors++;
              firstError ??= err.message;
            } else {
              completed++;
              hist.record((t - sent) * 1000);
            }
          }
          resolve();
        });
      });
    }
  };
  await Promise.all(clients.flatMap((c) => Array.from({ length: spec.streams }, () => loop(c))));
  for (const c of clients) c.close();
  return { spec, completed, errors, ...(firstError ? { firstError } : {}), achievedRps: completed / spec.durationS, latency: hist.summary() };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const spec = JSON.parse(process.argv[2] ?? '{}') as GrpcSpec;
  try {
    emit({ event: 'result', result: await run(spec) });
  } catch (err) {
    emit({ event: 'result', error: (err as Error).message });
  }
  process.exit(0);
}
