// The resource server's side of RFC 6750: where a Bearer token is found (§2) and how a refusal
// is challenged (§3).

import { OAuthError, wwwAuthenticate } from './errors.js';

/** Where a guard looks for the token (RFC 6750 §2); only the header unless you opt in. */
export type TokenLocation = 'header' | 'body' | 'query';

/** The places of a request that may carry a token, as the adapter found them. */
export interface BearerSources {
  readonly authorization: string | undefined;
  /** The `access_token` form parameter of a form-encoded body, for methods with a body (§2.2). */
  readonly bodyToken: unknown;
  /** The `access_token` query parameter (§2.3). */
  readonly queryToken: unknown;
}

/** The token, and whether it came in the URI (whose responses RFC 6750 §2.3 asks to mark `private`). */
export interface FoundToken {
  readonly token: string;
  readonly inQuery: boolean;
}

/** RFC 6750 §2: the token from the enabled locations; sent in more than one place is `invalid_request`. */
export function findBearerToken({ authorization, bodyToken, queryToken }: BearerSources, locations: ReadonlySet<TokenLocation>): FoundToken | undefined {
  const fromHeader = authorization !== undefined && /^bearer(\s|$)/i.test(authorization) ? authorization : undefined;
  // Counted even where not enabled: a token in the URL next to the header is a confused client.
  if (Number(fromHeader !== undefined) + Number(bodyToken !== undefined) + Number(queryToken !== undefined) > 1) {
    throw malformed('The access token was sent in more than one way');
  }
  if (fromHeader !== undefined && locations.has('header')) {
    const match = /^bearer +([A-Za-z0-9\-._~+/]+=*) *$/i.exec(fromHeader);
    if (match === null) throw malformed('The Authorization header is not a single Bearer token');
    return { token: match[1]!, inQuery: false };
  }
  const inQuery = !(locations.has('body') && bodyToken !== undefined);
  const other = !inQuery ? bodyToken : locations.has('query') ? queryToken : undefined;
  if (other === undefined) return undefined;
  if (typeof other !== 'string' || other === '') throw malformed('The access_token parameter is malformed');
  return { token: other, inQuery };
}

function malformed(description: string): OAuthError {
  return new OAuthError('invalid_request', 400, description);
}

/** What every Bearer challenge of one guard carries. */
export interface ChallengeFields {
  readonly realm: string;
  /** RFC 9728 §5.1. */
  readonly resource_metadata?: string | undefined;
}

/** RFC 6750 §3.1: a request without credentials SHOULD NOT get an error code; it still gets realm and resource_metadata. */
export function missingToken(fields: ChallengeFields): OAuthError {
  return new OAuthError('invalid_token', 401, 'An access token is required', { 'WWW-Authenticate': wwwAuthenticate('Bearer', { ...fields }) });
}

/** A refusal with its challenge (RFC 6750 §3), unless it has one or is our own failure (5xx). */
export function challenged(error: OAuthError, fields: ChallengeFields): OAuthError {
  if (error.headers['WWW-Authenticate'] !== undefined || error.status >= 500) return error;
  const { realm, resource_metadata } = fields;
  return error.withHeaders({ 'WWW-Authenticate': wwwAuthenticate('Bearer', { realm, error: error.error, error_description: error.message, resource_metadata }) });
}

/** RFC 6750 §3.1 `insufficient_scope`, naming the scopes the request needs. */
export function insufficientScope(fields: ChallengeFields | undefined, scope: string): OAuthError {
  const description = 'The access token lacks the required scope';
  return new OAuthError('insufficient_scope', 403, description, {
    // RFC 9728 §5.1 defines resource_metadata for any Bearer challenge; MCP's step-up flow reads it from this 403.
    'WWW-Authenticate': wwwAuthenticate('Bearer', { realm: fields?.realm, error: 'insufficient_scope', error_description: description, scope, resource_metadata: fields?.resource_metadata }),
  });
}
