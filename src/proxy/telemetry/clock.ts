// The time source telemetry reads (uptime, stream end times, sink reopen pacing); tests pass a fake one. Never throws.

export interface Clock {
  /** Epoch milliseconds. */
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };
