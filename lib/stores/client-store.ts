// Where client registrations live: a small async interface anyone can implement over a database.

import { ConfigurationError } from '../core/errors.js';
import type { ClientRecord } from '../core/client.js';

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
