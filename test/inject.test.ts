// kube-inject end to end: Istio's own samples and our fixtures through the library and `tsmesh kube-inject`.

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import type { Container, PodSpec } from '../src/config/types.ts';
import { loadString } from '../src/config/loader.ts';
import { validateResources } from '../src/config/validate.ts';
import { kubeInjectText } from '../src/inject/inject-manifest.ts';
import { DEFAULT_PROXY_IMAGE, podCaptureConfig, type PodTemplate } from '../src/inject/inject.ts';
import { renderCaptureRules } from '../src/inject/capture-rules.ts';
import { runCli } from './helpers/cli.ts';
import { istioPath } from './helpers/shared.ts';

const SLEEP = istioPath('samples', 'sleep', 'sleep.yaml');
const BOOKINFO = istioPath('samples', 'bookinfo', 'platform', 'kube', 'bookinfo.yaml');
const FIXTURE = new URL('./fixtures/inject/workloads.yaml', import.meta.url).pathname;
const read = (f: string): string => readFileSync(f, 'utf8');

type Obj = Record<string, unknown> & { kind?: string; metadata?: { name?: string; namespace?: string } };
/** Every object of a YAML stream (List items flattened), in order. */
function objects(text: string): Obj[] {
  const out: Obj[] = [];
  for (const d of parseAllDocuments(text)) {
    const v = d.toJS() as Obj | null;
    if (!v) continue;
    if (v.kind === 'List' && Array.isArray(v.items)) out.push(...(v.items as Obj[]));
    else out.push(v);
  }
  return out;
}
function templateOf(o: Obj): PodTemplate {
  if (o.kind === 'Pod') return o;
  const spec = o.spec as { template?: PodTemplate; jobTemplate?: { spec?: { template?: PodTemplate } } };
  const t = o.kind === 'CronJob' ? spec.jobTemplate?.spec?.template : spec.template;
  assert.ok(t, `${o.kind} has a pod template`);
  return t;
}
const find = (objs: Obj[], kind: string, name: string): Obj => {
  const o = objs.find((x) => x.kind === kind && x.metadata?.name === name);
  assert.ok(o, `${kind} ${name} in the output`);
  return o;
};
const podSpec = (o: Obj): PodSpec => templateOf(o).spec as PodSpec;
const container = (spec: PodSpec, name: string, init = false): Container => {
  const c = (init ? spec.initContainers : spec.containers)?.find((x) => x.name === name);
  assert.ok(c, `container ${name}`);
  return c;
};
const env = (c: Container): Record<string, unknown> => Object.fromEntries((c.env ?? []).map((e) => [e.name, e.value ?? e.valueFrom]));
/** The raw text of each `---`-separated document. */
const rawDocs = (text: string): string[] => text.split(/^---[ \t]*\n/m);

const DEFAULT_IPTABLES = ['istio-iptables', '-p', '15001', '-z', '15006', '-u', '1337', '-m', 'REDIRECT', '-i', '*', '-x', '', '-b', '*', '-d', '15090,15021,15020', '--log_output_level=default:info'];

