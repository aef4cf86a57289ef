// `tsmesh proxy-status`: every proxy connected to the control plane and the sync state of each xDS type
// (SYNCED, STALE with the NACK reason, NOT SENT), in istioctl's columns.

import { parseArgs } from 'node:util';
import { callControlPlane, controlPlaneUrl } from '../client.ts';
import type { CommandIO } from '../main.ts';
import { tabulate } from '../../xds/configdump/tabwriter.ts';
import type { ProxySyncStatus } from '../../controlplane/xds/ads-server.ts';

export const summary = 'Show every connected proxy and whether its CDS/LDS/EDS/RDS are in sync';
export const usage = `Usage: tsmesh proxy-status [<pod>[.<namespace>]] [--controlplane URL] [-o short|json]

Lists the proxies connected to the control plane with the state of each xDS type: SYNCED (the proxy
ACKed the last version sent), STALE (sent but not yet ACKed, or NACKed: the reason is shown below the
table), NOT SENT.`;

export async function run(args: string[], io: CommandIO): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { controlplane: { type: 'string' }, output: { type: 'string', short: 'o', default: 'short' } } });
  const base = controlPlaneUrl(values.controlplane);
  const { body } = await callControlPlane<ProxySyncStatus[]>(base, '/debug/adsz');
  const filter = positionals[0];
  const proxies = body
    .filter((p) => !filter || `${p.podName}.${p.namespace}` === filter || p.podName === filter)
    .sort((a, b) => `${a.podName}.${a.namespace}`.localeCompare(`${b.podName}.${b.namespace}`));
  if (values.output === 'json') {
    io.out(JSON.stringify(proxies, null, 2));
    return 0;
  }
  const state = (p: ProxySyncStatus, t: string): string => p.types.find((x) => x.type === t)?.state ?? 'NOT SENT';
  const rows = [['NAME', 'CLUSTER', 'CDS', 'LDS', 'EDS', 'RDS', 'ISTIOD', 'VERSION']];
  for (const p of proxies) rows.push([`${p.podName}.${p.namespace}`, 'Kubernetes', state(p, 'CDS'), state(p, 'LDS'), state(p, 'EDS'), state(p, 'RDS'), 'tsmesh', p.proxyType]);
  io.out(tabulate(rows));
  for (const p of proxies) {
    for (const t of p.types) if (t.nack) io.out(`${p.podName}.${p.namespace} ${t.type} NACK (version ${t.nack.version}): ${t.nack.message}`);
  }
  return 0;
}
