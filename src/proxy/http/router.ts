// The router's upstream half: choose a host, send the request, and retry or time out as the route
// says (retry_on, num_retries, per-try timeout, backoff, previous-hosts predicate, max_retries circuit
// breaker). Failures end as a local reply with their response flag; nothing here throws.

import type { Readable } from 'node:stream';
import type { ProxyContext } from '../context.ts';
import { addFlag, type StreamInfo } from '../stream-info.ts';
import { Cancellation } from '../upstream/cancel.ts';
import { UpstreamError, type AbortSignalLike, type Host, type LbContext, type OutgoingHeaders, type UpstreamCluster, type UpstreamHttpResponse } from '../upstream/types.ts';
import { replies, type LocalReply } from './local-reply.ts';
import type { RetryPolicy, RouterAction } from './route-action.ts';

export const ATTEMPT_COUNT = 'x-envoy-attempt-count';

export interface UpstreamCall {
  ctx: ProxyContext;
  action: RouterAction;
  clusterName: string;
  upstream: UpstreamCluster;
  method: string;
  path: string;
  headers: OutgoingHeaders;
  /** Buffer: replayable, retries allowed. Readable: streamed, no retry once sent. */
  body: Buffer | Readable | null;
  lb: LbContext;
  info: StreamInfo;
  /** Aborted when the downstream goes away. */
  downstream: AbortSignalLike;
}

export type UpstreamOutcome =
  | { kind: 'response'; response: UpstreamHttpResponse; host: Host; attempts: number }
  | { kind: 'reply'; reply: LocalReply; attempts: number };

const GRPC_RETRY: Record<string, string> = { '1': 'cancelled', '4': 'deadline-exceeded', '13': 'internal', '8': 'resource-exhausted', '14': 'unavailable' };

/** True when a response should be retried under the policy. */
export function retriableResponse(p: RetryPolicy, status: number, grpcStatus: string | undefined): boolean {
  const on = p.retryOn;
  if (status >= 500 && on.has('5xx')) return true;
  if ((status === 502 || status === 503 || status === 504) && on.has('gateway-error')) return true;
  if (status === 409 && on.has('retriable-4xx')) return true;
  if (on.has('retriable-status-codes') && p.retriableStatusCodes.has(status)) return true;
  if (on.has(String(status))) return true;
  if (grpcStatus !== undefined) {
    const name = GRPC_RETRY[grpcStatus];
    if (name && on.has(name)) return true;
  }
  return false;
}

/** True when a failure without a response should be retried under the policy. */
export function retriableFailure(p: RetryPolicy, err: UpstreamError | 'per_try_timeout'): boolean {
  const on = p.retryOn;
  if (on.has('5xx') || on.has('gateway-error')) return err === 'per_try_timeout' || err.kind !== 'overflow';
  if (err === 'per_try_timeout') return on.has('reset');
  switch (err.kind) {
    case 'connect_failure':
    case 'connect_timeout':
      return on.has('connect-failure') || on.has('reset');
    case 'reset':
      return on.has('reset') || on.has('refused-stream');
    case 'overflow':
      return false;
    default:
      return on.has('reset');
  }
}

function describeHostless(upstream: UpstreamCluster): string {
  const n = upstream.hosts.length;
  if (n === 0) return 'the cluster has no endpoints (no pod matches the service selector or the DestinationRule subset labels)';
  return `all ${n} endpoint(s) are unhealthy or ejected by outlier detection`;
}

