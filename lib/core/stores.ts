// The interfaces stores implement, beside the core that uses them: client registrations, revoked
// tokens and used assertion ids. Small and async, so that anyone can put them over a database;
// lib/stores/ holds ours, and depends on this file, never the other way round.

import type { ClientRecord } from './client.js';
import { ConfigurationError } from './errors.js';

// Client registrations ---------------------------------------------------------------------------

/**
 * Looks up client registrations. The store returns the bcrypt hash; the library compares secrets.
 * @example
 * const store: ClientStore = {
 *   async findClient(clientId) {
 *     const row = await db.query('select * from oauth_clients where client_id = $1', [clientId]);
 *     return row ?? undefined;
 *   },
 * };
 */
export interface ClientStore {
  /**
   * Resolves the client, or `undefined` if unknown. A rejection is answered with a 503. With
   * `fresh`, a store that caches records reads past its cache: the issuer asks so, at most once per
   * 5 s per client, when a secret fails against what may be an old copy (a secret just rotated).
   */
  findClient(clientId: string, options?: { readonly fresh?: boolean }): Promise<ClientRecord | undefined>;
}

/** Checks a passed store's shape once, at construction. */
export function assertClientStore(store: unknown, option: string): asserts store is ClientStore {
  if (typeof store !== 'object' || store === null || typeof (store as ClientStore).findClient !== 'function') {
    throw new ConfigurationError(`\`${option}\` must be a list of client records or a ClientStore with findClient(clientId)`);
  }
}

// Revoked tokens (RFC 7009 §2.1), remembered until they expire ----------------------------------------

/**
 * Remembers revoked access tokens by `jti`, each until its `exp`; after that the token is
 * refused for having expired, so the entry can go.
 * @example
 * const revocations = new MemoryRevocationStore();
 * app.use('/token', issuer({ clients, revocations }));
 */
export interface RevocationStore {
  /** Marks a token revoked until `expiresAt` (seconds since the epoch, the token's `exp`). */
  revoke(jti: string, expiresAt: number): Promise<void>;
  /** True while the token is revoked. */
  isRevoked(jti: string): Promise<boolean>;
}

export function assertRevocationStore(store: unknown, option: string): asserts store is RevocationStore {
  const candidate = store as Partial<RevocationStore> | null;
  if (typeof candidate !== 'object' || candidate === null || typeof candidate.revoke !== 'function' || typeof candidate.isRevoked !== 'function') {
    throw new ConfigurationError(`\`${option}\` must be a RevocationStore with revoke(jti, expiresAt) and isRevoked(jti)`);
  }
}

// Used client-assertion ids (RFC 7523 §3 item 7), so that an assertion is accepted once --------------

/**
 * Remembers single-use identifiers until they expire.
 * @example const replays = new MemoryReplayCache(); issuer({ clients, replayCache: replays });
 */
export interface ReplayCache {
  /**
   * Records `key` as used until `expiresAt` (seconds since the epoch). Resolves `true` the first
   * time, `false` when the key is already recorded and not expired: atomically, so that of two
   * concurrent calls with one key exactly one gets `true`. Rejects when it cannot record the key
   * (full, unreachable): the request then fails with a 503, never as a replay.
   */
  markUsed(key: string, expiresAt: number): Promise<boolean>;
}

export function assertReplayCache(cache: unknown, option: string): asserts cache is ReplayCache {
  if (typeof cache !== 'object' || cache === null || typeof (cache as ReplayCache).markUsed !== 'function') {
    throw new ConfigurationError(`\`${option}\` must be a ReplayCache with markUsed(key, expiresAt)`);
  }
}