/** The facts of seed 001 and Istio's template that every injected pod template carries. */
function assertInjected(o: Obj, apps: string[], canonical: [string, string]): void {
  const what = `${o.kind} ${o.metadata?.name}`;
  const t = templateOf(o);
  const spec = podSpec(o);
  assert.deepEqual(spec.containers.map((c) => c.name), [...apps, 'istio-proxy'], what);
  assert.deepEqual((spec.initContainers ?? []).map((c) => c.name), ['istio-init'], what);

  const init = container(spec, 'istio-init', true);
  assert.equal(init.image, DEFAULT_PROXY_IMAGE);
  assert.deepEqual(init.securityContext?.capabilities, { add: ['NET_ADMIN', 'NET_RAW'], drop: ['ALL'] });
  assert.equal(init.securityContext?.runAsUser, 0);
  assert.equal(init.securityContext?.runAsNonRoot, false);

  const proxy = container(spec, 'istio-proxy');
  assert.deepEqual(proxy.args, ['proxy', 'sidecar', '--domain', '$(POD_NAMESPACE).svc.cluster.local', '--proxyLogLevel=warning', '--proxyComponentLogLevel=misc:error', '--log_output_level=default:info']);
  const sc = proxy.securityContext ?? {};
  assert.deepEqual([sc.runAsUser, sc.runAsGroup, sc.runAsNonRoot, sc.readOnlyRootFilesystem, sc.allowPrivilegeEscalation], [1337, 1337, true, true, false], what);
  assert.deepEqual(sc.capabilities, { drop: ['ALL'] });
  assert.deepEqual(proxy.ports, [{ containerPort: 15090, name: 'http-envoy-prom', protocol: 'TCP' }]);
  assert.deepEqual(proxy.readinessProbe, { httpGet: { path: '/healthz/ready', port: 15021 }, periodSeconds: 15, timeoutSeconds: 3, failureThreshold: 4 });
  assert.deepEqual(proxy.startupProbe, { httpGet: { path: '/healthz/ready', port: 15021 }, periodSeconds: 1, timeoutSeconds: 3, failureThreshold: 600 });
  const e = env(proxy);
  assert.deepEqual(e.POD_NAME, { fieldRef: { fieldPath: 'metadata.name' } });
  assert.deepEqual(e.POD_NAMESPACE, { fieldRef: { fieldPath: 'metadata.namespace' } });
  assert.deepEqual(e.INSTANCE_IP, { fieldRef: { fieldPath: 'status.podIP' } });
  assert.deepEqual(e.SERVICE_ACCOUNT, { fieldRef: { fieldPath: 'spec.serviceAccountName' } });
  assert.deepEqual(e.CANONICAL_SERVICE, { fieldRef: { fieldPath: "metadata.labels['service.istio.io/canonical-name']" } });
  assert.equal(e.ISTIO_META_INTERCEPTION_MODE, 'REDIRECT');
  assert.equal(e.ISTIO_META_APP_CONTAINERS, apps.join(','));
  assert.equal(e.ISTIO_META_WORKLOAD_NAME, o.metadata?.name);
  assert.equal(e.ISTIO_META_CLUSTER_ID, 'Kubernetes');
  assert.equal(e.TRUST_DOMAIN, 'cluster.local');

  const labels = t.metadata?.labels ?? {};
  assert.equal(labels['security.istio.io/tlsMode'], 'istio');
  assert.deepEqual([labels['service.istio.io/canonical-name'], labels['service.istio.io/canonical-revision']], canonical, what);
  const a = t.metadata?.annotations ?? {};
  assert.equal(a['kubectl.kubernetes.io/default-container'], apps[0]);
  assert.equal(a['kubectl.kubernetes.io/default-logs-container'], apps[0]);
  assert.deepEqual([a['prometheus.io/scrape'], a['prometheus.io/port'], a['prometheus.io/path']], ['true', '15020', '/stats/prometheus']);
  assert.deepEqual(JSON.parse(a['sidecar.istio.io/status'] ?? '{}'), {
    initContainers: ['istio-init'],
    containers: ['istio-proxy'],
    volumes: ['workload-socket', 'credential-socket', 'workload-certs', 'istio-envoy', 'istio-data', 'istio-podinfo', 'istio-token', 'istiod-ca-cert'],
    imagePullSecrets: null,
    revision: 'default',
  });
  const volumes = new Set((spec.volumes ?? []).map((v) => v.name));
  for (const m of proxy.volumeMounts ?? []) assert.ok(volumes.has(m.name), `volume ${String(m.name)} for its mount`);
}

