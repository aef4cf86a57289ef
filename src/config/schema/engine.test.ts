// The schema engine on a small synthetic CRD: keywords Istio's CRDs use rarely or only in status,
// CEL details (int values, messageExpression, fieldPath, transition rules, rules that do not
// compile), and what happens when the CRD file is missing.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadString } from '../loader.ts';
import { formatDiagnostic, type Diagnostic } from '../diagnostics.ts';
import { istioPath } from '../../../test/helpers/shared.ts';
import { SchemaValidator, locateCrdFile, validateSchema } from './index.ts';

const CRD = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.test.istio.io
spec:
  group: test.istio.io
  names: {kind: Widget, plural: widgets}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            x-kubernetes-validations:
            - rule: self.count % 2 == 0
              message: count must be even
            - rule: "has(self.count) ? self.count < 100 : true"
              messageExpression: "'count ' + string(self.count) + ' is too large'"
            - rule: "!has(self.mode) || self.mode != 'off' || !has(self.target)"
              message: target needs mode on
              fieldPath: .target
            - rule: self.frobnicate()
              message: never compiles
            - rule: "self.count >"
              message: never parses
            - rule: self.count == oldSelf.count
              message: count is immutable
            - rule: "!has(self.label) || self.label != 'x'"
              message: label must not be x
            properties:
              count: {type: integer}
              mode: {type: string}
              target: {type: string}
              label: {type: string}
              port:
                x-kubernetes-int-or-string: true
                anyOf: [{type: integer}, {type: string}]
              ratio: {type: number, minimum: 0, exclusiveMinimum: true}
              name: {type: string, maxLength: 3}
              tags:
                type: array
                maxItems: 3
                items: {type: string}
                x-kubernetes-list-type: set
              entries:
                type: array
                items:
                  type: object
                  required: [key]
                  properties:
                    key: {type: string}
                    value: {type: string}
                x-kubernetes-list-type: map
                x-kubernetes-list-map-keys: [key]
              labels:
                type: object
                minProperties: 1
                additionalProperties: {type: string}
              extra:
                type: object
                x-kubernetes-preserve-unknown-fields: true
              maybe: {type: string, nullable: true}
  - name: v0
    served: false
    storage: false
    schema:
      openAPIV3Schema: {type: object}
