import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { isMeshError } from '../common/errors.ts';
import { defaultMeshConfig } from '../config/mesh-config.ts';
import type { Container } from '../config/types.ts';
import { agentEnvFrom } from '../proxy/identity.ts';
import { appScrapeFromEnv } from '../proxy/telemetry/app-metrics.ts';
import { istioPath } from '../../test/helpers/shared.ts';
import { captureConfigFromPod, renderCaptureRules } from './capture-rules.ts';
import {
  DEFAULT_PROXY_IMAGE,
  captureConfigFromInitArgs,
  injectPod,
  injectionDecision,
  podCaptureConfig,
  type InjectContext,
  type InjectionOptions,
  type InjectionPod,
  type PodTemplate,
} from './inject.ts';
import { expandVars, resolveContainerEnv } from './inject-env.ts';
import { proxyCommandArgs } from './inject-sidecar.ts';
import { workloadOfPod } from './inject-workload.ts';

const ctx: InjectContext = { namespace: 'bookinfo', workloadName: 'reviews-v2', ownerKind: 'Deployment', discoveryAddress: '10.96.0.10:15010' };

function pod(annotations: Record<string, string> = {}, extra: Partial<Container> = {}): PodTemplate {
  return {
    metadata: { labels: { app: 'reviews', version: 'v2' }, annotations },
    spec: {
      serviceAccountName: 'bookinfo-reviews',
      containers: [{ name: 'reviews', image: 'docker.io/istio/examples-bookinfo-reviews-v2:1.20.3', ports: [{ containerPort: 9080 }], ...extra }],
    },
  };
}

const proxyOf = (p: PodTemplate): Container => {
  const c = p.spec?.containers.find((x) => x.name === 'istio-proxy');
  assert.ok(c, 'an istio-proxy container');
  return c;
};
const initOf = (p: PodTemplate): Container | undefined => p.spec?.initContainers?.find((x) => x.name === 'istio-init');
const envOf = (c: Container): Map<string, string | undefined> => new Map((c.env ?? []).map((e) => [e.name, e.value]));

function throwsCode(fn: () => unknown, code: string, text: RegExp): void {
  assert.throws(fn, (err: unknown) => isMeshError(err) && err.code === code && text.test(err.message));
}

