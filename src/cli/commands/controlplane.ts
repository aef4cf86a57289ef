// `tsmesh controlplane -f DIR`: runs the control plane (our istiod) in the foreground until stopped:
// ADS on 15010, the HTTP API and debug endpoints on 15014, config from the watched YAML and the API.

import { parseArgs } from 'node:util';
import { ControlPlane, DEFAULT_HTTP_ADDRESS, DEFAULT_XDS_ADDRESS } from '../../controlplane/server.ts';
import type { CommandIO } from '../main.ts';
import { untilSignal } from '../signals.ts';

export const summary = 'Run the control plane (istiod): serve xDS for the YAML under DIR, watched for changes';
export const usage = `Usage: tsmesh controlplane [-f DIR]... [flags]

Serves Envoy xDS (ADS over gRPC) computed from the Kubernetes and Istio YAML under each DIR (watched:
edits are validated and pushed; a file with errors is rejected and its last good version keeps serving)
and from resources applied through the API (tsmesh apply). Runs until stopped (Ctrl-C, SIGTERM).

Flags:
  -f, --filename DIR       YAML files or directories to serve and watch (repeatable)
  -n, --namespace NS       namespace for resources that name none (default "default")
      --xds-address A      host:port of the ADS server (default ${DEFAULT_XDS_ADDRESS})
      --http-address A     host:port of the HTTP API and debug endpoints (default ${DEFAULT_HTTP_ADDRESS})
      --set KEY=VALUE      mesh config override, e.g. meshConfig.accessLogFile=/dev/stdout (repeatable)
      --no-watch           load the files once, do not watch them
      --debounce-ms N      quiet period before a push (default 100)
      --debounce-max-ms N  maximum delay of a push under continuous changes (default 1000)`;

export async function run(args: string[], io: CommandIO): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      filename: { type: 'string', short: 'f', multiple: true },
      namespace: { type: 'string', short: 'n' },
      'xds-address': { type: 'string' },
      'http-address': { type: 'string' },
      set: { type: 'string', multiple: true },
      'no-watch': { type: 'boolean' },
      'debounce-ms': { type: 'string' },
      'debounce-max-ms': { type: 'string' },
    },
  });
  const cp = new ControlPlane({
    configPaths: [...(values.filename ?? []), ...positionals],
    watch: !values['no-watch'],
    xdsAddress: values['xds-address'] ?? DEFAULT_XDS_ADDRESS,
    httpAddress: values['http-address'] ?? DEFAULT_HTTP_ADDRESS,
    meshOverrides: values.set ?? [],
    ...(values.namespace ? { defaultNamespace: values.namespace } : {}),
    debounce: {
      ...(values['debounce-ms'] ? { quietMs: Number(values['debounce-ms']) } : {}),
      ...(values['debounce-max-ms'] ? { maxDelayMs: Number(values['debounce-max-ms']) } : {}),
    },
  });
  await cp.start();
  io.out(`control plane ready: xds on port ${cp.xdsPort}, http on port ${cp.httpPort}`);
  await untilSignal();
  await cp.stop();
  return 0;
}
