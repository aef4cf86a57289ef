// Schema validation against Istio's CRDs: Istio's own valid samples pass, and invalid resources are
// rejected with the field path, line and a message that says what is allowed.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { loadPaths, loadString } from '../loader.ts';
import { formatDiagnostic, type Diagnostic } from '../diagnostics.ts';
import { istioPath } from '../../../test/helpers/shared.ts';
import { validateSchema } from './index.ts';

function validate(yaml: string): { errors: Diagnostic[]; warnings: Diagnostic[] } {
  const loaded = loadString(yaml, 'case.yaml');
  assert.equal(loaded.resources.length, 1, `expected one resource: ${loaded.diagnostics.map(formatDiagnostic).join('\n')}`);
  const ds = validateSchema(loaded.resources[0]!);
  return { errors: ds.filter((d) => d.severity === 'error'), warnings: ds.filter((d) => d.severity === 'warning') };
}

const show = (ds: Diagnostic[]): string => ds.map(formatDiagnostic).join('\n') || '(none)';

describe('Istio material validates clean', () => {
  for (const dir of ['validation-dataset', 'samples']) {
    it(`every resource in ${dir}/ has no schema errors and no unknown fields`, async () => {
      const loaded = await loadPaths([istioPath(dir)]);
      const istio = loaded.resources.filter((r) => r.group.endsWith('istio.io'));
      assert.ok(istio.length >= 10, `expected Istio resources in ${dir}, found ${istio.length}`);
      const problems = loaded.resources.flatMap(validateSchema);
      assert.deepEqual(problems.map(formatDiagnostic), []);
    });
  }
});

interface Case {
  name: string;
  yaml: string;
  path: string;
  /** Every fragment must appear in the message of an error at `path`. */
  says: string[];
  line?: number;
  col?: number;
}

const vs = (http: string): string => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts: [reviews]
  http:
${http}`;

const dr = (trafficPolicy: string): string => `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: reviews
spec:
  host: reviews
  trafficPolicy:
${trafficPolicy}`;

const se = (spec: string): string => `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: ext
spec:
${spec}`;

const sidecar = (spec: string): string => `apiVersion: networking.istio.io/v1
kind: Sidecar
metadata:
  name: default
spec:
${spec}`;

const security = (kind: string, spec: string): string => `apiVersion: security.istio.io/v1
kind: ${kind}
metadata:
  name: p
spec:
${spec}`;

const cases: Case[] = [
  {
    name: 'timeout 0s where at least 1ms is required',
    yaml: vs(`  - route:
    - destination: {host: reviews}
    timeout: 0s`),
    path: 'spec.http[0].timeout',
    says: ['must be a duration of at least 1ms', '(got "0s")'],
    line: 10,
    col: 5,
  },
  {
    name: 'retry perTryTimeout that is not a Go duration',
    yaml: vs(`  - route:
    - destination: {host: reviews}
    retries: {attempts: 3, perTryTimeout: 2 seconds}`),
    path: 'spec.http[0].retries.perTryTimeout',
    says: ['must be a duration such as', '"1.5s"', '(got "2 seconds")'],
  },
  {
    name: 'retry attempts given as a string',
    yaml: vs(`  - route:
    - destination: {host: reviews}
    retries: {attempts: "3"}`),
    path: 'spec.http[0].retries.attempts',
    says: ['must be an integer', 'got string "3"'],
  },
  {
    name: 'uri match with both exact and prefix (oneOf)',
    yaml: vs(`  - match:
    - uri:
        exact: /a
        prefix: /b
    route:
    - destination: {host: reviews}`),
    path: 'spec.http[0].match[0].uri',
    says: ['only one of exact, prefix, regex may be set', 'got exact and prefix'],
    line: 9,
    col: 7,
  },
  {
    name: 'header match with exact and regex (oneOf inside a map value)',
    yaml: vs(`  - match:
    - headers:
        end-user: {exact: jason, regex: "j.*"}
    route:
    - destination: {host: reviews}`),
    path: 'spec.http[0].match[0].headers.end-user',
    says: ['only one of exact, prefix, regex may be set'],
  },
  {
    name: 'hosts given as a string instead of a list',
    yaml: `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: reviews