function sleep(ms: number, signal: AbortSignalLike): Promise<void> {
  return new Promise((resolve) => {
    if (ms <= 0 || signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

function replyFor(err: UpstreamError, cluster: string): LocalReply {
  const host = err.host?.key ?? '-';
  switch (err.kind) {
    case 'overflow':
    case 'retry_overflow':
      return replies.overflow(cluster, err.detail);
    case 'no_healthy_upstream':
      return replies.noHealthyUpstream(cluster, err.detail);
    case 'reset':
    case 'protocol_error':
      return replies.reset(cluster, host, err.detail);
    default:
      return replies.connectFailure(cluster, host, err.detail);
  }
}

/** Sends the request upstream with the route's retries and timeouts. */
export async function callUpstream(call: UpstreamCall): Promise<UpstreamOutcome> {
  const { action, upstream, info, ctx } = call;
  const policy = action.retry;
  const replayable = call.body === null || Buffer.isBuffer(call.body);
  const maxRetries = policy && replayable ? Math.max(0, policy.numRetries) : 0;
  const perTryMs = policy ? policy.perTryTimeoutMs : 0;
  // Without a route or per-try timeout, only the downstream going away aborts an attempt: it is the attempt's
  // signal. With one, each attempt gets a Cancellation that the downstream, the route timer and its own timer abort.
  const timers = action.timeoutMs > 0 || perTryMs > 0;
  let current: Cancellation | undefined;
  let timedOut = false;
  /** Wakes a backoff sleep early (route timeout, downstream gone) when there are timers. */
  let backoff: Cancellation | undefined;
  const onDownstreamAbort = timers
    ? (): void => {
        current?.abort(new Error('downstream gone'));
        backoff?.abort(new Error('downstream gone'));
      }
    : undefined;
  if (onDownstreamAbort) call.downstream.addEventListener('abort', onDownstreamAbort, { once: true });
  const timer = action.timeoutMs > 0
    ? setTimeout(() => {
        timedOut = true;
        backoff?.abort(new Error('route timeout'));
        current?.abort(new Error('route timeout'));
      }, action.timeoutMs)
    : undefined;
  let tried: Set<string> | undefined;
  let retryReserved = false;
  let lastReply: LocalReply | undefined;
  let lastResponse: { response: UpstreamHttpResponse; host: Host } | undefined;
  try {
    for (let attempt = 1; ; attempt++) {
      const lb: LbContext = tried !== undefined ? { ...call.lb, previousHosts: tried } : call.lb;
      const host = upstream.chooseHost(lb);
      if (!host) return { kind: 'reply', reply: replies.noHealthyUpstream(call.clusterName, upstream.explainNoHost?.() ?? describeHostless(upstream)), attempts: attempt };
      info.upstreamHost = host.key;
      // the headers object is this request's own (the connection manager built it): the count is set in place
      if (action.attemptCountHeader) call.headers[ATTEMPT_COUNT] = attempt === 1 ? '1' : String(attempt);
      let signal: AbortSignalLike = call.downstream;
      let perTryTimedOut = false;
      let perTryTimer: NodeJS.Timeout | undefined;
      if (timers) {
        const attemptSignal = new Cancellation();
        current = attemptSignal;
        signal = attemptSignal;
        if (timedOut || call.downstream.aborted) attemptSignal.abort(new Error(timedOut ? 'route timeout' : 'downstream gone'));
        if (perTryMs > 0) {
          perTryTimer = setTimeout(() => {
            perTryTimedOut = true;
            attemptSignal.abort(new Error('per-try timeout'));
          }, perTryMs);
        }
      }
      const started = ctx.now();
      let failure: UpstreamError | 'per_try_timeout' | undefined;
      try {
        const response = await upstream.request(host, { method: call.method, path: call.path, headers: call.headers, body: call.body, signal });
        info.upstreamServiceTimeMs = ctx.now() - started;
        if (response.localAddress) info.upstreamLocalAddress = response.localAddress;
        upstream.report(host, { kind: 'response', status: response.statusCode });
        const grpcStatus = response.headers['grpc-status'];
        const retry = policy && attempt <= maxRetries && retriableResponse(policy, response.statusCode, typeof grpcStatus === 'string' ? grpcStatus : undefined);
        if (!retry) {
          if (attempt > 1 && policy && retriableResponse(policy, response.statusCode, typeof grpcStatus === 'string' ? grpcStatus : undefined)) addFlag(info, 'URX');
          return { kind: 'response', response, host, attempts: attempt };
        }
        response.body.resume(); // drain and drop the failed attempt's body
        lastResponse = { response, host };
      } catch (err) {
        if (timedOut) return { kind: 'reply', reply: replies.timeout(call.clusterName, action.timeoutMs, action.routeName), attempts: attempt };
        if (call.downstream.aborted) return { kind: 'reply', reply: { status: 0, details: 'downstream_remote_disconnect', flag: 'DC', body: '', explain: 'the client went away' }, attempts: attempt };
        if (perTryTimedOut) {
          failure = 'per_try_timeout';
          upstream.report(host, { kind: 'timeout' });
          lastReply = replies.timeout(call.clusterName, perTryMs, action.routeName);
        } else {
          const ue = err instanceof UpstreamError ? err : new UpstreamError('reset', (err as Error).message, host);
          failure = ue;
          if (ue.kind === 'connect_failure' || ue.kind === 'connect_timeout') upstream.report(host, { kind: 'connect_failure' });
          else if (ue.kind === 'reset') upstream.report(host, { kind: 'reset' });
          if (ue.detail) info.upstreamTransportFailureReason = ue.detail;
          lastReply = replyFor(ue, call.clusterName);
        }
      } finally {
        if (perTryTimer) clearTimeout(perTryTimer);
        current = undefined;
      }
      // decide whether to try again
      const canRetry = policy !== undefined && attempt <= maxRetries && (failure === undefined || retriableFailure(policy, failure));
      if (!canRetry) {
        if (attempt > 1) addFlag(info, 'URX');
        if (lastReply && failure !== undefined) return { kind: 'reply', reply: lastReply, attempts: attempt };
        if (lastResponse) return { kind: 'response', ...lastResponse, attempts: attempt };
        return { kind: 'reply', reply: lastReply ?? replies.reset(call.clusterName, host.key, 'unknown'), attempts: attempt };
      }
      if (!retryReserved) {
        if (!upstream.tryRetry()) {
          addFlag(info, 'UO');
          if (lastResponse && failure === undefined) return { kind: 'response', ...lastResponse, attempts: attempt };
          return { kind: 'reply', reply: lastReply ?? replies.overflow(call.clusterName, 'max_retries reached'), attempts: attempt };
        }
        retryReserved = true;
      }
      if (policy.previousHosts) (tried ??= new Set()).add(host.key);
      lastResponse = failure === undefined ? lastResponse : undefined;
      info.retries = attempt;
      const base = policy.baseIntervalMs;
      const cap = Math.min(policy.maxIntervalMs, base * 2 ** (attempt - 1));
      if (timers) backoff = new Cancellation();
      await sleep(Math.floor(ctx.random() * cap), backoff ?? call.downstream);
      backoff = undefined;
      if (timedOut) return { kind: 'reply', reply: replies.timeout(call.clusterName, action.timeoutMs, action.routeName), attempts: attempt };
    }
  } finally {
    if (timer) clearTimeout(timer);
    if (onDownstreamAbort) call.downstream.removeEventListener('abort', onDownstreamAbort);
    if (retryReserved) upstream.releaseRetry();
  }
}
