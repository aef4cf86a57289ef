// The service registry's public surface: types, host and protocol helpers, and buildRegistry.
// Re-exports only; see the modules for how each part fails.

export * from './types.ts';
export * from './host.ts';
export * from './protocol.ts';
export { buildRegistry } from './registry.ts';
