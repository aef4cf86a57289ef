// Circuit-breaker counts shared by the sidecar's worker processes: a table of 64-bit cells in shared memory
// (the native shared_counters addon: memfd + mmap + atomic instructions), one slot per cluster with a total and
// each worker's share, so a dead worker's holdings can be given back. Loading or mapping failures throw
// MESH_ERR_PROXY_WORKERS; the counters themselves never throw.

import { createRequire } from 'node:module';
import { MeshError } from '../../common/errors.ts';
import type { LimitCounter, LimitCounters, LimitName } from '../upstream/pool/resources.ts';

/** The addon's functions (native/shared_counters.c). */
export interface SharedCountersAddon {
  create(bytes: number): number;
  map(fd: number, bytes: number): Region;
  add(region: Region, index: number, delta: number): number;
  get(region: Region, index: number): number;
  exchange(region: Region, index: number, value: number): number;
  tryAcquire(region: Region, total: number, own: number, limit: number): boolean;
}

/** An opaque mapping handle. */
export type Region = { readonly __region: unique symbol };

export const SHARED_COUNTERS_ADDON_PATH = 'build/Release/shared_counters.node';
const LIMITS: readonly LimitName[] = ['connections', 'pending', 'requests', 'retries'];
const MAGIC = 0x7473_6d63; // "tsmc"
const HEADER_CELLS = 4;

let loaded: SharedCountersAddon | Error | undefined;

/** The addon, loaded once; throws MESH_ERR_PROXY_WORKERS when it is not built (or not Linux). */
export function sharedCountersAddon(path: string = new URL(`../../../${SHARED_COUNTERS_ADDON_PATH}`, import.meta.url).pathname): SharedCountersAddon {
  if (loaded === undefined) {
    try {
      if (process.platform !== 'linux') throw new Error(`shared memory counters need Linux (this is ${process.platform})`);
      loaded = createRequire(import.meta.url)(path) as SharedCountersAddon;
    } catch (err) {
      loaded = new MeshError('MESH_ERR_PROXY_WORKERS', `the shared_counters addon ${path} could not be loaded (${(err as Error).message.split('\n')[0] ?? ''}); build it with \`npm rebuild\``, { cause: err });
    }
  }
  if (loaded instanceof Error) throw loaded;
  return loaded;
}

/** What a worker needs to attach: the descriptor it inherited and the table's shape. */
export interface SharedCountersSpec {
  fd: number;
  slots: number;
  workers: number;
}

/** "fd:slots:workers", as passed to workers in TSMESH_PROXY_SHARED_COUNTERS. */
export function formatSpec(s: SharedCountersSpec): string {
  return `${s.fd}:${s.slots}:${s.workers}`;
}

export function parseSpec(text: string | undefined): SharedCountersSpec | undefined {
  const m = /^(\d+):(\d+):(\d+)$/.exec(text ?? '');
  if (!m) return undefined;
  return { fd: Number(m[1]), slots: Number(m[2]), workers: Number(m[3]) };
}

/**
 * The table. Cell layout: a header (magic, slots, workers), then for each cluster slot and each of the four
 * limits (connections, pending, requests, retries) 1 + workers cells: the total, then worker 0, 1, ... shares.
 */
export class SharedCounterTable {
  readonly slots: number;
  readonly workers: number;
  readonly fd: number;
  readonly #a: SharedCountersAddon;
  readonly #r: Region;

  private constructor(a: SharedCountersAddon, r: Region, fd: number, slots: number, workers: number) {
    this.#a = a;
    this.#r = r;
    this.fd = fd;
    this.slots = slots;
    this.workers = workers;
  }

  static bytes(slots: number, workers: number): number {
    return (HEADER_CELLS + slots * LIMITS.length * (1 + workers)) * 8;
  }

