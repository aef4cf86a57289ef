// PeerAuthentication rules beyond the schema: port-level mTLS needs a workload selector with labels and
// valid port numbers; the selector has no wildcards. Reports on the checker; never throws.

import { entries, isSet, obj, type Checker, type Obj } from './check.ts';
import { checkSelector } from './common.ts';

export function validatePeerAuthentication(c: Checker, spec: Obj): void {
  const matchLabels = entries(obj(spec.selector)?.matchLabels);
  const ports = entries(spec.portLevelMtls);
  if (isSet(spec, 'portLevelMtls')) {
    if (ports.length === 0) c.error(['spec', 'portLevelMtls'], 'portLevelMtls, if set, must list at least one port');
    else if (matchLabels.length === 0) {
      c.error(['spec', 'portLevelMtls'], 'portLevelMtls needs a selector with matchLabels: a mesh- or namespace-wide PeerAuthentication cannot set per-port mTLS');
    }
  }
  for (const [port] of ports) {
    const n = /^[0-9]+$/.test(port) ? Number(port) : NaN;
    if (!(n >= 1 && n <= 65535)) c.error(['spec', 'portLevelMtls', port], `port ${port} must be a number in the range 1..65535`);
  }
  checkSelector(c, ['spec', 'selector'], spec.selector, 'matchLabels', 'PeerAuthentication');
}
