import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { diagAt } from '../config/diagnostics.ts';
import { loadString } from '../config/loader.ts';
import type { Resource } from '../config/resource.ts';
import { ConfigStore } from './config-store.ts';

// A tiny validator for this unit test only: weights must be numbers below 101.
const validate = (rs: readonly Resource[]) =>
  rs.flatMap((r) => (typeof r.spec.weight === 'number' && r.spec.weight > 100 ? [diagAt(r, ['spec', 'weight'], 'must be at most 100')] : []));

const vs = (name: string, weight: number, file = 'f.yaml') =>
  loadString(`apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: ${name}, namespace: ns}\nspec: {hosts: [a], weight: ${weight}}\n`, file).resources;

describe('ConfigStore', () => {
  it('accepts valid changes, reports what changed, and bumps the version', () => {
    const store = new ConfigStore(validate);
    const seen: string[][] = [];
    store.onChange((c) => seen.push([...c.keys]));
    const r = store.apply(vs('a', 10));
    assert.equal(r.accepted, true);
    assert.equal(store.version, 1);
    assert.deepEqual(seen, [['networking.istio.io/VirtualService/ns/a']]);
    // re-applying the same object is not a change
    store.apply(vs('a', 10));
    assert.equal(store.version, 1);
  });

  it('rejects a change with an error and keeps serving the last good config', () => {
    const store = new ConfigStore(validate);
    store.apply(vs('a', 10));
    const before = store.snapshot();
    const r = store.apply([...vs('b', 20), ...vs('a', 500)]);
    assert.equal(r.accepted, false);
    assert.match(r.diagnostics[0]?.message ?? '', /at most 100/);
    assert.equal(store.snapshot(), before);
    assert.equal(store.snapshot()[0]?.spec.weight, 10);
    assert.equal(store.get('networking.istio.io/VirtualService/ns/b'), undefined);
  });

  it('replaces a file source whole: resources gone from the file are removed', () => {
    const store = new ConfigStore(validate);
    store.replaceSource('x.yaml', [...vs('a', 1, 'x.yaml'), ...vs('b', 2, 'x.yaml')]);
    store.apply(vs('c', 3));
    const r = store.replaceSource('x.yaml', vs('a', 1, 'x.yaml'));
    assert.deepEqual([...r.change.keys], ['networking.istio.io/VirtualService/ns/b']);
    assert.deepEqual(store.snapshot().map((x) => x.metadata.name), ['a', 'c']);
  });

  it('deletes by key', () => {
    const store = new ConfigStore(validate);
    store.apply(vs('a', 1));
    store.delete(['networking.istio.io/VirtualService/ns/a', 'nope']);
    assert.equal(store.snapshot().length, 0);
    assert.equal(store.version, 2);
  });
});
