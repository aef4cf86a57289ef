// Test fixture run inside a pod namespace: `http <port> <name>` answers every request with <name>; `tcp <port>`
// accepts connections and prints "conn <remote>" for each. Prints "ready" once listening; runs until killed.

import { createServer as createHttp } from 'node:http';
import { createServer as createTcp } from 'node:net';

const [kind = 'http', portText = '8080', name = 'server'] = process.argv.slice(2);
const ready = (): void => void process.stdout.write('ready\n');
if (kind === 'http') {
  createHttp((req, res) => {
    req.resume();
    res.setHeader('connection', 'close');
    res.end(name);
  }).listen(Number(portText), '0.0.0.0', ready);
} else {
  createTcp((s) => {
    process.stdout.write(`conn ${s.remoteAddress ?? ''}\n`);
    s.on('error', () => undefined);
    s.end('sink');
  }).listen(Number(portText), '0.0.0.0', ready);
}
