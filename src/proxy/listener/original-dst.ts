// The original destination of a connection redirected by the capture rules (SO_ORIGINAL_DST via the native addon).
// Throws MESH_ERR_ORIGDST_UNAVAILABLE when the addon is not built or not on Linux, MESH_ERR_ORIGDST_LOOKUP when the lookup fails.

import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import { MeshError } from '../../common/errors.ts';

export interface OriginalDst {
  address: string;
  port: number;
  family: 4 | 6;
}

/** The addon's one function: getsockopt(SO_ORIGINAL_DST) on a file descriptor. */
export interface OriginalDstAddon { originalDst(fd: number): OriginalDst }

/** Where `npm ci` (the package's install script) puts the addon, relative to the package root. */
export const ADDON_PATH = 'build/Release/original_dst.node';
const BUILD_HINT = 'build it with `npm rebuild` in the tsmesh folder (needs python3, make and g++: `apt-get install -y python3 make g++`)';

let loaded: OriginalDstAddon | Error | undefined;

/**
 * Loads the addon from `path` (absolute; default the package's build/Release/original_dst.node).
 * Throws MESH_ERR_ORIGDST_UNAVAILABLE off Linux or when the file is missing or does not load.
 */
export function loadOriginalDstAddon(path: string = new URL(`../../../${ADDON_PATH}`, import.meta.url).pathname): OriginalDstAddon {
  if (process.platform !== 'linux') {
    throw new MeshError('MESH_ERR_ORIGDST_UNAVAILABLE', `SO_ORIGINAL_DST needs Linux (this is ${process.platform}): the sidecar's outbound capture runs only on Linux`);
  }
  try {
    return createRequire(import.meta.url)(path) as OriginalDstAddon;
  } catch (err) {
    const why = err instanceof Error ? err.message.split('\n')[0] ?? '' : String(err);
    throw new MeshError('MESH_ERR_ORIGDST_UNAVAILABLE', `the SO_ORIGINAL_DST addon ${path} could not be loaded (${why}); ${BUILD_HINT}`, { cause: err });
  }
}

function addon(): OriginalDstAddon {
  if (loaded === undefined) {
    try {
      loaded = loadOriginalDstAddon();
    } catch (err) {
      loaded = err as Error;
    }
  }
  if (loaded instanceof Error) throw loaded;
  return loaded;
}

/** True when getOriginalDst can work here (Linux and the addon built). */
export function originalDstAvailable(): boolean {
  try {
    addon();
    return true;
  } catch {
    return false;
  }
}

function lookup(fd: number, context: string): OriginalDst {
  const a = addon();
  try {
    return a.originalDst(fd);
  } catch (err) {
    const e = err as { message?: string };
    throw new MeshError('MESH_ERR_ORIGDST_LOOKUP', `${e.message ?? String(err)}${context}`, { cause: err });
  }
}

/** The original destination of an accepted, iptables-redirected file descriptor. */
export function originalDstOfFd(fd: number): OriginalDst {
  return lookup(fd, '');
}

/**
 * The address and port the client connected to before the capture rules redirected it to this
 * listener (e.g. 10.96.12.7:9080 for a connection accepted on 15001). For a connection that was not
 * redirected it throws MESH_ERR_ORIGDST_LOOKUP (the kernel has no NAT record for it).
 */
export function getOriginalDst(socket: Socket): OriginalDst {
  addon();
  const fd = (socket as unknown as { _handle?: { fd?: unknown } | null })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) {
    throw new MeshError('MESH_ERR_ORIGDST_LOOKUP', 'the socket has no file descriptor (it is closed, or not a TCP socket)');
  }
  return lookup(fd, ` (peer ${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'})`);
}