describe('kube-inject of Istio\'s samples', () => {
  it('sleep.yaml: the Deployment gets istio-init and istio-proxy; ServiceAccount and Service are byte for byte unchanged', () => {
    const input = read(SLEEP);
    const r = kubeInjectText(input, SLEEP);
    assert.deepEqual(r.injected, ['Deployment default/sleep']);
    const objs = objects(r.text);
    assert.deepEqual(objs.map((o) => o.kind), ['ServiceAccount', 'Service', 'Deployment']);
    const sleep = find(objs, 'Deployment', 'sleep');
    assertInjected(sleep, ['sleep'], ['sleep', 'latest']);
    assert.deepEqual(container(podSpec(sleep), 'istio-init', true).args, DEFAULT_IPTABLES);
    const [inDocs, outDocs] = [rawDocs(input), rawDocs(r.text)];
    assert.equal(outDocs.length, inDocs.length);
    assert.equal(outDocs[0], inDocs[0], 'the ServiceAccount with its licence header');
    assert.equal(outDocs[1], inDocs[1], 'the Service');
    assert.equal(outDocs.at(-1), inDocs.at(-1), 'the trailing ---');
  });

  it('bookinfo.yaml: every Deployment injected with its canonical name and revision; everything else unchanged; valid', () => {
    const input = read(BOOKINFO);
    const r = kubeInjectText(input, BOOKINFO);
    const objs = objects(r.text);
    assert.deepEqual(objs.map((o) => `${o.kind}/${o.metadata?.name}`), objects(input).map((o) => `${o.kind}/${o.metadata?.name}`), 'same documents, same order');
    const expected: Array<[string, string, string]> = [
      ['details-v1', 'details', 'v1'], ['ratings-v1', 'ratings', 'v1'], ['reviews-v1', 'reviews', 'v1'],
      ['reviews-v2', 'reviews', 'v2'], ['reviews-v3', 'reviews', 'v3'], ['productpage-v1', 'productpage', 'v1'],
    ];
    assert.deepEqual(r.injected.sort(), expected.map(([n]) => `Deployment default/${n}`).sort());
    for (const [name, svc, rev] of expected) {
      const d = find(objs, 'Deployment', name);
      assertInjected(d, [svc], [svc, rev]);
      assert.deepEqual(container(podSpec(d), 'istio-init', true).args, DEFAULT_IPTABLES);
      assert.equal(env(container(podSpec(d), 'istio-proxy')).ISTIO_META_OWNER, `kubernetes://apis/apps/v1/namespaces/default/deployments/${name}`);
      assert.deepEqual(JSON.parse(String(env(container(podSpec(d), 'istio-proxy')).ISTIO_META_POD_PORTS)), [{ containerPort: 9080 }]);
    }
    // reviews keeps its own volumes and mounts next to the sidecar's
    const reviews = podSpec(find(objs, 'Deployment', 'reviews-v2'));
    assert.deepEqual(container(reviews, 'reviews').volumeMounts?.map((m) => m.name), ['tmp', 'wlp-output']);
    assert.ok(reviews.volumes?.some((v) => v.name === 'wlp-output'));
    const inDocs = rawDocs(input);
    const outDocs = rawDocs(r.text);
    assert.equal(outDocs.length, inDocs.length);
    inDocs.forEach((doc, i) => {
      if (!/^kind: Deployment$/m.test(doc)) assert.equal(outDocs[i], doc, `document ${i + 1} unchanged`);
    });
    const loaded = loadString(r.text, 'injected.yaml');
    assert.deepEqual(loaded.diagnostics, []);
    const errors = validateResources(loaded.resources).filter((d) => d.severity === 'error');
    assert.deepEqual(errors, []);
  });

  it('istio-init installs the rules of the istio-iptables golden (without its two CNI-only lines)', () => {
    const golden = read(istioPath('iptables', 'basic.txt.golden')).split('\n').filter((l) => !/^-A ISTIO_OUTPUT -p (tcp|udp) --dport 15020 -j RETURN$/.test(l)).join('\n');
    const d = find(objects(kubeInjectText(read(SLEEP), SLEEP).text), 'Deployment', 'sleep');
    const cfg = podCaptureConfig(templateOf(d));
    assert.ok(cfg);
    assert.equal(renderCaptureRules(cfg), golden);
  });

  it('injecting twice is injecting once', () => {
    for (const f of [SLEEP, BOOKINFO, FIXTURE]) {
      const once = kubeInjectText(read(f), f).text;
      const twice = kubeInjectText(once, f);
      assert.equal(twice.text, once, f);
      assert.deepEqual(twice.injected, []);
    }
  });
});

