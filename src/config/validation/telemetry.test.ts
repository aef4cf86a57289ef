import { describe, it } from 'node:test';
import { assertNoErrors, assertOneError, assertWarning, validate } from './testing.ts';

describe('Telemetry semantic rules', () => {
  it('accepts sampling, access logs with a filter and metric overrides', () => {
    assertNoErrors(validate('Telemetry', {
      tracing: [{ randomSamplingPercentage: 10 }],
      accessLogging: [{ providers: [{ name: 'envoy' }], filter: { expression: 'response.code >= 400' } }],
      metrics: [{ providers: [{ name: 'prometheus' }], overrides: [{ match: { metric: 'REQUEST_COUNT' }, tagOverrides: { request_protocol: { operation: 'REMOVE' } } }] }],
    }));
  });

  it('checks provider names, sampling and filters', () => {
    assertOneError(validate('Telemetry', { accessLogging: [{ providers: [{ name: '' }] }] }), 'spec.accessLogging[0].providers[0].name', 'needs a name');
    assertOneError(validate('Telemetry', { tracing: [{ randomSamplingPercentage: 101 }] }), 'spec.tracing[0].randomSamplingPercentage', '0..100');
    assertOneError(validate('Telemetry', { accessLogging: [{ filter: { expression: 'response.code >= ' } }] }), 'spec.accessLogging[0].filter.expression', 'valid CEL expression');
    assertWarning(validate('Telemetry', { tracing: [{ randomSamplingPercentage: 1 }, { randomSamplingPercentage: 2 }] }), 'spec.tracing', 'only one tracing entry');
  });

  it('checks tag overrides', () => {
    assertOneError(validate('Telemetry', { metrics: [{ overrides: [{ tagOverrides: { a: { operation: 'UPSERT' } } }] }] }), 'spec.metrics[0].overrides[0].tagOverrides.a.value', 'needs a value');
    assertOneError(validate('Telemetry', { metrics: [{ overrides: [{ tagOverrides: { a: { operation: 'REMOVE', value: 'x' } } }] }] }), 'spec.metrics[0].overrides[0].tagOverrides.a.value', 'must not have a value');
  });
});
