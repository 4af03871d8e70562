// Client authentication at the token endpoint: RFC 6749 §2.3 and §3.2.1, RFC 7523 §2.2.

import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import bcrypt from 'bcryptjs';
import { compareSecret } from './bcrypt.js';
import { hashCost, resolveClient, type Client } from './client.js';
import { assertedClientId, JWT_BEARER, verifyClientAssertion, type AssertionRules, type ClientKeys } from './client-assertion.js';
import { invalidClient, OAuthError } from './errors.js';
import { storeCall } from './store-call.js';
import type { ClientStore } from '../stores/client-store.js';

/** Credentials as presented, before they are checked. */
export type ClientCredentials =
  | { readonly method: 'client_secret_basic' | 'client_secret_post'; readonly clientId: string; readonly secret: string }
  | { readonly method: 'private_key_jwt'; readonly clientId: string; readonly assertion: string };

/** A client that proved who it is, and how. */
export interface AuthenticatedClient {
  readonly client: Client;
  /** Which of its secret hashes matched (an index, never the secret), for the audit trail. */
  readonly secretIndex: number | undefined;
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

const CREDENTIAL_PARAMS = ['client_id', 'client_secret', 'client_assertion', 'client_assertion_type'];
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

/**
 * Decodes `Authorization: Basic` credentials. RFC 6749 §2.3.1 has clients form-urlencode the id
 * and the secret before base64 (Appendix B), so both are form-decoded here.
 */
export function parseBasic(header: string): { clientId: string; secret: string } | undefined {
  const match = /^basic +([A-Za-z0-9+/]+={0,2}) *$/i.exec(header);
  if (match === null) return undefined;
  const decoded = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  let pair: string;
  try {
    pair = decoded.decode(Buffer.from(match[1] as string, 'base64'));
  } catch {
    return undefined;
  }
  const colon = pair.indexOf(':');
  if (colon < 0) return undefined;
  const clientId = formDecode(pair.slice(0, colon));
  const secret = formDecode(pair.slice(colon + 1));
  if (clientId === undefined || secret === undefined || clientId === '' || secret === '') return undefined;
  return { clientId, secret };
}

/** The encoding RFC 6749 §2.3.1 asks of clients, for tests and our own token client. */
export function formatBasic(clientId: string, secret: string): string {
  return `Basic ${Buffer.from(`${formEncode(clientId)}:${formEncode(secret)}`).toString('base64')}`;
}

function formEncode(value: string): string {
  return new URLSearchParams([['', value]]).toString().slice(1);
}

function formDecode(value: string): string | undefined {
  try {
    return decodeURIComponent(value.replace(/\+/g, ' '));
  } catch {
    return undefined;
  }
}

export interface ClientAuthenticatorOptions {
  readonly store: ClientStore;
  /** Milliseconds a store lookup may take before the request fails with a 503. */
  readonly storeTimeout: number;
  /** bcrypt cost of the stored hashes: unknown clients are compared against a dummy hash of this cost. */
  readonly hashCost: number;
  /** Compares a secret with a bcrypt hash; a seam for tests that count comparisons. */
  readonly compare?: (secret: string, hash: string) => Promise<boolean>;
  /** Told once per client whose hash cost differs from `hashCost`, which would let timing tell it apart. */
  readonly onCostMismatch?: (clientId: string, cost: number) => void;
  /** How private_key_jwt assertions are checked, and where clients' keys come from. */
  readonly assertions: AssertionRules;
  readonly clientKeys: ClientKeys;
  /** Remembers secrets bcrypt accepted, as keyed digests, for `ttl` ms; off when undefined. */
  readonly secretCache?: { readonly ttl: number; readonly maxEntries: number } | undefined;
}

/**
 * Makes the function that checks credentials against the store. Every failed secret costs one
 * bcrypt comparison or more: an unknown client is compared against a dummy hash of the configured
 * cost, made once, here, so timing does not tell unknown clients from wrong secrets.
 */
export function clientAuthenticator(options: ClientAuthenticatorOptions): (credentials: ClientCredentials, now?: number) => Promise<AuthenticatedClient> {
  const compare = options.compare ?? compareSecret;
  const verifiedSecrets = options.secretCache === undefined ? undefined : new VerifiedSecrets(options.secretCache.ttl, options.secretCache.maxEntries);
  const dummyHash = bcrypt.hash('no client has this secret', options.hashCost);
  const mismatched = new Set<string>();

  /** Compares against each live hash in turn; expired ones are skipped as if removed. */
  async function matchSecret(client: Client | undefined, secret: string, now: number): Promise<number | undefined> {
    const cached = client === undefined ? undefined : verifiedSecrets?.match(client, secret, now);
    if (cached !== undefined) return cached;
    const live = client?.secrets.filter((entry) => entry.expiresAt === undefined || entry.expiresAt > now) ?? [];
    if (live.length === 0) {
      await compare(secret, await dummyHash);
      return undefined;
    }
    for (const entry of live) {
      if (hashCost(entry.hash) !== options.hashCost && client !== undefined && !mismatched.has(client.id)) {
        mismatched.add(client.id);
        options.onCostMismatch?.(client.id, hashCost(entry.hash));
      }
      // bcrypt reads 72 bytes at most: a longer secret would match on its prefix alone.
      if ((await compare(secret, entry.hash)) && Buffer.byteLength(secret) <= 72 && client !== undefined) {
        const index = client.secrets.indexOf(entry);
        verifiedSecrets?.remember(client, secret, index, now);
        return index;
      }
    }
    return undefined;
  }

  return async function authenticateClient(credentials: ClientCredentials, now = Date.now() / 1000): Promise<AuthenticatedClient> {
    const record = await storeCall(() => options.store.findClient(credentials.clientId), options.storeTimeout, 'The client registry is unavailable; try again later');
    let client: Client | undefined;
    try {
      client = record === undefined ? undefined : resolveClient(record);
    } catch (cause) {
      throw new OAuthError('server_error', 500, 'The client registration is invalid', {}, { cause });
    }
    if (credentials.method === 'private_key_jwt') {
      if (client === undefined || client.id !== credentials.clientId || client.authMethod !== 'private_key_jwt') throw invalidClient();
      await verifyClientAssertion(credentials.assertion, client, options.clientKeys, options.assertions, now);
      return { client, secretIndex: undefined };
    }
    const secretIndex = await matchSecret(client, credentials.secret, now);
    // Checked after the comparison, so a wrong method costs as much as a wrong secret.
    if (client === undefined || secretIndex === undefined || client.id !== credentials.clientId || client.authMethod !== credentials.method) throw invalidClient();
    return { client, secretIndex };
  };
}

/**
 * Secrets bcrypt already accepted, kept as HMAC digests under a key made at start-up, so that a
 * client repeating its right secret costs a hash instead of a bcrypt comparison. Only the exact
 * secret, for the same client and the same stored hash (not expired), hits: a wrong secret misses
 * and pays the full bcrypt cost, as an unknown client does; changing or rotating the hash, or
 * waiting `ttl`, forgets the entry. The digests cannot be turned back into secrets.
 */
class VerifiedSecrets {
  readonly #key = randomBytes(32);
  readonly #entries = new Map<string, { readonly digest: Buffer; readonly index: number; readonly until: number }>();

