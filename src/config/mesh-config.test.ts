// The mesh config: Istio's defaults, the istio ConfigMap's mesh key, and --set overrides.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isMeshError } from '../common/errors.ts';
import { formatDiagnostic } from './diagnostics.ts';
import { loadString } from './loader.ts';
import { applyMeshOverrides, defaultMeshConfig, meshConfigFromResources } from './mesh-config.ts';

const configMap = (mesh: string, ns = 'istio-system'): string => `apiVersion: v1
kind: ConfigMap
metadata:
  name: istio
  namespace: ${ns}
data:
  mesh: |
${mesh.split('\n').map((l) => `    ${l}`).join('\n')}
`;

const load = (text: string) => loadString(text, 'mesh.yaml').resources;

describe('defaultMeshConfig', () => {
  it("has Istio's defaults", () => {
    const m = defaultMeshConfig();
    assert.equal(m.rootNamespace, 'istio-system');
    assert.equal(m.trustDomain, 'cluster.local');
    assert.equal(m.outboundTrafficPolicy.mode, 'ALLOW_ANY');
    assert.equal(m.accessLogFile, '');
    assert.equal(m.accessLogEncoding, 'TEXT');
    assert.equal(m.enableAutoMtls, true);
    assert.equal(m.enablePrometheusMerge, true);
    assert.equal(m.defaultConfig.discoveryAddress, 'istiod.istio-system.svc:15012');
    assert.deepEqual([m.defaultServiceExportTo, m.defaultVirtualServiceExportTo, m.defaultDestinationRuleExportTo], [['*'], ['*'], ['*']]);
  });
  it('returns a fresh object each time', () => {
    const a = defaultMeshConfig();
    a.outboundTrafficPolicy.mode = 'REGISTRY_ONLY';
    assert.equal(defaultMeshConfig().outboundTrafficPolicy.mode, 'ALLOW_ANY');
  });
});

describe('meshConfigFromResources', () => {
  it('merges the mesh key over the defaults', () => {
    const { mesh, diagnostics } = meshConfigFromResources(load(configMap('outboundTrafficPolicy:\n  mode: REGISTRY_ONLY\naccessLogFile: /dev/stdout\ndefaultConfig:\n  holdApplicationUntilProxyStarts: true')));
    assert.deepEqual(diagnostics, []);
    assert.equal(mesh.outboundTrafficPolicy.mode, 'REGISTRY_ONLY');
    assert.equal(mesh.accessLogFile, '/dev/stdout');
    assert.equal(mesh.defaultConfig.holdApplicationUntilProxyStarts, true);
    assert.equal(mesh.defaultConfig.discoveryAddress, 'istiod.istio-system.svc:15012', 'nested defaults survive the merge');
    assert.equal(mesh.enableAutoMtls, true);
  });

  it('ignores a ConfigMap outside the root namespace', () => {
    const { mesh } = meshConfigFromResources(load(configMap('accessLogFile: /dev/stdout', 'default')));
    assert.equal(mesh.accessLogFile, '');
  });

  it('reports bad YAML at data.mesh of the ConfigMap', () => {
    const { mesh, diagnostics } = meshConfigFromResources(load(configMap('outboundTrafficPolicy: [unclosed')));
    assert.equal(diagnostics.length, 1);
    const d = diagnostics[0];
    assert.ok(d);
    assert.equal(d.severity, 'error');
    assert.equal(d.resource, 'ConfigMap istio-system/istio');
    assert.equal(d.path, 'data.mesh');
    assert.equal(d.line, 7);
    assert.match(formatDiagnostic(d), /^mesh\.yaml:7:\d+: ConfigMap istio-system\/istio: data\.mesh: the mesh config is not valid YAML/);
    assert.equal(mesh.outboundTrafficPolicy.mode, 'ALLOW_ANY');
  });

  it('reports bad values and keeps the good ones; unknown fields are warnings', () => {
    const { mesh, diagnostics } = meshConfigFromResources(load(configMap('outboundTrafficPolicy:\n  mode: BLOCK\naccessLogEncoding: XML\naccessLogFile: /dev/stdout\nbogusField: 1')));
    const errors = diagnostics.filter((d) => d.severity === 'error').map((d) => d.message);
    assert.equal(errors.length, 2);
    assert.ok(errors.some((m) => m.startsWith('outboundTrafficPolicy.mode: must be ALLOW_ANY or REGISTRY_ONLY, got "BLOCK"')), errors.join('\n'));
    assert.ok(errors.some((m) => m.startsWith('accessLogEncoding: must be TEXT or JSON')), errors.join('\n'));
    assert.deepEqual(diagnostics.filter((d) => d.severity === 'warning').map((d) => d.message), ['unknown MeshConfig field bogusField: ignored']);
    assert.equal(mesh.outboundTrafficPolicy.mode, 'ALLOW_ANY');
    assert.equal(mesh.accessLogEncoding, 'TEXT');
    assert.equal(mesh.accessLogFile, '/dev/stdout');
  });

  it('finds the ConfigMap in a custom root namespace given by the base config', () => {
    const base = { ...defaultMeshConfig(), rootNamespace: 'mesh-root' };
    const { mesh } = meshConfigFromResources(load(configMap('trustDomain: example.org', 'mesh-root')), base);
    assert.equal(mesh.trustDomain, 'example.org');
    assert.equal(mesh.rootNamespace, 'mesh-root');
  });
});

describe('applyMeshOverrides', () => {
  it("applies key=value with or without the 'meshConfig.' prefix, parsing YAML values", () => {
    const base = defaultMeshConfig();
    const m = applyMeshOverrides(base, ['meshConfig.outboundTrafficPolicy.mode=REGISTRY_ONLY', 'enableAutoMtls=false', 'defaultServiceExportTo=[".", istio-system]', 'accessLogFile=/dev/stdout']);
    assert.equal(m.outboundTrafficPolicy.mode, 'REGISTRY_ONLY');
    assert.equal(m.enableAutoMtls, false);
    assert.deepEqual(m.defaultServiceExportTo, ['.', 'istio-system']);
    assert.equal(m.accessLogFile, '/dev/stdout');
    assert.equal(base.outboundTrafficPolicy.mode, 'ALLOW_ANY', 'the input is not modified');
  });

  const rejects = (set: string, pattern: RegExp): void => {
    assert.throws(() => applyMeshOverrides(defaultMeshConfig(), [set]), (e: unknown) => isMeshError(e) && e.code === 'MESH_ERR_CLI_USAGE' && pattern.test(e.message));
  };
  it('throws MESH_ERR_CLI_USAGE on an unknown key, a missing =, or a bad value', () => {
    rejects('meshConfig.outboundTrafficPolicyy.mode=REGISTRY_ONLY', /unknown mesh config field "outboundTrafficPolicyy\.mode"/);
    rejects('outboundTrafficPolicy.mode', /expected key=value/);
    rejects('outboundTrafficPolicy.mode=BLOCK', /must be ALLOW_ANY or REGISTRY_ONLY/);
    rejects('enableAutoMtls=maybe', /enableAutoMtls must be true or false/);
  });
});
