import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadPaths, loadString } from './loader.ts';
import { istioPath } from '../../test/helpers/shared.ts';

describe('loader', () => {
  it('loads every Istio sample with no diagnostics, namespaces defaulted', async () => {
    const r = await loadPaths([istioPath('samples')]);
    assert.deepEqual(r.diagnostics, []);
    assert.ok(r.resources.length > 50);
    const reviews = r.resources.find((x) => x.kind === 'Service' && x.metadata.name === 'reviews');
    assert.ok(reviews);
    assert.equal(reviews.metadata.namespace, 'default');
  });

  it('uses -n for resources that name no namespace, keeps explicit ones', () => {
    const r = loadString('apiVersion: v1\nkind: Service\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: b, namespace: x}\n', 'f.yaml', { defaultNamespace: 'bookinfo' });
    assert.deepEqual(r.resources.map((x) => x.metadata.namespace), ['bookinfo', 'x']);
  });

  it('keeps the line and column of fields', () => {
    const text = ['apiVersion: networking.istio.io/v1', 'kind: VirtualService', 'metadata:', '  name: r', 'spec:', '  hosts: [reviews]', '  http:', '  - route:', '    - destination:', '        host: reviews', '      weight: 100', ''].join('\n');
    const [vs] = loadString(text, 'vs.yaml').resources;
    assert.ok(vs);
    assert.deepEqual(vs.source.at(['spec', 'http', 0, 'route', 0, 'weight']), { line: 11, col: 7 });
    assert.deepEqual(vs.source.at(['spec', 'http', 0, 'route', 0, 'destination', 'host']), { line: 10, col: 9 });
    // a missing field points at its nearest ancestor
    assert.deepEqual(vs.source.at(['spec', 'http', 0, 'timeout']), { line: 8, col: 5 });
  });

  it('expands kind: List with positions inside items', () => {
    const text = 'apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Namespace\n  metadata:\n    name: a\n- apiVersion: v1\n  kind: Namespace\n  metadata:\n    name: b\n';
    const r = loadString(text, 'l.yaml');
    assert.deepEqual(r.resources.map((x) => [x.metadata.name, x.source.line, x.metadata.namespace]), [['a', 4, ''], ['b', 8, '']]);
  });

  it('reports syntax errors and unknown kinds without dropping the good documents', () => {
    const text = 'apiVersion: v1\nkind: Service\nmetadata: {name: ok}\n---\nkind: [oops\n---\napiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n';
    const r = loadString(text, 'mixed.yaml');
    assert.deepEqual(r.resources.map((x) => x.metadata.name), ['ok', 'w']);
    const err = r.diagnostics.find((d) => d.severity === 'error');
    assert.ok(err && err.line >= 5 && err.line <= 6 && err.message.startsWith('YAML:'), JSON.stringify(r.diagnostics));
    const warn = r.diagnostics.find((d) => d.severity === 'warning');
    assert.ok(warn && warn.line === 8 && /unknown kind Widget/.test(warn.message));
  });

  it('rejects a document without a name, naming the field', () => {
    const r = loadString('apiVersion: v1\nkind: Service\nmetadata:\n  labels: {a: b}\n', 'n.yaml');
    assert.equal(r.resources.length, 0);
    assert.equal(r.diagnostics[0]?.path, 'metadata.name');
  });

  it('fails with a clear error on a missing path', async () => {
    await assert.rejects(loadPaths(['/nonexistent/x.yaml']), /no such file or directory/);
  });
});