  constructor(
    private readonly ttlMs: number,
    private readonly maxEntries: number,
  ) {}

  match(client: Client, secret: string, now: number): number | undefined {
    const entry = this.#entries.get(client.id);
    if (entry === undefined) return undefined;
    const stored = client.secrets[entry.index];
    const live = stored !== undefined && (stored.expiresAt === undefined || stored.expiresAt > now);
    if (!live || now * 1000 > entry.until) {
      this.#entries.delete(client.id);
      return undefined;
    }
    return timingSafeEqual(entry.digest, this.#digest(client.id, stored.hash, secret)) ? entry.index : undefined;
  }

  remember(client: Client, secret: string, index: number, now: number): void {
    const stored = client.secrets[index];
    if (stored === undefined) return;
    this.#entries.delete(client.id);
    if (this.#entries.size >= this.maxEntries) this.#entries.delete(this.#entries.keys().next().value as string);
    this.#entries.set(client.id, { digest: this.#digest(client.id, stored.hash, secret), index, until: now * 1000 + this.ttlMs });
  }

  #digest(clientId: string, hash: string, secret: string): Buffer {
    // Length-prefixed parts, so no two (id, hash, secret) triples hash alike.
    return createHmac('sha256', this.#key).update(`${clientId.length}:${clientId}${hash.length}:${hash}`).update(secret).digest();
  }
}
