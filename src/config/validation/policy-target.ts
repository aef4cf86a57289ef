// What security and telemetry policies share: they select workloads by `selector` or attach to a
// Service, ServiceEntry or Gateway by `targetRef`/`targetRefs`, never both. Reports on the checker.

import { isSet, list, obj, quote, str, type Checker, type Obj, type Path } from './check.ts';
import { checkSelector } from './common.ts';

const ALLOWED_TARGETS = [
  { group: '', kind: 'Service' },
  { group: 'networking.istio.io', kind: 'ServiceEntry' },
  { group: 'gateway.networking.k8s.io', kind: 'Gateway' },
  { group: 'gateway.networking.k8s.io', kind: 'GatewayClass' },
];

export function checkPolicyTarget(c: Checker, spec: Obj, owner: string): void {
  const set = [isSet(spec, 'selector'), isSet(spec, 'targetRef'), list(spec.targetRefs).length > 0].filter(Boolean).length;
  if (set > 1) c.error(['spec'], `${owner} takes only one of selector, targetRef or targetRefs`);
  checkSelector(c, ['spec', 'selector'], spec.selector, 'matchLabels', owner);
  if (isSet(spec, 'targetRef')) checkTargetRef(c, ['spec', 'targetRef'], obj(spec.targetRef));
  list(spec.targetRefs).forEach((t, i) => checkTargetRef(c, ['spec', 'targetRefs', i], obj(t)));
}

function checkTargetRef(c: Checker, p: Path, ref: Obj | undefined): void {
  if (!ref) return;
  if (!str(ref.name)) c.error([...p, 'name'], 'targetRef needs a name');
  if (str(ref.namespace)) c.error([...p, 'namespace'], 'targetRef must not set namespace: only resources in the policy\'s own namespace can be targeted');
  const group = str(ref.group) ?? '';
  const kind = str(ref.kind) ?? '';
  const canonical = group === 'core' ? '' : group;
  if (!ALLOWED_TARGETS.some((t) => t.group === canonical && t.kind === kind)) {
    const allowed = ALLOWED_TARGETS.map((t) => `${t.group || 'core'}/${t.kind}`).join(', ');
    c.error([...p, 'kind'], `targetRef ${quote(`${group}/${kind}`)} is not supported: target one of ${allowed}`);
  }
}
