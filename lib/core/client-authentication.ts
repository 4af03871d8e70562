// Client authentication at the token endpoint: RFC 6749 §2.3 and §3.2.1, RFC 7523 §2.2.

import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { AdmissionQueue, type Lane } from './admission.js';
import { compareSecret, compareWorkers } from './bcrypt.js';
import { BCRYPT, hashCost, hashSecret, resolveClient, type Client, type ClientAuthMethod } from './client.js';
import { assertedClientId, JWT_BEARER, verifyClientAssertion, type AssertionRules, type ClientKeys } from './client-assertion.js';
import { parseBasic } from './basic-auth.js';
import { BoundedMap } from './bounded-map.js';
import { invalidClient, OAuthError } from './errors.js';
import { storeCall } from './store-call.js';
import type { ClientStore } from './stores.js';

/** Credentials as presented, before they are checked. */
export type ClientCredentials =
  | { readonly method: 'client_secret_basic' | 'client_secret_post'; readonly clientId: string; readonly secret: string }
  | { readonly method: 'private_key_jwt'; readonly clientId: string; readonly assertion: string };

/** A client that proved who it is, and how. */
export interface AuthenticatedClient {
  readonly client: Client;
  /** Which of its secret hashes matched (an index, never the secret), for the audit trail. */
  readonly secretIndex: number | undefined;
  /** How it authenticated this time. */
  readonly method: ClientAuthMethod;
}

/** The parts of a token request that may carry credentials. */
export interface CredentialSources {
  /** The `Authorization` header, if any. */
  readonly authorization: string | undefined;
  /** Form parameters of the body (already checked for repeats). */
  readonly body: Readonly<Record<string, string>>;
  /** Names of the query string's parameters. */
  readonly queryNames: readonly string[];
}

/** The form parameters that carry client credentials (RFC 6749 §2.3.1, RFC 7521 §4.2). */
export const CREDENTIAL_PARAMS = ['client_id', 'client_secret', 'client_assertion', 'client_assertion_type'];
const TWO_METHODS = 'The request uses more than one client authentication method';

/**
 * Finds the one authentication method a request uses (RFC 6749 §2.3: never more than one).
 * Throws `invalid_request` for mixed methods or URL credentials, `invalid_client` when none fits.
 */
export function extractCredentials({ authorization, body, queryNames }: CredentialSources): ClientCredentials {
  if (queryNames.some((name) => CREDENTIAL_PARAMS.includes(name))) {
    // RFC 6749 §2.3.1: the parameters "MUST NOT be included in the request URI".
    throw new OAuthError('invalid_request', 400, 'Client credentials must not be sent in the URL');
  }
  if (body.client_assertion !== undefined || body.client_assertion_type !== undefined) {
    if (authorization !== undefined || body.client_secret !== undefined) throw new OAuthError('invalid_request', 400, TWO_METHODS);
    // RFC 7521 §4.2: an assertion of another type, or none, cannot authenticate the client.
    if (body.client_assertion_type !== JWT_BEARER || body.client_assertion === undefined) throw invalidClient();
    const clientId = assertedClientId(body.client_assertion);
    if (clientId === undefined || (body.client_id !== undefined && body.client_id !== clientId)) throw invalidClient();
    return { method: 'private_key_jwt', clientId, assertion: body.client_assertion };
  }
  if (authorization !== undefined) {
    const basic = parseBasic(authorization);
    if (body.client_secret !== undefined) throw new OAuthError('invalid_request', 400, TWO_METHODS);
    if (basic === undefined) throw invalidClient();
    // RFC 6749 §3.2.1 lets a client repeat its id in the body; it must be the same id.
    if (body.client_id !== undefined && body.client_id !== basic.clientId) {
      throw new OAuthError('invalid_request', 400, 'The client_id parameter does not match the Authorization header');
    }
    return { method: 'client_secret_basic', ...basic };
  }
  if (body.client_id !== undefined && body.client_secret !== undefined) {
    return { method: 'client_secret_post', clientId: body.client_id, secret: body.client_secret };
  }
  // No credentials, or a client_id alone: a public client, which §4.4 does not serve.
  throw invalidClient();
}

