// The issuer's two rate limiters (RFC 6749 §2.3.1 brute-force protection) counted in Redis through
// rate-limit-redis, so that N instances enforce one total instead of N times the limit.

import { createHash } from 'node:crypto';
import type { Store } from 'express-rate-limit';
import { ConfigurationError } from '../core/errors.js';
import { resolveRedisOptions, send, type RedisCommandSender, type RedisStoreConfig, type RedisStoreOptions } from './redis-commands.js';

/** One store per limiter of one `issuer()`: express-rate-limit refuses a store shared by two limiters. */
export interface RedisRateLimitStores {
  /** For `rateLimit.failedAuthentication.store`; implements `get(key)`, which the failure lock needs. */
  readonly failedAuthentication: Store;
  /** For `rateLimit.perAddress.store`. */
  readonly perAddress: Store;
}

/**
 * Makes rate-limit-redis stores for the issuer's limiters, with keys `<prefix>rl:failed-authentication:…`
 * and `<prefix>rl:per-address:…`. Call it once per `issuer()`, with the same prefix on every
 * instance so that they count together. Needs the `rate-limit-redis` package. express-rate-limit
 * waits for its store without a deadline of its own, so each command is bounded by `commandTimeout`
 * here: a stalled Redis fails the store call (the failure lock answers 503, a per-address limit
 * with `passOnStoreError` lets the request through) instead of hanging the request.
 * @example
 * import { redisRateLimitStores } from 'express-client-credentials/redis';
 * const stores = redisRateLimitStores(redis, { prefix: 'myapp:' });
 * const tokens = issuer({
 *   clients, signingKey,
 *   rateLimit: { failedAuthentication: { store: stores.failedAuthentication }, perAddress: { store: stores.perAddress, passOnStoreError: true } },
 * });
 */
export function redisRateLimitStores(client: RedisCommandSender, options: RedisStoreOptions = {}): RedisRateLimitStores {
  const config = resolveRedisOptions(client, options, 'redisRateLimitStores()');
  const { RedisStore } = loadRateLimitRedis();
  const sendCommand = (...args: string[]): Promise<never> => sendOrLoad(config, args) as Promise<never>;
  return {
    failedAuthentication: new RedisStore({ sendCommand, prefix: `${config.prefix}rl:failed-authentication:` }),
    perAddress: new RedisStore({ sendCommand, prefix: `${config.prefix}rl:per-address:` }),
  };
}

/**
 * rate-limit-redis loads its Lua scripts once, when the limiter is made, and keeps the promise of
 * their SHA1: if Redis is down at that moment, the promise stays rejected and the limiter fails
 * for good. A script's SHA1 is the hash of its text, so a failed `SCRIPT LOAD` answers it anyway;
 * once Redis is back, `EVALSHA` gets `NOSCRIPT` and rate-limit-redis loads the script again. A
 * `SCRIPT LOAD` that gets no answer within `commandTimeout` is answered so too.
 */
async function sendOrLoad(config: RedisStoreConfig, args: string[]): Promise<unknown> {
  try {
    return await send(config, args);
  } catch (error) {
    const [command, subcommand, script] = args;
    if (command?.toUpperCase() !== 'SCRIPT' || subcommand?.toUpperCase() !== 'LOAD' || script === undefined) throw error;
    return createHash('sha1').update(script).digest('hex');
  }
}

function loadRateLimitRedis(): typeof import('rate-limit-redis') {
  try {
    // Loaded here, not at the top: the revocation store and the replay cache work without it.
    return require('rate-limit-redis') as typeof import('rate-limit-redis');
  } catch (cause) {
    throw new ConfigurationError('redisRateLimitStores() needs the rate-limit-redis package: npm install rate-limit-redis', { cause });
  }
}
