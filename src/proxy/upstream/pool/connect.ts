// Opens one TCP (or unix socket) connection to a host within connect_timeout, bound to the cluster's
// source address, with TCP_NODELAY and keep-alive; fails with UpstreamError connect_failure
// ("delayed connect error: 111", Envoy's wording with the errno) or connect_timeout.

import { channel } from 'node:diagnostics_channel';
import { connect as netConnect, type Socket } from 'node:net';
import { constants } from 'node:os';
import type { Clock } from '../clock.ts';
import type { HostImpl } from '../host.ts';
import { UpstreamError } from '../types.ts';
import { abortError } from './types.ts';

/** `tsmesh:upstream:connected` events: {cluster, host, localAddress}. */
export const connectedChannel = channel('tsmesh:upstream:connected');

export interface ConnectOptions {
  readonly cluster: string;
  readonly timeoutMs: number;
  readonly clock: Clock;
  readonly localAddress?: string;
  readonly keepAliveSec?: number;
  readonly signal?: AbortSignal;
}

/** Envoy's transport failure reason for a socket error: "delayed connect error: <errno>". */
export function connectErrorDetail(err: NodeJS.ErrnoException): string {
  const code = err.code ?? '';
  const errno = (constants.errno as Record<string, number | undefined>)[code] ?? (typeof err.errno === 'number' ? Math.abs(err.errno) : undefined);
  return errno !== undefined ? `delayed connect error: ${errno}` : `connect error: ${err.message}`;
}

export function socketLocalAddress(s: Socket): string | undefined {
  const a = s.localAddress;
  if (!a) return undefined;
  return a.includes(':') ? `[${a}]:${s.localPort ?? 0}` : `${a}:${s.localPort ?? 0}`;
}

export function connectSocket(host: HostImpl, opts: ConnectOptions): Promise<Socket> {
  return new Promise((resolve, reject) => {
    if (opts.signal?.aborted) {
      reject(abortError(opts.signal.reason));
      return;
    }
    const socket =
      host.pipe !== undefined
        ? netConnect({ path: host.pipe })
        : netConnect({ host: host.address, port: host.port, ...(opts.localAddress ? { localAddress: opts.localAddress } : {}), noDelay: true });
    let settled = false;
    const done = (err?: unknown): void => {
      if (settled) return;
      settled = true;
      timer.cancel();
      socket.off('connect', onConnect);
      socket.off('error', onError);
      opts.signal?.removeEventListener('abort', onAbort);
      if (err !== undefined) {
        socket.destroy();
        reject(err instanceof Error ? err : abortError(err));
        return;
      }
      resolve(socket);
    };
    const onConnect = (): void => {
      if (opts.keepAliveSec !== undefined) socket.setKeepAlive(true, opts.keepAliveSec * 1000);
      if (connectedChannel.hasSubscribers) connectedChannel.publish({ cluster: opts.cluster, host: host.key, localAddress: socketLocalAddress(socket) });
      done();
    };
    const onError = (err: NodeJS.ErrnoException): void => done(new UpstreamError('connect_failure', connectErrorDetail(err), host));
    const onAbort = (): void => done(opts.signal?.reason);
    const timer = opts.clock.setTimer(opts.timeoutMs, () => done(new UpstreamError('connect_timeout', 'connection timeout', host)));
    socket.once('connect', onConnect);
    socket.once('error', onError);
    opts.signal?.addEventListener('abort', onAbort, { once: true });
  });
}