/** What the failure lock needs of a counter store: express-rate-limit's `Store` fits as it is. */
export interface AttemptCounter {
  get(key: string): Promise<CounterInfo | undefined> | CounterInfo | undefined;
  increment(key: string): Promise<CounterInfo> | CounterInfo;
  decrement(key: string): Promise<void> | void;
}

interface LockCounter {
  readonly counter: AttemptCounter;
  readonly key: string;
}

interface CounterInfo {
  readonly totalHits: number;
  readonly resetTime?: Date | undefined;
}

/** At most `limit` judged attempts per (address, client) in a window of the counter (RFC 6749 §2.3.1). */
export interface FailureLockRules {
  /** Its calls must answer within a deadline, or reject with the OAuthError to send (a 503). */
  readonly counter: AttemptCounter;
  /** Where ids the registry does not know are counted, if not in `counter`. */
  readonly unknownCounter?: AttemptCounter | undefined;
  readonly limit: number;
  /** The counter's window, for the `RateLimit-Policy` header. */
  readonly windowSeconds: number;
}

/** What the request adds to its credentials. */
export interface AuthenticationContext {
  /** The client's address (grouped, as rate limits see it): the failure lock and the queue count by it. */
  readonly address: string | undefined;
  /** Aborted when the client went away: a comparison still queued for it is dropped. */
  readonly signal?: AbortSignal | undefined;
}

/** A request's context while its secret is judged: whether a comparison has ended yet. */
type Judging = AuthenticationContext & { readonly attempt?: { compared: boolean } };

export interface ClientAuthenticatorOptions {
  readonly store: ClientStore;
  /** Milliseconds a store lookup may take before the request fails with a 503. */
  readonly storeTimeout: number;
  /** bcrypt cost of the stored hashes: unknown clients are compared against a dummy hash of this cost. */
  readonly hashCost: number;
  /** Compares a secret with a bcrypt hash; a seam for tests that count comparisons. */
  readonly compare?: ((secret: string, hash: string) => Promise<boolean>) | undefined;
  /** Where comparisons wait for a worker. Default: a queue as wide as the worker pool. */
  readonly admission?: AdmissionQueue | undefined;
  /** Told once per client whose hash cost differs from `hashCost`, which would let timing tell it apart. */
  readonly onCostMismatch?: ((clientId: string, cost: number) => void) | undefined;
  /** How private_key_jwt assertions are checked, and where clients' keys come from. */
  readonly assertions: AssertionRules;
  readonly clientKeys: ClientKeys;
  /** Remembers secrets bcrypt accepted, as keyed digests; off when undefined. */
  readonly secretCache?: SecretCacheRules | undefined;
  /** Counts judged attempts per (address, client) and refuses them past the limit; off when undefined. */
  readonly failureLock?: FailureLockRules | undefined;
}

/** Milliseconds: an entry lives `ttl` after its last use, and at most about `maxAge` (±10 %) after bcrypt accepted it. */
export interface SecretCacheRules {
  readonly ttl: number;
  readonly maxAge: number;
  readonly maxEntries: number;
}

const LOCKED = 'Too many failed authentications; retry later';
/** The cause of an `invalid_client` for a right secret sent with a method the client is not registered for. */
export const METHOD_NOT_REGISTERED = new Error('the client is not registered for this authentication method');
/** Milliseconds a record read past the store's cache is preferred to the cached one. */
const FRESH_FOR = 5000;

/**
 * Makes the function that checks credentials against the store. Every judged secret costs one
 * bcrypt comparison or more: an unknown client is compared against a dummy hash of the configured
 * cost, made once, here, so timing does not tell unknown clients from wrong secrets.
 *
 * The failure lock counts an attempt when its judgment starts and gives it back when it succeeds,
 * so concurrent guesses cannot outrun it, while a fleet presenting the right secret never uses it
 * up. What needs no new judgment is not counted: a secret the cache already accepted, or one that
 * joins a comparison of the same client and secret in flight.
 */
