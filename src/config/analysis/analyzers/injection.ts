// injection.Analyzer: namespaces without an injection label (IST0102), more than one kind of injection
// label (IST0123), and pods in injection-enabled namespaces without an istio-proxy container (IST0103).
// Only Namespace and Pod resources given as input are considered. Reports; never throws.

import type { PodSpec } from '../../types.ts';
import { K, arrayOf, type Analyzer } from '../analyzer.ts';
import { newMessage } from '../message.ts';
import { MESSAGES } from '../messages.ts';

const INJECTION_LABEL = 'istio-injection';
const REVISION_LABEL = 'istio.io/rev';
const DATAPLANE_MODE_LABEL = 'istio.io/dataplane-mode';
const SIDECAR_INJECT = 'sidecar.istio.io/inject';
const SYSTEM_NAMESPACE = 'istio-system';

export const injectionAnalyzer: Analyzer = {
  name: 'injection.Analyzer',
  description: 'Checks conditions related to Istio sidecar injection',
  inputs: [K.Namespace, K.Pod],
  analyze(ctx) {
    const injected = new Set<string>();
    for (const ns of ctx.list(K.Namespace)) {
      const name = ns.metadata.name;
      if (name === SYSTEM_NAMESPACE) continue;
      const labels = ns.metadata.labels;
      const injection = labels[INJECTION_LABEL];
      const found: string[] = [];
      if (injection !== undefined) found.push(`${INJECTION_LABEL}=${injection}`);
      for (const l of [REVISION_LABEL, DATAPLANE_MODE_LABEL]) {
        const v = labels[l];
        if (v !== undefined && (injection === undefined || injection === 'enabled')) found.push(`${l}=${v}`);
      }
      if (found.length > 1) ctx.report(newMessage(MESSAGES.NamespaceMultipleInjectionLabels, ns, [found], ['metadata', 'labels']));
      if (labels[DATAPLANE_MODE_LABEL] === 'ambient') continue;
      if ((injection === undefined || injection === '') && labels[REVISION_LABEL] === undefined) {
        ctx.report(newMessage(MESSAGES.NamespaceNotInjected, ns, [name, name], ['metadata', 'name']));
        continue;
      }
      // Like istioctl, only the istio-injection=enabled label marks a namespace whose pods must have a proxy.
      if (injection === 'enabled') injected.add(name);
    }
    for (const pod of ctx.list(K.Pod)) {
      const ns = pod.metadata.namespace;
      if (!injected.has(ns)) continue;
      const opt = pod.metadata.labels[SIDECAR_INJECT] ?? pod.metadata.annotations[SIDECAR_INJECT];
      if (opt !== undefined && opt.toLowerCase() === 'false') continue;
      const spec = pod.spec as Partial<PodSpec>;
      if (spec.hostNetwork === true) continue;
      const containers = [...arrayOf(spec.containers), ...arrayOf(spec.initContainers)];
      const proxy = containers.find((c) => c?.name === 'istio-proxy');
      if (!proxy || typeof proxy.image !== 'string' || proxy.image === '') {
        ctx.report(newMessage(MESSAGES.PodMissingProxy, pod, [`${ns}/${pod.metadata.name}`]));
      }
    }
  },
};
