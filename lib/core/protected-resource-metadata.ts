// Protected resource metadata (RFC 9728 §2) and where it is published (RFC 9728 §3.1).

/** RFC 9728 §2 `bearer_methods_supported`: the RFC 6750 §2.1, §2.2 and §2.3 ways of sending a token. */
export type BearerMethod = 'header' | 'body' | 'query';

export const BEARER_METHODS: readonly BearerMethod[] = ['header', 'body', 'query'];

/** RFC 9728 §3: the well-known URI suffix registered for protected resources. */
export const PROTECTED_RESOURCE_WELL_KNOWN = '/.well-known/oauth-protected-resource';

/** Resolved values; `undefined` fields are left out of the document. */
export interface ProtectedResourceInput {
  readonly resource: string;
  readonly authorizationServers: readonly string[];
  readonly scopesSupported: readonly string[] | undefined;
  readonly bearerMethodsSupported: readonly BearerMethod[];
  readonly jwksUri: string | undefined;
  readonly resourceSigningAlgValuesSupported: readonly string[] | undefined;
  readonly resourceName: string | undefined;
  readonly resourceDocumentation: string | undefined;
}

/** The RFC 9728 §2 document, with its wire names. */
export interface ProtectedResourceMetadata {
  readonly resource: string;
  readonly authorization_servers: readonly string[];
  readonly scopes_supported?: readonly string[] | undefined;
  readonly bearer_methods_supported: readonly BearerMethod[];
  readonly jwks_uri?: string | undefined;
  readonly resource_signing_alg_values_supported?: readonly string[] | undefined;
  readonly resource_name?: string | undefined;
  readonly resource_documentation?: string | undefined;
}

export function protectedResourceMetadata(input: ProtectedResourceInput): ProtectedResourceMetadata {
  return {
    // RFC 9728 §3.3: this MUST be identical to the identifier the metadata URL was built from.
    resource: input.resource,
    authorization_servers: [...input.authorizationServers],
    ...(input.scopesSupported === undefined ? {} : { scopes_supported: [...input.scopesSupported] }),
    // Listed even for the header alone: the RFC gives an absent member no default meaning.
    bearer_methods_supported: [...input.bearerMethodsSupported],
    ...(input.jwksUri === undefined ? {} : { jwks_uri: input.jwksUri }),
    ...(input.resourceSigningAlgValuesSupported === undefined
      ? {}
      : { resource_signing_alg_values_supported: [...input.resourceSigningAlgValuesSupported] }),
    ...(input.resourceName === undefined ? {} : { resource_name: input.resourceName }),
    ...(input.resourceDocumentation === undefined ? {} : { resource_documentation: input.resourceDocumentation }),
  };
}

/**
 * RFC 9728 §3.1: the well-known segment goes between the host and the resource identifier's path,
 * "any terminating slash (/) following the host component MUST be removed".
 * `https://api.example/` → `/.well-known/oauth-protected-resource`;
 * `https://api.example/v1/` → `/.well-known/oauth-protected-resource/v1`.
 */
export function protectedResourceMetadataPath(resource: string): string {
  return `${PROTECTED_RESOURCE_WELL_KNOWN}${new URL(resource).pathname.replace(/\/$/, '')}`;
}

/** The absolute URL a client builds from the identifier (RFC 9728 §3), and `resource_metadata` names (§5.1). */
export function protectedResourceMetadataUrl(resource: string): string {
  return `${new URL(resource).origin}${protectedResourceMetadataPath(resource)}`;
}
