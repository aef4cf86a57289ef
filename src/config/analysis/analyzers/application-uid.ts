// applicationUID.Analyzer: application containers must not run as UID 1337, the sidecar's (IST0144).
// Reads pod specs of Pods and of workload controllers' templates. Reports; never throws.

import type { Resource } from '../../resource.ts';
import type { PodSpec, WorkloadControllerSpec } from '../../types.ts';
import { K, arrayOf, type Analyzer } from '../analyzer.ts';
import { newMessage, type AnalysisMessage } from '../message.ts';
import { MESSAGES } from '../messages.ts';

const PROXY_UID = 1337;
const EXEMPT_CONTAINERS = new Set(['istio-proxy', 'istio-operator']);
const CONTROLLERS = [K.Deployment, K.StatefulSet, K.DaemonSet, K.ReplicaSet, K.Job];

function check(r: Resource<unknown>, spec: Partial<PodSpec> | undefined, base: (string | number)[], report: (m: AnalysisMessage) => void): void {
  if (!spec || typeof spec !== 'object') return;
  if (r.metadata.labels.istio !== undefined || r.metadata.labels.release === 'istio') return;
  // One message per resource, at the first place that sets the UID.
  const at: Array<(string | number)[]> = [];
  if (spec.securityContext?.runAsUser === PROXY_UID) at.push([...base, 'securityContext', 'runAsUser']);
  arrayOf(spec.containers).forEach((c, i) => {
    if (c && !EXEMPT_CONTAINERS.has(c.name) && c.securityContext?.runAsUser === PROXY_UID) {
      at.push([...base, 'containers', i, 'securityContext', 'runAsUser']);
    }
  });
  const first = at[0];
  if (first) report(newMessage(MESSAGES.InvalidApplicationUID, r, [], first));
}

export const applicationUIDAnalyzer: Analyzer = {
  name: 'applicationUID.Analyzer',
  description: 'Checks invalid application UID',
  inputs: [K.Pod, ...CONTROLLERS],
  analyze(ctx) {
    const report = ctx.report.bind(ctx);
    for (const pod of ctx.list<PodSpec>(K.Pod)) check(pod, pod.spec, ['spec'], report);
    for (const kind of CONTROLLERS) {
      for (const c of ctx.list<WorkloadControllerSpec>(kind)) check(c, c.spec.template?.spec, ['spec', 'template', 'spec'], report);
    }
  },
};
