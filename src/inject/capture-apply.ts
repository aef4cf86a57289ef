// Installs and removes the capture rules in a network namespace with iptables-restore (whichever backend
// `iptables` is: nf_tables or legacy). Throws MESH_ERR_CAPTURE_UNAVAILABLE (not Linux, not root, tools missing) or MESH_ERR_CAPTURE_APPLY.

import { assertNetworkAdmin, findTool, runTool } from '../runtime/netns.ts';

const TOOLS = ['ip', 'iptables-restore', 'iptables-save'] as const;
/** Absolute path, since `ip netns exec` resolves commands with the caller's PATH (which may lack /usr/sbin). */
const tool = (name: string): string => findTool(name) ?? name;

/** The nat table of namespace `netns` in iptables-save form (as the kernel holds it). */
export async function readNatRules(netns: string): Promise<string> {
  assertNetworkAdmin(`reading iptables rules in network namespace ${netns}`, TOOLS);
  const { stdout } = await runTool(['ip', 'netns', 'exec', netns, tool('iptables-save'), '-t', 'nat']);
  return stdout;
}

/**
 * Applies `rules` (renderCaptureRules' output) in network namespace `netns` with
 * `iptables-restore --noflush`, replacing capture rules installed before (so it can be re-run).
 * Empty rules (interception mode NONE) only remove earlier ones.
 */
export async function applyCaptureRules(netns: string, rules: string): Promise<void> {
  assertNetworkAdmin(`applying capture rules in network namespace ${netns}`, TOOLS);
  await removeCaptureRules(netns);
  if (rules.trim() === '') return;
  await runTool(['ip', 'netns', 'exec', netns, tool('iptables-restore'), '--noflush'], { input: rules });
}

/**
 * The iptables-restore script that undoes capture: deletes the built-in chains' jumps into ISTIO_*
 * chains and the excludeInterfaces RETURN rules, then flushes and deletes the ISTIO_* chains.
 * Returns '' when `natSave` (iptables-save -t nat output) holds no ISTIO_* chain. Pure.
 */
export function captureCleanupScript(natSave: string): string {
  const lines = natSave.split('\n').map((l) => l.trim());
  const chains = lines.filter((l) => /^:ISTIO_\S+ /.test(l)).map((l) => l.slice(1).split(' ')[0] ?? '');
  if (chains.length === 0) return '';
  const builtinRule = /^-A (PREROUTING|INPUT|OUTPUT|POSTROUTING) /;
  const ours = (l: string): boolean =>
    builtinRule.test(l) && (/ -j ISTIO_\S+$/.test(l) || /^-A PREROUTING -i \S+ -j RETURN$/.test(l) || /^-A OUTPUT -o \S+ -j RETURN$/.test(l));
  const deletes = lines.filter(ours).map((l) => `-D ${l.slice(3)}`);
  return ['*nat', ...deletes, ...chains.map((c) => `-F ${c}`), ...chains.map((c) => `-X ${c}`), 'COMMIT', ''].join('\n');
}

/** Removes the capture rules from network namespace `netns`; resolves to false when there were none. */
export async function removeCaptureRules(netns: string): Promise<boolean> {
  const script = captureCleanupScript(await readNatRules(netns));
  if (script === '') return false;
  await runTool(['ip', 'netns', 'exec', netns, tool('iptables-restore'), '--noflush'], { input: script });
  return true;
}
