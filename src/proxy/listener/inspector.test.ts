import assert from 'node:assert/strict';
import { connect as tlsConnect } from 'node:tls';
import { createServer } from 'node:net';
import { describe, it } from 'node:test';
import { inspect, parseClientHello } from './inspector.ts';

/** The first bytes a real TLS client (node's) sends, with SNI and ALPN. */
async function realClientHello(servername: string, alpn: string[]): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const server = createServer((sock) => {
      sock.once('data', (b: Buffer) => {
        resolve(b);
        sock.destroy();
        server.close();
      });
    });
    server.listen(0, '127.0.0.1', () => {
      const a = server.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      const c = tlsConnect({ host: '127.0.0.1', port, servername, ALPNProtocols: alpn, rejectUnauthorized: false });
      c.on('error', () => undefined);
    });
    server.on('error', reject);
  });
}

describe('listener inspection', () => {
  it('reads SNI and ALPN from a real ClientHello', async () => {
    const hello = await realClientHello('api.example.com', ['h2', 'http/1.1']);
    assert.deepEqual(parseClientHello(hello), { serverName: 'api.example.com', alpn: ['h2', 'http/1.1'] });
    const i = inspect(hello);
    assert.equal(i.transportProtocol, 'tls');
    assert.equal(i.serverName, 'api.example.com');
  });
  it('detects HTTP/1.1, the HTTP/2 preface, and opaque bytes', () => {
    assert.deepEqual(inspect(Buffer.from('GET / HTTP/1.1\r\nhost: a\r\n\r\n')).applicationProtocols, ['http/1.1']);
    const h2 = inspect(Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'));
    assert.equal(h2.h2c, true);
    assert.deepEqual(h2.applicationProtocols, ['h2c']);
    const raw = inspect(Buffer.from([0x4a, 0x00, 0x00, 0x00, 0x0a, 0x35]));
    assert.deepEqual(raw, { transportProtocol: 'raw_buffer', applicationProtocols: [], h2c: false });
  });
});
