import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fromProtoDuration, parseDuration, protoDuration } from './duration.ts';

describe('duration', () => {
  it('parses Go-style durations to milliseconds', () => {
    assert.equal(parseDuration('3s'), 3000);
    assert.equal(parseDuration('1h2m3.5s'), 3_723_500);
    assert.equal(parseDuration('250ms'), 250);
    assert.equal(parseDuration('10us'), 0.01);
    assert.equal(parseDuration('0'), 0);
  });
  it('rejects malformed text', () => {
    for (const bad of ['', '3', 's', '3x', '1s2', '1.s', 'abc']) assert.equal(parseDuration(bad), undefined, bad);
  });
  it('formats and reads Envoy JSON durations', () => {
    assert.equal(protoDuration(3000), '3s');
    assert.equal(protoDuration(250), '0.25s');
    assert.equal(fromProtoDuration('0.250s'), 250);
    assert.equal(fromProtoDuration('3s'), 3000);
  });
});