`,
    path: 'spec.hosts',
    says: ['must be a list', 'got string "reviews"'],
    line: 5,
    col: 3,
  },
  {
    name: 'route weight that is not an integer',
    yaml: vs(`  - route:
    - destination: {host: reviews}
      weight: 12.5`),
    path: 'spec.http[0].route[0].weight',
    says: ['must be an integer', 'got number 12.5'],
  },
  {
    name: 'directResponse body bytes that are not base64',
    yaml: vs(`  - directResponse:
      status: 503
      body: {bytes: "not base64!"}`),
    path: 'spec.http[0].directResponse.body.bytes',
    says: ['must be base64-encoded bytes'],
  },
  {
    name: 'directResponse without its required status',
    yaml: vs(`  - directResponse:
      body: {string: unavailable}`),
    path: 'spec.http[0].directResponse.status',
    says: ['is required'],
  },
  {
    name: 'unknown load balancer algorithm (enum)',
    yaml: dr(`    loadBalancer:
      simple: FOO`),
    path: 'spec.trafficPolicy.loadBalancer.simple',
    says: ['must be one of', 'ROUND_ROBIN', 'LEAST_REQUEST', 'RANDOM', 'PASSTHROUGH', '(got "FOO")'],
    line: 9,
    col: 7,
  },
  {
    name: 'both simple and consistentHash load balancing (oneOf)',
    yaml: dr(`    loadBalancer:
      simple: ROUND_ROBIN
      consistentHash: {useSourceIp: true}`),
    path: 'spec.trafficPolicy.loadBalancer',
    says: ['only one of simple, consistentHash, backendUtilization may be set'],
  },
  {
    name: 'consistent hash on both a header and the source IP (oneOf inside allOf)',
    yaml: dr(`    loadBalancer:
      consistentHash: {httpHeaderName: x-user, useSourceIp: true}`),
    path: 'spec.trafficPolicy.loadBalancer.consistentHash',
    says: ['only one of', 'httpHeaderName', 'useSourceIp'],
  },
  {
    name: 'connect timeout in days (Go durations have no d unit)',
    yaml: dr(`    connectionPool:
      tcp: {connectTimeout: 1d}`),
    path: 'spec.trafficPolicy.connectionPool.tcp.connectTimeout',
    says: ['must be a duration such as', '(got "1d")'],
  },
  {
    name: 'negative consecutive5xxErrors (minimum)',
    yaml: dr(`    outlierDetection:
      consecutive5xxErrors: -1`),
    path: 'spec.trafficPolicy.outlierDetection.consecutive5xxErrors',
    says: ['must be at least 0', '(got -1)'],
  },
  {
    name: 'ServiceEntry port 0',
    yaml: se(`  hosts: [api.example.com]
  ports:
  - {number: 0, name: http, protocol: HTTP}
  resolution: DNS`),
    path: 'spec.ports[0].number',
    says: ['port must be between 1-65535', '(got 0)'],
  },
  {
    name: 'ServiceEntry port 70000',
    yaml: se(`  hosts: [api.example.com]
  ports:
  - {number: 70000, name: http, protocol: HTTP}
  resolution: DNS`),
    path: 'spec.ports[0].number',
    says: ['port must be between 1-65535', '(got 70000)'],
  },
  {
    name: 'ServiceEntry with both workloadSelector and endpoints',
    yaml: se(`  hosts: [api.example.com]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: STATIC
  workloadSelector: {labels: {app: api}}
  endpoints: [{address: 10.0.0.1}]`),
    path: 'spec',
    says: ['only one of WorkloadSelector or Endpoints can be set'],
  },
  {
    name: 'ServiceEntry host "*"',
    yaml: se(`  hosts: ["*"]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: DNS`),
    path: 'spec.hosts[0]',
    says: ['hostname cannot be wildcard'],
  },
  {
    name: 'ServiceEntry duplicate port numbers',
    yaml: se(`  hosts: [api.example.com]
  ports:
  - {number: 80, name: http, protocol: HTTP}
  - {number: 80, name: http-alt, protocol: HTTP}
  resolution: DNS`),
    path: 'spec.ports',
    says: ['port number cannot be duplicated'],
  },
  {
    name: 'ServiceEntry unknown resolution',
    yaml: se(`  hosts: [api.example.com]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: DNS_ONLY`),
    path: 'spec.resolution',
    says: ['must be one of', 'NONE', 'STATIC', 'DNS', 'DNS_ROUND_ROBIN', '(got "DNS_ONLY")'],
  },
  {
    name: 'ServiceEntry endpoints with resolution NONE',
    yaml: se(`  hosts: [api.example.com]
  ports: [{number: 80, name: http, protocol: HTTP}]
  endpoints: [{address: 10.0.0.1}]`),
    path: 'spec',
    says: ['NONE mode cannot set endpoints'],
  },
  {
    name: 'ServiceEntry CIDR address with DNS resolution',
    yaml: se(`  hosts: [api.example.com]
  addresses: [10.0.0.0/24]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: DNS`),
    path: 'spec',
    says: ['CIDR addresses are allowed only for NONE/STATIC resolution types'],
  },
  {
    name: 'ServiceEntry Unix socket endpoint that is not absolute',
    yaml: se(`  hosts: [api.example.com]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints: [{address: "unix://relative.sock"}]`),
    path: 'spec.endpoints[0].address',
    says: ['UDS must be an absolute path or abstract socket', 'unix://relative.sock'],
  },
  {
    name: 'ServiceEntry endpoint port name with an underscore',
    yaml: se(`  hosts: [api.example.com]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints: [{address: 10.0.0.1, ports: {bad_name: 8080}}]`),
    path: 'spec.endpoints[0].ports',
    says: ['port name must be valid'],
  },
  {
    name: 'Sidecar ingress TLS with credentialName and credentialNames',
    yaml: sidecar(`  ingress:
  - port: {number: 9080, protocol: HTTPS, name: https}
    defaultEndpoint: 127.0.0.1:8080
    tls:
      mode: SIMPLE
      credentialName: a
      credentialNames: [b]`),
    path: 'spec.ingress[0].tls',
    says: ['only one of credentialName or credentialNames can be set'],
  },
  {
    name: 'Sidecar workload selector with a wildcard label value',
    yaml: sidecar(`  workloadSelector:
    labels: {app: "rev*"}
  egress:
  - hosts: ["./*"]`),
    path: 'spec.workloadSelector.labels.app',
    says: ['wildcard is not supported in selector', '(got "rev*")'],
  },
  {
    name: 'Sidecar egress listener without hosts',
    yaml: sidecar(`  egress:
  - port: {number: 9080, protocol: HTTP, name: http}`),
    path: 'spec.egress[0].hosts',
    says: ['is required'],
  },
  {
    name: 'Sidecar outbound traffic policy mode DENY',
    yaml: sidecar(`  outboundTrafficPolicy:
    mode: DENY`),
    path: 'spec.outboundTrafficPolicy.mode',
    says: ['must be one of REGISTRY_ONLY, ALLOW_ANY', '(got "DENY")'],
  },
  {
    name: 'PeerAuthentication portLevelMtls without a selector',
    yaml: security('PeerAuthentication', `  mtls: {mode: STRICT}
  portLevelMtls:
    "8080": {mode: DISABLE}`),
    path: 'spec',
    says: ['portLevelMtls requires selector'],
  },
  {
    name: 'PeerAuthentication portLevelMtls on port 0',
    yaml: security('PeerAuthentication', `  selector: {matchLabels: {app: a}}
  portLevelMtls:
    "0": {mode: DISABLE}`),
    path: 'spec.portLevelMtls',
    says: ['port must be between 1-65535'],
  },
  {
    name: 'PeerAuthentication mode STRICTEST',
    yaml: security('PeerAuthentication', `  mtls: {mode: STRICTEST}`),
    path: 'spec.mtls.mode',
    says: ['must be one of', 'STRICT', 'PERMISSIVE', 'DISABLE'],
  },
  {
    name: 'AuthorizationPolicy matchLabels key with a wildcard',
    yaml: security('AuthorizationPolicy', `  selector: {matchLabels: {"app*": a}}
  action: ALLOW`),
    path: 'spec.selector.matchLabels',
    says: ['wildcard not allowed in label key match'],
  },
  {
    name: 'AuthorizationPolicy serviceAccounts with principals',
    yaml: security('AuthorizationPolicy', `  action: ALLOW
  rules:
  - from:
    - source:
        serviceAccounts: [default/sa]
        principals: [cluster.local/ns/default/sa/other]`),
    path: 'spec.rules[0].from[0].source',
    says: ['Cannot set serviceAccounts with namespaces or principals'],
  },
  {
    name: 'AuthorizationPolicy with selector and targetRef',
    yaml: security('AuthorizationPolicy', `  selector: {matchLabels: {app: a}}
  targetRef: {kind: Gateway, group: gateway.networking.k8s.io, name: gw}`),
    path: 'spec',
    says: ['only one of targetRefs or selector can be set'],
  },
  {
    name: 'RequestAuthentication jwksUri with an ftp scheme',
    yaml: security('RequestAuthentication', `  jwtRules:
  - issuer: https://issuer.example.com
    jwksUri: ftp://issuer.example.com/jwks`),
    path: 'spec.jwtRules[0].jwksUri',
    says: ['url must have scheme http:// or https://'],
  },
  {
    name: 'RequestAuthentication jwksUri that is not a URL',
    yaml: security('RequestAuthentication', `  jwtRules:
  - issuer: https://issuer.example.com
    jwksUri: issuer.example.com/jwks`),
    path: 'spec.jwtRules[0].jwksUri',
    says: ['url must have scheme http:// or https://', 'URL parse error'],
  },
  {
    name: 'WorkloadEntry with neither address nor network',
    yaml: `apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: vm}
spec:
  labels: {app: vm}
`,
    path: 'spec',
    says: ['Address is required'],
  },
  {
    name: 'WorkloadGroup HTTP probe with scheme FTP',
    yaml: `apiVersion: networking.istio.io/v1
kind: WorkloadGroup
metadata: {name: vm}
spec:
  template: {serviceAccount: vm}
  probe:
    httpGet: {port: 8080, path: /ready, scheme: FTP}
`,
    path: 'spec.probe.httpGet.scheme',
    says: ['scheme must be one of [HTTP, HTTPS]', '(got "FTP")'],
  },
  {
    name: 'Telemetry UPSERT tag override without a value',
    yaml: `apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: t}
spec:
  metrics:
  - providers: [{name: prometheus}]
    overrides:
    - tagOverrides:
        request_host: {operation: UPSERT}
`,
    path: 'spec.metrics[0].overrides[0].tagOverrides.request_host',
    says: ['value must be set when operation is UPSERT'],
  },
  {
    name: 'Telemetry sampling above 100 percent',
    yaml: `apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: t}
spec:
  tracing:
  - randomSamplingPercentage: 150
`,
    path: 'spec.tracing[0].randomSamplingPercentage',
    says: ['must be at most 100', '(got 150)'],
  },
  {
    name: 'WasmPlugin URL with an unsupported scheme',
    yaml: `apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata: {name: w}
spec:
  url: s3://bucket/plugin.wasm
`,
    path: 'spec.url',
    says: ['url must have schema one of [http, https, file, oci]'],
  },
  {
    name: 'WasmPlugin sha256 that is not 64 hex digits (pattern)',
    yaml: `apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata: {name: w}
spec:
  url: oci://ghcr.io/example/plugin:1.0
  sha256: abc
`,
    path: 'spec.sha256',
    says: ['must match the pattern (^$|^[a-f0-9]{64}$)', '(got "abc")'],
  },
  {
    name: 'EnvoyFilter (validated though unsupported) with an unknown applyTo',
    yaml: `apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: {name: ef}
spec:
  configPatches:
  - applyTo: SOMETHING
    patch: {operation: MERGE}
`,
    path: 'spec.configPatches[0].applyTo',
    says: ['must be one of', 'HTTP_FILTER', 'CLUSTER'],
  },
  {
    name: 'unknown version of a known kind',
    yaml: `apiVersion: networking.istio.io/v2
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
`,
    path: 'apiVersion',
    says: ['unknown version v2 of VirtualService', 'networking.istio.io/v1', 'networking.istio.io/v1beta1', 'networking.istio.io/v1alpha3'],
    line: 1,
  },
  {
    name: 'metadata.name that is not a DNS subdomain',
    yaml: `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: My_Gateway}
spec:
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ["*"]}]
`,
    path: 'metadata.name',
    says: ['must be a DNS subdomain', 'lower case letters', '(got "My_Gateway")'],
  },
  {
    name: 'Gateway server port without its required protocol',
    yaml: `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  servers: [{port: {number: 80, name: http}, hosts: ["*"]}]
`,
    path: 'spec.servers[0].port.protocol',
    says: ['is required'],
  },
];

