// Authorization server metadata (RFC 8414 §2) and the published key set (RFC 7517 §5).

import { CLIENT_AUTH_METHODS } from './client.js';
import type { PublicJwk, SigningKey } from './signing-keys.js';

/** The issuer's `endpoints` option: absolute URLs, or `false` for an endpoint that is not served. */
export interface EndpointUrls {
  readonly token?: string | undefined;
  readonly jwks?: string | undefined;
  readonly revocation?: string | false | undefined;
  readonly introspection?: string | false | undefined;
}

export interface MetadataInput {
  readonly issuer: string;
  /** The URLs to list; an endpoint that is not served is left out. */
  readonly endpoints: { readonly token: string; readonly jwks: string; readonly revocation?: string | undefined; readonly introspection?: string | undefined };
  readonly scopesSupported: readonly string[] | undefined;
}

/** The algorithms a private_key_jwt assertion may be signed with (RFC 8414 §2 `*_auth_signing_alg_values_supported`). */
export const ASSERTION_ALGORITHMS = ['RS256', 'PS256', 'ES256', 'EdDSA'] as const;

export function authorizationServerMetadata({ issuer, endpoints, scopesSupported }: MetadataInput): Record<string, unknown> {
  const authMethods = { methods: [...CLIENT_AUTH_METHODS], algs: [...ASSERTION_ALGORITHMS] };
  return {
    issuer,
    token_endpoint: endpoints.token,
    jwks_uri: endpoints.jwks,
    // RFC 8414 §2 makes this REQUIRED even where, as here, no authorization endpoint exists.
    response_types_supported: [],
    // Listed explicitly: the RFC's default is authorization_code and implicit.
    grant_types_supported: ['client_credentials'],
    token_endpoint_auth_methods_supported: authMethods.methods,
    token_endpoint_auth_signing_alg_values_supported: authMethods.algs,
    ...(scopesSupported === undefined ? {} : { scopes_supported: [...scopesSupported] }),
    ...(endpoints.revocation === undefined
      ? {}
      : {
          revocation_endpoint: endpoints.revocation,
          revocation_endpoint_auth_methods_supported: authMethods.methods,
          revocation_endpoint_auth_signing_alg_values_supported: authMethods.algs,
        }),
    ...(endpoints.introspection === undefined
      ? {}
      : {
          introspection_endpoint: endpoints.introspection,
          introspection_endpoint_auth_methods_supported: authMethods.methods,
          introspection_endpoint_auth_signing_alg_values_supported: authMethods.algs,
        }),
  };
}

/** RFC 8414 §3.1: the well-known segment goes between the host and the issuer's path, its trailing `/` removed. */
export function metadataPath(issuer: string): string {
  return `/.well-known/oauth-authorization-server${new URL(issuer).pathname.replace(/\/$/, '')}`;
}

/** The public halves of the asymmetric signing keys; a shared secret is never published. */
export function jsonWebKeySet(keys: readonly SigningKey[]): { keys: PublicJwk[] } {
  return { keys: keys.flatMap((key) => (key.publicJwk === undefined ? [] : [key.publicJwk])) };
}
