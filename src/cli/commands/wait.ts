// `tsmesh wait`: pilot-agent's wait, the postStart hook of holdApplicationUntilProxyStarts: polls the sidecar's
// readiness URL until 200 and exits 0, or exits 1 (MESH_ERR_PROXY_NOT_READY) after --timeoutSeconds; bad flags exit 2.

import { parseArgs } from 'node:util';
import { MeshError } from '../../common/errors.ts';
import { DEFAULT_READY_URL, waitUntilReady } from '../../proxy/wait-ready.ts';
import type { CommandIO } from '../main.ts';

export const summary = 'Wait until the sidecar is ready (the postStart hook of holdApplicationUntilProxyStarts)';
export const usage = `Usage: tsmesh wait [--timeoutSeconds 60] [--periodMillis 500] [--requestTimeoutMillis 500] [--url URL]

Polls the sidecar's readiness URL (default ${DEFAULT_READY_URL}) every --periodMillis until it
answers 200, then exits 0; exits 1 after --timeoutSeconds with the last error. Run inside the pod (the
injector adds it as the istio-proxy container's postStart hook; \`tsmesh up\` runs that hook in the pod's
network namespace before it starts the next container).

Flags:
      --timeoutSeconds N          give up after N seconds (default 60)
      --periodMillis N            wait N ms before each attempt (default 500)
      --requestTimeoutMillis N    each request's timeout (default 500)
      --url URL                   the readiness URL (default ${DEFAULT_READY_URL})`;

function count(flag: string, v: string | undefined, fallback: number): number {
  if (v === undefined) return fallback;
  if (!/^\d+$/.test(v)) throw new MeshError('MESH_ERR_CLI_USAGE', `wait: --${flag} ${JSON.stringify(v)}: expected a whole number`);
  return Number(v);
}

export async function run(args: string[], io: CommandIO): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      allowPositionals: false,
      options: { timeoutSeconds: { type: 'string' }, periodMillis: { type: 'string' }, requestTimeoutMillis: { type: 'string' }, url: { type: 'string' } },
    }));
  } catch (err) {
    throw new MeshError('MESH_ERR_CLI_USAGE', `wait: ${(err as Error).message}\n${usage}`);
  }
  const timeoutSeconds = count('timeoutSeconds', values.timeoutSeconds, 60);
  io.out(`Waiting for the proxy to be ready (timeout: ${timeoutSeconds} seconds)...`);
  await waitUntilReady({
    ...(values.url !== undefined ? { url: values.url } : {}),
    timeoutMs: timeoutSeconds * 1000,
    periodMs: count('periodMillis', values.periodMillis, 500),
    requestTimeoutMs: count('requestTimeoutMillis', values.requestTimeoutMillis, 500),
  });
  io.out('The proxy is ready!');
  return 0;
}
