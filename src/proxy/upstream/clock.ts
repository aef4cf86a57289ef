// Time and randomness for the upstream (Clock: now + unref'd timers; Random: [0,1) draws), real or fake
// for tests (FakeClock runs due timers when advanced, seededRandom repeats its sequence); never throws.

export interface Timer {
  cancel(): void;
}

export interface Clock {
  /** Milliseconds since the epoch (or since the fake clock's start). */
  now(): number;
  /** Runs `fn` once after `ms` milliseconds; the timer never keeps the process alive. */
  setTimer(ms: number, fn: () => void): Timer;
}

export interface Random {
  /** A uniform draw in [0, 1). */
  next(): number;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer(ms, fn) {
    const t = setTimeout(fn, ms);
    t.unref();
    return { cancel: () => clearTimeout(t) };
  },
};

export const mathRandom: Random = { next: () => Math.random() };

/** A small fast PRNG (mulberry32) so that tests of balancing are repeatable. */
export function seededRandom(seed: number): Random {
  let s = seed >>> 0;
  return {
    next() {
      s = (s + 0x6d2b79f5) >>> 0;
      let t = s;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    },
  };
}

interface FakeTimer {
  at: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

/** A clock that only moves when told to; due timers run in time order during advance(). */
export class FakeClock implements Clock {
  private t: number;
  private seq = 0;
  private timers: FakeTimer[] = [];

  constructor(start = 0) {
    this.t = start;
  }

  now(): number {
    return this.t;
  }

  setTimer(ms: number, fn: () => void): Timer {
    const timer: FakeTimer = { at: this.t + Math.max(0, ms), seq: this.seq++, fn, cancelled: false };
    this.timers.push(timer);
    return { cancel: () => void (timer.cancelled = true) };
  }

  /** Moves time forward by `ms`, running every timer that falls due (including ones they set). */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      let next: FakeTimer | undefined;
      for (const tm of this.timers) {
        if (tm.cancelled || tm.at > end) continue;
        if (!next || tm.at < next.at || (tm.at === next.at && tm.seq < next.seq)) next = tm;
      }
      if (!next) break;
      this.timers = this.timers.filter((x) => x !== next && !x.cancelled);
      this.t = Math.max(this.t, next.at);
      next.fn();
    }
    this.t = end;
  }

  /** Timers not yet run nor cancelled. */
  get pendingTimers(): number {
    return this.timers.filter((t) => !t.cancelled).length;
  }
}
