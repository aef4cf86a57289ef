// Test fixture run inside a pod namespace: listens on the given ports and prints, per connection, one JSON
// line with the listener port and getOriginalDst's answer (or its error code); replies "hello from <port>".

import { createServer } from 'node:net';
import { getOriginalDst } from '../../../src/proxy/listener/original-dst.ts';
import { isMeshError } from '../../../src/common/errors.ts';

const ports = process.argv.slice(2).map(Number);
let listening = 0;
for (const port of ports) {
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
  server.listen(port, '0.0.0.0', () => {
    listening++;
    if (listening === ports.length) process.stdout.write(JSON.stringify({ event: 'ready', ports }) + '\n');
  });
}