`;

function run(v: SchemaValidator, spec: string, apiVersion = 'test.istio.io/v1'): Diagnostic[] {
  const loaded = loadString(`apiVersion: ${apiVersion}\nkind: Widget\nmetadata: {name: w}\nspec:\n${spec}`, 'w.yaml');
  assert.equal(loaded.resources.length, 1);
  return v.validate(loaded.resources[0]!);
}

const errorsOf = (ds: Diagnostic[]): string[] => ds.filter((d) => d.severity === 'error').map((d) => `${d.path}: ${d.message}`);

describe('schema engine on a synthetic CRD', () => {
  const v = new SchemaValidator({ crdText: CRD });
  // The first run reports the two broken rules (once); later tests see only their own problems.
  const first = run(v, '  count: 2');

  it('reports a rule that does not compile once, as an internal warning, and skips it', () => {
    const warnings = first.filter((d) => d.severity === 'warning').map((d) => d.message);
    assert.equal(warnings.length, 2, warnings.join('\n'));
    assert.ok(warnings.some((w) => w.includes('internal') && w.includes('self.frobnicate()') && w.includes('frobnicate')));
    assert.ok(warnings.some((w) => w.includes('internal') && w.includes('"self.count >"')));
    assert.deepEqual(errorsOf(first), []);
    assert.deepEqual(run(v, '  count: 4'), []);
  });

  it('runs CEL on integers as ints and skips transition (oldSelf) rules', () => {
    assert.deepEqual(errorsOf(run(v, '  count: 3')), ['spec: count must be even']);
  });

  it('uses messageExpression and fieldPath', () => {
    assert.deepEqual(errorsOf(run(v, '  count: 200')), ['spec: count 200 is too large']);
    const ds = run(v, '  count: 2\n  mode: "off"\n  target: t');
    assert.deepEqual(errorsOf(ds), ['spec.target: target needs mode on']);
    assert.equal(ds[0]!.line, 7);
  });

  it('does not run rules over a value with a type error', () => {
    assert.deepEqual(errorsOf(run(v, '  count: two')), ['spec.count: must be an integer (got string "two")']);
  });

  it('reports a rule that fails to evaluate with its message and the reason', () => {
    // label is absent: `self.label` has no such key, which the API server reports as a failure too
    const ds = new SchemaValidator({ crdText: CRD.replace("!has(self.label) || self.label != 'x'", "self.label != 'x'") });
    const errs = errorsOf(run(ds, '  count: 2'));
    assert.equal(errs.length, 1, errs.join('\n'));
    assert.match(errs[0]!, /^spec: label must not be x \(.*label.*\)$/);
  });

  it('checks int-or-string, exclusive minimum, code-point lengths, sets, list maps, minProperties', () => {
    assert.deepEqual(errorsOf(run(v, '  count: 2\n  port: 8080\n  ratio: 0.5\n  name: "été"\n  labels: {a: b}')), []);
    assert.deepEqual(errorsOf(run(v, '  count: 2\n  port: http')), []);
    assert.deepEqual(errorsOf(run(v, '  count: 2\n  port: 1.5')), ['spec.port: must be an integer or a string (got number 1.5)']);
    assert.deepEqual(errorsOf(run(v, '  count: 2\n  ratio: 0')), ['spec.ratio: must be greater than 0 (got 0)']);
    assert.deepEqual(errorsOf(run(v, '  count: 2\n  name: abcd')), ['spec.name: must be at most 3 characters long (got 4)']);
    assert.deepEqual(errorsOf(run(v, '  count: 2\n  tags: [a, b, a, c]')), [
      'spec.tags: must have at most 3 items (got 4)',
      'spec.tags[2]: duplicate value "a" (same as item [0]); items must be unique',
    ]);
    assert.deepEqual(errorsOf(run(v, '  count: 2\n  entries: [{key: a}, {key: b}, {key: a, value: x}]')), [
      'spec.entries[2]: duplicate entry with key="a" (same as item [0]); each item\'s key must be unique',
    ]);
    assert.deepEqual(errorsOf(run(v, '  count: 2\n  labels: {}')), ['spec.labels: must have at least one entry (got none)']);
    assert.deepEqual(errorsOf(run(v, '  count: 2\n  entries: [{value: x}]')), ['spec.entries[0].key: is required but missing']);
  });

  it('lets preserve-unknown-fields keep anything, allows null where nullable, rejects null list items', () => {
    assert.deepEqual(run(v, '  count: 2\n  maybe: null\n  extra: {anything: [1, {b: c}]}'), []);
    assert.deepEqual(errorsOf(run(v, '  count: 2\n  tags: [a, null]')), ['spec.tags[1]: must be a string (got null)']);
  });

  it('rejects a version the CRD does not serve, naming those it does', () => {
    assert.deepEqual(errorsOf(run(v, '  count: 2', 'test.istio.io/v0')), [
      'apiVersion: version v0 of Widget is not served; the CRD serves test.istio.io/v1',
    ]);
  });
});

describe('list-map keys in a real CRD', () => {
  it('rejects two WasmPlugin env entries with the same name', () => {
    const loaded = loadString(`apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata: {name: w}
spec:
  url: oci://ghcr.io/example/plugin:1.0
  vmConfig:
    env:
    - {name: A, value: "1"}
    - {name: A, value: "2"}
`, 'w.yaml');
    const errs = validateSchema(loaded.resources[0]!).filter((d) => d.severity === 'error');
    assert.deepEqual(errs.map((d) => `${d.path}: ${d.message}`), [
      'spec.vmConfig.env[1]: duplicate entry with name="A" (same as item [0]); each item\'s name must be unique',
    ]);
    assert.equal(errs[0]!.line, 9);
  });
});

describe('finding the CRD file', () => {
  it('prefers TSMESH_ISTIO_CRDS, then ../shared beside the checkout', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tsmesh-crd-'));
    const file = join(dir, 'crds.yaml');
    writeFileSync(file, CRD);
    assert.equal(locateCrdFile({ TSMESH_ISTIO_CRDS: file }).path, file);
    const fallback = locateCrdFile({ TSMESH_ISTIO_CRDS: join(dir, 'missing.yaml') });
    assert.equal(fallback.path, istioPath('crds', 'crd-all.gen.yaml'));
    assert.deepEqual(fallback.tried, [join(dir, 'missing.yaml'), istioPath('crds', 'crd-all.gen.yaml')]);
  });

  it('warns once that schema validation is unavailable when the file is missing, then stays quiet', () => {
    const v = new SchemaValidator({ crdPath: '/nonexistent/crd-all.gen.yaml' });
    const yaml = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: r}
spec: {hosts: 5}
`;
    const r = loadString(yaml, 'r.yaml').resources[0]!;
    const firstRun = v.validate(r);
    assert.equal(firstRun.length, 1, firstRun.map(formatDiagnostic).join('\n'));
    assert.equal(firstRun[0]!.severity, 'warning');
    assert.match(firstRun[0]!.message, /schema validation is unavailable.*\/nonexistent\/crd-all\.gen\.yaml/);
    assert.deepEqual(v.validate(r), []);
  });
});
