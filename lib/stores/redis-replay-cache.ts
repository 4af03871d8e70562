// Used client-assertion ids in Redis, shared by every instance of an app, so that an assertion is
// accepted once across all of them (RFC 7523 §3 item 7): one `SET NX` per id, expiring with it.

import type { ReplayCache } from '../core/stores.js';
import { command, epochMilliseconds, resolveRedisOptions, type RedisCommandSender, type RedisStoreConfig, type RedisStoreOptions } from './redis-commands.js';

/**
 * A `ReplayCache` in Redis. `SET <prefix>jti:<key> 1 NX PXAT <expiresAt>` is atomic, so of two
 * instances that see one assertion at once, exactly one accepts it. A Redis that is down or slower
 * than `commandTimeout` makes calls reject, and the request fails with a 503.
 * @example
 * import { RedisReplayCache } from 'express-client-credentials/redis';
 * const replayCache = new RedisReplayCache(redis, { prefix: 'myapp:' });
 */
export class RedisReplayCache implements ReplayCache {
  readonly #config: RedisStoreConfig;

  constructor(client: RedisCommandSender, options: RedisStoreOptions = {}) {
    this.#config = resolveRedisOptions(client, options, 'RedisReplayCache');
  }

  async markUsed(key: string, expiresAt: number): Promise<boolean> {
    const at = epochMilliseconds(expiresAt, 'RedisReplayCache.markUsed()');
    // Nothing to remember past its expiry: the memory cache forgets such a key at once too.
    if (at <= Date.now()) return true;
    return (await command(this.#config, ['SET', `${this.#config.prefix}jti:${key}`, '1', 'NX', 'PXAT', String(at)])) === 'OK';
  }
}
