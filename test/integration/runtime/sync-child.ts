// Test fixture: syncs the service rules for the manifests in argv[2] with the JSON options in argv[3], prints
// "synced" and waits to be killed (the test kills it with SIGKILL and cleans up from another process). Exits 1 on failure.

import { readFileSync } from 'node:fs';
import { loadString } from '../../../src/config/loader.ts';
import { buildRegistry } from '../../../src/registry/registry.ts';
import { syncServiceRules, type ServiceProxyOptions } from '../../../src/runtime/service-proxy.ts';

const [file = '', optsJson = '{}'] = process.argv.slice(2);
const opts = JSON.parse(optsJson) as ServiceProxyOptions;
const registry = buildRegistry(loadString(readFileSync(file, 'utf8'), file).resources, { podCIDR: opts.podCIDR, serviceCIDR: opts.serviceCIDR });
syncServiceRules(registry, opts).then(
  () => {
    process.stdout.write('synced\n');
    setInterval(() => undefined, 60_000);
  },
  (err: unknown) => {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exit(1);
  },
);
