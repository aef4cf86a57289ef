// Telemetry rules beyond the schema: provider names, access-log filter expressions (CEL), tracing
// sampling and custom tags, metric tag overrides, as Istio's webhook checks them. Never throws.

import { parse } from '@bufbuild/cel';
import { entries, list, num, obj, str, wrapped, type Checker, type Obj, type Path } from './check.ts';
import { checkPolicyTarget } from './policy-target.ts';

export function validateTelemetry(c: Checker, spec: Obj): void {
  checkPolicyTarget(c, spec, 'Telemetry');
  list(spec.accessLogging).forEach((l, i) => {
    const p = ['spec', 'accessLogging', i];
    const log = obj(l);
    if (!log) return;
    checkProviders(c, [...p, 'providers'], log.providers);
    const expression = str(obj(log.filter)?.expression);
    if (expression !== undefined) {
      try {
        parse(expression);
      } catch (err) {
        c.error([...p, 'filter', 'expression'], `filter must be a valid CEL expression (e.g. response.code >= 400): ${(err as Error).message.split('\n')[0] ?? ''}`);
      }
    }
  });
  const tracing = list(spec.tracing);
  if (tracing.length > 1) c.warn(['spec', 'tracing'], 'only one tracing entry is supported: the others are ignored');
  tracing.forEach((t, i) => {
    const p = ['spec', 'tracing', i];
    const tr = obj(t);
    if (!tr) return;
    if (list(tr.providers).length > 1) c.warn([...p, 'providers'], 'only one tracing provider is supported: the others are ignored');
    checkProviders(c, [...p, 'providers'], tr.providers);
    const pct = num(wrapped(tr.randomSamplingPercentage));
    if (pct !== undefined && (pct < 0 || pct > 100)) c.error([...p, 'randomSamplingPercentage'], `randomSamplingPercentage ${pct} must be in the range 0..100`);
    for (const [name, tag] of entries(tr.customTags)) {
      const tp = [...p, 'customTags', name];
      const t = obj(tag);
      if (name === '') c.error(tp, 'a custom tag needs a name');
      if (!t) {
        c.error(tp, `custom tag ${name} needs a literal, header or environment value`);
        continue;
      }
      if (t.literal !== undefined && !str(obj(t.literal)?.value)) c.error([...tp, 'literal', 'value'], 'a literal tag value must not be empty');
      if (t.header !== undefined && !str(obj(t.header)?.name)) c.error([...tp, 'header', 'name'], 'a header tag needs a header name');
      if (t.environment !== undefined && !str(obj(t.environment)?.name)) c.error([...tp, 'environment', 'name'], 'an environment tag needs a variable name');
    }
  });
  list(spec.metrics).forEach((m, i) => {
    const p = ['spec', 'metrics', i];
    const metrics = obj(m);
    if (!metrics) return;
    checkProviders(c, [...p, 'providers'], metrics.providers);
    list(metrics.overrides).forEach((o, j) => {
      const op = [...p, 'overrides', j];
      const override = obj(o);
      if (!override) {
        c.error(op, 'an override must not be null');
        return;
      }
      for (const [tag, value] of entries(override.tagOverrides)) {
        const tp = [...op, 'tagOverrides', tag];
        const v = obj(value);
        if (tag === '') c.warn(tp, 'a tag override needs a tag name');
        if (!v) {
          c.error(tp, `tag override ${tag} must not be null: give operation and value`);
          continue;
        }
        const operation = str(v.operation) ?? 'UPSERT';
        if (operation === 'UPSERT' && !str(v.value)) c.error([...tp, 'value'], 'a tag override with operation UPSERT needs a value (a CEL expression)');
        if (operation === 'REMOVE' && str(v.value)) c.error([...tp, 'value'], 'a tag override with operation REMOVE must not have a value');
      }
      const match = obj(override.match);
      if (match && match.customMetric !== undefined && !str(match.customMetric)) c.error([...op, 'match', 'customMetric'], 'customMetric must not be empty');
    });
  });
}

function checkProviders(c: Checker, p: Path, providers: unknown): void {
  list(providers).forEach((pr, i) => {
    if (!str(obj(pr)?.name)) c.error([...p, i, 'name'], 'a provider needs a name: an extension provider from the mesh config (e.g. envoy, prometheus, zipkin)');
  });
}
