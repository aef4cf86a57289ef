// Istio's semantic validation (what its webhook checks beyond the OpenAPI schema) and the Kubernetes
// API server's checks on the kinds tsmesh reads, one module per kind, plus metadata rules for all.
// Returns diagnostics; never throws, whatever shape the resource has.

import type { Diagnostic } from '../diagnostics.ts';
import { lookupKind } from '../kinds.ts';
import type { Resource } from '../resource.ts';
import { Checker, entries, obj, quote, type Obj } from './check.ts';
import { isK8sLabel, isK8sSubdomain, isDns1035Label, labelKeyProblem, labelValueProblem } from './common.ts';
import { validateAuthorizationPolicy } from './authorization-policy.ts';
import { validateDestinationRule } from './destination-rule.ts';
import { validateGateway } from './gateway.ts';
import { validateController, validateEndpointSlice, validateEndpoints, validateJob, validatePod, validateService } from './kubernetes.ts';
import { validatePeerAuthentication } from './peer-authentication.ts';
import { validateRequestAuthentication } from './request-authentication.ts';
import { validateServiceEntry } from './service-entry.ts';
import { validateSidecar } from './sidecar.ts';
import { validateTelemetry } from './telemetry.ts';
import { validateVirtualService } from './virtual-service.ts';
import { validateWorkloadEntry } from './workload-entry.ts';
import { validateWorkloadGroup } from './workload-group.ts';

type Rule = (c: Checker, spec: Obj) => void;

const NET = 'networking.istio.io';
const SEC = 'security.istio.io';

/** Rules per `group/Kind`; the rule gets `spec` (or the whole body for kinds without one). */
const RULES = new Map<string, { rule: Rule; body?: boolean }>([
  [`${NET}/VirtualService`, { rule: validateVirtualService }],
  [`${NET}/DestinationRule`, { rule: validateDestinationRule }],
  [`${NET}/ServiceEntry`, { rule: validateServiceEntry }],
  [`${NET}/Sidecar`, { rule: validateSidecar }],
  [`${NET}/Gateway`, { rule: validateGateway }],
  [`${NET}/WorkloadEntry`, { rule: validateWorkloadEntry }],
  [`${NET}/WorkloadGroup`, { rule: validateWorkloadGroup }],
  [`${SEC}/PeerAuthentication`, { rule: validatePeerAuthentication }],
  [`${SEC}/AuthorizationPolicy`, { rule: validateAuthorizationPolicy }],
  [`${SEC}/RequestAuthentication`, { rule: validateRequestAuthentication }],
  ['telemetry.istio.io/Telemetry', { rule: validateTelemetry }],
  ['/Service', { rule: validateService }],
  ['/Pod', { rule: validatePod }],
  ['apps/Deployment', { rule: validateController }],
  ['apps/StatefulSet', { rule: validateController }],
  ['apps/DaemonSet', { rule: validateController }],
  ['apps/ReplicaSet', { rule: validateController }],
  ['batch/Job', { rule: validateJob }],
  ['/Endpoints', { rule: validateEndpoints, body: true }],
  ['discovery.k8s.io/EndpointSlice', { rule: validateEndpointSlice, body: true }],
]);

/** Annotations Istio reserves for itself; its webhook rejects resources that carry them. */
const RESERVED_ANNOTATIONS = ['internal.istio.io/webhook-always-reject', 'internal.istio.io/parents', 'internal.istio.io/parent-namespace'];
const DRY_RUN = 'istio.io/dry-run';

/** The semantic problems of one resource (errors and warnings). Unknown kinds yield none. */
export function validateSemantics(r: Resource): Diagnostic[] {
  const info = lookupKind(r.group, r.kind);
  if (!info) return [];
  const c = new Checker(r);
  checkMetadata(c, info.istioCrd);
  const entry = RULES.get(`${r.group}/${r.kind}`);
  if (entry) {
    const target = entry.body ? r.body : r.spec;
    entry.rule(c, obj(target) ?? {});
  }
  return c.diagnostics;
}

function checkMetadata(c: Checker, istio: boolean): void {
  const r = c.r;
  const name = r.metadata.name;
  if (name !== '') {
    if (r.kind === 'Namespace') {
      if (!isK8sLabel(name)) c.error(['metadata', 'name'], `namespace name ${quote(name)} must be a lower-case DNS label: letters, digits and '-', at most 63`);
    } else if (r.group === '' && r.kind === 'Service') {
      if (!isDns1035Label(name)) c.error(['metadata', 'name'], `Service name ${quote(name)} must start with a letter and contain only lower-case letters, digits and '-' (at most 63)`);
    } else if (!isK8sSubdomain(name)) {
      c.error(['metadata', 'name'], `name ${quote(name)} must be a lower-case DNS name: letters, digits, '-' and '.', at most 253`);
    }
  }
  const ns = r.metadata.namespace;
  if (ns !== '' && !isK8sLabel(ns)) c.error(['metadata', 'namespace'], `namespace ${quote(ns)} must be a lower-case DNS label: letters, digits and '-', at most 63`);

  const meta = obj(r.body.metadata) ?? {};
  for (const [key, value] of entries(meta.labels)) {
    const p = ['metadata', 'labels', key];
    if (!c.check(p, labelKeyProblem(key))) continue;
    if (typeof value !== 'string') c.error(p, `label ${key} must have a string value: quote it (${key}: "${String(value)}")`);
    else c.check(p, labelValueProblem(key, value));
  }
  for (const [key, value] of entries(meta.annotations)) {
    const p = ['metadata', 'annotations', key];
    const keyProblem = labelKeyProblem(key);
    if (keyProblem !== undefined) {
      c.error(p, keyProblem.replace('label key', 'annotation key'));
      continue;
    }
    if (typeof value !== 'string') c.error(p, `annotation ${key} must have a string value: quote it (${key}: "${String(value)}")`);
  }
  if (!istio) return;
  const annotations = r.metadata.annotations;
  for (const reserved of RESERVED_ANNOTATIONS) {
    if (reserved in annotations) c.error(['metadata', 'annotations', reserved], `annotation ${reserved} is reserved for Istio's own use: remove it`);
  }
  const dryRun = annotations[DRY_RUN];
  if (dryRun !== undefined) {
    const p = ['metadata', 'annotations', DRY_RUN];
    if (r.kind !== 'AuthorizationPolicy') c.error(p, `annotation ${DRY_RUN} is supported only on AuthorizationPolicy: remove it`);
    else {
      const action = typeof r.spec.action === 'string' ? r.spec.action : 'ALLOW';
      if (action !== 'ALLOW' && action !== 'DENY') c.error(p, `annotation ${DRY_RUN} works only with action ALLOW or DENY (this policy's action is ${action})`);
      else if (!/^(?:1|t|T|TRUE|true|True|0|f|F|FALSE|false|False)$/.test(dryRun)) c.error(p, `annotation ${DRY_RUN} must be "true" or "false" (got ${quote(dryRun)})`);
    }
  }
}
