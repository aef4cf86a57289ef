// `tsmesh iptables`: istio-iptables' flags; prints the capture rules (dry run), or applies/removes them in a network namespace.
// Bad flags exit 2 (MESH_ERR_CLI_USAGE); applying without Linux/root/iptables fails with MESH_ERR_CAPTURE_UNAVAILABLE.

import { parseArgs } from 'node:util';
import { MeshError, isMeshError } from '../../common/errors.ts';
import { applyCaptureRules, removeCaptureRules } from '../../inject/capture-apply.ts';
import { IPTABLES_FLAGS, captureConfigFromFlags, renderCaptureRules, type IptablesFlag } from '../../inject/capture-rules.ts';
import type { CommandIO } from '../main.ts';

export const summary = 'Print or apply the sidecar capture rules (istio-iptables flags)';
export const usage = `Usage: tsmesh iptables [flags] [--netns NAME [--cleanup]] [--dry-run]

Renders the iptables nat rules that capture a pod's traffic for its sidecar, exactly as istio-iptables
does, in iptables-save form. Without --netns (or with --dry-run) it prints them; with --netns it applies
them in that network namespace (replacing earlier ones); --cleanup removes them from it.
Applying needs Linux, root (CAP_NET_ADMIN) and iptables + iproute2.

Flags (defaults are the sidecar injector's: -p 15001 -z 15006 -u 1337 -m REDIRECT -i '*' -x "" -b '*' -d 15090,15021,15020):
  -p, --envoy-port PORT                           outbound capture port (15001)
  -z, --inbound-capture-port PORT                 inbound capture port (15006)
  -e, --inbound-tunnel-port PORT                  port never captured inbound (15008)
  -u, --proxy-uid UID                             the proxy's UID, never captured (1337)
  -g, --proxy-gid GID                             the proxy's GID (default: the UID)
  -m, --istio-inbound-interception-mode MODE      REDIRECT (TPROXY is not supported)
  -b, --istio-inbound-ports PORTS                 inbound ports to capture: '*' or a list ('' = none)
  -d, --istio-local-exclude-ports PORTS           inbound ports not captured with -b '*'
  -i, --istio-service-cidr CIDRS                  outbound ranges to capture: '*' or a list ('' = none)
  -x, --istio-service-exclude-cidr CIDRS          outbound ranges never captured
  -q, --istio-outbound-ports PORTS                outbound ports always captured
  -o, --istio-local-outbound-ports-exclude PORTS  outbound ports never captured
  -c, --istio-exclude-interfaces NAMES            interfaces never captured
  -n, --dry-run                                   print the rules only (the default without --netns)
      --netns, --network-namespace NAME           apply in this network namespace (ip netns)
      --cleanup, --cleanup-only                   remove the capture rules from --netns

Examples:
  tsmesh iptables                                  # the default rules
  tsmesh iptables -i 10.96.0.0/12 -x 10.96.0.10/32 # capture only the service range
  tsmesh iptables --netns mypod                    # apply them in network namespace mypod`;

const flagOptions = Object.fromEntries(
  Object.entries(IPTABLES_FLAGS).map(([long, short]) => [long, { type: 'string' as const, short }]),
) as Record<IptablesFlag, { type: 'string'; short: string }>;

export async function run(args: string[], io: CommandIO): Promise<number> {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: {
        ...flagOptions,
        'dry-run': { type: 'boolean', short: 'n' },
        netns: { type: 'string' },
        'network-namespace': { type: 'string' },
        cleanup: { type: 'boolean' },
        'cleanup-only': { type: 'boolean' },
      },
    }));
  } catch (err) {
    throw new MeshError('MESH_ERR_CLI_USAGE', `${err instanceof Error ? err.message : String(err)}; see \`tsmesh iptables --help\``);
  }
  const flags: Partial<Record<IptablesFlag, string>> = {};
  for (const name of Object.keys(IPTABLES_FLAGS) as IptablesFlag[]) {
    const v = values[name];
    if (typeof v === 'string') flags[name] = v;
  }
  const netns = (values.netns ?? values['network-namespace']) as string | undefined;
  const cleanup = values.cleanup === true || values['cleanup-only'] === true;
  const dryRun = values['dry-run'] === true || netns === undefined;

  if (cleanup) {
    if (netns === undefined) throw new MeshError('MESH_ERR_CLI_USAGE', '--cleanup needs --netns NAME (the namespace to remove the rules from)');
    const removed = await removeCaptureRules(netns);
    io.out(removed ? `removed the capture rules from network namespace ${netns}` : `no capture rules in network namespace ${netns}`);
    return 0;
  }

  let rules: string;
  try {
    rules = renderCaptureRules(captureConfigFromFlags(flags));
  } catch (err) {
    if (isMeshError(err) && err.code === 'MESH_ERR_CAPTURE_CONFIG') throw new MeshError('MESH_ERR_CLI_USAGE', err.message, { cause: err });
    throw err;
  }
  if (dryRun) {
    io.out(rules);
    return 0;
  }
  await applyCaptureRules(netns, rules);
  const count = rules.split('\n').filter((l) => l.startsWith('-A ')).length;
  io.out(`applied ${count} capture rules in network namespace ${netns}`);
  return 0;
}
