// Every response the proxy makes up is built here (Envoy's local replies): the status, Envoy's body
// text and RESPONSE_CODE_DETAILS, the access-log flag, and an `x-tsmesh-error` header that names the
// cause and the configuration behind it, so no 503 goes unexplained.

import type { ResponseFlag, StreamInfo } from '../stream-info.ts';
import { addFlag } from '../stream-info.ts';

export const ERROR_HEADER = 'x-tsmesh-error';

export interface LocalReply {
  status: number;
  /** Envoy's %RESPONSE_CODE_DETAILS% (no spaces). */
  details: string;
  flag?: ResponseFlag;
  /** The body Envoy would send (plain text). */
  body: string;
  /** Why, in words, naming the config object: goes into x-tsmesh-error. */
  explain: string;
  headers?: Record<string, string>;
}

const detailsToken = (s: string): string => s.replace(/\s+/g, '_');

export const replies = {
  noRoute: (authority: string, routeConfig: string): LocalReply => ({
    status: 404, details: 'route_not_found', flag: 'NR', body: '',
    explain: `no route for host "${authority}" in route configuration "${routeConfig}" (no VirtualService or service matches this host and path)`,
  }),
  noCluster: (cluster: string, route: string): LocalReply => ({
    status: 503, details: 'cluster_not_found', flag: 'NC', body: '',
    explain: `route "${route}" sends to cluster "${cluster}" which this proxy was not given (a VirtualService names a host, port or subset that has no cluster)`,
  }),
  noHealthyUpstream: (cluster: string, why: string): LocalReply => ({
    status: 503, details: 'no_healthy_upstream', flag: 'UH', body: 'no healthy upstream',
    explain: `no healthy endpoint in cluster "${cluster}": ${why}`,
  }),
  overflow: (cluster: string, what: string): LocalReply => ({
    status: 503, details: 'upstream_reset_before_response_started{overflow}', flag: 'UO',
    body: 'upstream connect error or disconnect/reset before headers. reset reason: overflow',
    explain: `circuit breaker open on cluster "${cluster}": ${what} (DestinationRule trafficPolicy.connectionPool)`,
  }),
  connectFailure: (cluster: string, host: string, reason: string): LocalReply => ({
    status: 503, details: `upstream_reset_before_response_started{connection_failure,${detailsToken(reason)}}`, flag: 'UF',
    body: `upstream connect error or disconnect/reset before headers. reset reason: connection failure, transport failure reason: ${reason}`,
    explain: `cannot connect to ${host} of cluster "${cluster}": ${reason}`,
  }),
  reset: (cluster: string, host: string, reason: string): LocalReply => ({
    status: 503, details: `upstream_reset_before_response_started{remote_reset}`, flag: 'UR',
    body: `upstream connect error or disconnect/reset before headers. reset reason: remote reset`,
    explain: `${host} of cluster "${cluster}" reset the request before answering: ${reason}`,
  }),
  timeout: (cluster: string, ms: number, route: string): LocalReply => ({
    status: 504, details: 'upstream_response_timeout', flag: 'UT', body: 'upstream request timeout',
    explain: `no response from cluster "${cluster}" within ${ms} ms (timeout of route "${route}")`,
  }),
  faultAbort: (status: number, route: string): LocalReply => ({
    status, details: 'fault_filter_abort', flag: 'FI', body: 'fault filter abort',
    explain: `aborted by the fault injection of route "${route}" (VirtualService http[].fault.abort)`,
  }),
  blackhole: (status: number, route: string): LocalReply => ({
    status, details: 'direct_response', body: '',
    explain: route === 'block_all' ? 'host is not in the service registry and outboundTrafficPolicy is REGISTRY_ONLY' : `direct response of route "${route}"`,
  }),
  rateLimited: (route: string): LocalReply => ({
    status: 429, details: 'local_rate_limited', flag: 'RL', body: 'local_rate_limited',
    explain: `local rate limit of route "${route}" exceeded`,
  }),
  badRequest: (why: string): LocalReply => ({ status: 400, details: 'http1.codec_error', flag: 'DPE', body: 'Bad Request', explain: why }),
} as const;

/** Records the reply in the stream info; the caller writes status, headers and body. */
export function noteLocalReply(info: StreamInfo, reply: LocalReply): Record<string, string> {
  info.responseCode = reply.status;
  info.responseCodeDetails = reply.details;
  if (reply.flag) addFlag(info, reply.flag);
  const headers: Record<string, string> = { [ERROR_HEADER]: `${reply.flag ?? 'LOCAL'} ${reply.explain}`, ...(reply.headers ?? {}) };
  if (reply.body) {
    headers['content-type'] = 'text/plain';
  }
  return headers;
}
