// The issuer's two limits (RFC 6749 §2.3.1: "MUST protect against brute force attacks"): a cap
// per address on each endpoint, and the failure lock per (address, client). Their counters live in
// a store that may be remote, so every call to it has a deadline and its failures are reported
// once per interval, never a stack per request.

import type { Request, RequestHandler } from 'express';
import { rateLimit, ipKeyGenerator, type Options as RateLimitOptions, type Store } from 'express-rate-limit';
import { unavailable } from '../core/admission.js';
import type { AttemptCounter, FailureLockRules } from '../core/client-authentication.js';
import { ConfigurationError } from '../core/errors.js';
import { checkOptions, definedOptions, positiveInteger } from '../core/options.js';
import { storeCall } from '../core/store-call.js';
import { MemoryCounterStore } from '../stores/memory-counter-store.js';
import type { Auditor } from '../core/audit.js';
import { OAuthError } from '../core/errors.js';
import { exchangeOf, sendError } from './exchange.js';

/** express-rate-limit's options, each of which may be left out or set to undefined (absent either way). */
export type LimiterOptions = { [K in keyof RateLimitOptions]?: RateLimitOptions[K] | undefined };

type Report = (kind: string, message: string) => void;

/** Counters an in-memory limiter holds at most: each is about 100 bytes. */
export const MAX_COUNTERS = 100_000;

const TOO_MANY = new OAuthError('temporarily_unavailable', 429, 'Too many requests; retry later');

/** The client's address as the limits count it: IPv6 grouped by /56, as express-rate-limit does. */
export function clientAddress(req: Request): string {
  return ipKeyGenerator(req.ip ?? '');
}

/**
 * The per-address cap: one limiter for all endpoints, with a budget per endpoint, so that a
 * resource server introspecting on every call cannot use up its own token requests. A flood cap
 * fails open when its store is down or slow (`passOnStoreError`, default true): the failure lock,
 * which guards secrets, fails closed.
 */
export function perAddressLimiter(options: LimiterOptions, audit: Auditor, storeTimeout: number, report: Report): RequestHandler {
  const { passOnStoreError = true, store, ...rest } = definedOptions(options);
  return rateLimit({
    windowMs: 60_000,
    limit: 300,
    identifier: 'per-address',
    keyGenerator: (req) => `${exchangeOf(req)?.endpoint}|${clientAddress(req)}`,
    standardHeaders: 'draft-8',
    legacyHeaders: false,
    handler: (req, res) => {
      const exchange = exchangeOf(req);
      if (exchange !== undefined) audit(exchange, { type: 'rate_limited', limiter: 'per-address', clientId: undefined });
      sendError(res, TOO_MANY);
    },
    ...rest,
    // Our wrapper decides what a store failure means; express-rate-limit would log a stack each time.
    passOnStoreError: false,
    store: boundedStore(counterStore(store, 'perAddress'), storeTimeout, report, 'per-address', passOnStoreError),
  });
}

/** The failure lock's rules, from `rateLimit.failedAuthentication`: 10 per 15 minutes by default. */
export function failureLockRules(options: LimiterOptions, storeTimeout: number, report: Report): FailureLockRules {
  checkOptions(options, ['windowMs', 'limit', 'store'], '`rateLimit.failedAuthentication`');
  const windowMs = positiveInteger(options.windowMs ?? 15 * 60_000, 'rateLimit.failedAuthentication.windowMs', 'milliseconds');
  const limit = positiveInteger(options.limit ?? 10, 'rateLimit.failedAuthentication.limit', 'attempts');
  const store = counterStore(options.store, 'failedAuthentication');
  if (typeof store.get !== 'function') throw new ConfigurationError('`rateLimit.failedAuthentication.store` must implement get(key) to check locked clients');
  // In memory, unknown ids count apart, in a store that forgets its oldest when full: nothing is
  // guarded behind them, and made-up ids must not fill the store that guards registered clients.
  const unknown = options.store === undefined ? new MemoryCounterStore(MAX_COUNTERS, { forgetOldest: true }) : store;
  const counters = [...new Set([store, unknown])].map((each) => {
    // A store's init() takes the limiter's options; the lock is not an express-rate-limit limiter, so it passes its own.
    void Promise.resolve(each.init?.({ windowMs, limit } as RateLimitOptions)).catch((error: unknown) => report('failed-authentication', `the failure lock's store failed to start: ${describe(error)}`));
    return boundedStore(each, storeTimeout, report, 'failed-authentication', false);
  });
  return { counter: counters[0]!, unknownCounter: counters.at(-1)!, limit, windowSeconds: Math.ceil(windowMs / 1000) };
}

/** The store given, which must count with increment() and decrement(), or a bounded one in memory. */
function counterStore(store: LimiterOptions['store'], limiter: string): Store {
  if (store === undefined) return new MemoryCounterStore(MAX_COUNTERS);
  if (typeof (store as Store).increment !== 'function' || typeof (store as Store).decrement !== 'function') {
    throw new ConfigurationError(`\`rateLimit.${limiter}.store\` must be an express-rate-limit store with increment(key) and decrement(key)`);
  }
  return store as Store;
}

/**
 * A store whose every call answers within `storeTimeout`. A failure is reported (once per interval)
 * and then either lets the request pass, as if it were its first (`passOnError`), or becomes a 503.
 */
function boundedStore(store: Store, storeTimeout: number, report: Report, name: string, passOnError: boolean): Store & AttemptCounter {
  const guarded = <T>(call: () => Promise<T> | T, pass: T): Promise<T> =>
    storeCall(call, storeTimeout, 'The rate limit store is unavailable; try again later').catch((error: OAuthError) => {
      report(`store:${name}`, `the ${name} rate-limit store failed${passOnError ? ', requests pass unlimited' : ', requests get 503'}: ${describe(error.cause)}`);
      if (passOnError) return pass;
      throw unavailable(error.message, 5, error.cause);
    });
  let windowMs = 60_000;
  return {
    init: (options) => ((windowMs = options.windowMs), store.init?.(options)),
    get: (key) => guarded(() => store.get?.(key), undefined),
    // Passing: counted as a first request, so express-rate-limit's checks of the store's answer hold.
    increment: (key) => guarded(() => store.increment(key), { totalHits: 1, resetTime: new Date(Date.now() + windowMs) }),
    decrement: (key) => guarded(() => store.decrement(key), undefined),
    resetKey: (key) => guarded(() => store.resetKey(key), undefined),
    ...(store.prefix === undefined ? {} : { prefix: store.prefix }),
    ...(store.localKeys === undefined ? {} : { localKeys: store.localKeys }),
  };
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message || error.name : String(error);
}
