// Conversions of xDS objects between our snake_case proto3 JSON and the camelCase form protojson (and
// so istioctl's -o json) prints, plus the YAML istioctl prints (keys sorted). Pure; never throws.

import { stringify } from 'yaml';

const SNAKE = /^[a-z][a-z0-9]*(?:_[a-z0-9]+)+$/;

/** Deep copy with snake_case field names turned into lowerCamelCase; '@type' and map keys like
 *  'envoy.filters.x' are kept as they are. */
export function toCamel(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(toCamel);
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    const key = SNAKE.test(k) ? k.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase()) : k;
    out[key] = toCamel(v);
  }
  return out;
}

/** istioctl's -o json: protojson, indented with four spaces. */
export function istioctlJson(value: unknown): string {
  return JSON.stringify(toCamel(value), null, 4);
}

/** istioctl's -o yaml: the JSON turned into YAML with sorted keys and unindented lists. */
export function istioctlYaml(value: unknown): string {
  return stringify(toCamel(value), { sortMapEntries: true, indentSeq: false, lineWidth: 0 });
}
