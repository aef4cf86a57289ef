// The samples' YAML: our bookinfo.yaml has Istio's names, labels, ports and images; our networking tasks
// mean what Istio's do; every image of Istio's samples is mapped in an examples/*/tsmesh.local.yaml whose
// commands start the app as the runtime will; `tsmesh validate` and `tsmesh analyze` accept them.

import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parse } from 'yaml';
import { loadPaths } from '../../src/config/loader.ts';
import type { Resource } from '../../src/config/resource.ts';
import { runCli } from '../helpers/cli.ts';
import { istioPath } from '../helpers/shared.ts';
import { EXAMPLES, request, startCommand, stopAll, type AppProcess } from './helpers.ts';

const OURS = join(EXAMPLES, 'bookinfo');

interface Mapping {
  file: string;
  image: string;
  command: string[];
  env: Record<string, string>;
}

function mappings(): Mapping[] {
  const out: Mapping[] = [];
  for (const dir of readdirSync(EXAMPLES)) {
    const file = join(EXAMPLES, dir, 'tsmesh.local.yaml');
    if (!existsSync(file)) continue;
    const doc = parse(readFileSync(file, 'utf8')) as { images: Record<string, { command: string[]; env: Record<string, string> }> };
    for (const [image, m] of Object.entries(doc.images)) out.push({ file, image, command: m.command, env: m.env });
  }
  return out;
}

const byKind = (rs: Resource[], kind: string): Map<string, Resource> => new Map(rs.filter((r) => r.kind === kind).map((r) => [r.metadata.name, r]));

/** What routing depends on in a Deployment: labels, selector, service account, containers' names, images and ports. */
function deploymentShape(r: Resource): unknown {
  const spec = r.spec as { selector: unknown; template: { metadata: { labels: unknown }; spec: { serviceAccountName?: string; containers: { name: string; image: string; ports?: unknown }[] } } };
  return {
    labels: r.metadata.labels,
    selector: spec.selector,
    podLabels: spec.template.metadata.labels,
    serviceAccount: spec.template.spec.serviceAccountName,
    containers: spec.template.spec.containers.map((c) => ({ name: c.name, image: c.image, ports: c.ports })),
  };
}