describe('kube-inject of every workload kind', () => {
  const r = kubeInjectText(read(FIXTURE), FIXTURE, { namespace: 'shop' });
  const objs = objects(r.text);

  it('injects Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob, Pod and List items', () => {
    assert.deepEqual(r.injected, [
      'Deployment egress/httpbin', 'StatefulSet shop/cache', 'DaemonSet shop/log-shipper', 'ReplicaSet shop/worker',
      'Job shop/migrate', 'CronJob shop/backup', 'Pod shop/shell', 'Deployment shop/api',
    ]);
    assertInjected(find(objs, 'StatefulSet', 'cache'), ['redis'], ['cache', '7.2']);
    assertInjected(find(objs, 'DaemonSet', 'log-shipper'), ['shipper'], ['log-shipper', 'latest']);
    assertInjected(find(objs, 'ReplicaSet', 'worker'), ['worker'], ['worker', 'latest']);
    assertInjected(find(objs, 'Job', 'migrate'), ['migrate'], ['migrate', 'latest']);
    assertInjected(find(objs, 'CronJob', 'backup'), ['backup'], ['backup', 'latest']);
    assertInjected(find(objs, 'Pod', 'shell'), ['shell'], ['shell', 'latest']);
    assertInjected(find(objs, 'Deployment', 'api'), ['api'], ['api', 'latest']);
    const owner = (kind: string, name: string): unknown => env(container(podSpec(find(objs, kind, name)), 'istio-proxy')).ISTIO_META_OWNER;
    assert.equal(owner('Deployment', 'httpbin'), 'kubernetes://apis/apps/v1/namespaces/egress/deployments/httpbin', 'the document\'s namespace wins over -n');
    assert.equal(owner('CronJob', 'backup'), 'kubernetes://apis/batch/v1/namespaces/shop/cronjobs/backup');
    assert.equal(owner('Pod', 'shell'), 'kubernetes://apis/v1/namespaces/shop/pods/shell');
    assert.equal(find(objs, 'Pod', 'shell').metadata?.namespace, undefined, 'no namespace is added to the manifest');
  });

  it('leaves opt-outs (annotation or label "false") and hostNetwork pods alone, saying why', () => {
    for (const [kind, name] of [['Deployment', 'legacy'], ['StatefulSet', 'db'], ['DaemonSet', 'node-agent']] as const) {
      const spec = podSpec(find(objs, kind, name));
      assert.equal(spec.initContainers, undefined, name);
      assert.equal(spec.containers.length, 1, name);
    }
    assert.deepEqual(r.skipped.map((s) => s.workload), ['Deployment shop/legacy', 'StatefulSet shop/db', 'DaemonSet shop/node-agent']);
    assert.match(r.skipped[0]?.reason ?? '', /annotation sidecar.istio.io\/inject: "false"/);
    assert.match(r.skipped[1]?.reason ?? '', /label sidecar.istio.io\/inject: "false"/);
    assert.match(r.skipped[2]?.reason ?? '', /host network/);
  });

  it('turns the traffic annotations into istio-iptables flags', () => {
    const init = container(podSpec(find(objs, 'Deployment', 'httpbin')), 'istio-init', true);
    const args = init.args ?? [];
    assert.equal(args[args.indexOf('-i') + 1], '10.96.0.0/12');
    assert.equal(args[args.indexOf('-d') + 1], '15090,15021,8081,9000,15020');
    assert.equal(args[args.indexOf('-b') + 1], '*');
  });

  it('keeps other documents byte for byte (comments included) and the output validates', () => {
    const input = read(FIXTURE);
    assert.equal(rawDocs(r.text)[0], rawDocs(input)[0], 'the ConfigMap and its comments');
    for (const name of ['legacy', 'db', 'node-agent']) {
      const doc = rawDocs(input).find((d) => d.includes(`  name: ${name}\n`));
      assert.ok(doc && r.text.includes(doc), `${name} unchanged`);
    }
    const loaded = loadString(r.text, 'out.yaml');
    assert.deepEqual(validateResources(loaded.resources).filter((d) => d.severity === 'error'), []);
  });
});

