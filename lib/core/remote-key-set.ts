// The verification keys of an authorization server in another process: its JWKS (RFC 7517 §5), found directly or through its metadata (RFC 8414 §3).

import { BodyTooLarge, readBounded } from './bounded-body.js';
import { ConfigurationError } from './errors.js';
import { metadataPath } from './metadata.js';
import { absoluteUrl, checkOptions as checkOptionNames, httpUrl } from './options.js';
import { resolveVerificationKey, type Jwk, type VerificationKey } from './signing-keys.js';

/** Where the keys are and how often to fetch them. Pass exactly one of `jwksUri` and `discoverIssuer`. */
export interface RemoteKeySetOptions {
  /** Absolute http(s) URL of the JWKS (RFC 7517 §5). */
  readonly jwksUri?: string | undefined;
  /**
   * Issuer identifier to discover the JWKS from: its RFC 8414 metadata is fetched once, its `issuer`
   * must equal this string exactly (RFC 8414 §3.3), and its `jwks_uri` is used.
   */
  readonly discoverIssuer?: string | undefined;
  /** Milliseconds: at most one refetch per cooldown once keys are loaded, so forged `kid`s cause no refetch storm. */
  readonly cooldown: number;
  /** Milliseconds: an older set is refreshed on next use; if that refresh fails, the old set keeps serving. */
  readonly maxAge: number;
  /** Milliseconds: each fetch (metadata, JWKS) slower than this is abandoned. */
  readonly timeout: number;
}

/**
 * Thrown by {@link RemoteKeySet.ensure} when there are no keys at all to serve. The message is a
 * constant (no URL, no response text), so it is safe to log or answer with; `cause` says what failed.
 */
export class KeySetUnavailableError extends Error {
  override readonly name = 'KeySetUnavailableError';

  constructor(options?: ErrorOptions) {
    super('The signing keys of the authorization server are unavailable', options);
  }
}

const MAX_BYTES = 512 * 1024;
const MAX_KEYS = 100;
// With nothing to serve every request fails anyway, so retry sooner than `cooldown`, but not on every request.
const EMPTY_RETRY_MS = 1000;
const OPTION_NAMES = ['jwksUri', 'discoverIssuer', 'cooldown', 'maxAge', 'timeout'];
// The members a public verification key is made of. Copying only these keeps `d` and our own input
// forms (`{ secret }`, `{ publicKey }`) from ever reaching resolveVerificationKey from the network.
const PUBLIC_MEMBERS = ['kty', 'crv', 'n', 'e', 'x', 'y', 'alg', 'kid'] as const;

/**
 * A JWKS fetched on demand, refreshed after `maxAge` or when a token names an unknown `kid`, and kept
 * (stale-if-error) while the authorization server is unreachable.
 *
 * @example
 * const keys = new RemoteKeySet({ discoverIssuer: 'https://as.example', cooldown: 30_000, maxAge: 600_000, timeout: 5_000 });
 * await keys.ensure(header.kid);
 * verifyAccessToken(token, { ...config, keys: () => keys.current() });
 */
export class RemoteKeySet {
  readonly #options: RemoteKeySetOptions;
  #jwksUri: string | undefined;
  #keys: readonly VerificationKey[] = Object.freeze([]);
  // performance.now() rather than Date.now(): a wall-clock step must not stall or storm the refresh.
  #loadedAt = -Infinity;
  #startedAt = -Infinity;
  #inFlight: Promise<void> | undefined;
  #lastFailure: unknown;

  constructor(options: RemoteKeySetOptions) {
    this.#options = checkOptions(options);
    this.#jwksUri = this.#options.jwksUri;
  }

  /** Keys as last loaded; empty before the first successful load. */
  current(): readonly VerificationKey[] {
    return this.#keys;
  }

