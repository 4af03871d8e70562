// Validating JWT access tokens at a resource server: RFC 9068 §4, RFC 8725 §3.

import { OAuthError } from './errors.js';
import { MAX_TOKEN_LIFETIME } from './token-lifetime.js';
import { JwsError, verifyJws, type JsonObject } from './jws.js';
import { isScopeToken, parseScope } from './scope.js';
import type { VerificationKey } from './signing-keys.js';

/** What a verified token tells a route: set as `req.auth`. */
export interface AuthInfo {
  /** The client the token was issued to (`client_id`; `azp` or `sub` for legacy tokens). */
  readonly clientId: string;
  /** Granted scopes, from `scope` (string or array) or `scp`. */
  readonly scopes: readonly string[];
  /** Every claim of the token, as signed. */
  readonly claims: Readonly<JsonObject>;
  /** The raw token, for calling further APIs on the client's behalf. */
  readonly token: string;
}

export interface VerifierConfig {
  readonly issuer: string;
  /** Accepted `aud` values; `undefined` accepts any, for the issuer looking at its own tokens. */
  readonly audiences: readonly string[] | undefined;
  readonly keys: () => readonly VerificationKey[];
  /** Seconds of clock skew tolerated on `exp`, `nbf` and `iat`. */
  readonly clockTolerance: number;
  /** RFC 9068 profile: `typ` `at+jwt` and every required claim. */
  readonly strict: boolean;
  /** Seconds a token may still have to live (`exp` - now): longer ones break policy. Default: {@link MAX_TOKEN_LIFETIME}. */
  readonly maxLifetime?: number | undefined;
}


const REQUIRED_STRICT = ['sub', 'client_id', 'jti'] as const;

/** Verifies a JWT access token, or throws `invalid_token` saying why (RFC 6750 §3.1). */
export function verifyAccessToken(token: string, config: VerifierConfig, nowSeconds = Date.now() / 1000): AuthInfo {
  return verifyAccessTokenWithKey(token, config, nowSeconds).auth;
}

/** {@link verifyAccessToken}, also saying which key verified it (for caches that must forget retired keys). */
export function verifyAccessTokenWithKey(token: string, config: VerifierConfig, nowSeconds = Date.now() / 1000): { auth: AuthInfo; key: VerificationKey } {
  let payload: JsonObject;
  let key: VerificationKey;
  try {
    ({ payload, key } = verifyJws(token, (header) => keysFor(header, config.keys()), config.strict ? isAtJwt : isAtJwtOrJwt));
  } catch (cause) {
    if (cause instanceof JwsError) throw invalidToken(cause.message, cause);
    throw cause;
  }
  checkTimes(payload, config, nowSeconds);
  if (payload.iss !== config.issuer) throw invalidToken('The token issuer is not trusted');
  // RFC 9068 §2.2: `aud` is required, a string or a list of strings, even where any audience is fine.
  if (!isAudience(payload.aud)) throw invalidToken('The token audience is not this resource');
  if (config.audiences !== undefined && !audienceMatches(payload.aud, config.audiences)) throw invalidToken('The token audience is not this resource');
  if (config.strict) {
    for (const claim of REQUIRED_STRICT) {
      if (typeof payload[claim] !== 'string' || payload[claim] === '') throw invalidToken(`The token has no ${claim} claim`);
    }
  }
  const clientId = [payload.client_id, payload.azp, payload.sub].find((value) => typeof value === 'string' && value !== '');
  if (typeof clientId !== 'string') throw invalidToken('The token identifies no client');
  return { auth: { clientId, scopes: scopesOf(payload), claims: payload, token }, key };
}

/** Keys named by the header's `kid`; failing that, keys whose `kid` we made up ourselves. */
function keysFor(header: JsonObject, keys: readonly VerificationKey[]): readonly VerificationKey[] {
  const named = keys.filter((key) => key.kid === header.kid);
  return named.length > 0 ? named : keys.filter((key) => !key.kidGiven);
}

/** RFC 9068 §4: `typ` is `at+jwt` or `application/at+jwt`, compared case-insensitively (RFC 7515 §4.1.9). */
function isAtJwt(typ: unknown): boolean {
  return typeof typ === 'string' && /^(application\/)?at\+jwt$/i.test(typ);
}

function isAtJwtOrJwt(typ: unknown): boolean {
  return typ === undefined || isAtJwt(typ) || (typeof typ === 'string' && /^(application\/)?jwt$/i.test(typ));
}

function checkTimes(payload: JsonObject, config: VerifierConfig, now: number): void {
  const { exp, nbf, iat } = payload;
  const tolerance = config.clockTolerance;
  if (!isNumericDate(exp)) throw invalidToken('The token has no valid exp claim');
  if (now - tolerance >= exp) throw invalidToken('The token has expired');
  if (nbf !== undefined && (!isNumericDate(nbf) || nbf > now + tolerance)) throw invalidToken('The token is not valid yet');
  if (iat === undefined ? config.strict : !isNumericDate(iat)) throw invalidToken('The token has no valid iat claim');
  if (isNumericDate(iat) && iat > now + tolerance) throw invalidToken('The token was issued in the future');
  if (exp - now > (config.maxLifetime ?? MAX_TOKEN_LIFETIME) + tolerance) throw invalidToken('The token lifetime exceeds the policy');
}

function isNumericDate(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value);
}

function isAudience(aud: unknown): boolean {
  return typeof aud === 'string' || (Array.isArray(aud) && aud.length > 0 && aud.every((value) => typeof value === 'string'));
}

function audienceMatches(aud: unknown, audiences: readonly string[]): boolean {
  const values = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud : [];
  return values.some((value) => typeof value === 'string' && audiences.includes(value));
}

/** `scope` as a space-delimited string (RFC 9068 §2.2.3) or an array; `scp` as Hydra and Azure issue it. */
function scopesOf(payload: JsonObject): string[] {
  const claim = payload.scope !== undefined ? payload.scope : payload.scp;
  if (claim === undefined) return [];
  const scopes =
    typeof claim === 'string' ? parseScope(claim)
    : Array.isArray(claim) && claim.every((item) => typeof item === 'string' && isScopeToken(item)) ? [...new Set(claim as string[])]
    : undefined;
  if (scopes === undefined) throw invalidToken('The token scope claim is malformed');
  return scopes;
}

function invalidToken(description: string, cause?: unknown): OAuthError {
  return new OAuthError('invalid_token', 401, description, {}, cause === undefined ? undefined : { cause });
}
