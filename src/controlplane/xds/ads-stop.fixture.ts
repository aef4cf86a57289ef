// A process for ads-server.test.ts: serves ADS with one very large CDS response, prints its port, stops the server when a line arrives on stdin, prints `stopped`, and must then exit by itself; exits 1 when stop() throws.

import type { Logger } from '../../common/log.ts';
import { TYPE_URLS } from '../../xds/protos.ts';
import { AdsServer, type GeneratedResource } from './ads-server.ts';

const quiet: Logger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };
// 48 clusters of 1 MiB each: more than the kernel buffers of a loopback connection hold
const pad = 'x'.repeat(2 ** 20);
const clusters: GeneratedResource[] = Array.from({ length: 48 }, (_, i) => ({
  name: `c${i}`,
  resource: { '@type': TYPE_URLS.CLUSTER, name: `c${i}`, type: 'STATIC', connect_timeout: '1s', metadata: { filter_metadata: { pad: { v: pad } } } },
}));

const server = new AdsServer<object>({
  generators: [{ typeUrl: TYPE_URLS.CLUSTER, generate: () => clusters }],
  snapshot: () => ({}),
  log: quiet,
  stopGraceMs: 200,
});
const port = await server.start('127.0.0.1:0');
process.stdout.write(`${port}\n`);
process.stdin.once('data', () => {
  process.stdin.destroy();
  server.stop().then(
    () => process.stdout.write('stopped\n'),
    (err: unknown) => {
      process.stderr.write(`stop failed: ${String(err)}\n`);
      process.exit(1);
    },
  );
});
