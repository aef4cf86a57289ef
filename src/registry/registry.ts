// Builds the service registry from loaded resources (work in progress: types are final).
// Never throws on bad input: resources that cannot be understood are skipped.

import type { Resource } from '../config/resource.ts';
import type { Registry, RegistryOptions } from './types.ts';

export type { Registry } from './types.ts';

export function buildRegistry(resources: readonly Resource[], opts: RegistryOptions = {}): Registry {
  void resources;
  void opts;
  throw new Error('buildRegistry: not implemented yet');
}
