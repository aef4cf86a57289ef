// Test fixture run inside a pod namespace: connects to <host> <port>, prints one JSON line with what the
// server replied ({ reply }) or the connect error code ({ error }), and exits 0.

import { connect } from 'node:net';

const [host = '', portText = ''] = process.argv.slice(2);
const socket = connect({ host, port: Number(portText) });
let reply = '';
const timer = setTimeout(() => finish({ error: 'TIMEOUT' }), 8000);
function finish(result: Record<string, unknown>): void {
  clearTimeout(timer);
  process.stdout.write(JSON.stringify({ ...result, uid: process.getuid?.() }) + '\n');
  socket.destroy();
}
socket.setEncoding('utf8');
socket.on('data', (d: string) => (reply += d));
socket.on('end', () => finish({ reply }));
socket.on('error', (err: NodeJS.ErrnoException) => finish({ error: err.code ?? err.message }));
