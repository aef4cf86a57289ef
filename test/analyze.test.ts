// `tsmesh analyze` in the istioctl style: fixture files -> the exact (code, origin) pairs; the message
// catalog against Istio's messages.yaml; output formats, suppressions, namespaces and exit codes.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { main, type CommandIO } from '../src/cli/main.ts';
import { formatDiagnostic } from '../src/config/diagnostics.ts';
import { loadPaths } from '../src/config/loader.ts';
import { validateResources } from '../src/config/validate.ts';
import {
  ALL_ANALYZERS,
  MESSAGES,
  analyzeResources,
  formatMessage,
  formatTemplate,
  globMatch,
  messageOrigin,
  messageReference,
  type AnalysisMessage,
} from '../src/config/analysis/index.ts';
import { REPO_ROOT, istioPath } from './helpers/shared.ts';

const FIXTURES = join(REPO_ROOT, 'test', 'fixtures', 'analysis');
/** Fixture paths as a user would type them from the checkout (the CLI prints them back). */
const fixture = (name: string): string => relative(process.cwd(), join(FIXTURES, name));

async function analyzeFiles(paths: string[], namespace?: string): Promise<AnalysisMessage[]> {
  const loaded = await loadPaths(paths);
  return analyzeResources(loaded.resources, { namespace, diagnostics: loaded.diagnostics }).messages;
}

const pairs = (ms: readonly AnalysisMessage[]): string[] => ms.map((m) => `${m.type.code} ${messageOrigin(m)}`).sort();

/** The 1-based line of the first line of `file` containing `text` (after line `after`, if given). */
function lineOf(file: string, text: string, after = 0): number {
  const lines = readFileSync(file, 'utf8').split('\n');
  const i = lines.findIndex((l, n) => n >= after && l.includes(text));
  assert.ok(i >= 0, `${text} not in ${file}`);
  return i + 1;
}

function capture(stdin?: string): CommandIO & { stdout: string[]; stderr: string[] } {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return { stdout, stderr, stdin, out: (t) => stdout.push(t), err: (t) => stderr.push(t) };
}

async function runAnalyze(args: string[], stdin?: string): Promise<{ code: number; out: string; err: string }> {
  const io = capture(stdin);
  const code = await main(['analyze', ...args], io);
  return { code, out: io.stdout.join('\n'), err: io.stderr.join('\n') };
}

describe('message catalog', () => {
  it('has the levels and templates of Istio messages.yaml for every code', () => {
    const doc = parseYaml(readFileSync(istioPath('analysis', 'messages.yaml'), 'utf8')) as {
      messages: Array<{ name: string; code: string; level: string; template: string }>;
    };
    const istio = new Map(doc.messages.map((m) => [m.code, m]));
    for (const m of Object.values(MESSAGES)) {
      const theirs = istio.get(m.code);
      assert.ok(theirs, `${m.code} is not in messages.yaml`);
      assert.equal(m.name, theirs.name, m.code);
      assert.equal(m.level, theirs.level, m.code);
      assert.equal(m.template, theirs.template, m.code);
    }
  });

  it('formats Go verbs the way istioctl prints them', () => {
    assert.equal(formatTemplate(MESSAGES.ReferencedResourceNotFound.template, ['host', 'bo"gus']), 'Referenced host not found: "bo\\"gus"');
    assert.equal(
      formatTemplate(MESSAGES.VirtualServiceDestinationPortSelectorRequired.template, ['ratings', [9080, 9090]]),
      'This VirtualService routes to a service "ratings" that exposes multiple ports [9080 9090]. Specifying a port in the destination is required to disambiguate.',
    );
    assert.equal(formatTemplate('%v in %q: %d%%', [['a', 'b'], 'ns', 3]), '[a b] in "ns": 3%');
    assert.equal(formatTemplate('%s and %s', ['one']), 'one and %!s(MISSING)');
  });

  it('matches suppression globs like istioctl', () => {
    assert.ok(globMatch('VirtualService default/*', 'VirtualService default/reviews'));
    assert.ok(globMatch('Pod *', 'Pod default/a.b'));
    assert.ok(!globMatch('VirtualService default/*', 'VirtualService other/reviews'));
    assert.ok(!globMatch('Pod default/a.b', 'Pod default/axb'));
  });
});

