// Request/response over a forked child's IPC channel, both sides: the parent's `Child` (every request has a deadline; the child's exit rejects what is pending) and the child's `serve`; a handler that throws answers with its message.

import { fork, type ChildProcess } from 'node:child_process';

interface Envelope { id?: number; op: string; body?: unknown; error?: string; event?: boolean }

export class Child {
  readonly name: string;
  readonly proc: ChildProcess;
  readonly exited: Promise<number | null>;
  readonly #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  readonly #listeners = new Map<string, Array<(body: unknown) => void>>();
  #nextId = 0;
  #exitCode: number | null | undefined;

  /** Forks `module` under tsx with extra node flags (`--cpu-prof`, `--max-old-space-size=`). */
  constructor(name: string, module: string, nodeFlags: readonly string[] = [], env: NodeJS.ProcessEnv = process.env) {
    this.name = name;
    this.proc = fork(module, [], { execArgv: ['--import', 'tsx', ...nodeFlags], env, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.proc.on('message', (m: Envelope) => this.#onMessage(m));
    this.exited = new Promise((resolve) => {
      this.proc.on('exit', (code, signal) => {
        this.#exitCode = code;
        for (const [, p] of this.#pending) {
          clearTimeout(p.timer);
          p.reject(new Error(`${name} exited (code ${code ?? 'none'}, signal ${signal ?? 'none'}) before answering`));
        }
        this.#pending.clear();
        resolve(code);
      });
    });
  }

  #onMessage(m: Envelope): void {
    if (m.event) {
      for (const fn of this.#listeners.get(m.op) ?? []) fn(m.body);
      return;
    }
    const p = m.id === undefined ? undefined : this.#pending.get(m.id);
    if (!p || m.id === undefined) return;
    this.#pending.delete(m.id);
    clearTimeout(p.timer);
    if (m.error !== undefined) p.reject(new Error(`${this.name} ${m.op}: ${m.error}`));
    else p.resolve(m.body);
  }

  /** Events the child sends with `emit(op, body)`. */
  on(op: string, fn: (body: unknown) => void): void {
    let l = this.#listeners.get(op);
    if (!l) this.#listeners.set(op, (l = []));
    l.push(fn);
  }

  request<T>(op: string, body: unknown, timeoutMs: number): Promise<T> {
    if (this.#exitCode !== undefined) return Promise.reject(new Error(`${this.name} has exited`));
    const id = ++this.#nextId;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`${this.name} ${op}: no answer within ${Math.round(timeoutMs / 1000)} s`));
      }, timeoutMs);
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      this.proc.send({ id, op, body } satisfies Envelope);
    });
  }

  /** Asks the child to exit (`exit` op), then kills it if it has not gone within `graceMs`. */
  async stop(graceMs = 10_000): Promise<void> {
    if (this.#exitCode !== undefined) return;
    try {
      await this.request('exit', undefined, graceMs);
    } catch {
      // the child may exit before it answers
    }
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}

type Handler = (body: never) => unknown;

/** In the child: answers the parent's requests with `handlers[op]`; `exit` answers, then exits the process. */
export function serve(handlers: Record<string, Handler>, onExit: () => Promise<void> = async () => undefined): void {
  if (!process.send) throw new Error('bench child started without an IPC channel (run it through bench/run.ts)');
  process.on('message', (m: Envelope) => {
    void (async () => {
      if (m.op === 'exit') {
        await onExit();
        process.send?.({ id: m.id, op: m.op, body: null } satisfies Envelope, () => process.exit(0));
        return;
      }
      const h = handlers[m.op];
      try {
        if (!h) throw new Error(`unknown op ${m.op}`);
        const body = await h(m.body as never);
        process.send?.({ id: m.id, op: m.op, body } satisfies Envelope);
      } catch (err) {
        process.send?.({ id: m.id, op: m.op, error: (err as Error).stack ?? String(err) } satisfies Envelope);
      }
    })();
  });
  process.on('disconnect', () => process.exit(0));
}

/** In the child: an event for the parent's `on(op)` listeners. */
export function emit(op: string, body: unknown): void {
  process.send?.({ op, body, event: true } satisfies Envelope);
}
