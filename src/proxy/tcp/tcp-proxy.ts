// The TCP proxy network filter: picks a (weighted) cluster, connects to a host of it and pipes bytes
// both ways, counting them; a cluster with no healthy host (the BlackHoleCluster) closes the
// connection, as Envoy resets it. Errors on either side end both; nothing throws.

import type { Socket } from 'node:net';
import type { ProxyContext } from '../context.ts';
import type { CompiledListener, TcpChain } from '../config/listeners.ts';
import { addFlag, newStreamInfo } from '../stream-info.ts';
import { UpstreamError } from '../upstream/types.ts';

export interface TcpConnection {
  listener: CompiledListener;
  chain: TcpChain;
  destination: { address: string; port: number };
  serverName?: string;
}

export function proxyTcp(ctx: ProxyContext, socket: Socket, conn: TcpConnection): void {
  const info = newStreamInfo(conn.listener.direction, 'tcp', ctx.now());
  info.downstreamRemoteAddress = `${socket.remoteAddress ?? ''}:${socket.remotePort ?? 0}`;
  info.downstreamLocalAddress = `${conn.destination.address}:${conn.destination.port}`;
  info.requestProtocolLabel = 'tcp';
  if (conn.serverName) info.requestedServerName = conn.serverName;
  if (conn.listener.direction === 'outbound') info.source = ctx.identity.workload;
  else info.destination = ctx.identity.workload;
  let reported = false;
  const report = (): void => {
    if (reported) return;
    reported = true;
    // the sockets count their own bytes (no 'data' listener per chunk): what the client sent us, what we sent it
    info.bytesReceived = socket.bytesRead;
    info.bytesSent = socket.bytesWritten;
    info.endTime = ctx.now();
    ctx.report(info, conn.chain.accessLog);
  };
  const total = conn.chain.clusters.reduce((n, c) => n + c.weight, 0);
  let x = ctx.random() * total;
  let pick = conn.chain.clusters[0];
  for (const c of conn.chain.clusters) {
    if (x < c.weight) {
      pick = c;
      break;
    }
    x -= c.weight;
  }
  const name = pick?.name ?? '';
  info.upstreamCluster = name;
  const upstream = ctx.clusters.get(name);
  socket.on('error', () => undefined);
  if (!upstream) {
    addFlag(info, 'NC');
    socket.destroy();
    report();
    return;
  }
  if (upstream.info.service) info.destinationService = upstream.info.service;
  const host = upstream.chooseHost({ originalDst: conn.destination });
  if (!host) {
    addFlag(info, 'UH');
    socket.resetAndDestroy();
    report();
    return;
  }
  info.upstreamHost = host.key;
  socket.pause();
  upstream.connect(host).then(
    (up: Socket) => {
      info.upstreamLocalAddress = `${up.localAddress ?? ''}:${up.localPort ?? 0}`;
      ctx.reportTcpOpen?.(info);
      socket.pipe(up);
      up.pipe(socket);
      socket.resume();
      const end = (): void => {
        up.destroy();
        socket.destroy();
        report();
      };
      up.on('error', () => {
        addFlag(info, 'UR');
        end();
      });
      up.on('close', end);
      socket.on('close', end);
      if (conn.chain.idleTimeoutMs) {
        socket.setTimeout(conn.chain.idleTimeoutMs, end);
      }
    },
    (err: unknown) => {
      addFlag(info, err instanceof UpstreamError ? err.flag : 'UF');
      if (err instanceof UpstreamError) info.upstreamTransportFailureReason = err.detail;
      upstream.report(host, { kind: 'connect_failure' });
      socket.destroy();
      report();
    },
  );
}