// istioctl's analyzer tests: input files -> the exact list of (code, origin), every analyzer running.
const CASES: Array<{ name: string; files: string[]; expected: string[] }> = [
  {
    name: 'virtual service destination hosts and ports',
    files: ['vs-destination-hosts.yaml'],
    expected: [
      'IST0101 VirtualService default/details-wrong-namespace', // short name resolves in default
      'IST0101 VirtualService default/details-wrong-namespace', // external host without ServiceEntry
      'IST0101 VirtualService default/private-from-default', // exportTo "." elsewhere
      'IST0101 VirtualService default/reviews-bogushost',
      'IST0101 VirtualService default/reviews-bogushost', // mirror
      'IST0101 VirtualService default/reviews-bogusport',
      'IST0112 VirtualService default/ratings-2port-missing',
    ],
  },
  {
    name: 'mesh config defaultServiceExportTo',
    files: ['mesh-config-export.yaml'],
    expected: ['IST0101 VirtualService frontend/from-frontend'],
  },
  {
    name: 'subsets missing from the destination rule',
    files: ['vs-destination-subsets.yaml'],
    expected: ['IST0101 VirtualService default/reviews-bogussubset', 'IST0101 VirtualService default/reviews-mirror-bogussubset'],
  },
  {
    name: 'sidecar workload selectors',
    files: ['sidecar-selector.yaml'],
    expected: [
      'IST0101 Sidecar default/maps-to-different-ns',
      'IST0101 Sidecar default/maps-to-nonexistent',
      'IST0110 Sidecar default/dupe-1',
      'IST0110 Sidecar default/dupe-2',
    ],
  },
  {
    name: 'namespace-wide sidecars',
    files: ['sidecar-default-selector.yaml'],
    expected: ['IST0111 Sidecar ns2/has-conflict-1', 'IST0111 Sidecar ns2/has-conflict-2'],
  },
  {
    name: 'destination rule subsets and hosts',
    files: ['destinationrule-subsets.yaml'],
    expected: [
      'IST0173 DestinationRule default/reviews',
      'IST0174 DestinationRule default/fake-host',
      'IST0174 DestinationRule default/wildcard-nothing',
      'IST0174 DestinationRule other/reviews-elsewhere',
    ],
  },
  {
    name: 'conflicting mesh gateway hosts',
    files: ['mesh-gateway-hosts.yaml'],
    expected: ['IST0109 VirtualService foo/bogus-productpage', 'IST0109 VirtualService foo/productpage'],
  },
  {
    name: 'unreachable rules and ineffective matches',
    files: ['vs-unreachable-rules.yaml'],
    expected: [
      'IST0130 VirtualService default/catch-all-first',
      'IST0130 VirtualService default/duplicate-match',
      'IST0130 VirtualService default/two-catch-alls',
      'IST0131 VirtualService default/almost-duplicate-match',
      'IST0131 VirtualService default/duplicate-match',
      'IST0131 VirtualService default/overlapping-prefix',
    ],
  },
  {
    name: 'sidecar injection',
    files: ['injection.yaml'],
    expected: ['IST0102 Namespace bar', 'IST0103 Pod default/noninjectedpod', 'IST0123 Namespace busted'],
  },
  {
    name: 'service port names',
    files: ['service-port-names.yaml'],
    expected: ['IST0118 Service my-namespace1/my-service1', 'IST0118 Service my-namespace1/my-service3', 'IST0118 Service my-namespace2/my-service2'],
  },
  {
    name: 'application UID 1337',
    files: ['application-uid.yaml'],
    expected: ['IST0144 Deployment default/deploy-con-sec-uid', 'IST0144 Pod default/con-sec-uid', 'IST0144 Pod default/pod-sec-uid'],
  },
  {
    name: 'kinds tsmesh does not act on',
    files: ['unsupported-kinds.yaml'],
    expected: ['IST0167 EnvoyFilter default/add-header', 'IST0167 WasmPlugin istio-system/openid-connect'],
  },
];

