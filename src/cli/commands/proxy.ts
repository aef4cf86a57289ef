// `tsmesh proxy`: runs the sidecar in the foreground (what the injected istio-proxy container runs), in one process
// or, with --concurrency N, as a primary and N worker processes. Accepts the arguments Istio's injector writes.

import { parseArgs } from 'node:util';
import { MeshError } from '../../common/errors.ts';
import { createSidecar, parseConcurrency } from '../../proxy/sidecar.ts';
import { isProxyWorker } from '../../proxy/workers/protocol.ts';
import type { CommandIO } from '../main.ts';
import { untilSignal } from '../signals.ts';

export const summary = 'Run the sidecar proxy (the istio-proxy container): xDS-driven, captures the pod\'s traffic';
export const usage = `Usage: tsmesh proxy [sidecar] [--concurrency N] [--discovery-address HOST:PORT]

Runs the sidecar until stopped (SIGTERM, or POST /quitquitquit on 127.0.0.1:15000). It reads its
identity from the environment the injector sets: POD_NAME, POD_NAMESPACE, INSTANCE_IP, SERVICE_ACCOUNT,
ISTIO_METAJSON_LABELS, ISTIO_META_*, and the control plane from XDS_ADDRESS or PROXY_CONFIG's
discoveryAddress. Listeners: 15001 outbound, 15006 inbound (from xDS); admin 127.0.0.1:15000;
Prometheus 15090; agent 15020; health 15021 (/healthz/ready turns 200 once the first config is applied).

  --concurrency N   Worker processes sharing the listeners (Envoy's worker threads). Default: PROXY_CONFIG's
                    concurrency, else 1: everything in this one process. 0 = one per CPU. With N >= 2 this
                    process keeps the xDS connection, the admin/stats/health servers and readiness, and N
                    workers (each a Node process, about one sidecar's memory each) serve the traffic; connections
                    are handed to them in turn. Stats, /clusters and istio_* metrics add up every worker's.
                    Circuit-breaker limits (DestinationRule connectionPool: maxConnections,
                    http1MaxPendingRequests, http2MaxRequests, maxRetries) hold for the whole sidecar, as
                    Envoy's do across its threads: the workers count in shared memory. Connection pools and
                    outlier detection are per worker, as Envoy's pools are per thread.
  --discovery-address HOST:PORT   The control plane's xDS address (overrides XDS_ADDRESS).

Istio's injected form is accepted as is: \`proxy sidecar --domain X --serviceCluster Y
--proxyLogLevel=warning --proxyComponentLogLevel=misc:error --log_output_level=default:info --concurrency 2\`;
flags tsmesh has no use for are ignored (an unknown one is reported on stderr).`;

/** pilot-agent's flags that tsmesh accepts and has no use for. */
const IGNORED_FLAGS = [
  'domain', 'serviceCluster', 'serviceNode', 'proxyLogLevel', 'proxyComponentLogLevel', 'log_output_level', 'log_as_json', 'log_caller',
  'log_stacktrace_level', 'log_target', 'log_rotate', 'log_rotate_max_age', 'log_rotate_max_backups', 'log_rotate_max_size',
  'templateFile', 'stsPort', 'tokenManagerPlugin', 'outlierLogPath', 'meshConfig', 'vklogv',
] as const;

/** ProxyConfig's concurrency from PROXY_CONFIG (the injector's JSON), when it sets one. */
function proxyConfigConcurrency(env: NodeJS.ProcessEnv): string | undefined {
  if (!env.PROXY_CONFIG) return undefined;
  try {
    const pc = JSON.parse(env.PROXY_CONFIG) as { concurrency?: unknown };
    return typeof pc.concurrency === 'number' || typeof pc.concurrency === 'string' ? String(pc.concurrency) : undefined;
  } catch {
    return undefined; // agentEnvFrom reports a malformed PROXY_CONFIG
  }
}

/** What `tsmesh proxy`'s arguments ask for: the worker count, the environment, and the flags it does not know. */
export function proxyOptions(args: string[], baseEnv: NodeJS.ProcessEnv = process.env): { concurrency: number; env: NodeJS.ProcessEnv; unknown: string[] } {
  const options: Record<string, { type: 'string' | 'boolean' }> = { 'discovery-address': { type: 'string' }, concurrency: { type: 'string' } };
  for (const f of IGNORED_FLAGS) options[f] = { type: f === 'log_as_json' ? 'boolean' : 'string' };
  const { values, positionals, tokens } = parseArgs({ args, options, strict: false, allowPositionals: true, tokens: true });
  const mode = positionals[0];
  if (mode !== undefined && mode !== 'sidecar') {
    throw new MeshError('MESH_ERR_CLI_USAGE', `tsmesh proxy runs sidecars only, not "${mode}" (gateways are not supported); run \`tsmesh proxy --help\``);
  }
  const unknown = tokens.flatMap((t) => (t.kind === 'option' && !(t.name in options) ? [t.rawName] : []));
  const env = { ...baseEnv };
  if (typeof values['discovery-address'] === 'string') env.XDS_ADDRESS = values['discovery-address'];
  const flag = values.concurrency;
  if (typeof flag === 'boolean' || (flag !== undefined && !/^\s*\d+\s*$/.test(flag))) {
    throw new MeshError('MESH_ERR_CLI_USAGE', `--concurrency needs a whole number (0 = one worker per CPU)${typeof flag === 'string' ? `, not ${JSON.stringify(flag)}` : ''}`);
  }
  return { concurrency: parseConcurrency(flag ?? proxyConfigConcurrency(env)), env, unknown };
}

export async function run(args: string[], io: CommandIO): Promise<number> {
  if (isProxyWorker()) {
    const { runWorker } = await import('../../proxy/workers/worker.ts');
    await runWorker();
    return 0;
  }
  const { concurrency, env, unknown } = proxyOptions(args);
  for (const flag of unknown) io.err(`tsmesh proxy: ignoring unknown flag ${flag}`);
  const sidecar = await createSidecar({ concurrency, env });
  await sidecar.start();
  io.err(`tsmesh proxy: ${sidecar.env.identity.podName}.${sidecar.env.identity.namespace} connecting to ${sidecar.env.discoveryAddress}${concurrency > 1 ? ` with ${concurrency} workers` : ''}`);
  await untilSignal();
  await sidecar.stop();
  return 0;
}
