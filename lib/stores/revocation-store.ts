// Where revoked tokens are remembered until they expire (RFC 7009 §2.1): a small async interface.

import { ConfigurationError } from '../core/errors.js';

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
