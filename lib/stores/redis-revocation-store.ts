// Revoked tokens in Redis, shared by every instance of an app (RFC 7009 §2.1): one key per `jti`
// that Redis itself expires with the token.

import type { RevocationStore } from '../core/stores.js';
import { command, epochMilliseconds, resolveRedisOptions, send, type RedisCommandSender, type RedisStoreConfig, type RedisStoreOptions } from './redis-commands.js';

/**
 * Sets the key unless it exists, else moves its expiry later (never earlier): one atomic step, so
 * concurrent revocations of one token keep the latest `expiresAt`, as the memory store does.
 * `PEXPIREAT … GT` needs Redis 7.0.
 */
const REVOKE = [
  "if redis.call('SET', KEYS[1], '1', 'NX', 'PXAT', ARGV[1]) then return 1 end",
  "redis.call('PEXPIREAT', KEYS[1], ARGV[1], 'GT')",
  'return 0',
].join('\n');

/** The warning for a Redis that loses its keys when it restarts, emitted once per store. */
const NOT_DURABLE_WARNING =
  'RedisRevocationStore: this Redis has no append-only file (aof_enabled:0), so the revocations it holds are lost when it restarts, ' +
  'and revoked tokens are accepted again until they expire (an RDB snapshot keeps only those made before it). Enable AOF: appendonly yes';

/**
 * A `RevocationStore` in Redis, for several instances behind a load balancer: a token revoked
 * through one instance is refused by all of them at once. Keys are `<prefix>revoked:<jti>`, each
 * expiring with its token. A Redis that is down or slower than `commandTimeout` makes calls reject,
 * which the issuer and the guards answer with a 503 (fail closed): never a silent accept.
 *
 * A revocation must outlive a restart of Redis, or the token works again: run Redis with AOF
 * (`appendonly yes`). At its first use the store asks `INFO persistence`, without waiting for the
 * answer, and if AOF is off emits one warning with the code `ECC_REDIS_NOT_DURABLE`
 * (`process.emitWarning`); if Redis does not answer or refuses `INFO` (an ACL), it says nothing.
 * @example
 * import { createClient } from 'redis';
 * import { RedisRevocationStore } from 'express-client-credentials/redis';
 * const redis = await createClient({ url: process.env.REDIS_URL, disableOfflineQueue: true }).on('error', console.error).connect();
 * const tokens = issuer({ clients, signingKey, revocations: new RedisRevocationStore(redis, { prefix: 'myapp:' }) });
 */
export class RedisRevocationStore implements RevocationStore {
  readonly #config: RedisStoreConfig;
  #checkedPersistence = false;

  constructor(client: RedisCommandSender, options: RedisStoreOptions = {}) {
    this.#config = resolveRedisOptions(client, options, 'RedisRevocationStore');
  }

  async revoke(jti: string, expiresAt: number): Promise<void> {
    this.#checkPersistence();
    const at = epochMilliseconds(expiresAt, 'RedisRevocationStore.revoke()');
    // Already expired: the token is refused for that, and Redis would drop the key at once anyway.
    if (at <= Date.now()) return;
    await command(this.#config, ['EVAL', REVOKE, '1', this.#key(jti), String(at)]);
  }

  async isRevoked(jti: string): Promise<boolean> {
    this.#checkPersistence();
    // Redis never returns a key past its expiry, even before it evicts it.
    return (await command(this.#config, ['EXISTS', this.#key(jti)])) === 1;
  }

  /**
   * Once, at the first call rather than in the constructor, when the client is surely connected.
   * Not awaited and never thrown: the request in hand does not wait for it, nor fail with it. Only
   * AOF counts: RDB snapshots (`save`) lose what was revoked since the last one, and a restart
   * without AOF is exactly when a revoked token would come back.
   */
  #checkPersistence(): void {
    if (this.#checkedPersistence) return;
    this.#checkedPersistence = true;
    send(this.#config, ['INFO', 'persistence']).then(
      (reply) => {
        const text = typeof reply === 'string' ? reply : Buffer.isBuffer(reply) ? reply.toString() : '';
        if (/^aof_enabled:0\r?$/m.test(text)) process.emitWarning(NOT_DURABLE_WARNING, { code: 'ECC_REDIS_NOT_DURABLE' });
      },
      () => undefined,
    );
  }

  #key(jti: string): string {
    return `${this.#config.prefix}revoked:${jti}`;
  }
}
