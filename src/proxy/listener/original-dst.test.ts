import assert from 'node:assert/strict';
import { closeSync, openSync } from 'node:fs';
import { createServer, connect, type Socket } from 'node:net';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import { isMeshError } from '../../common/errors.ts';
import { getOriginalDst, loadOriginalDstAddon, originalDstAvailable, originalDstOfFd } from './original-dst.ts';

const linux = process.platform === 'linux';
const code = (c: string) => (e: unknown): boolean => isMeshError(e) && e.code === c;

describe('original destination (SO_ORIGINAL_DST addon)', () => {
  it('explains how to build the addon when it is missing', () => {
    assert.throws(() => loadOriginalDstAddon('/nonexistent/original_dst.node'), (e: unknown) => {
      assert.ok(isMeshError(e) && e.code === 'MESH_ERR_ORIGDST_UNAVAILABLE', String(e));
      assert.match(e.message, linux ? /could not be loaded.*npm rebuild.*python3, make and g\+\+/ : /needs Linux/);
      return true;
    });
  });

  it('is built by npm ci and loads on Linux', { skip: !linux }, () => {
    assert.equal(originalDstAvailable(), true, 'run `npm rebuild` to build build/Release/original_dst.node');
    assert.equal(typeof loadOriginalDstAddon().originalDst, 'function');
  });

  it('rejects what is not an open TCP socket with MESH_ERR_ORIGDST_LOOKUP', { skip: !linux }, () => {
    const fd = openSync(new URL(import.meta.url), 'r');
    try {
      assert.throws(() => originalDstOfFd(fd), (e: unknown) => code('MESH_ERR_ORIGDST_LOOKUP')(e) && /non-socket/i.test((e as Error).message));
    } finally {
      closeSync(fd);
    }
    assert.throws(() => originalDstOfFd(-1), code('MESH_ERR_ORIGDST_LOOKUP'));
    assert.throws(() => loadOriginalDstAddon().originalDst('3' as unknown as number), TypeError);
  });

  it('on a connection that was not redirected: the real local address, or a clear error when the kernel tracks none', { skip: !linux }, async () => {
    const accepted: Socket[] = [];
    const server = createServer((s) => accepted.push(s));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as { port: number }).port;
    const client = connect(port, '127.0.0.1');
    await once(client, 'connect');
    while (accepted.length === 0) await new Promise((r) => setTimeout(r, 5));
    const socket = accepted[0] as Socket;
    try {
      // With conntrack active in this namespace the original destination is the address used;
      // without it the kernel has no record and the error says the connection was not redirected.
      const dst = getOriginalDst(socket);
      assert.deepEqual(dst, { address: '127.0.0.1', port, family: 4 });
    } catch (err) {
      assert.ok(code('MESH_ERR_ORIGDST_LOOKUP')(err), String(err));
      assert.match((err as Error).message, /not redirected by iptables.*peer 127\.0\.0\.1:\d+/);
    }
    socket.destroy();
    await once(socket, 'close');
    assert.throws(() => getOriginalDst(socket), (e: unknown) => code('MESH_ERR_ORIGDST_LOOKUP')(e) && /no file descriptor/.test((e as Error).message));
    client.destroy();
    server.close();
  });
});