export function clientAuthenticator(options: ClientAuthenticatorOptions): (credentials: ClientCredentials, context?: AuthenticationContext, now?: number) => Promise<AuthenticatedClient> {
  const compare = options.compare ?? compareSecret;
  const admission = options.admission ?? new AdmissionQueue({ concurrency: compareWorkers, maxQueued: 32 * compareWorkers, maxWait: 5000, perAddress: 8 });
  const verifiedSecrets = options.secretCache === undefined ? undefined : new VerifiedSecrets(options.secretCache);
  const inFlight = new Map<string, Promise<{ client: Client; index: number } | undefined>>();
  /** Records read past a store's cache, preferred for FRESH_FOR ms: a rotated secret must not wait for the cache. */
  const freshReads = new BoundedMap<string, { readonly client: Client | undefined; readonly until: number }>(10_000);
  const freshLookups = new Map<string, Promise<Client | undefined>>();
  const dummyHash = hashSecret('no client has this secret', options.hashCost);
  const mismatched = new Set<string>();
  const lock = options.failureLock;

  /**
   * The counter of a request's (address, client id) pair. An unknown id has one of its own too, so
   * the lock's answers do not tell it from a registered one; its key holds a digest of the id, so a
   * made-up id of any length costs a key of fixed size.
   */
  function counterOf(client: Client | undefined, clientId: string, address = ''): LockCounter | undefined {
    if (lock === undefined) return undefined;
    if (client !== undefined) return { counter: lock.counter, key: `${address}|${client.id}` };
    return { counter: lock.unknownCounter ?? lock.counter, key: `${address}|?${createHash('sha256').update(clientId).digest('base64url').slice(0, 22)}` };
  }

  /** Refuses a locked pair before any work, the right secret included. */
  async function refuseLocked(pair: LockCounter | undefined): Promise<void> {
    if (lock === undefined || pair === undefined) return;
    const info = await pair.counter.get(pair.key);
    if (info !== undefined && info.totalHits >= lock.limit) throw locked(info);
  }

  /**
   * Counts the attempt as it starts; past the limit it is refused without a judgment. A failure
   * tells the client how many attempts it has left (draft-ietf-httpapi-ratelimit-headers).
   */
  async function judged<T>(pair: LockCounter | undefined, judge: () => Promise<T | undefined>, attempt: { compared: boolean } = { compared: false }): Promise<T | undefined> {
    if (lock === undefined || pair === undefined) return judge();
    const { counter, key } = pair;
    const info = await counter.increment(key);
    if (info.totalHits > lock.limit) throw locked(info);
    const headers = {
      RateLimit: `"failed-authentication"; r=${lock.limit - info.totalHits}; t=${secondsUntil(info)}`,
      'RateLimit-Policy': `"failed-authentication"; q=${lock.limit}; w=${lock.windowSeconds}`,
    };
    const giveBack = async (): Promise<void> => {
      await Promise.resolve(counter.decrement(key)).catch(() => undefined);
    };
    let result: T | undefined;
    try {
      result = await judge();
    } catch (error) {
      // Refused before any comparison ended (a full queue, a store down): not an attempt. Once one
      // hash was judged wrong, a later refusal still counts, or a 503 would tell "not that hash" for free.
      if (!attempt.compared) await giveBack();
      throw error;
    }
    if (result === undefined) throw invalidClient().withHeaders(headers);
    await giveBack();
    return result;
  }

  async function compareOne(secret: string, hash: string, lane: Lane, context: Judging): Promise<boolean> {
    const match = await admission.run({ lane, address: context.address, signal: context.signal }, () => compare(secret, hash));
    if (context.attempt !== undefined) context.attempt.compared = true;
    return match;
  }

  /** Compares against each live hash in turn; expired ones are skipped as if removed. */
  async function compareHashes(client: Client | undefined, secret: string, now: number, context: Judging, skip: ReadonlySet<string> = new Set()): Promise<number | undefined> {
    const live = client?.secrets.filter((entry) => (entry.expiresAt === undefined || entry.expiresAt > now) && !skip.has(entry.hash)) ?? [];
    if (client === undefined || live.length === 0) {
      if (skip.size === 0) await compareOne(secret, await dummyHash, client === undefined ? 'unknown' : 'known', context);
      return undefined;
    }
    for (const entry of live) {
      if (hashCost(entry.hash) !== options.hashCost && !mismatched.has(client.id)) {
        mismatched.add(client.id);
        options.onCostMismatch?.(client.id, hashCost(entry.hash));
      }
      // A secret longer than bcrypt reads would match on its prefix alone.
      if ((await compareOne(secret, entry.hash, 'known', context)) && Buffer.byteLength(secret) <= BCRYPT.maxBytes) return client.secrets.indexOf(entry);
    }
    return undefined;
  }

  /**
   * A secret that fails against a record that may be cached (a store's cache, another instance's
   * rotation) is checked once more against a fresh read, at most once per FRESH_FOR per client,
   * and only against hashes it was not compared with.
   */
  async function matchSecret(client: Client | undefined, secret: string, now: number, context: Judging): Promise<{ client: Client; index: number } | undefined> {
    const index = await compareHashes(client, secret, now, context);
    if (client === undefined) return undefined;
    if (index !== undefined) return { client, index };
    if (recentlyRead(client.id)) return undefined;
    const fresh = await freshLookup(client.id);
    if (fresh === undefined) return undefined;
    const freshIndex = await compareHashes(fresh, secret, now, context, new Set(client.secrets.map((entry) => entry.hash)));
    return freshIndex === undefined ? undefined : { client: fresh, index: freshIndex };
  }

  async function lookup(clientId: string, fresh = false): Promise<Client | undefined> {
    const record = await storeCall(() => options.store.findClient(clientId, fresh ? { fresh } : undefined), options.storeTimeout, 'The client registry is unavailable; try again later');
    try {
      return record === undefined ? undefined : resolveClient(record);
    } catch (cause) {
      throw new OAuthError('server_error', 500, 'The client registration is invalid', {}, { cause });
    }
  }

  /** One fresh read per client at a time, shared by the requests that need it meanwhile, then remembered for FRESH_FOR. */
  function freshLookup(clientId: string): Promise<Client | undefined> {
    let pending = freshLookups.get(clientId);
    if (pending === undefined) {
      pending = lookup(clientId, true)
        .then((fresh) => {
          freshReads.set(clientId, { client: fresh, until: Date.now() + FRESH_FOR });
          return fresh;
        })
        .finally(() => freshLookups.delete(clientId));
      freshLookups.set(clientId, pending);
    }
    return pending;
  }

  function recentlyRead(clientId: string): boolean {
    const entry = freshReads.get(clientId);
    if (entry !== undefined && entry.until <= Date.now()) freshReads.delete(clientId);
    return entry !== undefined && entry.until > Date.now();
  }

  return async function authenticateClient(credentials: ClientCredentials, context: AuthenticationContext = { address: undefined }, now = Date.now() / 1000): Promise<AuthenticatedClient> {
    let client = recentlyRead(credentials.clientId) ? freshReads.get(credentials.clientId)!.client : await lookup(credentials.clientId);
    if (client !== undefined && client.id !== credentials.clientId) client = undefined;
    const pair = counterOf(client, credentials.clientId, context.address);
    await refuseLocked(pair);
    if (credentials.method === 'private_key_jwt') {
      const verified = await judged(pair, async () => {
        if (client === undefined || !client.authMethods.includes('private_key_jwt')) return undefined;
        try {
          await verifyClientAssertion(credentials.assertion, client, options.clientKeys, options.assertions, now);
        } catch (error) {
          if (error instanceof OAuthError && error.error === 'invalid_client') return undefined;
          throw error;
        }
        return client;
      });
      if (verified === undefined) throw invalidClient();
      return { client: verified, secretIndex: undefined, method: credentials.method };
    }
    const cached = client === undefined ? undefined : verifiedSecrets?.match(client, credentials.secret, now);
    let matched: { client: Client; index: number } | undefined = cached === undefined || client === undefined ? undefined : { client, index: cached };
    if (matched === undefined) {
      // Concurrent requests of one client with the same secret share one judgment. The key holds the
      // secret only as long as the request itself does.
      const key = `${credentials.clientId.length}:${credentials.clientId}${credentials.secret}`;
      let flight = inFlight.get(key);
      if (flight === undefined) {
        const attempt = { compared: false };
        flight = judged(pair, async () => {
          const found = await matchSecret(client, credentials.secret, now, { ...context, attempt });
          if (found !== undefined) verifiedSecrets?.remember(found.client, credentials.secret, found.index, now);
          return found;
        }, attempt).finally(() => inFlight.delete(key));
        inFlight.set(key, flight);
      }
      matched = await flight;
    }
    if (matched === undefined) throw invalidClient();
    // Checked after the comparison, so a wrong method costs as much as a wrong secret. The secret
    // was right, so the attempt is not counted; the audit event says why it was refused.
    if (!matched.client.authMethods.includes(credentials.method)) throw invalidClient(METHOD_NOT_REGISTERED);
    return { client: matched.client, secretIndex: matched.index, method: credentials.method };
  };
}

