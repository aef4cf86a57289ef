// `tsmesh proxy`: runs the sidecar in the foreground (what the injected istio-proxy container runs).
// Its identity and control plane address come from the environment the injector sets.

import { parseArgs } from 'node:util';
import { SidecarAgent } from '../../proxy/agent.ts';
import type { CommandIO } from '../main.ts';
import { untilSignal } from '../signals.ts';

export const summary = 'Run the sidecar proxy (the istio-proxy container): xDS-driven, captures the pod\'s traffic';
export const usage = `Usage: tsmesh proxy [--discovery-address HOST:PORT]

Runs the sidecar until stopped (SIGTERM, or POST /quitquitquit on 127.0.0.1:15000). It reads its
identity from the environment the injector sets: POD_NAME, POD_NAMESPACE, INSTANCE_IP, SERVICE_ACCOUNT,
ISTIO_METAJSON_LABELS, ISTIO_META_*, and the control plane from XDS_ADDRESS or PROXY_CONFIG's
discoveryAddress. Listeners: 15001 outbound, 15006 inbound (from xDS); admin 127.0.0.1:15000;
Prometheus 15090; agent 15020; health 15021 (/healthz/ready turns 200 once the first config is applied).`;

export async function run(args: string[], io: CommandIO): Promise<number> {
  const { values } = parseArgs({ args, options: { 'discovery-address': { type: 'string' } } });
  const env = { ...process.env };
  if (values['discovery-address']) env.XDS_ADDRESS = values['discovery-address'];
  const agent = new SidecarAgent({ env });
  await agent.start();
  io.err(`tsmesh proxy: ${agent.env.identity.podName}.${agent.env.identity.namespace} connecting to ${agent.env.discoveryAddress}`);
  await untilSignal();
  await agent.stop();
  return 0;
}
