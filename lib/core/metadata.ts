// Authorization server metadata (RFC 8414 §2) and the published key set (RFC 7517 §5).

import { CLIENT_AUTH_METHODS } from './client.js';
import type { PublicJwk, SigningKey } from './signing-keys.js';

export interface MetadataInput {
  readonly issuer: string;
  readonly tokenEndpoint: string;
  readonly jwksUri: string;
  readonly scopesSupported: readonly string[] | undefined;
}

export function authorizationServerMetadata(input: MetadataInput): Record<string, unknown> {
  return {
    issuer: input.issuer,
    token_endpoint: input.tokenEndpoint,
    jwks_uri: input.jwksUri,
    // RFC 8414 §2 makes this REQUIRED even where, as here, no authorization endpoint exists.
    response_types_supported: [],
    // Listed explicitly: the RFC's default is authorization_code and implicit.
    grant_types_supported: ['client_credentials'],
    token_endpoint_auth_methods_supported: [...CLIENT_AUTH_METHODS],
    ...(input.scopesSupported === undefined ? {} : { scopes_supported: [...input.scopesSupported] }),
  };
}

/** The public halves of the asymmetric signing keys; a shared secret is never published. */
export function jsonWebKeySet(keys: readonly SigningKey[]): { keys: PublicJwk[] } {
  return { keys: keys.flatMap((key) => (key.publicJwk === undefined ? [] : [key.publicJwk])) };
}
