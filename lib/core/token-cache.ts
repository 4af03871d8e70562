// A bounded cache of verified access tokens, so a token reused by its client is checked once,
// not on every request (RFC 9068 §4 checks, signature included). Time and key checks still apply.

import { BoundedMap } from './bounded-map.js';
import type { VerificationKey } from './signing-keys.js';
import type { AuthInfo } from './token-verification.js';

interface Entry {
  readonly auth: AuthInfo;
  readonly key: VerificationKey;
  readonly exp: number;
}

/**
 * Verified tokens by their exact text, least recently used first out. An entry serves only while
 * its token has not expired and the key that verified it is still trusted (a retired key, or a
 * remote key set that changed, sends the token back through full verification). Only valid tokens
 * get in, so invalid ones cannot crowd it.
 */
export class VerifiedTokenCache {
  readonly #entries: BoundedMap<string, Entry>;

  constructor(maxEntries: number) {
    this.#entries = new BoundedMap(maxEntries);
  }

  get(token: string, keys: readonly VerificationKey[], nowSeconds: number, clockTolerance: number): AuthInfo | undefined {
    const entry = this.#entries.get(token);
    if (entry === undefined) return undefined;
    if (entry.exp <= nowSeconds - clockTolerance || !keys.includes(entry.key)) {
      this.#entries.delete(token);
      return undefined;
    }
    this.#entries.set(token, entry); // most recently used
    return entry.auth;
  }

  set(token: string, auth: AuthInfo, key: VerificationKey): void {
    this.#entries.set(token, { auth, key, exp: auth.claims.exp as number });
  }

  get size(): number {
    return this.#entries.size;
  }
}