describe('injectionDecision', () => {
  type Row = [what: string, pod: Partial<InjectionPod>, ns: Record<string, string> | undefined, opts: InjectionOptions, inject: boolean, reason: RegExp];
  const EN = { 'istio-injection': 'enabled' };
  const rows: Row[] = [
    ['namespace istio-injection=enabled', {}, EN, {}, true, /istio-injection=enabled/],
    ['namespace enabled, pod annotation "false"', { annotations: { 'sidecar.istio.io/inject': 'false' } }, EN, {}, false, /opts out with annotation/],
    ['namespace enabled, pod label "false"', { labels: { 'sidecar.istio.io/inject': 'false' } }, EN, {}, false, /opts out with label/],
    ['the label wins over the annotation (true over false)', { labels: { 'sidecar.istio.io/inject': 'true' }, annotations: { 'sidecar.istio.io/inject': 'false' } }, EN, {}, true, /asks with label/],
    ['the label wins over the annotation (false over true)', { labels: { 'sidecar.istio.io/inject': 'false' }, annotations: { 'sidecar.istio.io/inject': 'true' } }, EN, {}, false, /opts out with label/],
    ['"no" opts out', { annotations: { 'sidecar.istio.io/inject': 'no' } }, EN, {}, false, /opts out/],
    ['an unquoted YAML false opts out too', { annotations: { 'sidecar.istio.io/inject': false as unknown as string } }, EN, {}, false, /opts out/],
    ['"On" opts in', { annotations: { 'sidecar.istio.io/inject': 'On' } }, EN, { policy: 'disabled' }, true, /asks with annotation/],
    ['namespace istio-injection=disabled beats the pod label "true"', { labels: { 'sidecar.istio.io/inject': 'true' } }, { 'istio-injection': 'disabled' }, {}, false, /istio-injection=disabled/],
    ['an unlabelled namespace', {}, {}, {}, false, /neither istio-injection=enabled nor istio.io\/rev/],
    ['an unlabelled namespace, pod label "true"', { labels: { 'sidecar.istio.io/inject': 'true' } }, {}, {}, true, /asks with label/],
    ['an unlabelled namespace, only the annotation "true"', { annotations: { 'sidecar.istio.io/inject': 'true' } }, undefined, {}, false, /use the label/],
    ['defaultEnabled injects unlabelled namespaces', {}, {}, { defaultEnabled: true }, true, /injected by default/],
    ['defaultEnabled, pod opts out', { annotations: { 'sidecar.istio.io/inject': 'false' } }, {}, { defaultEnabled: true }, false, /opts out/],
    ['defaultEnabled does not override istio-injection=disabled', {}, { 'istio-injection': 'disabled' }, { defaultEnabled: true }, false, /disabled/],
    ['namespace istio.io/rev=canary, injector canary', {}, { 'istio.io/rev': 'canary' }, { revision: 'canary' }, true, /istio.io\/rev=canary/],
    ['namespace istio.io/rev=canary, default injector', {}, { 'istio.io/rev': 'canary' }, {}, false, /this injector is revision default/],
    ['namespace istio.io/rev=canary, pod opts out', { labels: { 'sidecar.istio.io/inject': 'false' } }, { 'istio.io/rev': 'canary' }, { revision: 'canary' }, false, /opts out/],
    ['istio-injection=enabled selects only the default revision', {}, EN, { revision: 'canary' }, false, /default revision, not canary/],
    ['istio-injection wins over istio.io/rev on the namespace', {}, { 'istio-injection': 'enabled', 'istio.io/rev': 'canary' }, { revision: 'canary' }, false, /default revision/],
    ['pod label istio.io/rev=canary in an unlabelled namespace', { labels: { 'istio.io/rev': 'canary' } }, {}, { revision: 'canary' }, true, /pod is labelled istio.io\/rev=canary/],
    ['pod label istio.io/rev=canary, default injector', { labels: { 'istio.io/rev': 'canary' } }, {}, {}, false, /revision default/],
    ['pod label inject "true" is the default revision\'s', { labels: { 'sidecar.istio.io/inject': 'true' } }, {}, { revision: 'canary' }, false, /default revision, not canary/],
    ['hostNetwork pods are skipped', { hostNetwork: true }, EN, {}, false, /host network/],
    ['kube-system is skipped', { namespace: 'kube-system' }, EN, {}, false, /kube-system is never injected/],
    ['kube-public is skipped', { namespace: 'kube-public' }, EN, {}, false, /never injected/],
    ['kube-node-lease is skipped', { namespace: 'kube-node-lease', labels: { 'sidecar.istio.io/inject': 'true' } }, EN, {}, false, /never injected/],
    ['the control plane namespace is skipped', { namespace: 'istio-system' }, EN, {}, false, /control plane/],
    ['a custom control plane namespace is skipped', { namespace: 'mesh' }, EN, { controlPlaneNamespace: 'mesh' }, false, /control plane/],
    ['istio-system is injectable when it is not the control plane\'s', { namespace: 'istio-system' }, EN, { controlPlaneNamespace: 'mesh' }, true, /enabled/],
    ['already injected pods are left alone', { annotations: { 'sidecar.istio.io/status': '{}' } }, EN, {}, false, /already injected/],
    ['policy disabled: namespace label alone is not enough', {}, EN, { policy: 'disabled' }, false, /policy is disabled/],
    ['policy disabled: the pod asks', { annotations: { 'sidecar.istio.io/inject': 'true' } }, EN, { policy: 'disabled' }, true, /asks/],
    ['manual (kube-inject) ignores namespace labels', {}, { 'istio-injection': 'disabled' }, { manual: true }, true, /manual/],
    ['manual honours the pod\'s opt-out', { annotations: { 'sidecar.istio.io/inject': 'false' } }, undefined, { manual: true }, false, /opts out/],
    ['manual still skips hostNetwork', { hostNetwork: true }, undefined, { manual: true }, false, /host network/],
    ['manual still skips kube-system', { namespace: 'kube-system' }, undefined, { manual: true }, false, /never injected/],
  ];
  for (const [what, p, ns, opts, inject, reason] of rows) {
    it(what, () => {
      const d = injectionDecision({ namespace: 'default', ...p }, ns, opts);
      assert.equal(d.inject, inject, d.reason);
      assert.match(d.reason, reason);
    });
  }
});