  /**
   * Makes sure keys are loaded and fresh enough to verify a token whose header names `kid` (may be
   * undefined). Resolves when done; rejects with {@link KeySetUnavailableError} only when there are no
   * keys at all to serve. Concurrent calls share one fetch.
   */
  async ensure(kid: unknown): Promise<void> {
    const now = performance.now();
    const empty = this.#keys.length === 0;
    const unknownKid = typeof kid === 'string' && !this.#keys.some((key) => key.kid === kid);
    if (!empty && !unknownKid && now - this.#loadedAt <= this.#options.maxAge) return;
    if (this.#inFlight === undefined && now - this.#startedAt > (empty ? EMPTY_RETRY_MS : this.#options.cooldown)) {
      this.#startedAt = now;
      this.#inFlight = this.#refresh(now).finally(() => (this.#inFlight = undefined));
    }
    // Stale but holding the token's key: refresh in the background, never making a request wait.
    if (!empty && !unknownKid) return;
    await this.#inFlight;
    if (this.#keys.length === 0) throw new KeySetUnavailableError({ cause: this.#lastFailure });
  }

  /** Never rejects: a failure leaves the last good set in place. */
  async #refresh(startedAt: number): Promise<void> {
    try {
      // Discovery is cached once it succeeded, and retried with the next refresh when it failed.
      this.#jwksUri ??= await this.#discover();
      this.#keys = parseKeySet(await fetchJson(this.#jwksUri, this.#options.timeout));
      this.#loadedAt = startedAt;
      this.#lastFailure = undefined;
    } catch (error: unknown) {
      this.#lastFailure = error;
    }
  }

  async #discover(): Promise<string> {
    const issuer = this.#options.discoverIssuer as string;
    const metadata = await fetchJson(new URL(metadataPath(issuer), issuer).href, this.#options.timeout);
    // RFC 8414 §3.3: the issuer returned MUST be identical to the one the URL was built from, else the metadata MUST NOT be used.
    if (!isRecord(metadata) || metadata.issuer !== issuer) throw new Error('The metadata is of another issuer');
    if (typeof metadata.jwks_uri !== 'string' || httpUrl(metadata.jwks_uri) === undefined) throw new Error('The metadata has no valid jwks_uri');
    return metadata.jwks_uri;
  }
}


async function fetchJson(url: string, timeout: number): Promise<unknown> {
  // No redirects: the document must come from the URL we were given or discovered.
  const response = await fetch(url, { headers: { accept: 'application/json' }, redirect: 'error', signal: AbortSignal.timeout(timeout) });
  if (response.status !== 200) {
    await response.body?.cancel().catch(() => undefined);
    throw new Error('The response status is not 200');
  }
  let bytes: Buffer;
  try {
    bytes = await readBounded(response, MAX_BYTES);
  } catch (error) {
    throw error instanceof BodyTooLarge ? new Error('The response is too large') : error;
  }
  return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes)) as unknown;
}

/** The usable keys of a JWKS document; a document without any counts as a failure, so a stale set survives it. */
function parseKeySet(document: unknown): readonly VerificationKey[] {
  const jwks = isRecord(document) ? document.keys : undefined;
  if (!Array.isArray(jwks)) throw new Error('The document is not a JWK Set');
  const keys: VerificationKey[] = [];
  for (const jwk of jwks) {
    const key = publicJwkKey(jwk);
    if (key !== undefined) keys.push(key);
    if (keys.length === MAX_KEYS) break;
  }
  if (keys.length === 0) throw new Error('The JWK Set has no usable key');
  return Object.freeze(keys);
}

/** One public JWK as a verification key (asymmetric, for signatures), or `undefined` to skip it without failing a set. */
export function publicJwkKey(jwk: unknown): VerificationKey | undefined {
  if (!isRecord(jwk)) return undefined;
  // RFC 7517 §4.2/§4.3: a key published for encryption, or not for verifying, must not verify tokens.
  if (jwk.use !== undefined && jwk.use !== 'sig') return undefined;
  if (jwk.key_ops !== undefined && !(Array.isArray(jwk.key_ops) && jwk.key_ops.includes('verify'))) return undefined;
  // A private or symmetric key in a public document is a leak; anyone could sign with it.
  if ('d' in jwk || jwk.kty === 'oct') return undefined;
  const members = PUBLIC_MEMBERS.filter((name) => jwk[name] !== undefined);
  if (!members.every((name) => typeof jwk[name] === 'string')) return undefined;
  try {
    return resolveVerificationKey(Object.fromEntries(members.map((name) => [name, jwk[name]])) as Jwk, 'jwks');
  } catch (error: unknown) {
    if (error instanceof ConfigurationError) return undefined; // unsupported type, curve or alg, or a short RSA key
    throw error;
  }
}

function checkOptions(options: RemoteKeySetOptions): RemoteKeySetOptions {
  checkOptionNames(options, OPTION_NAMES, 'RemoteKeySet');
  const { jwksUri, discoverIssuer, cooldown, maxAge, timeout } = options;
  if ((jwksUri === undefined) === (discoverIssuer === undefined)) throw new ConfigurationError('Pass exactly one of `jwksUri` and `discoverIssuer`');
  if (jwksUri !== undefined && httpUrl(jwksUri) === undefined) throw new ConfigurationError('`jwksUri` must be an absolute http(s) URL');
  // RFC 8414 §2: an issuer identifier has no query or fragment.
  if (discoverIssuer !== undefined) absoluteUrl(discoverIssuer, 'discoverIssuer');
  for (const [name, value] of Object.entries({ cooldown, maxAge, timeout })) {
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) throw new ConfigurationError(`\`${name}\` must be a positive number of milliseconds`);
  }
  return { jwksUri, discoverIssuer, cooldown, maxAge, timeout };
}


function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
