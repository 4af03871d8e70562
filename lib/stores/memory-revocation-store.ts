// Revoked tokens in memory, each forgotten once it has expired: memory stays bounded by the
// number of tokens revoked within one token lifetime.

import type { RevocationStore } from '../core/stores.js';

/**
 * The default revocation store, for a single process. Several instances behind a load balancer
 * need a shared store instead.
 */
export class MemoryRevocationStore implements RevocationStore {
  readonly #expiry = new Map<string, number>();
  #nextSweep = 0;

  constructor(private readonly now: () => number = () => Date.now() / 1000) {}

  async revoke(jti: string, expiresAt: number): Promise<void> {
    this.#sweep();
    if (expiresAt > this.now()) this.#expiry.set(jti, Math.max(expiresAt, this.#expiry.get(jti) ?? 0));
  }

  async isRevoked(jti: string): Promise<boolean> {
    const expiresAt = this.#expiry.get(jti);
    return expiresAt !== undefined && expiresAt > this.now();
  }

  /** Tokens remembered now, expired ones not yet swept included. */
  get size(): number {
    return this.#expiry.size;
  }

  /** Drops expired entries, at most once a second, so that revoking stays O(1) on average. */
  #sweep(): void {
    const now = this.now();
    if (now < this.#nextSweep) return;
    this.#nextSweep = now + 1;
    for (const [jti, expiresAt] of this.#expiry) if (expiresAt <= now) this.#expiry.delete(jti);
  }
}
