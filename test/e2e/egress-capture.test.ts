// Capture and egress in real network namespaces: the client pod holds exactly the capture rules the
// injector renders; its application's call leaves through its sidecar (access log, x-request-id) while
// the proxy's own UID 1337 goes straight out; a destination outside the registry (a pod without a
// sidecar and without a Service) is reachable under ALLOW_ANY (PassthroughCluster, HTTP and opaque TCP)
// and blocked once the mesh config says REGISTRY_ONLY (HTTP 502 from block_all, TCP closed).

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DEFAULT_CAPTURE_CONFIG, renderCaptureRules } from '../../src/inject/capture-rules.ts';
import { netnsSkipReason } from '../helpers/netns.ts';
import { APPS, poll, startTestMesh, type FetchResult, type TestMesh, CLIENT_YAML } from '../helpers/mesh.ts';

const skip = netnsSkipReason();

const YAML = `
apiVersion: v1
kind: Service
metadata: {name: anchor, namespace: demo}
spec:
  selector: {app: nothing-runs-this}
  ports: [{name: http, port: 8080, targetPort: 8080}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: outside, namespace: demo}
spec:
  selector: {matchLabels: {app: outside}}
  template:
    metadata: {labels: {app: outside}}
    spec: {containers: [{name: echo, image: tsmesh/echo, ports: [{containerPort: 8080}]}]}
---
${CLIENT_YAML}
`;

const REGISTRY_ONLY = `
apiVersion: v1
kind: ConfigMap
metadata: {name: istio, namespace: istio-system}
data:
  mesh: |
    outboundTrafficPolicy: {mode: REGISTRY_ONLY}
`;

/**
 * iptables-save's nat table as comparable rules: per chain, each rule's options sorted (the target
 * last), the implicit `-m tcp`/`-m udp` dropped, so that iptables-restore input and iptables-save
 * output of the same rules compare equal. Built-in chains without rules are left out.
 */
function natRules(text: string): Record<string, string[]> {
  const chains: Record<string, string[]> = {};
  let inNat = false;
  for (const line of text.split('\n').map((l) => l.trim())) {
    if (line.startsWith('*')) inNat = line.replace(/\s+/g, '') === '*nat';
    if (!inNat) continue;
    const declared = /^-N (\S+)$/.exec(line) ?? /^:(\S+) - /.exec(line);
    if (declared?.[1]) chains[declared[1]] ??= [];
    const m = /^-A (\S+) (.*)$/.exec(line);
    if (!m?.[1] || m[2] === undefined) continue;
    const tokens = m[2].split(/\s+/);
    const options: string[] = [];
    let target = '';
    for (let i = 0; i < tokens.length; i++) {
      let t = tokens[i] ?? '';
      if ((t === '-m' && (tokens[i + 1] === 'tcp' || tokens[i + 1] === 'udp'))) {
        i++;
        continue;
      }
      const negated = t === '!';
      if (negated) t = tokens[++i] ?? '';
      const values: string[] = [];
      while (i + 1 < tokens.length && !(tokens[i + 1] ?? '').startsWith('-') && tokens[i + 1] !== '!') values.push(tokens[++i] ?? '');
      const opt = [negated ? '!' : '', t, ...values].filter(Boolean).join(' ');
      if (t === '-j') target = [opt, ...tokens.slice(i + 1)].join(' ');
      if (t === '-j') break;
      options.push(opt);
    }
    (chains[m[1]] ??= []).push([...options.sort(), target].join(' '));
  }
  for (const [k, v] of Object.entries(chains)) if (v.length === 0 && /^[A-Z]+$/.test(k) && !k.startsWith('ISTIO')) delete chains[k];
  return chains;
}

