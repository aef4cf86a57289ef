// The sidecar's prebuilt bundle (scripts/proxy-bundle.mjs) on a small program: used while its sources are as built,
// stale as soon as one changes (never silently run old code), current again after a rebuild; files found through
// import.meta.url still resolve next to their sources.

import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { buildProxyBundle, checkProxyBundle, ensureProxyBundle, type BundleOptions } from '../scripts/proxy-bundle.mjs';

describe('proxy bundle', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tsmesh-bundle-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const opts: BundleOptions = { root: dir, entry: 'src/entry.ts', out: join(dir, 'dist', 'bundle.mjs'), extraInputs: ['settings.json'] };
  writeFileSync(join(dir, 'settings.json'), '{}');
  writeFileSync(join(dir, 'data.txt'), 'hello');
  const src = join(dir, 'src');
  mkdirSync(src);
  const write = (name: string, text: string): void => {
    writeFileSync(join(src, name), text);
  };
  let loads = 0;
  const run = async (): Promise<string> => ((await import(`${pathToFileURL(opts.out ?? '').href}?${loads++}`)) as { runProxy(): string }).runProxy();

  it('runs what it bundled, and finds files next to the sources through import.meta.url', async () => {
    write('entry.ts', "import { greeting } from './lib.ts';\nexport function runProxy(): string { return greeting(); }\n");
    write('lib.ts', "import { readFileSync } from 'node:fs';\nexport const greeting = (): string => `${readFileSync(new URL('../data.txt', import.meta.url), 'utf8')} v1`;\n");
    assert.equal(checkProxyBundle(opts).current, false, 'no bundle yet');
    const b = await buildProxyBundle(opts);
    assert.equal(b.inputs, 3, 'entry, lib and the extra input');
    assert.deepEqual(checkProxyBundle(opts), { current: true, path: opts.out });
    assert.equal(await run(), 'hello v1');
  });

  it('stays current when a file is touched without being changed', () => {
    const later = new Date(Date.now() + 60_000);
    utimesSync(join(src, 'lib.ts'), later, later);
    utimesSync(join(dir, 'settings.json'), later, later);
    assert.equal(checkProxyBundle(opts).current, true);
  });

  it('is stale once a bundled source or an extra input changes, naming it, and current after a rebuild', async () => {
    write('lib.ts', "export const greeting = (): string => 'edited v2';\n");
    const stale = checkProxyBundle(opts);
    assert.equal(stale.current, false);
    assert.match(stale.current ? '' : stale.reason, /src\/lib\.ts changed/);
    const ensured = await ensureProxyBundle(opts);
    assert.deepEqual(ensured, { current: true, path: opts.out, built: true });
    assert.equal(await run(), 'edited v2');
    assert.deepEqual(await ensureProxyBundle(opts), { current: true, path: opts.out, built: false });

    writeFileSync(join(dir, 'settings.json'), '{"changed": true}');
    const s2 = checkProxyBundle(opts);
    assert.match(s2.current ? '' : s2.reason, /settings\.json changed/);
  });

  it('is stale when a bundled source is gone, and says why a build fails', async () => {
    await ensureProxyBundle(opts);
    rmSync(join(src, 'lib.ts'));
    const gone = checkProxyBundle(opts);
    assert.match(gone.current ? '' : gone.reason, /src\/lib\.ts, bundled into dist\/bundle\.mjs, is gone/);
    const failed = await ensureProxyBundle(opts);
    assert.equal(failed.current, false);
    assert.match(failed.current ? '' : failed.reason, /building dist\/bundle\.mjs failed: .*lib\.ts/);
  });
});
