// Request counters in memory for the issuer's limiters, fixed windows like express-rate-limit's
// MemoryStore, with a cap on the number of keys: unauthenticated requests create them.

import type { ClientRateLimitInfo, Options, Store } from 'express-rate-limit';

interface Counter {
  hits: number;
  readonly resetAt: number;
}

/**
 * An express-rate-limit `Store` holding at most `maxKeys` counters. Expired windows are dropped
 * when the store fills; a new key that still finds it full is refused with an error (the failure
 * lock answers it with a 503, the per-address cap lets the request pass), never by forgetting a
 * live counter, which would let a flood unlock a pair under attack.
 */
export class MemoryCounterStore implements Store {
  readonly #counters = new Map<string, Counter>();
  #windowMs = 60_000;
  #nextSweep = 0;

  constructor(
    private readonly maxKeys: number,
    private readonly now: () => number = Date.now,
  ) {}

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
      if (this.#counters.size >= this.maxKeys) throw new Error(`the rate-limit counters are full (${this.maxKeys} keys)`);
      counter = { hits: 0, resetAt: this.now() + this.#windowMs };
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
    if (counter !== undefined && counter.resetAt <= this.now()) {
      this.#counters.delete(key);
      return undefined;
    }
    return counter;
  }

  /** At most once a second: a full store of live counters must not cost a scan per request. */
  #sweep(): void {
    const now = this.now();
    if (now < this.#nextSweep) return;
    this.#nextSweep = now + 1000;
    for (const [key, counter] of this.#counters) if (counter.resetAt <= now) this.#counters.delete(key);
  }
}
