// Used assertion ids in memory, each forgotten once it has expired; bounded by `maxEntries` too,
// failing (a 503 for the client, not a failed authentication) rather than forgetting live ones when full.

import type { ReplayCache } from '../core/stores.js';

export class MemoryReplayCache implements ReplayCache {
  readonly #expiry = new Map<string, number>();
  #nextSweep = 0;

  constructor(
    private readonly maxEntries = 100_000,
    private readonly now: () => number = () => Date.now() / 1000,
  ) {}

  async markUsed(key: string, expiresAt: number): Promise<boolean> {
    const now = this.now();
    this.#sweep(now);
    const known = this.#expiry.get(key);
    if (known !== undefined && known > now) return false;
    // Full of live entries: failing is safe (the client retries later); forgetting would allow replays.
    if (this.#expiry.size >= this.maxEntries) throw new Error(`the replay cache holds ${this.maxEntries} live entries`);
    this.#expiry.set(key, expiresAt);
    return true;
  }

  get size(): number {
    return this.#expiry.size;
  }

  #sweep(now: number): void {
    if (now < this.#nextSweep && this.#expiry.size < this.maxEntries) return;
    this.#nextSweep = now + 1;
    for (const [key, expiresAt] of this.#expiry) if (expiresAt <= now) this.#expiry.delete(key);
  }
}
