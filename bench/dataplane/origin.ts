// The benchmark's origin for what nginx cannot serve: a gRPC unary service (@grpc/grpc-js, raw bytes, a 1 KB answer) and a TCP echo server; ports from argv (default 9000 and 9100). Exits 1 when a port cannot be bound.

import grpc from '@grpc/grpc-js';
import net from 'node:net';

export const GRPC_METHOD = '/tsmesh.bench.Bench/Unary';
export const RESPONSE_BYTES = 1024;

const raw = { serialize: (b: Buffer): Buffer => b, deserialize: (b: Buffer): Buffer => b };

/** The service definition both ends use: bytes in, bytes out, no .proto. */
export const BENCH_SERVICE: grpc.ServiceDefinition = {
  Unary: {
    path: GRPC_METHOD,
    requestStream: false,
    responseStream: false,
    requestSerialize: raw.serialize,
    requestDeserialize: raw.deserialize,
    responseSerialize: raw.serialize,
    responseDeserialize: raw.deserialize,
  },
};

async function main(): Promise<void> {
  const grpcPort = Number(process.argv[2] ?? 9000);
  const tcpPort = Number(process.argv[3] ?? 9100);
  const answer = Buffer.alloc(RESPONSE_BYTES, 0x62);
  const server = new grpc.Server({ 'grpc.max_concurrent_streams': 1000 });
  server.addService(BENCH_SERVICE, {
    Unary(_call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) {
      callback(null, answer);
    },
  });
  await new Promise<void>((resolve, reject) => server.bindAsync(`0.0.0.0:${grpcPort}`, grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve())));
  const echo = net.createServer((s) => {
    s.setNoDelay(true);
    s.on('error', () => s.destroy());
    s.pipe(s);
  });
  await new Promise<void>((resolve, reject) => {
    echo.once('error', reject);
    echo.listen(tcpPort, '0.0.0.0', () => resolve());
  });
  process.stdout.write(`origin: gRPC on ${grpcPort}, TCP echo on ${tcpPort}\n`);
  process.on('SIGTERM', () => process.exit(0));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((err: Error) => {
    process.stderr.write(`origin: ${err.message}\n`);
    process.exit(1);
  });
}
