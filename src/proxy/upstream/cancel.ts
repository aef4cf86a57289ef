// Cancellation: a one-shot abort flag with listeners, the AbortSignalLike the router hands the pools per
// request attempt (an AbortController costs an EventTarget and several objects each). Never throws from
// abort() unless a listener does.

import type { AbortSignalLike } from './types.ts';

export class Cancellation implements AbortSignalLike {
  aborted = false;
  reason: unknown = undefined;
  #one: (() => void) | undefined;
  #more: Array<() => void> | undefined;

  /** Listens once for the abort; ignored after it happened (as AbortSignal does). */
  addEventListener(_type: 'abort', listener: () => void): void {
    if (this.aborted) return;
    if (this.#one === undefined && this.#more === undefined) this.#one = listener;
    else (this.#more ??= []).push(listener);
  }

  removeEventListener(_type: 'abort', listener: () => void): void {
    if (this.#one === listener) {
      this.#one = undefined;
      return;
    }
    const m = this.#more;
    if (!m) return;
    const i = m.indexOf(listener);
    if (i >= 0) m.splice(i, 1);
  }

  /** Aborts with `reason` (an Error saying "aborted" when none is given) and calls each listener once. */
  abort(reason?: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason ?? new Error('aborted');
    const one = this.#one;
    const more = this.#more;
    this.#one = undefined;
    this.#more = undefined;
    one?.();
    if (more) for (const fn of more) fn();
  }
}
