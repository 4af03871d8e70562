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
  prefix?: string | undefined;
  /**
   * Milliseconds from sending a command to its answer, after which the call rejects and the
   * request gets a 503. It bounds the whole wait, by a timer of this library's own: in the client's
   * queue while it reconnects (passed to node-redis as `timeout`, which then drops the command), and
   * in flight once written to the socket, where node-redis stops timing (a Redis that is stopped or
   * cut off by a partition keeps the connection open and never answers). The rate-limit-redis stores
   * of `redisRateLimitStores()` are bounded by it too. Default: 2000, below the issuer's
   * `storeTimeout` (5000), so that the failure is reported as Redis's.
   */
  commandTimeout?: number | undefined;
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

/** The rejection of a command that got no answer within `commandTimeout`. */
class NoAnswer extends Error {}

/**
 * Sends a command and rejects if it has no answer within `commandTimeout`, wherever it waits: our
 * own timer, since node-redis's `timeout` stops once the command is on the socket. A reply that
 * comes later is dropped (the race has handled its promise, so a late rejection is no unhandled
 * one). Other errors pass as they are: rate-limit-redis reads `NOSCRIPT` replies.
 */
export function send(config: RedisStoreConfig, args: string[]): Promise<unknown> {
  const { client, commandTimeout: ms } = config;
  const noAnswer = (): NoAnswer => new NoAnswer(`Redis ${String(args[0]).toUpperCase()} gave no answer within ${ms} ms`);
  let answer: Promise<unknown>;
  try {
    answer = Promise.resolve(client.sendCommand(args, { timeout: ms }));
  } catch (error) {
    return Promise.reject(error);
  }
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(noAnswer()), ms);
  });
  const timed = answer.catch((error: unknown) => {
    // node-redis's own timeout, for a command still queued: a TimeoutError, with no message since v5.
    throw error instanceof Error && error.constructor.name === 'TimeoutError' ? noAnswer() : error;
  });
  return Promise.race([timed, deadline]).finally(() => clearTimeout(timer));
}

/**
 * Sends a command for one of our stores, turning a failure into one line that says what failed,
 * for `onInternalError`.
 */
export async function command(config: RedisStoreConfig, args: string[]): Promise<unknown> {
  try {
    return await send(config, args);
  } catch (cause) {
    if (cause instanceof NoAnswer) throw cause;
    const reason = cause instanceof Error ? cause.message || cause.name : String(cause);
    throw new Error(`Redis ${args[0]} failed: ${reason}`, { cause });
  }
}

/** Seconds since the epoch as the whole milliseconds of `PXAT`, rounded up so an entry never expires early. */
export function epochMilliseconds(expiresAt: number, where: string): number {
  if (typeof expiresAt !== 'number' || !Number.isFinite(expiresAt)) throw new TypeError(`${where}: expiresAt must be seconds since the epoch`);
  return Math.ceil(expiresAt * 1000);
}