describe('tsmesh kube-inject', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tsmesh-kube-inject-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('-f - reads stdin and prints what kubectl apply -f - takes', async () => {
    const input = read(BOOKINFO);
    const res = await runCli(['kube-inject', '-f', '-'], input);
    assert.equal(res.code, 0, res.stderr);
    assert.equal(res.stdout, kubeInjectText(input, '-').text);
    assert.equal(objects(res.stdout).filter((o) => o.kind === 'Deployment').length, 6);
  });

  it('-o writes a file; -n sets the namespace of documents without one; --revision is recorded', async () => {
    const out = join(dir, 'sleep-injected.yaml');
    const res = await runCli(['kube-inject', '-f', SLEEP, '-n', 'foo', '--revision', 'canary', '-o', out]);
    assert.equal(res.code, 0, res.stderr);
    assert.equal(res.stdout, '');
    const sleep = find(objects(read(out)), 'Deployment', 'sleep');
    assert.equal(env(container(podSpec(sleep), 'istio-proxy')).ISTIO_META_OWNER, 'kubernetes://apis/apps/v1/namespaces/foo/deployments/sleep');
    assert.equal(JSON.parse(templateOf(sleep).metadata?.annotations?.['sidecar.istio.io/status'] ?? '{}').revision, 'canary');
  });

  it('a directory: every YAML file, separated by ---; skipped workloads are listed on stderr', async () => {
    const d = join(dir, 'many');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(d);
    writeFileSync(join(d, 'a.yaml'), read(SLEEP).replace(/---\n$/, ''));
    writeFileSync(join(d, 'b.yaml'), read(FIXTURE));
    const res = await runCli(['kube-inject', '-f', d]);
    assert.equal(res.code, 0, res.stderr);
    assert.equal(objects(res.stdout).length, objects(read(SLEEP)).length + objects(read(FIXTURE)).length);
    assert.match(res.stderr, /b\.yaml: Deployment default\/legacy: not injected: the pod opts out/);
  });

  it('--meshConfigFile: holdApplicationUntilProxyStarts puts the proxy first; discoveryAddress goes to PROXY_CONFIG', async () => {
    const mesh = join(dir, 'mesh.yaml');
    writeFileSync(mesh, 'defaultConfig:\n  discoveryAddress: istiod.mesh.svc:15012\n  holdApplicationUntilProxyStarts: true\n');
    const res = await runCli(['kube-inject', '-f', SLEEP, '--meshConfigFile', mesh]);
    assert.equal(res.code, 0, res.stderr);
    const spec = podSpec(find(objects(res.stdout), 'Deployment', 'sleep'));
    assert.deepEqual(spec.containers.map((c) => c.name), ['istio-proxy', 'sleep']);
    assert.equal(JSON.parse(String(env(container(spec, 'istio-proxy')).PROXY_CONFIG)).discoveryAddress, 'istiod.mesh.svc:15012');
    writeFileSync(mesh, 'defaultConfig:\n  holdApplicationUntilProxyStarts: sometimes\n');
    const bad = await runCli(['kube-inject', '-f', SLEEP, '--meshConfigFile', mesh]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /mesh\.yaml: .*holdApplicationUntilProxyStarts/);
  });

  it('--cni leaves out istio-init: istio-validation (no NET_ADMIN) checks the node-side rules, annotations carry the capture settings', async () => {
    const res = await runCli(['kube-inject', '-f', SLEEP, '--cni']);
    const deployment = find(objects(res.stdout), 'Deployment', 'sleep');
    const spec = podSpec(deployment);
    assert.deepEqual(spec.initContainers?.map((c) => c.name), ['istio-validation']);
    const validation = container(spec, 'istio-validation', true);
    assert.deepEqual(validation.args, [...DEFAULT_IPTABLES, '--run-validation', '--skip-rule-apply']);
    assert.equal(validation.securityContext?.capabilities?.add, undefined);
    assert.equal(validation.securityContext?.runAsUser, 1337);
    assert.deepEqual(spec.containers.map((c) => c.name), ['sleep', 'istio-proxy']);
    const annotations = templateOf(deployment).metadata?.annotations ?? {};
    assert.equal(annotations['sidecar.istio.io/interceptionMode'], 'REDIRECT');
    assert.equal(annotations['traffic.sidecar.istio.io/includeOutboundIPRanges'], '*');
    assert.equal(annotations['traffic.sidecar.istio.io/excludeInboundPorts'], '15020');
    // what the node-side plugin (and tsmesh up) installs from them: the default capture rules
    const cfg = podCaptureConfig(templateOf(deployment));
    assert.ok(cfg);
    assert.equal(renderCaptureRules(cfg), renderCaptureRules(podCaptureConfig(templateOf(find(objects((await runCli(['kube-inject', '-f', SLEEP])).stdout), 'Deployment', 'sleep'))) ?? assert.fail()));
  });

  it('errors name the file, the document and what is wrong', async () => {
    const deployment = (annotations: string): string => `apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n      labels: {app: web}\n${annotations}    spec:\n      containers:\n      - {name: web, image: web:1}\n`;
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n---\n${deployment('      annotations:\n        traffic.sidecar.istio.io/includeOutboundIPRanges: "10.0.0.0"\n')}`);
    let res = await runCli(['kube-inject', '-f', file]);
    assert.equal(res.code, 1);
    assert.match(res.stderr, /bad\.yaml: document 2 \(line 5\), Deployment default\/web: annotation traffic\.sidecar\.istio\.io\/includeOutboundIPRanges: invalid value "10\.0\.0\.0"/);
    assert.equal(res.stdout, '', 'nothing half-done on stdout');

    writeFileSync(file, 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  name: again\nspec: {}\n');
    res = await runCli(['kube-inject', '-f', file]);
    assert.equal(res.code, 1);
    assert.match(res.stderr, /bad\.yaml: document 2 line 9: YAML: Map keys must be unique/);

    writeFileSync(file, 'apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 1\n');
    res = await runCli(['kube-inject', '-f', file]);
    assert.equal(res.code, 1);
    assert.match(res.stderr, /bad\.yaml: document 1 \(line 1\), Deployment default\/web: spec\.template\.spec is missing/);

    res = await runCli(['kube-inject']);
    assert.equal(res.code, 2);
    assert.match(res.stderr, /no input/);
    res = await runCli(['kube-inject', '-f', join(dir, 'missing.yaml')]);
    assert.equal(res.code, 1);
    assert.match(res.stderr, /missing\.yaml: no such file/);
  });
});
