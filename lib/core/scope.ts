// Scope strings and grants: RFC 6749 §3.3.

import { OAuthError } from './errors.js';

/** scope-token = 1*( %x21 / %x23-5B / %x5D-7E ): printable ASCII except space, `"` and `\`. */
const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]+$/;

export function isScopeToken(value: string): boolean {
  return SCOPE_TOKEN.test(value);
}

/**
 * Parses a space-delimited scope string into distinct tokens, in order.
 * Returns `undefined` when the string breaks the §3.3 grammar (empty tokens, bad characters).
 */
export function parseScope(value: string): string[] | undefined {
  if (value === '') return [];
  const tokens = value.split(' ');
  if (!tokens.every(isScopeToken)) return undefined;
  return [...new Set(tokens)];
}

/** The inverse of {@link parseScope}. */
export function formatScope(scopes: readonly string[]): string {
  return scopes.join(' ');
}

/**
 * Decides the granted scopes (RFC 6749 §3.3): every requested scope must be allowed; without a
 * request, the client's default scopes apply.
 */
export function grantScope(
  requested: string | undefined,
  allowed: readonly string[],
  defaults: readonly string[],
): string[] {
  if (requested === undefined) return [...defaults];
  const scopes = parseScope(requested);
  if (scopes === undefined) throw new OAuthError('invalid_scope', 400, 'The scope parameter is malformed');
  if (!scopes.every((scope) => allowed.includes(scope))) {
    throw new OAuthError('invalid_scope', 400, 'The requested scope exceeds the scope granted to the client');
  }
  return scopes;
}
