// Validation end to end: the invalid fixtures are rejected exactly where their `# expect:` comments
// say, Istio's own samples and validation dataset are accepted, and `tsmesh validate` prints and exits
// as documented.

import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { main, type CommandIO } from '../src/cli/main.ts';
import { formatDiagnostic, type Diagnostic } from '../src/config/diagnostics.ts';
import { loadPaths, loadString } from '../src/config/loader.ts';
import { resourceRef } from '../src/config/resource.ts';
import { validateResources } from '../src/config/validate.ts';
import { validateSemantics } from '../src/config/validation/index.ts';
import { REPO_ROOT, istioPath } from './helpers/shared.ts';

const FIXTURES = join(REPO_ROOT, 'test', 'fixtures', 'invalid');

interface Expectation {
  severity: 'error' | 'warning';
  path: string;
  fragment: string;
}

interface FixtureDoc {
  firstLine: number; // 1-based, inclusive
  lastLine: number;
  expectations: Expectation[];
}

/** Splits a fixture file into documents and reads each one's `# expect:` / `# expect-warning:` comments. */
function readFixture(text: string): FixtureDoc[] {
  const docs: FixtureDoc[] = [];
  let current: FixtureDoc = { firstLine: 1, lastLine: 1, expectations: [] };
  text.split('\n').forEach((line, i) => {
    const n = i + 1;
    if (/^---\s*$/.test(line)) {
      docs.push(current);
      current = { firstLine: n + 1, lastLine: n + 1, expectations: [] };
      return;
    }
    current.lastLine = n;
    const m = /^#\s*expect(-warning)?:\s*(\S+):\s*(.+?)\s*$/.exec(line);
    if (m) current.expectations.push({ severity: m[1] ? 'warning' : 'error', path: m[2] ?? '', fragment: m[3] ?? '' });
  });
  docs.push(current);
  return docs;
}

function capture(stdin?: string): CommandIO & { stdout: string[]; stderr: string[] } {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return { stdout, stderr, out: (t) => stdout.push(t), err: (t) => stderr.push(t), ...(stdin !== undefined ? { stdin } : {}) };
}

const fixtureFiles = readdirSync(FIXTURES).filter((f) => f.endsWith('.yaml')).sort();

describe('invalid fixtures', () => {
  let total = 0;
  for (const file of fixtureFiles) {
    const path = join(FIXTURES, file);
    const text = readFileSync(path, 'utf8');
    const docs = readFixture(text);
    const loaded = loadString(text, path);
    total += loaded.resources.length;

    it(`${file}: every resource fails exactly as its # expect: comments say`, () => {
      assert.deepEqual(loaded.diagnostics.filter((d) => d.severity === 'error'), [], 'fixtures must load');
      const diagnostics = validateResources(loaded.resources);
      for (const r of loaded.resources) {
        const doc = docs.find((d) => r.source.line >= d.firstLine && r.source.line <= d.lastLine);
        assert.ok(doc && doc.expectations.length > 0, `${resourceRef(r)} in ${file} has no # expect: comment`);
        const mine = diagnostics.filter((d) => d.resource === resourceRef(r) && d.line >= doc.firstLine && d.line <= doc.lastLine);
        const errors = mine.filter((d) => d.severity === 'error');
        for (const e of doc.expectations) {
          const pool = e.severity === 'error' ? errors : mine.filter((d) => d.severity === 'warning');
          assert.ok(
            pool.some((d) => d.path === e.path && d.message.includes(e.fragment)),
            `${resourceRef(r)}: expected ${e.severity} at ${e.path} containing "${e.fragment}"; got:\n${mine.map(formatDiagnostic).join('\n') || '(nothing)'}`,
          );
        }
        const unexpected = errors.filter((d) => !doc.expectations.some((e) => e.severity === 'error' && d.path === e.path && d.message.includes(e.fragment)));
        assert.deepEqual(unexpected.map(formatDiagnostic), [], `${resourceRef(r)}: errors not announced by # expect:`);
      }
    });
  }

  it('hold at least 40 invalid resources', () => {
    assert.ok(total >= 40, `only ${total} fixture resources`);
  });
});

describe("Istio's own YAML", () => {
  for (const dir of ['validation-dataset', 'samples']) {
    it(`${dir}: no semantic errors`, async () => {
      const loaded = await loadPaths([istioPath(dir)]);
      assert.ok(loaded.resources.length > 0);
      const errors = loaded.resources.flatMap((r) => validateSemantics(r)).filter((d) => d.severity === 'error');
      assert.deepEqual(errors.map(formatDiagnostic), []);
    });
  }
});

describe('tsmesh validate', () => {
  it('prints file:line:col: Kind ns/name: path: message and exits 1 for a bad file', async () => {
    const io = capture();
    const file = join(FIXTURES, 'sidecar.yaml');
    const code = await main(['validate', file], io);
    assert.equal(code, 1);
    const out = io.stdout.join('\n');
    assert.ok(out.includes(`${file}:10:13: Sidecar bookinfo/bare-host: spec.egress[0].hosts[0]: host "reviews" has no namespace`), out);
    assert.match(io.stdout.at(-1) ?? '', /^validated 6 resources in 1 file: \d+ errors?, \d+ warnings?$/);
  });

  it('exits 0 for the Bookinfo samples and says so in the summary', async () => {
    const io = capture();
    const code = await main(['validate', '-f', istioPath('samples', 'bookinfo')], io);
    assert.equal(code, 0, io.stdout.join('\n'));
    assert.match(io.stdout.at(-1) ?? '', /^validated \d+ resources in \d+ files: 0 errors, 0 warnings$/);
  });

  it("reads '-' from stdin, applies -n, and prints JSON with -o json", async () => {
    const yaml = 'apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata:\n  name: r\nspec:\n  host: reviews\n  subsets:\n  - name: v1\n  - name: v1\n';
    const io = capture(yaml);
    const code = await main(['validate', '-', '-n', 'bookinfo', '-o', 'json'], io);
    assert.equal(code, 1);
    const diagnostics = JSON.parse(io.stdout.join('\n')) as Diagnostic[];
    const dup = diagnostics.find((d) => d.path === 'spec.subsets[1].name');
    assert.ok(dup, io.stdout.join('\n'));
    assert.deepEqual([dup.file, dup.line, dup.resource, dup.severity], ['-', 9, 'DestinationRule bookinfo/r', 'error']);
    assert.match(io.stderr.join('\n'), /validated 1 resource in 1 file: 1 error/);
  });

  it('rejects bad flags and missing paths with usage errors', async () => {
    const noPath = capture();
    assert.equal(await main(['validate'], noPath), 2);
    assert.match(noPath.stderr.join('\n'), /no files given/);
    const badOutput = capture();
    assert.equal(await main(['validate', '-o', 'yaml', FIXTURES], badOutput), 2);
    const missing = capture();
    assert.equal(await main(['validate', join(FIXTURES, 'does-not-exist.yaml')], missing), 1);
    assert.match(missing.stderr.join('\n'), /no such file/);
  });
});