describe('analyzers on fixtures (istioctl style: exact code/origin pairs)', () => {
  for (const c of CASES) {
    it(c.name, async () => {
      const ms = await analyzeFiles(c.files.map((f) => join(FIXTURES, f)));
      assert.deepEqual(pairs(ms), [...c.expected].sort(), ms.map(formatMessage).join('\n'));
    });
  }

  it('uses fixtures that pass schema and semantic validation', async () => {
    const loaded = await loadPaths([FIXTURES]);
    const errors = [...loaded.diagnostics, ...validateResources(loaded.resources)].filter((d) => d.severity === 'error');
    assert.deepEqual(errors.map(formatDiagnostic), []);
  });

  it('covers every code the analyzers can report', () => {
    const covered = new Set(CASES.flatMap((c) => c.expected.map((e) => e.split(' ')[0])));
    for (const code of ['IST0101', 'IST0102', 'IST0103', 'IST0109', 'IST0110', 'IST0111', 'IST0112', 'IST0118', 'IST0123', 'IST0130', 'IST0131', 'IST0144', 'IST0167', 'IST0173', 'IST0174']) {
      assert.ok(covered.has(code), `no fixture case for ${code}`);
    }
  });

  it('says what was not found, as istioctl does', async () => {
    const texts = (await analyzeFiles([join(FIXTURES, 'vs-destination-hosts.yaml'), join(FIXTURES, 'vs-destination-subsets.yaml')]))
      .map(formatMessage)
      .join('\n');
    const sc = (await analyzeFiles([join(FIXTURES, 'sidecar-selector.yaml')])).map(formatMessage).join('\n');
    assert.match(texts, /Referenced host not found: "bogus"$/m);
    assert.match(texts, /Referenced mirror host not found: "bogus-mirror"$/m);
    assert.match(texts, /Referenced host:port not found: "reviews:9999"$/m);
    assert.match(texts, /Referenced host\+subset in destinationrule not found: "reviews\+v4"$/m);
    assert.match(sc, /Referenced selector not found: "app=bogus,version=v9"$/m);
    assert.match(sc, /The Sidecars \[dupe-1 dupe-2\] in namespace "default" select the same workload pod "productpage-v1-[a-z0-9]+-[a-z0-9]+"/);
  });

  it('points at the line at fault', async () => {
    const refs = async (name: string): Promise<string[]> => {
      const f = join(FIXTURES, name);
      return (await analyzeFiles([f])).map((m) => `${m.type.code} ${messageOrigin(m)} ${messageReference(m)}`);
    };
    const sc = join(FIXTURES, 'sidecar-selector.yaml');
    assert.ok((await refs('sidecar-selector.yaml')).includes(`IST0101 Sidecar default/maps-to-nonexistent ${sc}:${lineOf(sc, 'app: bogus')}`));
    const svc = join(FIXTURES, 'service-port-names.yaml');
    assert.ok((await refs('service-port-names.yaml')).includes(`IST0118 Service my-namespace1/my-service1 ${svc}:${lineOf(svc, 'port: 8080')}`));
    const dr = join(FIXTURES, 'destinationrule-subsets.yaml');
    const drRefs = await refs('destinationrule-subsets.yaml');
    assert.ok(drRefs.includes(`IST0173 DestinationRule default/reviews ${dr}:${lineOf(dr, '- name: v2')}`), drRefs.join('\n'));
    assert.ok(drRefs.includes(`IST0174 DestinationRule default/fake-host ${dr}:${lineOf(dr, 'host: fake-host')}`), drRefs.join('\n'));
  });

  it('lets a later resource with the same kind, namespace and name replace an earlier one, as kubectl apply', async () => {
    const vs = (host: string): string =>
      `apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: reviews\n  namespace: default\nspec:\n  hosts:\n  - reviews\n  http:\n  - route:\n    - destination:\n        host: ${host}\n`;
    const svc = 'apiVersion: v1\nkind: Service\nmetadata:\n  name: reviews\n  namespace: default\nspec:\n  selector:\n    app: reviews\n  ports:\n  - name: http\n    port: 9080\n';
    const fixed = await runAnalyze(['-'], [svc, vs('bogus'), vs('reviews')].join('---\n'));
    assert.equal(fixed.out, ''); // neither the replaced bogus host nor a conflict between the two
    assert.equal(fixed.code, 0);
    const broken = await runAnalyze(['-'], [svc, vs('reviews'), vs('bogus')].join('---\n'));
    assert.match(broken.out, /^Error \[IST0101\] \(VirtualService default\/reviews -:37\) Referenced host not found: "bogus"$/); // the later document (line 37), not the earlier one
  });

  it('turns an analyzer that throws into an IST0001 message instead of failing', async () => {
    const loaded = await loadPaths([join(FIXTURES, 'injection.yaml')]);
    const broken = {
      name: 'test.Broken',
      description: 'reads a kind it did not declare',
      inputs: [],
      analyze: (ctx: Parameters<(typeof ALL_ANALYZERS)[number]['analyze']>[0]) => void ctx.list('/Pod'),
    };
    const ms = analyzeResources(loaded.resources, { analyzers: [broken] }).messages;
    assert.deepEqual(ms.map((m) => m.type.code), ['IST0001']);
    assert.match(formatMessage(ms[0]!), /analyzer test\.Broken read \/Pod, which it does not declare/);
  });
});

