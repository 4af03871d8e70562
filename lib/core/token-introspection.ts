// What the authorization server says about its own tokens: revocation (RFC 7009 §2) and
// introspection (RFC 7662 §2).

import type { Client } from './client.js';
import { OAuthError } from './errors.js';
import { verifyAccessToken, type AuthInfo, type VerifierConfig } from './token-verification.js';
import type { RevocationStore } from './stores.js';
import { storeCall } from './store-call.js';

/** How the issuer looks at its own tokens and the state around them. */
export interface OwnTokens {
  /** Its keys and `iss`, any audience, no clock tolerance. */
  readonly verifier: VerifierConfig;
  readonly revocations: RevocationStore;
  /** True while the client is registered and not disabled. */
  readonly clientIsActive: (clientId: string) => Promise<boolean>;
  /** Milliseconds a store call may take before a 503. */
  readonly storeTimeout: number;
}

/**
 * Seconds a revocation outlives the token's `exp`. Guards accept a token until `exp` plus their
 * clock tolerance, so a revocation must be kept, and accepted, at least that long after it.
 * Guards refuse a tolerance above this.
 */
export const REVOCATION_MARGIN = 300;
const UNAVAILABLE = 'The revocation list is unavailable; try again later';

/** The RFC 7662 §2.2 answer; inactive tokens get exactly `{ active: false }`. */
export type IntrospectionResponse =
  | { readonly active: false }
  | {
      readonly active: true;
      readonly scope?: string | undefined;
      readonly client_id: string;
      readonly sub: unknown;
      readonly aud: unknown;
      readonly iss: unknown;
      readonly exp: unknown;
      readonly iat: unknown;
      readonly jti: unknown;
      readonly token_type: 'Bearer';
    };

const INACTIVE: IntrospectionResponse = Object.freeze({ active: false });

/** RFC 7009 §2.1 and RFC 7662 §2.1: `token` is REQUIRED. */
export function requireTokenParameter(token: string | undefined): string {
  if (token === undefined) throw new OAuthError('invalid_request', 400, 'The token parameter is missing');
  return token;
}

/**
 * Revokes a token for the client it was issued to, resolving its `jti` (or `undefined` when there
 * was nothing to revoke). Tokens that are invalid, expired or not ours
 * are answered like revoked ones ("invalid tokens do not cause an error response", §2.2); a valid
 * token of another client is refused and stays valid.
 */
export async function revokeToken(token: string, caller: Client, own: OwnTokens): Promise<string | undefined> {
  const auth = activeToken(token, { ...own.verifier, clockTolerance: REVOCATION_MARGIN });
  if (auth === undefined) return undefined;
  if (auth.clientId !== caller.id) throw new OAuthError('invalid_request', 400, 'The token was not issued to this client');
  const { jti, exp } = auth.claims as { jti: string; exp: number }; // strict verification: both present
  await storeCall(() => own.revocations.revoke(jti, exp + REVOCATION_MARGIN), own.storeTimeout, UNAVAILABLE);
  return jti;
}

/**
 * Introspects a token for a caller: its own tokens, or any token for a client with
 * `can_introspect`. Everything else is inactive: invalid, expired and revoked tokens, and tokens of
 * clients that were disabled or removed since.
 */
export async function introspectToken(token: string, caller: Client, own: OwnTokens): Promise<IntrospectionResponse> {
  const auth = activeToken(token, own.verifier);
  if (auth === undefined || (auth.clientId !== caller.id && !caller.canIntrospect)) return INACTIVE;
  const { claims } = auth;
  if (await storeCall(() => own.revocations.isRevoked(String(claims.jti)), own.storeTimeout, UNAVAILABLE)) return INACTIVE;
  const ownerActive = auth.clientId === caller.id ? !caller.disabled : await own.clientIsActive(auth.clientId);
  if (!ownerActive) return INACTIVE;
  return {
    active: true,
    ...(auth.scopes.length > 0 ? { scope: auth.scopes.join(' ') } : {}),
    client_id: auth.clientId,
    sub: claims.sub,
    aud: claims.aud,
    iss: claims.iss,
    exp: claims.exp,
    iat: claims.iat,
    jti: claims.jti,
    token_type: 'Bearer',
  };
}

function activeToken(token: string, verifier: VerifierConfig): AuthInfo | undefined {
  try {
    return verifyAccessToken(token, verifier);
  } catch (error) {
    if (error instanceof OAuthError) return undefined;
    throw error;
  }
}