  /** A new table (the primary), zeroed; `fd` is to be handed to the workers. Throws MESH_ERR_PROXY_WORKERS. */
  static create(slots: number, workers: number, addon?: SharedCountersAddon): SharedCounterTable {
    const a = addon ?? sharedCountersAddon();
    const bytes = SharedCounterTable.bytes(slots, workers);
    try {
      const fd = a.create(bytes);
      const r = a.map(fd, bytes);
      a.exchange(r, 1, slots);
      a.exchange(r, 2, workers);
      a.exchange(r, 0, MAGIC);
      return new SharedCounterTable(a, r, fd, slots, workers);
    } catch (err) {
      throw new MeshError('MESH_ERR_PROXY_WORKERS', `cannot create the workers' shared circuit-breaker counters: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Maps the table a worker inherited. Throws MESH_ERR_PROXY_WORKERS when it is not one. */
  static attach(spec: SharedCountersSpec, addon?: SharedCountersAddon): SharedCounterTable {
    const a = addon ?? sharedCountersAddon();
    let r: Region;
    try {
      r = a.map(spec.fd, SharedCounterTable.bytes(spec.slots, spec.workers));
    } catch (err) {
      throw new MeshError('MESH_ERR_PROXY_WORKERS', `cannot map the shared circuit-breaker counters (fd ${spec.fd}): ${(err as Error).message}`, { cause: err });
    }
    if (a.get(r, 0) !== MAGIC || a.get(r, 1) !== spec.slots || a.get(r, 2) !== spec.workers) {
      throw new MeshError('MESH_ERR_PROXY_WORKERS', `fd ${spec.fd} is not the primary's shared counter table (${spec.slots} slots, ${spec.workers} workers)`);
    }
    return new SharedCounterTable(a, r, spec.fd, spec.slots, spec.workers);
  }

  #cell(slot: number, limit: number, column: number): number {
    return HEADER_CELLS + (slot * LIMITS.length + limit) * (1 + this.workers) + column;
  }

  /** The four counters of one cluster slot, as worker `worker` (0-based) counts them. */
  counters(slot: number, worker: number): LimitCounters {
    const a = this.#a;
    const r = this.#r;
    const make = (limit: number): LimitCounter => {
      const total = this.#cell(slot, limit, 0);
      const own = this.#cell(slot, limit, 1 + worker);
      return {
        shared: true,
        total: () => a.get(r, total),
        tryAcquire: (max) => a.tryAcquire(r, total, own, max),
        acquire: () => {
          a.add(r, total, 1);
          a.add(r, own, 1);
        },
        release: () => {
          a.add(r, total, -1);
          a.add(r, own, -1);
        },
      };
    };
    return { connections: make(0), pending: make(1), requests: make(2), retries: make(3) };
  }

  /** The totals of a slot (connections, pending, requests, retries). */
  totals(slot: number): Record<LimitName, number> {
    const out = {} as Record<LimitName, number>;
    LIMITS.forEach((name, i) => (out[name] = this.#a.get(this.#r, this.#cell(slot, i, 0))));
    return out;
  }

  /** True while anything is counted in the slot (it cannot be given to another cluster yet). */
  inUse(slot: number): boolean {
    return LIMITS.some((_, i) => this.#a.get(this.#r, this.#cell(slot, i, 0)) !== 0);
  }

  /** Gives back everything a dead worker held (its connections died with it); returns how many counts that was. */
  reclaim(worker: number): number {
    let freed = 0;
    for (let slot = 0; slot < this.slots; slot++) {
      for (let i = 0; i < LIMITS.length; i++) {
        const held = this.#a.exchange(this.#r, this.#cell(slot, i, 1 + worker), 0);
        if (held !== 0) {
          this.#a.add(this.#r, this.#cell(slot, i, 0), -held);
          freed += held;
        }
      }
    }
    return freed;
  }
}

/**
 * Cluster name -> slot, kept by the primary across CDS updates. A removed cluster's slot is reused only once
 * nothing is counted in it (its draining connections in the workers still release into it until then).
 */
export class SlotAllocator {
  readonly #table: SharedCounterTable;
  readonly #byName = new Map<string, number>();
  readonly #free: number[] = [];
  #next = 0;

  constructor(table: SharedCounterTable) {
    this.#table = table;
  }

  /** Slots for the clusters of one CDS update; clusters beyond the table's size get none (they count per worker). */
  assign(names: readonly string[]): Record<string, number> {
    const wanted = new Set(names);
    for (const [name, slot] of this.#byName) {
      if (wanted.has(name)) continue;
      this.#byName.delete(name);
      this.#free.push(slot);
    }
    const out: Record<string, number> = {};
    for (const name of wanted) {
      let slot = this.#byName.get(name);
      if (slot === undefined) {
        slot = this.#take();
        if (slot === undefined) continue;
        this.#byName.set(name, slot);
      }
      out[name] = slot;
    }
    return out;
  }

  #take(): number | undefined {
    if (this.#next < this.#table.slots) return this.#next++;
    const i = this.#free.findIndex((s) => !this.#table.inUse(s));
    if (i < 0) return undefined;
    return this.#free.splice(i, 1)[0];
  }
}