function secondsUntil(info: CounterInfo): number {
  return Math.max(1, Math.ceil(((info.resetTime?.getTime() ?? Date.now() + 60_000) - Date.now()) / 1000));
}

function locked(info: CounterInfo): OAuthError {
  const seconds = secondsUntil(info);
  return new OAuthError('temporarily_unavailable', 429, LOCKED, { 'Retry-After': String(seconds), RateLimit: `"failed-authentication"; r=0; t=${seconds}` });
}

/**
 * Secrets bcrypt already accepted, kept as HMAC digests under a key made at start-up, so that a
 * client repeating its right secret costs a hash instead of a bcrypt comparison. Only the exact
 * secret, for the same client and the same stored hash (not expired), hits: a wrong secret misses
 * and pays the full bcrypt cost, as an unknown client does; changing or rotating the hash forgets
 * the entry. Each use extends it by `ttl`, up to a jittered `maxAge`, so that clients that started
 * together do not all expire together. The digests cannot be turned back into secrets.
 */
class VerifiedSecrets {
  readonly #key = randomBytes(32);
  readonly #entries: BoundedMap<string, { readonly digest: Buffer; readonly index: number; until: number; readonly deadline: number }>;

  constructor(private readonly rules: SecretCacheRules) {
    this.#entries = new BoundedMap(rules.maxEntries);
  }

