// What the Redis stores need of a Redis client, and their shared options: one raw command at a
// time, each bounded by a timeout, so that a Redis that is down fails a request and never hangs it.

import { ConfigurationError } from '../core/errors.js';
import { checkOptions, positiveInteger } from '../core/options.js';

/**
 * A connected Redis client. node-redis (`redis`, v4 and later) fits as it is: the stores only call
 * `sendCommand`, so this package does not load `redis` itself and works with the version you have.
 * @example
 * import { createClient } from 'redis';
 * const client = await createClient({ url: process.env.REDIS_URL, disableOfflineQueue: true }).on('error', console.error).connect();
 * const revocations = new RedisRevocationStore(client);
 */
export interface RedisCommandSender {
  /** Sends one command (`['SET', key, value, …]`) and resolves with its reply. */
  sendCommand(args: string[], options?: { timeout?: number }): Promise<unknown>;
}

export interface RedisStoreOptions {
  /** Prepended to every key, to share one Redis between apps or environments. Default: `ecc:`. */
  prefix?: string;
  /**
   * Milliseconds a command may wait for Redis, queued while the client reconnects or in flight,
   * before it rejects (and the request gets a 503). Default: 2000, below the issuer's `storeTimeout`.
   */
  commandTimeout?: number;
}

export interface RedisStoreConfig {
  readonly client: RedisCommandSender;
  readonly prefix: string;
  readonly commandTimeout: number;
}

export const DEFAULT_REDIS_PREFIX = 'ecc:';

/** Checks the client and options once, at construction. */
export function resolveRedisOptions(client: unknown, options: RedisStoreOptions, where: string): RedisStoreConfig {
  if (typeof client !== 'object' || client === null || typeof (client as RedisCommandSender).sendCommand !== 'function') {
    throw new ConfigurationError(`${where} needs a connected node-redis client (createClient() from 'redis'), with sendCommand(args)`);
  }
  checkOptions(options, ['prefix', 'commandTimeout'], where);
  const prefix = options.prefix ?? DEFAULT_REDIS_PREFIX;
  if (typeof prefix !== 'string') throw new ConfigurationError(`${where}: \`prefix\` must be a string, such as 'ecc:'`);
  return {
    client: client as RedisCommandSender,
    prefix,
    commandTimeout: positiveInteger(options.commandTimeout ?? 2000, 'commandTimeout', 'milliseconds'),
  };
}

/** Sends a command with the configured timeout; errors pass as they are (rate-limit-redis reads NOSCRIPT replies). */
export function send(config: RedisStoreConfig, args: string[]): Promise<unknown> {
  return config.client.sendCommand(args, { timeout: config.commandTimeout });
}

/**
 * Sends a command for one of our stores, turning a failure into one line that says what failed,
 * for `onInternalError` (node-redis's timeout error has no message at all).
 */
export async function command(config: RedisStoreConfig, args: string[]): Promise<unknown> {
  try {
    return await send(config, args);
  } catch (cause) {
    const reason = cause instanceof Error && cause.message !== '' ? cause.message : `no answer within ${config.commandTimeout} ms`;
    throw new Error(`Redis ${args[0]} failed: ${reason}`, { cause });
  }
}

/** Seconds since the epoch as the whole milliseconds of `PXAT`, rounded up so an entry never expires early. */
export function epochMilliseconds(expiresAt: number, where: string): number {
  if (typeof expiresAt !== 'number' || !Number.isFinite(expiresAt)) throw new TypeError(`${where}: expiresAt must be seconds since the epoch`);
  return Math.ceil(expiresAt * 1000);
}