describe('capture, passthrough and blackhole in real namespaces', { skip, timeout: 120_000 }, () => {
  let mesh: TestMesh;
  let outside = '';
  const get = async (path: string, uid?: number): Promise<FetchResult> => {
    if (uid === undefined) {
      const [r] = await mesh.fetch('client', `http://${outside}:8080${path}`);
      assert.ok(r);
      return r;
    }
    const res = await mesh.exec('client', [process.execPath, join(APPS, 'fetch.mjs'), `http://${outside}:8080${path}`], uid);
    return JSON.parse(res.stdout.trim()) as FetchResult;
  };
  const tcp = async (message: string): Promise<{ connected: boolean; received: string; closedBy: string; error?: string }> => {
    const r = await mesh.exec('client', [process.execPath, join(APPS, 'tcp-client.mjs'), outside, '9000', message]);
    return JSON.parse(r.stdout.trim()) as { connected: boolean; received: string; closedBy: string; error?: string };
  };

  before(async () => {
    mesh = await startTestMesh({
      yaml: YAML,
      images: { 'tsmesh/echo': { argv: [process.execPath, join(APPS, 'echo.mjs')], env: { PORT: '8080', TCP_PORT: '9000' } } },
      meshOverrides: ['meshConfig.accessLogFile=/dev/stdout'],
      withoutSidecar: ['outside'],
    });
    outside = mesh.ip('outside');
    await poll('the outside app answering', async () => ((await get('/')).status === 200 ? true : undefined));
  });
  after(async () => {
    await mesh?.stop();
  });

  it('installs exactly the rendered capture rules in the pod', async () => {
    const saved = await mesh.exec('client', ['iptables-save', '-t', 'nat'], 0);
    assert.equal(saved.code, 0, saved.stderr);
    assert.deepEqual(natRules(saved.stdout), natRules(renderCaptureRules(DEFAULT_CAPTURE_CONFIG)));
    assert.deepEqual(natRules(saved.stdout).ISTIO_REDIRECT, ['-p tcp -j REDIRECT --to-ports 15001'], 'the comparison sees the rules');
  });

  it('captures the application\'s call (client sidecar logs it) but not the proxy UID\'s', async () => {
    const app = await get('/from-app');
    assert.equal(app.status, 200, JSON.stringify(app));
    const seenByOutside = JSON.parse(app.body) as { headers: Record<string, string>; remote: string };
    assert.ok(seenByOutside.headers['x-request-id'], 'the sidecar added x-request-id on the way out');
    const [line] = await mesh.accessLog('client', '/from-app');
    assert.equal(line?.code, 200);
    assert.equal(line?.cluster, 'PassthroughCluster', line?.raw);
    assert.equal(line?.upstreamHost, `${outside}:8080`);

    const proxy = await get('/from-proxy-uid', 1337);
    assert.equal(proxy.status, 200, JSON.stringify(proxy));
    const seen = JSON.parse(proxy.body) as { headers: Record<string, string>; remote: string };
    assert.equal(seen.headers['x-request-id'], undefined, 'no sidecar touched it');
    assert.match(seen.remote, new RegExp(`^${mesh.ip('client').replace(/\./g, '\\.')}:`));
    // the application's later call is logged, the proxy UID's earlier one never is
    await get('/after-proxy-uid');
    await mesh.accessLog('client', '/after-proxy-uid');
    assert.equal((await mesh.accessLog('client', '/from-proxy-uid', { count: 0 })).length, 0);
  });

  it('passes opaque TCP to an address outside the registry through under ALLOW_ANY', async () => {
    const r = await tcp('hello over tcp');
    assert.deepEqual(r, { connected: true, received: 'hello over tcp', closedBy: 'client' });
  });

  it('blocks both under REGISTRY_ONLY: HTTP 502 from block_all, TCP closed', async () => {
    mesh.apply(REGISTRY_ONLY);
    const blocked = await poll('the REGISTRY_ONLY push', async () => {
      const r = await get('/blocked');
      return r.status === 502 ? r : undefined;
    });
    assert.equal(blocked.body, '');
    assert.match(blocked.headers['x-tsmesh-error'] ?? '', /not in the service registry and outboundTrafficPolicy is REGISTRY_ONLY/);
    const [line] = await mesh.accessLog('client', '/blocked');
    assert.equal(line?.code, 502, line?.raw);
    assert.equal(line?.details, 'direct_response');

    const r = await tcp('hello over tcp');
    assert.equal(r.received, '', JSON.stringify(r));
    assert.equal(r.closedBy, 'remote', JSON.stringify(r));
  });
});
