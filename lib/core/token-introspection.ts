// What the authorization server says about its own tokens: revocation (RFC 7009 §2) and
// introspection (RFC 7662 §2).

import type { Client } from './client.js';
import { OAuthError } from './errors.js';
import { verifyAccessToken, type AuthInfo, type VerifierConfig } from './token-verification.js';
import type { RevocationStore } from '../stores/revocation-store.js';

/** Where the issuer checks its own tokens: its keys and `iss`, any audience. */
export type OwnTokens = VerifierConfig;

/** The RFC 7662 §2.2 answer; inactive tokens get exactly `{ active: false }`. */
export type IntrospectionResponse =
  | { readonly active: false }
  | {
      readonly active: true;
      readonly scope?: string;
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
 * Revokes a token for the client it was issued to. Tokens that are invalid, expired or not ours
 * are answered like revoked ones ("invalid tokens do not cause an error response", §2.2); a valid
 * token of another client is refused and stays valid.
 */
export async function revokeToken(token: string, caller: Client, own: OwnTokens, store: RevocationStore): Promise<void> {
  const auth = activeToken(token, own);
  if (auth === undefined) return;
  if (auth.clientId !== caller.id) throw new OAuthError('invalid_request', 400, 'The token was not issued to this client');
  await store.revoke(String(auth.claims.jti), Number(auth.claims.exp));
}

/**
 * Introspects a token for a caller: its own tokens, or any token for a client with
 * `can_introspect`. Everything else, like invalid, expired and revoked tokens, is inactive.
 */
export async function introspectToken(token: string, caller: Client, own: OwnTokens, store: RevocationStore): Promise<IntrospectionResponse> {
  const auth = activeToken(token, own);
  if (auth === undefined || (auth.clientId !== caller.id && !caller.canIntrospect)) return INACTIVE;
  const { claims } = auth;
  if (await store.isRevoked(String(claims.jti))) return INACTIVE;
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

function activeToken(token: string, own: OwnTokens): AuthInfo | undefined {
  try {
    return verifyAccessToken(token, own);
  } catch (error) {
    if (error instanceof OAuthError) return undefined;
    throw error;
  }
}
