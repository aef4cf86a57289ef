import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { ErrorCodes } from './errors.ts';

describe('error catalog', () => {
  const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
  it('documents every error code in docs/errors.md', () => {
    const missing = Object.keys(ErrorCodes).filter((code) => !doc.includes(`\`${code}\``));
    assert.deepEqual(missing, [], `add these codes to docs/errors.md: ${missing.join(', ')}`);
  });
  it('lists no code in docs/errors.md that the catalog lacks', () => {
    const documented = [...doc.matchAll(/`(MESH_ERR_[A-Z0-9_]+)`/g)].map((m) => m[1] ?? '');
    const unknown = documented.filter((c) => !(c in ErrorCodes));
    assert.deepEqual(unknown, []);
  });
  it('names every code MESH_ERR_<AREA>_<WHAT>', () => {
    for (const code of Object.keys(ErrorCodes)) assert.match(code, /^MESH_ERR_[A-Z0-9]+_[A-Z0-9_]+$/);
  });
});