describe('injectPod', () => {
  it('adds istio-init and istio-proxy without touching its argument', () => {
    const input = pod();
    const copy = structuredClone(input);
    const out = injectPod(input, ctx);
    assert.deepEqual(input, copy);
    assert.deepEqual(out.spec?.containers.map((c) => c.name), ['reviews', 'istio-proxy']);
    assert.deepEqual(out.spec?.initContainers?.map((c) => c.name), ['istio-init']);
    assert.equal(proxyOf(out).image, DEFAULT_PROXY_IMAGE);
    assert.match(DEFAULT_PROXY_IMAGE, /^tsmesh\/proxy:\d+\.\d+\.\d+/);
  });

  it('orders init containers as Istio\'s reorderPod: istio-init after the application\'s, istio-validation (CNI) before them', () => {
    const withInit = (): PodTemplate => {
      const p = pod();
      if (p.spec) p.spec.initContainers = [{ name: 'migrate', image: 'migrate:1' }, { name: 'seed', image: 'seed:1' }];
      return p;
    };
    assert.deepEqual(injectPod(withInit(), ctx).spec?.initContainers?.map((c) => c.name), ['migrate', 'seed', 'istio-init']);
    assert.deepEqual(injectPod(withInit(), { ...ctx, cni: true }).spec?.initContainers?.map((c) => c.name), ['istio-validation', 'migrate', 'seed']);
  });

  it('gives the sidecar everything tsmesh proxy reads: its identity, labels, control plane', () => {
    const out = injectPod(pod(), ctx);
    out.metadata = { ...out.metadata, name: 'reviews-v2-5b6f7c9d8-x2x9k', namespace: 'bookinfo' };
    const env = resolveContainerEnv(proxyOf(out), out, { podIP: '10.44.0.7', hostIP: '192.168.1.2', nodeName: 'node-1' });
    const agent = agentEnvFrom(env);
    assert.equal(agent.identity.podName, 'reviews-v2-5b6f7c9d8-x2x9k');
    assert.equal(agent.identity.namespace, 'bookinfo');
    assert.equal(agent.identity.ip, '10.44.0.7');
    assert.equal(agent.discoveryAddress, '10.96.0.10:15010');
    assert.equal(agent.serviceAccount, 'bookinfo-reviews');
    assert.equal(agent.trustDomain, 'cluster.local');
    assert.deepEqual(
      { ...agent.identity.workload },
      {
        workload: 'reviews-v2',
        namespace: 'bookinfo',
        canonicalService: 'reviews',
        canonicalRevision: 'v2',
        cluster: 'Kubernetes',
        app: 'reviews',
        version: 'v2',
        principal: 'spiffe://cluster.local/ns/bookinfo/sa/bookinfo-reviews',
      },
    );
    const md = agent.node.metadata as Record<string, unknown>;
    assert.equal(md.OWNER, 'kubernetes://apis/apps/v1/namespaces/bookinfo/deployments/reviews-v2');
    assert.equal(md.INTERCEPTION_MODE, 'REDIRECT');
    assert.equal(md.APP_CONTAINERS, 'reviews');
    assert.equal(md.MESH_ID, 'cluster.local');
    assert.equal(md.NODE_NAME, 'node-1');
    assert.deepEqual(JSON.parse(String(md.POD_PORTS)), [{ containerPort: 9080 }]);
    assert.equal(env.HOST_IP, '192.168.1.2');
    assert.equal(env.ISTIO_CPU_LIMIT, '2', 'limits.cpu 2000m');
    assert.deepEqual(
      (proxyOf(out).args ?? []).map((a) => expandVars(a, env)).slice(0, 4),
      ['proxy', 'sidecar', '--domain', 'bookinfo.svc.cluster.local'],
    );
  });

  it('writes the traffic annotations into istio-iptables arguments that mean the same rules', () => {
    const annotations = {
      'traffic.sidecar.istio.io/includeOutboundIPRanges': '10.96.0.0/12,10.244.0.0/16',
      'traffic.sidecar.istio.io/excludeOutboundIPRanges': '10.96.0.10/32',
      'traffic.sidecar.istio.io/excludeInboundPorts': '8081',
      'traffic.sidecar.istio.io/excludeOutboundPorts': '5432',
    };
    const out = injectPod(pod(annotations), ctx);
    const args = initOf(out)?.args ?? [];
    const flag = (f: string): string | undefined => args[args.indexOf(f) + 1];
    assert.equal(flag('-i'), '10.96.0.0/12,10.244.0.0/16');
    assert.equal(flag('-x'), '10.96.0.10/32');
    assert.equal(flag('-d'), '15090,15021,8081,15020');
    assert.equal(flag('-o'), '5432');
    assert.deepEqual(captureConfigFromInitArgs(args), captureConfigFromPod(annotations));
    assert.deepEqual(podCaptureConfig(out), captureConfigFromPod(annotations));
  });

  it('istio-init of a plain pod installs exactly istio-iptables\' default rules', () => {
    const golden = readFileSync(istioPath('iptables', 'basic.txt.golden'), 'utf8')
      .split('\n')
      .filter((l) => !/^-A ISTIO_OUTPUT -p (tcp|udp) --dport 15020 -j RETURN$/.test(l))
      .join('\n');
    const cfg = podCaptureConfig(injectPod(pod(), ctx));
    assert.ok(cfg);
    assert.equal(renderCaptureRules(cfg), golden);
  });

  it('with cni there is no istio-init (no NET_ADMIN) but istio-validation, and the annotations carry the same capture settings', () => {
    const annotations = { 'traffic.sidecar.istio.io/includeOutboundIPRanges': '10.96.0.0/12', 'traffic.sidecar.istio.io/excludeInboundPorts': '9000' };
    const out = injectPod(pod(annotations), { ...ctx, cni: true });
    assert.equal(initOf(out), undefined);
    const validation = out.spec?.initContainers?.find((c) => c.name === 'istio-validation');
    assert.deepEqual(out.spec?.initContainers?.map((c) => c.name), ['istio-validation']);
    assert.deepEqual(validation?.args?.slice(-3), ['--log_output_level=default:info', '--run-validation', '--skip-rule-apply']);
    assert.deepEqual(validation?.securityContext, { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] }, privileged: false, readOnlyRootFilesystem: true, runAsGroup: 1337, runAsNonRoot: true, runAsUser: 1337 });
    assert.deepEqual(JSON.parse(out.metadata?.annotations?.['sidecar.istio.io/status'] ?? '{}').initContainers, ['istio-validation']);
    assert.equal(out.metadata?.annotations?.['sidecar.istio.io/interceptionMode'], 'REDIRECT');
    assert.deepEqual(podCaptureConfig(out), captureConfigFromPod(annotations));
  });

  it('interceptionMode NONE: no istio-init and no capture', () => {
    const out = injectPod(pod({ 'sidecar.istio.io/interceptionMode': 'NONE' }), ctx);
    assert.equal(initOf(out), undefined);
    assert.equal(envOf(proxyOf(out)).get('ISTIO_META_INTERCEPTION_MODE'), 'NONE');
    assert.equal(podCaptureConfig(out), undefined);
  });

  it('holdApplicationUntilProxyStarts (mesh default or proxy.istio.io/config) starts the proxy first and waits for it', () => {
    const mesh = defaultMeshConfig();
    mesh.defaultConfig.holdApplicationUntilProxyStarts = true;
    for (const out of [
      injectPod(pod(), { ...ctx, meshConfig: mesh }),
      injectPod(pod({ 'proxy.istio.io/config': '{ "holdApplicationUntilProxyStarts": true }' }), ctx),
      injectPod(pod({ 'proxy.istio.io/config': 'holdApplicationUntilProxyStarts: true\n' }), ctx),
    ]) {
      assert.deepEqual(out.spec?.containers.map((c) => c.name), ['istio-proxy', 'reviews']);
      const proxy = proxyOf(out) as Container & { lifecycle?: { postStart?: { exec?: { command: string[] } } } };
      assert.deepEqual(proxy.lifecycle?.postStart?.exec?.command, ['tsmesh', 'wait']);
      assert.equal(JSON.parse(envOf(proxy).get('PROXY_CONFIG') ?? '{}').holdApplicationUntilProxyStarts, true);
    }
    assert.deepEqual(injectPod(pod(), ctx).spec?.containers.map((c) => c.name), ['reviews', 'istio-proxy']);
  });

  it('ProxyConfig concurrency (meshConfig.defaultConfig, or proxy.istio.io/config over it) becomes --concurrency N', () => {
    const mesh = defaultMeshConfig();
    mesh.defaultConfig.concurrency = 2;
    const tail = (p: PodTemplate): string[] => (proxyOf(p).args ?? []).slice(-2);
    assert.deepEqual(tail(injectPod(pod(), { ...ctx, meshConfig: mesh })), ['--concurrency', '2']);
    assert.deepEqual(tail(injectPod(pod({ 'proxy.istio.io/config': 'concurrency: 4\n' }), { ...ctx, meshConfig: mesh })), ['--concurrency', '4']);
    assert.deepEqual(tail(injectPod(pod({ 'proxy.istio.io/config': '{"concurrency": 3}' }), ctx)), ['--concurrency', '3']);
    // Istio's template writes the flag only above 0: 0 (every core) and unset reach the agent through PROXY_CONFIG
    for (const out of [injectPod(pod(), ctx), injectPod(pod({ 'proxy.istio.io/config': 'concurrency: 0' }), ctx)]) {
      assert.equal(proxyOf(out).args?.includes('--concurrency'), false);
    }
    assert.equal(JSON.parse(envOf(proxyOf(injectPod(pod({ 'proxy.istio.io/config': 'concurrency: 0' }), ctx))).get('PROXY_CONFIG') ?? '{}').concurrency, 0);
    // the runtime runs the container's own arguments: `tsmesh proxy sidecar --domain demo.svc.cluster.local ... --concurrency 2`
    const args = proxyCommandArgs(proxyOf(injectPod(pod(), { ...ctx, meshConfig: mesh })), { POD_NAMESPACE: 'bookinfo' });
    assert.deepEqual(args.slice(0, 4), ['proxy', 'sidecar', '--domain', 'bookinfo.svc.cluster.local']);
    assert.deepEqual(args.slice(-2), ['--concurrency', '2']);
    assert.deepEqual(proxyCommandArgs({}, {}), ['proxy']);
    throwsCode(() => injectPod(pod({ 'proxy.istio.io/config': 'concurrency: "2"' }), ctx), 'MESH_ERR_INJECT_CONFIG', /concurrency must be a number/);
    throwsCode(() => injectPod(pod({ 'proxy.istio.io/config': 'concurrency: -1' }), ctx), 'MESH_ERR_INJECT_CONFIG', /concurrency .* whole number, 0 or more/);
  });

  it('honours sidecar.istio.io/proxyImage, the resource and log-level annotations and proxy.istio.io/config', () => {
    const out = injectPod(pod({
      'sidecar.istio.io/proxyImage': 'registry.local/tsmesh/proxy:dev',
      'sidecar.istio.io/proxyCPU': '50m',
      'sidecar.istio.io/proxyMemoryLimit': '256Mi',
      'sidecar.istio.io/logLevel': 'debug',
      'proxy.istio.io/config': '{"discoveryAddress":"cp.mesh:15010","proxyMetadata":{"DNS_AGENT":""}}',
    }), ctx);
    const proxy = proxyOf(out);
    assert.equal(proxy.image, 'registry.local/tsmesh/proxy:dev');
    assert.equal(initOf(out)?.image, 'registry.local/tsmesh/proxy:dev');
    assert.deepEqual(proxy.resources, { requests: { cpu: '50m', memory: '128Mi' }, limits: { cpu: '2000m', memory: '256Mi' } });
    assert.ok(proxy.args?.includes('--proxyLogLevel=debug'));
    const env = envOf(proxy);
    assert.equal(JSON.parse(env.get('PROXY_CONFIG') ?? '{}').discoveryAddress, 'cp.mesh:15010');
    assert.equal(env.get('DNS_AGENT'), '');
  });

  it('merges a container named istio-proxy in the pod over the injected one (Istio\'s customisation)', () => {
    const p = pod();
    p.spec?.containers.push({ name: 'istio-proxy', image: 'auto', resources: { limits: { memory: '2Gi' } }, env: [{ name: 'ISTIO_META_CLUSTER_ID', value: 'east' }, { name: 'EXTRA', value: '1' }] });
    const out = injectPod(p, ctx);
    assert.deepEqual(out.spec?.containers.map((c) => c.name), ['reviews', 'istio-proxy']);
    const proxy = proxyOf(out);
    assert.equal(proxy.image, DEFAULT_PROXY_IMAGE, 'image: auto means the injected image');
    assert.deepEqual(proxy.resources, { requests: { cpu: '100m', memory: '128Mi' }, limits: { cpu: '2000m', memory: '2Gi' } });
    const env = envOf(proxy);
    assert.equal(env.get('ISTIO_META_CLUSTER_ID'), 'east');
    assert.equal(env.get('EXTRA'), '1');
    assert.equal(env.get('ISTIO_META_APP_CONTAINERS'), 'reviews');
    assert.equal(proxy.securityContext?.runAsUser, 1337);
  });

  it('rejects bad annotations, naming them', () => {
    throwsCode(() => injectPod(pod({ 'traffic.sidecar.istio.io/includeOutboundIPRanges': '10.0.0.0' }), ctx), 'MESH_ERR_CAPTURE_CONFIG', /includeOutboundIPRanges/);
    throwsCode(() => injectPod(pod({ 'sidecar.istio.io/proxyCPU': 'lots' }), ctx), 'MESH_ERR_INJECT_CONFIG', /sidecar.istio.io\/proxyCPU.*quantity/);
    throwsCode(() => injectPod(pod({ 'proxy.istio.io/config': '[1, 2]' }), ctx), 'MESH_ERR_INJECT_CONFIG', /proxy.istio.io\/config/);
    throwsCode(() => injectPod(pod({ 'proxy.istio.io/config': 'holdApplicationUntilProxyStarts: "yes"' }), ctx), 'MESH_ERR_INJECT_CONFIG', /holdApplicationUntilProxyStarts must be a boolean/);
    throwsCode(() => injectPod(pod({ 'sidecar.istio.io/logLevel': 'loud' }), ctx), 'MESH_ERR_INJECT_CONFIG', /logLevel/);
    throwsCode(() => injectPod({ metadata: {}, spec: { containers: [] } }, ctx), 'MESH_ERR_INJECT_CONFIG', /no containers/);
    const unquoted = pod({ 'traffic.sidecar.istio.io/excludeInboundPorts': 8080 as unknown as string });
    throwsCode(() => injectPod(unquoted, ctx), 'MESH_ERR_INJECT_CONFIG', /annotation traffic.sidecar.istio.io\/excludeInboundPorts: the value must be a string; quote it/);
  });

  it("moves the app's own prometheus.io settings to ISTIO_PROMETHEUS_ANNOTATIONS and points Prometheus at the agent", () => {
    const out = injectPod(pod({ 'prometheus.io/scrape': 'true', 'prometheus.io/port': '9102', 'prometheus.io/path': '/metrics' }), ctx);
    const a = out.metadata?.annotations ?? {};
    assert.deepEqual([a['prometheus.io/scrape'], a['prometheus.io/port'], a['prometheus.io/path']], ['true', '15020', '/stats/prometheus']);
    const scrape = appScrapeFromEnv({ ISTIO_PROMETHEUS_ANNOTATIONS: envOf(proxyOf(out)).get('ISTIO_PROMETHEUS_ANNOTATIONS') });
    assert.deepEqual(scrape, { port: 9102, path: '/metrics', scheme: 'http' });

    const off = injectPod(pod({ 'prometheus.io/scrape': 'false' }), ctx).metadata?.annotations ?? {};
    assert.equal(off['prometheus.io/scrape'], 'false');
    assert.equal(off['prometheus.io/port'], undefined);
    assert.equal(envOf(proxyOf(injectPod(pod(), ctx))).has('ISTIO_PROMETHEUS_ANNOTATIONS'), false);
  });

  it('keeps existing default-container annotations and canonical labels, and is a no-op on an injected pod', () => {
    const p = pod({ 'kubectl.kubernetes.io/default-container': 'other' });
    p.metadata = { ...p.metadata, labels: { app: 'reviews', 'service.istio.io/canonical-name': 'ratings-svc' } };
    const once = injectPod(p, ctx);
    assert.equal(once.metadata?.annotations?.['kubectl.kubernetes.io/default-container'], 'other');
    assert.equal(once.metadata?.annotations?.['kubectl.kubernetes.io/default-logs-container'], 'reviews');
    assert.equal(once.metadata?.labels?.['service.istio.io/canonical-name'], 'ratings-svc');
    assert.equal(once.metadata?.labels?.['service.istio.io/canonical-revision'], 'latest');
    assert.deepEqual(injectPod(once, ctx), once);
  });
});

describe('workloadOfPod', () => {
  it('maps a ReplicaSet owner to its Deployment and a scheduled Job to its CronJob, as Istio does', () => {
    assert.deepEqual(
      workloadOfPod({ labels: { 'pod-template-hash': '5b6f7c9d8' }, ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'reviews-v2-5b6f7c9d8', controller: true }] }),
      { kind: 'Deployment', name: 'reviews-v2', apiVersion: 'apps/v1' },
    );
    assert.deepEqual(
      workloadOfPod({ ownerReferences: [{ apiVersion: 'batch/v1', kind: 'Job', name: 'backup-28935120', controller: true }] }),
      { kind: 'CronJob', name: 'backup', apiVersion: 'batch/v1' },
    );
    assert.deepEqual(workloadOfPod({ ownerReferences: [{ apiVersion: 'apps/v1', kind: 'StatefulSet', name: 'db', controller: true }] }), { kind: 'StatefulSet', name: 'db', apiVersion: 'apps/v1' });
    assert.deepEqual(workloadOfPod({ generateName: 'adhoc-' }), { kind: 'Pod', name: 'adhoc', apiVersion: 'v1' });
  });
});