  match(client: Client, secret: string, now: number): number | undefined {
    const entry = this.#entries.get(client.id);
    if (entry === undefined) return undefined;
    const stored = client.secrets[entry.index];
    const live = stored !== undefined && (stored.expiresAt === undefined || stored.expiresAt > now);
    const nowMs = now * 1000;
    if (!live || nowMs > entry.until) {
      this.#entries.delete(client.id);
      return undefined;
    }
    if (!timingSafeEqual(entry.digest, this.#digest(client.id, stored.hash, secret))) return undefined;
    entry.until = Math.min(entry.deadline, nowMs + this.rules.ttl);
    return entry.index;
  }

  remember(client: Client, secret: string, index: number, now: number): void {
    const stored = client.secrets[index];
    if (stored === undefined) return;
    const nowMs = now * 1000;
    const deadline = nowMs + this.rules.maxAge * (0.9 + 0.2 * Math.random());
    this.#entries.set(client.id, { digest: this.#digest(client.id, stored.hash, secret), index, until: Math.min(deadline, nowMs + this.rules.ttl), deadline });
  }

  #digest(clientId: string, hash: string, secret: string): Buffer {
    // Length-prefixed parts, so no two (id, hash, secret) triples hash alike.
    return createHmac('sha256', this.#key).update(`${clientId.length}:${clientId}${hash.length}:${hash}`).update(secret).digest();
  }
}
