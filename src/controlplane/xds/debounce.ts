// Debounces push requests: fires once the input has been quiet for quietMs, or maxDelayMs after the first one at the latest (Istio's PILOT_DEBOUNCE_AFTER / _MAX); never throws itself, errors of `fire` propagate to the timer.

/** Time, injected so tests advance a fake clock instead of sleeping. Milliseconds throughout. */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref();
    return t;
  },
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

export interface DebounceOptions {
  /** Fire after this long without a new request (ms); 0 fires at once. Istio's default is 100. */
  quietMs: number;
  /** Fire at the latest this long after the first request of a batch (ms), even if requests keep coming. */
  maxDelayMs: number;
}

export const DEFAULT_DEBOUNCE: DebounceOptions = { quietMs: 100, maxDelayMs: 1000 };

export class Debouncer<T> {
  readonly #opts: DebounceOptions;
  readonly #clock: Clock;
  readonly #merge: (a: T, b: T) => T;
  readonly #fire: (merged: T) => void;
  #pending: T | undefined;
  #hasPending = false;
  #firstAt = 0;
  #lastAt = 0;
  #timer: unknown;
  #stopped = false;

  constructor(opts: DebounceOptions & { clock: Clock; merge: (a: T, b: T) => T; fire: (merged: T) => void }) {
    this.#opts = { quietMs: opts.quietMs, maxDelayMs: Math.max(opts.maxDelayMs, opts.quietMs) };
    this.#clock = opts.clock;
    this.#merge = opts.merge;
    this.#fire = opts.fire;
  }

  /** True while requests wait for the quiet period. */
  get pending(): boolean {
    return this.#hasPending;
  }

  add(value: T): void {
    if (this.#stopped) return;
    const now = this.#clock.now();
    if (this.#hasPending) {
      this.#pending = this.#merge(this.#pending as T, value);
    } else {
      this.#pending = value;
      this.#hasPending = true;
      this.#firstAt = now;
    }
    this.#lastAt = now;
    if (this.#opts.quietMs <= 0) {
      this.flush();
      return;
    }
    if (this.#timer === undefined) this.#arm(this.#opts.quietMs);
  }

  /** Fires now if anything is pending. */
  flush(): void {
    if (this.#timer !== undefined) {
      this.#clock.clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    if (!this.#hasPending) return;
    const merged = this.#pending as T;
    this.#pending = undefined;
    this.#hasPending = false;
    this.#fire(merged);
  }

  /** Drops what is pending and ignores later requests. */
  stop(): void {
    this.#stopped = true;
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#pending = undefined;
    this.#hasPending = false;
  }

  #arm(ms: number): void {
    this.#timer = this.#clock.setTimeout(() => this.#check(), ms);
  }

  #check(): void {
    this.#timer = undefined;
    if (!this.#hasPending) return;
    const now = this.#clock.now();
    const sinceFirst = now - this.#firstAt;
    const sinceLast = now - this.#lastAt;
    if (sinceFirst >= this.#opts.maxDelayMs || sinceLast >= this.#opts.quietMs) {
      this.flush();
      return;
    }
    this.#arm(Math.min(this.#opts.quietMs - sinceLast, this.#opts.maxDelayMs - sinceFirst));
  }
}
