// The client credentials grant and its JWT access tokens: RFC 6749 §4.4 and §5.1, RFC 9068 §2,
// resource indicators (RFC 8707 §2).

import { randomUUID } from 'node:crypto';
import type { Client, ClientRecord } from './client.js';
import { OAuthError } from './errors.js';
import { signJws, type JsonObject } from './jws.js';
import { formatScope, grantScope } from './scope.js';
import type { SigningKey } from './signing-keys.js';

/** What a grant is about to give, for the policy and claims hooks. */
export interface GrantContext<R = unknown> {
  /** The authenticated client: its id and its stored record (fields of your own are in `record.metadata`, e.g. a tenant). */
  readonly client: { readonly id: string; readonly record: Readonly<ClientRecord> };
  /** The scopes about to be granted. */
  readonly scopes: readonly string[];
  /** The `aud` about to be given. */
  readonly audience: string | readonly string[];
  /** The HTTP request, for per-request decisions. */
  readonly request: R;
}

export interface IssuanceConfig<R = unknown> {
  /** The `iss` of every token. */
  readonly issuer: string;
  /** The `aud` of tokens for clients that name none (RFC 9068 §3: a default resource). */
  readonly audience: string;
  /** Seconds a token lives, unless the client says otherwise. */
  readonly accessTokenTtl: number;
  readonly signingKey: () => SigningKey;
  /** May refuse a grant by throwing an `OAuthError`. */
  readonly authorizeGrant?: ((context: GrantContext<R>) => void | Promise<void>) | undefined;
  /** Claims to add; never the registered ones, which are dropped with `onIgnoredClaims`. */
  readonly extraClaims?: ((context: GrantContext<R>) => JsonObject | undefined | Promise<JsonObject | undefined>) | undefined;
  readonly onIgnoredClaims?: ((names: readonly string[]) => void) | undefined;
}

/** The request parameters the grant reads. */
export interface TokenRequest {
  readonly scope: string | undefined;
  /** RFC 8707 `resource`, each once. */
  readonly resources: readonly string[];
}

/** The successful response of RFC 6749 §5.1, without a refresh token (§4.4.3). */
export interface TokenResponse {
  readonly access_token: string;
  readonly token_type: 'Bearer';
  readonly expires_in: number;
  readonly scope?: string | undefined;
}

/** Claims the library sets and hooks cannot change (RFC 9068 §2.2, RFC 7519 §4.1). */
export const REGISTERED_CLAIMS = ['iss', 'sub', 'aud', 'exp', 'nbf', 'iat', 'jti', 'client_id', 'scope'] as const;

/** RFC 6749 §4.4.2: `grant_type` MUST be `client_credentials`. */
export function checkGrantType(grantType: string | undefined): void {
  if (grantType === undefined) throw new OAuthError('invalid_request', 400, 'The grant_type parameter is missing');
  if (grantType !== 'client_credentials') {
    throw new OAuthError('unsupported_grant_type', 400, 'Only the client_credentials grant is supported');
  }
}

/**
 * Grants the requested (or default) scopes and audience to an authenticated client and signs its
 * token. Returns the response and the claims, for the audit trail.
 */
export async function issueAccessToken<R>(
  client: Client,
  request: TokenRequest,
  config: IssuanceConfig<R>,
  httpRequest: R,
  nowMs = Date.now(),
): Promise<{ response: TokenResponse; claims: JsonObject }> {
  if (client.disabled || !client.mayUseGrant) {
    // Checked after authentication: the client proved it is itself, so it may learn that it is refused.
    // A disabled client may still revoke and introspect its tokens.
    throw new OAuthError('unauthorized_client', 400, 'The client is not allowed to obtain tokens');
  }
  const scopes = grantScope(request.scope, client.scopes, client.defaultScopes);
  const audience = grantAudience(request.resources, client, config.audience);
  // Hooks see copies: what they do to them cannot change the grant.
  const extra = config.authorizeGrant === undefined && config.extraClaims === undefined ? {} : await runHooks(config, {
    client: Object.freeze({ id: client.id, record: client.record }),
    scopes: Object.freeze([...scopes]),
    audience: typeof audience === 'string' ? audience : Object.freeze([...audience]),
    request: httpRequest,
  });

  const ttl = client.accessTokenTtl ?? config.accessTokenTtl;
  const iat = Math.floor(nowMs / 1000);
  const scope = scopes.length > 0 ? formatScope(scopes) : undefined;
  const claims: JsonObject = {
    ...extra,
    iss: config.issuer,
    // RFC 9068 §2.2 and §5: with no resource owner, `sub` is the client, and clients cannot pick it.
    sub: client.id,
    client_id: client.id,
    aud: audience,
    iat,
    exp: iat + ttl,
    jti: randomUUID(),
    scope,
  };
  if (scope === undefined) delete claims.scope;
  delete claims.nbf;
  const accessToken = signJws(claims, config.signingKey(), 'at+jwt');
  return { response: { access_token: accessToken, token_type: 'Bearer', expires_in: ttl, ...(scope === undefined ? {} : { scope }) }, claims };
}

/** The policy hook, then the claims hook: the extra claims, registered ones dropped. */
async function runHooks<R>(config: IssuanceConfig<R>, context: GrantContext<R>): Promise<JsonObject> {
  Object.freeze(context);
  await config.authorizeGrant?.(context);
  const extra = plainClaims(await config.extraClaims?.(context));
  const ignored = REGISTERED_CLAIMS.filter((name) => name in extra);
  if (ignored.length > 0) config.onIgnoredClaims?.(ignored);
  return extra;
}

/**
 * The hook's claims as plain JSON data: a `toJSON`, a getter or a prototype cannot smuggle
 * registered claims past the check, and the names left are own, enumerable, JSON-safe ones.
 */
function plainClaims(value: unknown): JsonObject {
  if (value === undefined || value === null) return {};
  const data: unknown = JSON.parse(JSON.stringify(value));
  if (typeof data !== 'object' || data === null || Array.isArray(data)) throw new TypeError('extraClaims must return an object of claims');
  const claims: JsonObject = Object.create(null);
  for (const [name, claim] of Object.entries(data)) claims[name] = claim;
  return claims;
}

/**
 * RFC 8707 §2: each `resource` is an absolute URI without fragment, and must be one of the
 * client's audiences (else `invalid_target`); without any, the client's default audience, else the
 * issuer's (RFC 9068 §3).
 */
export function grantAudience(resources: readonly string[], client: Client, issuerAudience: string): string | string[] {
  const allowed = client.audiences.length > 0 ? client.audiences : [issuerAudience];
  if (resources.length === 0) return allowed[0] as string;
  for (const resource of resources) {
    if (!URL.canParse(resource) || resource.includes('#')) {
      throw new OAuthError('invalid_target', 400, 'A resource parameter is not an absolute URI without a fragment');
    }
    if (!allowed.includes(resource)) throw new OAuthError('invalid_target', 400, 'A requested resource is not allowed for this client');
  }
  const unique = [...new Set(resources)];
  return unique.length === 1 ? (unique[0] as string) : unique;
}
