// Client authentication with a signed JWT, private_key_jwt: RFC 7523 §2.2 and §3, RFC 7521 §4.2.

import { BoundedMap } from './bounded-map.js';
import type { Client } from './client.js';
import { invalidClient } from './errors.js';
import { JwsError, peekHeader, peekPayload, verifyJws, type JsonObject } from './jws.js';
import { KeySetUnavailableError, publicJwkKey, RemoteKeySet } from './remote-key-set.js';
import type { VerificationKey } from './signing-keys.js';
import { storeCall } from './store-call.js';
import type { ReplayCache } from './stores.js';

export const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

export interface AssertionRules {
  /** What `aud` may name: the issuer identifier and the token endpoint URL (RFC 7523 §3 item 3). */
  readonly audiences: () => readonly string[];
  readonly replayCache: ReplayCache;
  /** Seconds an assertion may live, from now to `exp`: assertions are meant to be short-lived. */
  readonly maxLifetime: number;
  readonly clockTolerance: number;
  readonly storeTimeout: number;
}

/** The client an assertion claims to come from, read before verification only to find its keys. */
export function assertedClientId(assertion: string): string | undefined {
  const payload = peekPayload(assertion);
  // RFC 7523 §3 items 1 and 2: `iss` and `sub` are both the client_id.
  return typeof payload?.sub === 'string' && payload.sub !== '' && payload.iss === payload.sub ? payload.sub : undefined;
}

/**
 * Verifies a client assertion (RFC 7523 §3): signed by one of the client's keys with an
 * asymmetric algorithm, `iss` = `sub` = client_id, `aud` naming this server, `exp` present and
 * near, `jti` present and never seen before. Every failure is `invalid_client`.
 */
export async function verifyClientAssertion(assertion: string, client: Client, keys: ClientKeys, rules: AssertionRules, now = Date.now() / 1000): Promise<void> {
  const kid = peekHeader(assertion)?.kid;
  const candidates = await keys.keysFor(client, kid);
  let payload: JsonObject;
  try {
    ({ payload } = verifyJws(
      assertion,
      (header) => candidates.filter((key) => key.alg !== 'HS256' && (header.kid === undefined || !key.kidGiven || key.kid === header.kid)),
      // Explicit typing keeps an access token from passing as an assertion (RFC 8725 §3.11).
      (typ) => typ === undefined || (typeof typ === 'string' && /^(application\/)?(jwt|client-authentication\+jwt)$/i.test(typ)),
    ));
  } catch (cause) {
    if (cause instanceof JwsError) throw invalidClient(cause);
    throw cause;
  }
  const { iss, sub, aud, exp, nbf, iat, jti } = payload;
  if (iss !== client.id || sub !== client.id) throw invalidClient();
  const audiences = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud : [];
  if (!audiences.some((value) => typeof value === 'string' && rules.audiences().includes(value))) throw invalidClient();
  const tolerance = rules.clockTolerance;
  if (typeof exp !== 'number' || exp <= now - tolerance || exp > now + rules.maxLifetime + tolerance) throw invalidClient();
  if (nbf !== undefined && (typeof nbf !== 'number' || nbf > now + tolerance)) throw invalidClient();
  if (iat !== undefined && (typeof iat !== 'number' || iat > now + tolerance)) throw invalidClient();
  if (typeof jti !== 'string' || jti === '' || jti.length > 256) throw invalidClient();
  // RFC 7523 §3 item 7: the server MAY reject a reused jti; we always do, for the assertion's life.
  const first = await storeCall(() => rules.replayCache.markUsed(`${client.id}\n${jti}`, exp + tolerance), rules.storeTimeout, 'The replay cache is unavailable; try again later');
  if (!first) throw invalidClient();
}

/** A client's public keys: from its registered `jwks`, or fetched from its `jwks_uri` and cached. */
export class ClientKeys {
  readonly #remote: BoundedMap<string, RemoteKeySet>;

  constructor(maxRemoteSets = 1000) {
    this.#remote = new BoundedMap(maxRemoteSets);
  }

  async keysFor(client: Client, kid: unknown): Promise<readonly VerificationKey[]> {
    if (client.jwks !== undefined) return client.jwks.flatMap((jwk) => publicJwkKey(jwk) ?? []);
    if (client.jwksUri === undefined) return [];
    const set = this.#remoteSet(client.jwksUri);
    try {
      await set.ensure(kid);
    } catch (cause) {
      if (cause instanceof KeySetUnavailableError) throw invalidClient(cause);
      throw cause;
    }
    return set.current();
  }

  #remoteSet(uri: string): RemoteKeySet {
    let set = this.#remote.get(uri);
    if (set === undefined) {
      // Bounded: past the limit the oldest set is dropped and fetched again when next needed.
      set = new RemoteKeySet({ jwksUri: uri, cooldown: 30_000, maxAge: 600_000, timeout: 5_000 });
      this.#remote.set(uri, set);
    }
    return set;
  }
}
