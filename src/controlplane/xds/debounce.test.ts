import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Debouncer } from './debounce.ts';
import { FakeClock } from './fake-clock.ts';
import { describePush, mergePushRequests, type PushRequest } from './push-request.ts';

function setup(quietMs: number, maxDelayMs: number) {
  const clock = new FakeClock();
  const fired: Array<{ at: number; req: PushRequest }> = [];
  const start = clock.now();
  const d = new Debouncer<PushRequest>({ quietMs, maxDelayMs, clock, merge: mergePushRequests, fire: (req) => fired.push({ at: clock.now() - start, req }) });
  return { clock, fired, d };
}

const config = (kind: string, ns = 'default'): PushRequest => ({ full: true, reasons: new Set(['config']), kinds: new Set([kind]), namespaces: new Set([ns]) });
const endpoint: PushRequest = { full: false, reasons: new Set(['endpoint']), kinds: new Set(['ServiceEntry']) };

describe('debounce', () => {
  it('merges requests inside the quiet period into one push after the quiet period', () => {
    const { clock, fired, d } = setup(100, 1000);
    d.add(config('VirtualService'));
    clock.advance(50);
    d.add(endpoint);
    clock.advance(50);
    d.add(config('DestinationRule', 'bookinfo'));
    clock.advance(99);
    assert.equal(fired.length, 0, 'still inside the quiet period of the last request');
    clock.advance(1);
    assert.equal(fired.length, 1);
    assert.equal(fired[0]?.at, 200);
    assert.equal(describePush(fired[0].req), 'full config,endpoint[DestinationRule,ServiceEntry,VirtualService]', 'the endpoint request named no namespaces');
    clock.advance(5000);
    assert.equal(fired.length, 1, 'nothing more without new requests');
  });

  it('forces a push at the maximum delay when requests never stop', () => {
    const { clock, fired, d } = setup(100, 300);
    for (let t = 0; t < 1000; t += 50) {
      d.add(config('VirtualService'));
      clock.advance(50);
    }
    assert.deepEqual(fired.map((f) => f.at), [300, 600, 900]);
  });

  it('fires at once with a zero quiet period, and never after stop', () => {
    const { clock, fired, d } = setup(0, 0);
    d.add(endpoint);
    assert.equal(fired.length, 1);
    d.stop();
    d.add(endpoint);
    clock.advance(1000);
    assert.equal(fired.length, 1);
  });

  it('merges push requests: full wins, reasons and kinds unite, an unknown kind set absorbs', () => {
    const m = mergePushRequests(endpoint, config('Gateway'));
    assert.equal(m.full, true);
    assert.deepEqual([...m.reasons].sort(), ['config', 'endpoint']);
    assert.deepEqual([...(m.kinds ?? [])].sort(), ['Gateway', 'ServiceEntry']);
    assert.equal(m.namespaces, undefined, 'the endpoint request did not say which namespaces');
    assert.equal(mergePushRequests(config('Gateway'), { full: true, reasons: new Set(['global']) }).kinds, undefined);
  });
});
