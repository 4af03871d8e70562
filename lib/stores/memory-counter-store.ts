// Request counters in memory for the issuer's limiters, fixed windows like express-rate-limit's
// MemoryStore, with a cap on the number of keys: unauthenticated requests create them.

import type { ClientRateLimitInfo, Options, Store } from 'express-rate-limit';

interface Counter {
  hits: number;
  readonly resetAt: number;
}

export interface MemoryCounterStoreOptions {
  /**
   * When full of live counters, forget the oldest for a new key instead of refusing it. Only for
   * counters that guard nothing: forgetting a live one of a real pair would let a flood unlock it.
   */
  readonly forgetOldest?: boolean | undefined;
  readonly now?: (() => number) | undefined;
}

/**
 * An express-rate-limit `Store` holding at most `maxKeys` counters. Expired windows are dropped
 * when the store fills; a new key that still finds it full is refused with an error (the failure
 * lock answers it with a 503, the per-address cap lets the request pass), or with `forgetOldest`
 * takes the place of the counter created first.
 */
export class MemoryCounterStore implements Store {
  readonly #counters = new Map<string, Counter>();
  readonly #forgetOldest: boolean;
  readonly #now: () => number;
  #windowMs = 60_000;
  #nextSweep = 0;

  constructor(
    private readonly maxKeys: number,
    { forgetOldest = false, now = Date.now }: MemoryCounterStoreOptions = {},
  ) {
    this.#forgetOldest = forgetOldest;
    this.#now = now;
  }

  init(options: Pick<Options, 'windowMs'>): void {
    this.#windowMs = options.windowMs;
  }

  get(key: string): ClientRateLimitInfo | undefined {
    const counter = this.#live(key);
    return counter === undefined ? undefined : { totalHits: counter.hits, resetTime: new Date(counter.resetAt) };
  }

  increment(key: string): ClientRateLimitInfo {
    let counter = this.#live(key);
    if (counter === undefined) {
      if (this.#counters.size >= this.maxKeys) this.#sweep();
      if (this.#counters.size >= this.maxKeys) {
        if (!this.#forgetOldest) throw new Error(`the rate-limit counters are full (${this.maxKeys} keys)`);
        // Windows are all as long, so the first in the map is the one nearest its end.
        this.#counters.delete(this.#counters.keys().next().value as string);
      }
      counter = { hits: 0, resetAt: this.#now() + this.#windowMs };
      this.#counters.set(key, counter);
    }
    counter.hits += 1;
    return { totalHits: counter.hits, resetTime: new Date(counter.resetAt) };
  }

  decrement(key: string): void {
    const counter = this.#live(key);
    if (counter === undefined) return;
    counter.hits -= 1;
    if (counter.hits <= 0) this.#counters.delete(key);
  }

  resetKey(key: string): void {
    this.#counters.delete(key);
  }

  resetAll(): void {
    this.#counters.clear();
  }

  /** Counters held now, expired ones not yet dropped included. */
  get size(): number {
    return this.#counters.size;
  }

  #live(key: string): Counter | undefined {
    const counter = this.#counters.get(key);
    if (counter !== undefined && counter.resetAt <= this.#now()) {
      this.#counters.delete(key);
      return undefined;
    }
    return counter;
  }

  /** At most once a second: a full store of live counters must not cost a scan per request. */
  #sweep(): void {
    const now = this.#now();
    if (now < this.#nextSweep) return;
    this.#nextSweep = now + 1000;
    for (const [key, counter] of this.#counters) if (counter.resetAt <= now) this.#counters.delete(key);
  }
}