describe('Bookinfo', () => {
  const files = [
    istioPath('samples', 'bookinfo', 'platform', 'kube', 'bookinfo.yaml'),
    istioPath('samples', 'bookinfo', 'networking', 'destination-rule-all.yaml'),
    istioPath('samples', 'bookinfo', 'networking', 'virtual-service-all-v1.yaml'),
  ];

  it('has no errors except subsets for versions bookinfo.yaml does not deploy (as istioctl reports them)', async () => {
    const ms = await analyzeFiles(files);
    const errors = ms.filter((m) => m.type.level === 'Error').map((m) => `${m.type.code} ${messageOrigin(m)} ${String(m.args[0])}`);
    // bookinfo.yaml deploys details v1, ratings v1, reviews v1-v3: the other subsets of
    // destination-rule-all.yaml select no pod, which istioctl also reports (IST0173 is an Error).
    assert.deepEqual(errors.sort(), [
      'IST0173 DestinationRule default/details v2',
      'IST0173 DestinationRule default/ratings v2',
      'IST0173 DestinationRule default/ratings v2-mysql',
      'IST0173 DestinationRule default/ratings v2-mysql-vm',
    ]);
  });

  it('has no errors at all once those subsets are suppressed', async () => {
    const r = await runAnalyze([...files, '-S', 'IST0173=DestinationRule default/*']);
    assert.equal(r.code, 0, r.out + r.err);
    assert.doesNotMatch(r.out, /^Error/m);
  });
});