describe('sample manifests', () => {
  after(stopAll);

  it('bookinfo.yaml: the Services, ServiceAccounts and Deployments of Istio\'s, same names, labels, ports and images', async () => {
    const ours = (await loadPaths([join(OURS, 'bookinfo.yaml')])).resources;
    const istio = (await loadPaths([istioPath('samples/bookinfo/platform/kube/bookinfo.yaml')])).resources;
    assert.equal(ours.length, istio.length);
    for (const kind of ['Service', 'ServiceAccount', 'Deployment']) {
      const o = byKind(ours, kind);
      const i = byKind(istio, kind);
      assert.deepEqual([...o.keys()].sort(), [...i.keys()].sort(), kind);
      for (const [name, ir] of i) {
        const or = o.get(name) as Resource;
        if (kind === 'Deployment') assert.deepEqual(deploymentShape(or), deploymentShape(ir), name);
        else if (kind === 'Service') {
          assert.deepEqual(or.metadata.labels, ir.metadata.labels, name);
          assert.deepEqual(or.spec, ir.spec, name);
        } else assert.deepEqual(or.metadata.labels, ir.metadata.labels, name);
      }
    }
  });

  it('networking/: each task means what Istio\'s file of the same name does (the DestinationRules keep only subsets with pods)', async () => {
    const files = readdirSync(join(OURS, 'networking')).filter((f) => f.endsWith('.yaml'));
    assert.ok(files.length >= 11);
    for (const f of [
      'destination-rule-all.yaml',
      'virtual-service-all-v1.yaml',
      'virtual-service-reviews-test-v2.yaml',
      'virtual-service-ratings-test-delay.yaml',
      'virtual-service-ratings-test-abort.yaml',
      'virtual-service-reviews-50-v3.yaml',
      'virtual-service-reviews-90-10.yaml',
    ]) {
      assert.ok(files.includes(f), f);
    }
    const deployments = (await loadPaths([join(OURS, 'bookinfo.yaml')])).resources.filter((r) => r.kind === 'Deployment');
    const running = new Set(deployments.map((d) => `${d.metadata.labels.app}/${d.metadata.labels.version}`));
    for (const f of files) {
      const ours = (await loadPaths([join(OURS, 'networking', f)])).resources;
      const istio = (await loadPaths([istioPath('samples/bookinfo/networking', f)])).resources;
      assert.deepEqual(ours.map((r) => `${r.kind}/${r.metadata.name}`), istio.map((r) => `${r.kind}/${r.metadata.name}`), f);
      ours.forEach((o, n) => {
        const i = istio[n] as Resource;
        let want = i.spec;
        if (i.kind === 'DestinationRule') {
          const spec = i.spec as { host: string; subsets: { labels: { version: string } }[] };
          want = { ...spec, subsets: spec.subsets.filter((s) => running.has(`${spec.host}/${s.labels.version}`)) };
        }
        assert.deepEqual(o.spec, want, `${f}: ${o.kind}/${o.metadata.name}`);
      });
    }
  });

  it('every image of Istio\'s samples is mapped, to a file that exists, with string env values', async () => {
    const images = new Set<string>();
    for (const r of (await loadPaths([istioPath('samples')])).resources) {
      if (r.kind !== 'Deployment') continue;
      for (const c of (r.spec as { template: { spec: { containers: { image: string }[] } } }).template.spec.containers) images.add(c.image);
    }
    const mapped = mappings();
    assert.ok(images.size >= 12);
    for (const image of images) assert.ok(mapped.some((m) => m.image === image), `${image} is not mapped`);
    for (const m of mapped) {
      assert.deepEqual(m.command.slice(0, 2), ['{node}', '{tsx}'], m.image);
      assert.ok(existsSync(join(dirname(m.file), m.command[2] as string)), `${m.image}: ${m.command[2]} missing`);
      assert.ok(Object.values(m.env).every((v) => typeof v === 'string'), `${m.image}: env values must be strings`);
    }
  });

  it('the mapped commands start the apps as the runtime will (cwd = the mapping\'s folder)', async () => {
    const run = (m: Mapping): Promise<AppProcess> =>
      startCommand(
        m.command.map((a) => (a === '{node}' ? process.execPath : a === '{tsx}' ? '--import=tsx' : a)),
        dirname(m.file),
        { ...m.env, HOSTNAME: 'pod-1' },
      );
    const all = mappings().filter((m) => !m.image.includes('curlimages') && !m.image.includes('details-v2'));
    const apps = await Promise.all(all.map(async (m) => ({ m, app: await run(m) })));
    for (const { m, app } of apps) {
      if (m.image.includes('reviews')) {
        // no ratings to call here: v2/v3 say so, v1 does not call it
        const body = JSON.parse((await request(`${app.url}/reviews/0`)).body);
        const rating = body.reviews[0].rating;
        if (m.image.includes('reviews-v1')) assert.equal(rating, undefined, m.image);
        else assert.deepEqual(rating, { error: 'Ratings service is currently unavailable' }, m.image);
        assert.equal(body.podname, 'pod-1');
      } else if (m.image.includes('helloworld')) {
        assert.equal((await request(`${app.url}/hello`)).body, `Hello version: ${m.env.SERVICE_VERSION}, instance: pod-1\n`);
      } else if (m.image.includes('httpbin')) {
        assert.equal((await request(`${app.url}/status/204`)).status, 204);
      } else {
        assert.equal((await request(`${app.url}/health`)).status, 200, m.image);
      }
    }
  });

  it('tsmesh validate examples/bookinfo exits 0; analyze of bookinfo.yaml + destination-rule-all.yaml finds nothing', async () => {
    const v = await runCli(['validate', OURS]);
    assert.equal(v.code, 0, v.stdout + v.stderr);
    assert.match(v.stdout + v.stderr, / 0 errors/);
    const a = await runCli(['analyze', join(OURS, 'bookinfo.yaml'), join(OURS, 'networking', 'destination-rule-all.yaml')]);
    assert.equal(a.code, 0, a.stdout + a.stderr);
    assert.doesNotMatch(a.stdout + a.stderr, /Error|Warning/);
  });
});
