// Test fixture run inside a pod namespace: listens on the given [host:]port specs (default host 0.0.0.0; "::" is
// dual-stack) and prints, per connection, one JSON line with the listener port and getOriginalDst's answer
// (or its error code); replies "hello from <port>".

import { createServer } from 'node:net';
import { getOriginalDst } from '../../../src/proxy/listener/original-dst.ts';
import { isMeshError } from '../../../src/common/errors.ts';

const specs = process.argv.slice(2).map((spec) => {
  const i = spec.lastIndexOf(':');
  return i < 0 ? { host: '0.0.0.0', port: Number(spec) } : { host: spec.slice(0, i), port: Number(spec.slice(i + 1)) };
});
const ports = specs.map((s) => s.port);
let listening = 0;
for (const { host, port } of specs) {
  const server = createServer((socket) => {
    let line: Record<string, unknown>;
    try {
      line = { event: 'conn', listener: port, originalDst: getOriginalDst(socket), peer: socket.remoteAddress, uid: process.getuid?.() };
    } catch (err) {
      line = { event: 'conn', listener: port, error: isMeshError(err) ? err.code : String(err), message: String(err) };
    }
    process.stdout.write(JSON.stringify(line) + '\n');
    socket.on('error', () => undefined);
    socket.end(`hello from ${port}`);
  });
  server.listen(port, host, () => {
    listening++;
    if (listening === ports.length) process.stdout.write(JSON.stringify({ event: 'ready', ports }) + '\n');
  });
}
