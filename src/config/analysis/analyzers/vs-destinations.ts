// Lists a VirtualService's route and mirror destinations with their field paths, for the analyzers
// that check them. Pure; missing or malformed fields are skipped.

import type { FieldPath, Resource } from '../../resource.ts';
import type { Destination, VirtualServiceSpec } from '../../types.ts';
import { arrayOf } from '../analyzer.ts';

export interface AnnotatedDestination {
  destination: Destination;
  /** Path of the destination's `host` field. */
  path: FieldPath;
  mirror: boolean;
}

function isDestination(v: unknown): v is Destination {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Route destinations of tcp, tls, then http rules (Istio's order). */
export function routeDestinations(vs: Resource<VirtualServiceSpec>): AnnotatedDestination[] {
  const out: AnnotatedDestination[] = [];
  for (const section of ['tcp', 'tls', 'http'] as const) {
    arrayOf(vs.spec[section]).forEach((rule, i) => {
      arrayOf(rule?.route).forEach((rd, j) => {
        if (isDestination(rd?.destination)) {
          out.push({ destination: rd.destination, path: ['spec', section, i, 'route', j, 'destination', 'host'], mirror: false });
        }
      });
    });
  }
  return out;
}

/** http[].mirror and http[].mirrors[].destination. */
export function mirrorDestinations(vs: Resource<VirtualServiceSpec>): AnnotatedDestination[] {
  const out: AnnotatedDestination[] = [];
  arrayOf(vs.spec.http).forEach((rule, i) => {
    if (isDestination(rule?.mirror)) out.push({ destination: rule.mirror, path: ['spec', 'http', i, 'mirror', 'host'], mirror: true });
    arrayOf(rule?.mirrors).forEach((m, j) => {
      if (isDestination(m?.destination)) {
        out.push({ destination: m.destination, path: ['spec', 'http', i, 'mirrors', j, 'destination', 'host'], mirror: true });
      }
    });
  });
  return out;
}
