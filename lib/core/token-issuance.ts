// The client credentials grant and its JWT access tokens: RFC 6749 §4.4 and §5.1, RFC 9068 §2.

import { randomUUID } from 'node:crypto';
import type { Client } from './client.js';
import { OAuthError } from './errors.js';
import { signJws } from './jws.js';
import { formatScope, grantScope } from './scope.js';
import type { SigningKey } from './signing-keys.js';

export interface IssuanceConfig {
  /** The `iss` of every token. */
  readonly issuer: string;
  /** The `aud` of tokens for clients that name none (RFC 9068 §3: a default resource). */
  readonly audience: string;
  /** Seconds a token lives, unless the client says otherwise. */
  readonly accessTokenTtl: number;
  readonly signingKey: () => SigningKey;
}

/** The successful response of RFC 6749 §5.1, without a refresh token (§4.4.3). */
export interface TokenResponse {
  readonly access_token: string;
  readonly token_type: 'Bearer';
  readonly expires_in: number;
  readonly scope?: string;
}

/** RFC 6749 §4.4.2: `grant_type` MUST be `client_credentials`. */
export function checkGrantType(grantType: string | undefined): void {
  if (grantType === undefined) throw new OAuthError('invalid_request', 400, 'The grant_type parameter is missing');
  if (grantType !== 'client_credentials') {
    throw new OAuthError('unsupported_grant_type', 400, 'Only the client_credentials grant is supported');
  }
}

/** Grants the requested (or default) scopes to an authenticated client and signs its token. */
export function issueAccessToken(
  client: Client,
  requestedScope: string | undefined,
  config: IssuanceConfig,
  nowMs = Date.now(),
): TokenResponse {
  if (client.disabled) {
    // Checked after authentication: the client proved it is itself, so it may learn that it is refused.
    // A disabled client may still revoke and introspect its tokens.
    throw new OAuthError('unauthorized_client', 400, 'The client is not allowed to obtain tokens');
  }
  const scopes = grantScope(requestedScope, client.scopes, client.defaultScopes);
  const ttl = client.accessTokenTtl ?? config.accessTokenTtl;
  const iat = Math.floor(nowMs / 1000);
  const scope = scopes.length > 0 ? formatScope(scopes) : undefined;
  const claims = {
    iss: config.issuer,
    // RFC 9068 §2.2 and §5: with no resource owner, `sub` is the client, and clients cannot pick it.
    sub: client.id,
    client_id: client.id,
    aud: client.audience ?? config.audience,
    iat,
    exp: iat + ttl,
    jti: randomUUID(),
    ...(scope === undefined ? {} : { scope }),
  };
  const accessToken = signJws(claims, config.signingKey(), 'at+jwt');
  return { access_token: accessToken, token_type: 'Bearer', expires_in: ttl, ...(scope === undefined ? {} : { scope }) };
}
