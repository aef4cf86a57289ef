// A unary gRPC method over raw bytes (no .proto needed) for tests that run real gRPC servers and clients.

import type * as grpc from '@grpc/grpc-js';

const raw = (b: Buffer): Buffer => b;

/** A service definition with one unary method `name` at `path`, whose messages are plain bytes. */
export function rawUnaryService(name: string, path: string): grpc.ServiceDefinition {
  return { [name]: { path, requestStream: false, responseStream: false, requestSerialize: raw, requestDeserialize: raw, responseSerialize: raw, responseDeserialize: raw } };
}