describe('invalid resources are rejected with the path and what is allowed', () => {
  for (const c of cases) {
    it(c.name, () => {
      const { errors } = validate(c.yaml);
      const at = errors.filter((d) => d.path === c.path);
      assert.ok(at.length > 0, `no error at ${c.path}; got:\n${show(errors)}`);
      const match = at.find((d) => c.says.every((s) => d.message.includes(s)));
      assert.ok(match, `no error at ${c.path} saying ${JSON.stringify(c.says)}; got:\n${show(at)}`);
      // Nothing else is wrong with these resources: no error elsewhere (no false positives).
      assert.deepEqual(errors.filter((d) => d.path !== c.path).map(formatDiagnostic), []);
      if (c.line !== undefined) assert.equal(match.line, c.line, formatDiagnostic(match));
      if (c.col !== undefined) assert.equal(match.col, c.col, formatDiagnostic(match));
      assert.equal(match.file, 'case.yaml');
    });
  }

  it('has at least 25 distinct cases', () => {
    assert.ok(cases.length >= 25);
  });
});

describe('unknown fields and nulls', () => {
  it('reports an unknown field as a warning naming the known fields, not as an error', () => {
    const { errors, warnings } = validate(vs(`  - route:
    - destination: {host: reviews}
    timout: 5s`));
    assert.deepEqual(errors, []);
    assert.equal(warnings.length, 1, show(warnings));
    const w = warnings[0]!;
    assert.equal(w.path, 'spec.http[0].timout');
    assert.match(w.message, /^unknown field "timout" \(did you mean timeout\?\); known fields are .*\bretries\b.*\broute\b.*\btimeout\b/);
    assert.equal(w.line, 10);
  });

  it('warns about an unknown top-level field', () => {
    const { errors, warnings } = validate(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: r}
specs: {hosts: [r]}
`);
    assert.deepEqual(errors, []);
    assert.deepEqual(warnings.map((w) => w.path), ['specs']);
    assert.match(warnings[0]!.message, /did you mean spec\?/);
  });

  it('accepts a field left empty (null), as the API server prunes it', () => {
    const { errors, warnings } = validate(vs(`  - route:
    - destination: {host: reviews}
    timeout:
    retries:`));
    assert.deepEqual([...errors, ...warnings], []);
  });

  it('accepts Go durations with several units and fractions', () => {
    for (const d of ['1h2m3.5s', '100ms', '1.5s', '2m', '1000us']) {
      const { errors } = validate(vs(`  - route:
    - destination: {host: reviews}
    timeout: ${d}`));
      assert.deepEqual(errors, [], d);
    }
  });

  it('reports several problems in one resource, in file order', () => {
    const { errors } = validate(vs(`  - route:
    - destination: {host: reviews}
      weight: abc
    timeout: 0s
    retries: {attempts: many}`));
    assert.deepEqual(errors.map((d) => d.path), ['spec.http[0].route[0].weight', 'spec.http[0].timeout', 'spec.http[0].retries.attempts']);
    assert.deepEqual(errors.map((d) => d.line), [10, 11, 12]);
  });

  it('checks metadata: label values must be strings, unknown metadata fields are warnings', () => {
    const { errors, warnings } = validate(`apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: reviews
  lables: {app: reviews}
  labels:
    version: 1
    "bad key!": x
spec:
  host: reviews
`);
    assert.deepEqual(errors.map((d) => `${d.path}@${d.line}`), ['metadata.labels.version@7', 'metadata.labels["bad key!"]@8']);
    assert.match(errors[0]!.message, /must be a string; quote it, e.g. "1"/);
    assert.match(errors[1]!.message, /key name must be at most 63 letters, digits/);
    assert.deepEqual(warnings.map((d) => d.path), ['metadata.lables']);
    assert.match(warnings[0]!.message, /known fields are .*labels/);
  });

  it('does not check Kubernetes kinds', () => {
    const { errors, warnings } = validate(`apiVersion: v1
kind: Service
metadata: {name: s}
spec: {bogus: 1, ports: [{port: 0}]}
`);
    assert.deepEqual([...errors, ...warnings], []);
  });
});
