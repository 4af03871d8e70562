// Where used client-assertion `jti`s are remembered, so an assertion is accepted once
// (RFC 7523 §3 item 7): a small async interface.

import { ConfigurationError } from '../core/errors.js';

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