describe('tsmesh analyze command', () => {
  const hosts = fixture('vs-destination-hosts.yaml');

  it('prints istioctl lines with file:line and exits 79 on errors', async () => {
    const r = await runAnalyze([hosts]);
    assert.equal(r.code, 79);
    const line = lineOf(hosts, 'host: bogus');
    assert.ok(
      r.out.split('\n').includes(`Error [IST0101] (VirtualService default/reviews-bogushost ${hosts}:${line}) Referenced host not found: "bogus"`),
      r.out,
    );
    assert.match(r.err, /^Error: Analyzers found issues when analyzing namespace: default\.$/m);
    assert.match(r.err, /^See https:\/\/istio\.io\/latest\/docs\/reference\/config\/analysis for more information about causes and resolutions\.$/m);
    // Sorted by level, then code: errors come before warnings, IST0101 before IST0112.
    const codes = r.out.split('\n').map((l) => l.split(' ')[1]);
    assert.deepEqual(codes, [...codes].sort());
  });

  it('accepts -f and stdin', async () => {
    const text = readFileSync(join(FIXTURES, 'vs-destination-subsets.yaml'), 'utf8');
    const r = await runAnalyze(['-f', '-'], text);
    assert.equal(r.code, 79);
    assert.match(r.out, /^Error \[IST0101\] \(VirtualService default\/reviews-bogussubset -:\d+\) Referenced host\+subset in destinationrule not found: "reviews\+v4"$/m);
  });

  it('exits 0 when nothing reaches the failure threshold, 79 when --failure-threshold is lower', async () => {
    const f = fixture('application-uid.yaml'); // warnings only
    const r = await runAnalyze([f]);
    assert.equal(r.code, 0);
    assert.match(r.out, /^Warning \[IST0144\] \(Pod default\/con-sec-uid /m);
    assert.equal((await runAnalyze([f, '--failure-threshold', 'Warning'])).code, 79);
    assert.equal((await runAnalyze([f, '--failure-threshold', 'warning'])).code, 79);
  });

  it('--output-threshold hides messages but the exit code still counts them', async () => {
    const r = await runAnalyze([fixture('service-port-names.yaml'), '-A', '--output-threshold', 'Warning', '--failure-threshold', 'Info']);
    assert.equal(r.out, '');
    assert.equal(r.code, 79);
  });

  it('--suppress removes matching messages, with wildcards; unknown codes only warn', async () => {
    const r = await runAnalyze([hosts, '-S', 'IST0101=VirtualService default/*', '--suppress', 'IST0112=VirtualService default/ratings-2port-missing', '-S', 'IST9999=Pod *']);
    assert.equal(r.out, '');
    assert.equal(r.code, 0);
    assert.match(r.err, /Warning: Supplied message code 'IST9999' is an unknown message code and will not have any effect\./);
    const partial = await runAnalyze([hosts, '-S', 'IST0101=VirtualService default/reviews-bogus*']);
    assert.doesNotMatch(partial.out, /reviews-bogushost|reviews-bogusport/);
    assert.match(partial.out, /details-wrong-namespace/);
    assert.equal((await runAnalyze([hosts, '-S', 'IST0101'])).code, 2);
  });

  it('-o json prints the objects istioctl prints', async () => {
    const r = await runAnalyze([fixture('vs-destination-subsets.yaml'), '-o', 'json']);
    assert.equal(r.code, 0); // istioctl sets the exit code only for log output
    const arr = JSON.parse(r.out) as Array<Record<string, string>>;
    assert.equal(arr.length, 2);
    const first = arr[0]!;
    assert.deepEqual(Object.keys(first), ['code', 'documentationUrl', 'level', 'message', 'origin', 'reference']);
    assert.equal(first.code, 'IST0101');
    assert.equal(first.level, 'Error');
    assert.equal(first.documentationUrl, 'https://istio.io/latest/docs/reference/config/analysis/ist0101/');
    assert.equal(first.origin, 'VirtualService default/reviews-bogussubset');
    assert.equal(first.message, 'Referenced host+subset in destinationrule not found: "reviews+v4"');
    const f = fixture('vs-destination-subsets.yaml');
    // The line of the destination's host, as istioctl points at it.
    assert.equal(first.reference, `${f}:${lineOf(f, 'host: reviews', lineOf(f, 'name: reviews-bogussubset'))}`);
    assert.match(r.out, /^\[\n\t\{\n\t\t"code": "IST0101",$/m); // Go's MarshalIndent with tabs
  });

  it('-o yaml prints the same objects', async () => {
    const r = await runAnalyze([fixture('sidecar-default-selector.yaml'), '-A', '-o', 'yaml']);
    const arr = parseYaml(r.out) as Array<Record<string, string>>;
    assert.deepEqual(
      arr.filter((o) => o.code === 'IST0111').map((o) => [o.code, o.level, o.origin]),
      [
        ['IST0111', 'Error', 'Sidecar ns2/has-conflict-1'],
        ['IST0111', 'Error', 'Sidecar ns2/has-conflict-2'],
      ],
    );
  });

  it('shows only the selected namespace (plus cluster-scoped resources) unless -A', async () => {
    const f = fixture('destinationrule-subsets.yaml');
    const dflt = await runAnalyze([f]);
    assert.match(dflt.out, /default\/fake-host/);
    assert.doesNotMatch(dflt.out, /other\/reviews-elsewhere/);
    const other = await runAnalyze([f, '-n', 'other', '--failure-threshold', 'Warning']);
    assert.match(other.out, /other\/reviews-elsewhere/);
    assert.doesNotMatch(other.out, /default\/fake-host/);
    assert.match(other.err, /analyzing namespace: other\./);
    const all = await runAnalyze([f, '-A']);
    assert.match(all.out, /other\/reviews-elsewhere/);
    assert.match(all.out, /default\/fake-host/);
    assert.match(all.err, /when analyzing all namespaces\./);
    // A Namespace's messages belong to that namespace.
    const inj = fixture('injection.yaml');
    assert.doesNotMatch((await runAnalyze([inj])).out, /Namespace bar/);
    assert.match((await runAnalyze([inj, '-n', 'bar'])).out, /^Info \[IST0102\] \(Namespace bar /m);
  });

  it('-n is the namespace of resources that name none', async () => {
    const yaml = 'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: nowhere\nspec:\n  hosts:\n  - x\n  http:\n  - route:\n    - destination:\n        host: bogus\n';
    const r = await runAnalyze(['-', '-n', 'team-a'], yaml);
    assert.match(r.out, /^Error \[IST0101\] \(VirtualService team-a\/nowhere -:11\) Referenced host not found: "bogus"$/m);
  });

  it('says so when there is nothing to report', async () => {
    const f = fixture('vs-destination-subsets.yaml');
    const r = await runAnalyze([f, '-S', 'IST0101=*']);
    assert.equal(r.code, 0);
    assert.equal(r.out, '');
    assert.equal(r.err, `\u2714 No validation issues found when analyzing ${f}.`);
  });

  it('reports schema validation errors as IST0106', async () => {
    const yaml = 'apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata:\n  name: bad\n  namespace: default\nspec:\n  host: reviews\n  trafficPolicy:\n    loadBalancer:\n      simple: SOMETIMES\n';
    const r = await runAnalyze(['-'], yaml);
    assert.equal(r.code, 79);
    assert.match(r.out, /^Error \[IST0106\] \(DestinationRule default\/bad -:\d+\) Schema validation error: .*simple/m);
  });

  it('exits 65 when files could not be parsed, unless --ignore-unknown', async () => {
    const r = await runAnalyze(['-'], 'apiVersion: v1\nkind: [unclosed\n');
    assert.equal(r.code, 65);
    assert.match(r.err, /Error\(s\) adding files: -:\d+:\d+: YAML/);
    assert.match(r.err, /Error: Some files couldn't be parsed\./);
    assert.equal((await runAnalyze(['-', '--ignore-unknown'], 'apiVersion: v1\nkind: [unclosed\n')).code, 0);
  });

  it('rejects bad flags with exit 2 and lists analyzers', async () => {
    assert.equal((await runAnalyze([hosts, '-o', 'xml'])).code, 2);
    assert.equal((await runAnalyze([hosts, '--failure-threshold', 'Fatal'])).code, 2);
    assert.equal((await runAnalyze([])).code, 2);
    const l = await runAnalyze(['-L']);
    assert.equal(l.code, 0);
    for (const a of ALL_ANALYZERS) assert.ok(l.out.includes(`* ${a.name}:`), a.name);
  });
});
