import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { re2Problem } from './re2.ts';

describe('re2Problem', () => {
  it('accepts RE2 syntax, including what JavaScript spells differently', () => {
    for (const re of ['^/api/v[0-9]+/.*', '(?i)foo', '(?i:abc)def', '(?P<id>[0-9]+)', '[[:alpha:]]+', '\\pL+\\p{Greek}', '\\Q.*\\E', '\\x{41}', '[]a]', 'a{2,1000}', '\\d{3}-\\d{4}', '.*\\.jpg$', '\\Aabc\\z']) {
      assert.equal(re2Problem(re), undefined, re);
    }
  });

  it('rejects what RE2 does not support, saying what', () => {
    const cases: Array<[string, string]> = [
      ['a(?=b)', 'lookahead'], ['(?<!a)b', 'lookbehind'], ['(a)\\1', 'backreferences'], ['(?<n>a)\\k<n>', 'named backreferences'],
      ['a{1001}', 'too large'], ['\\y', 'invalid escape'], ['[[:word2:]]', 'invalid character class'], ['(unclosed', 'unterminated group'],
      ['a**', 'nothing to repeat'], ['[z-a]', 'out of order'], ['x'.repeat(1025), 'too long'], ['abc\\', 'lone backslash'],
    ];
    for (const [re, fragment] of cases) {
      const problem = re2Problem(re);
      assert.ok(problem?.includes(fragment), `${re.slice(0, 20)}: expected "${fragment}", got ${String(problem)}`);
    }
  });
});
