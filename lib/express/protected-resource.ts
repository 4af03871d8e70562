// The resource server's metadata document (RFC 9728 §2, §3), which a guard's challenges point to (§5.1).

import type { Request, RequestHandler, Response, NextFunction } from 'express';
import { ConfigurationError, isQuotable } from '../core/errors.js';
import { absoluteUrl, checkOptions, isWebUrl, positiveInteger } from '../core/options.js';
import { isScopeToken } from '../core/scope.js';
import {
  BEARER_METHODS,
  protectedResourceMetadata,
  protectedResourceMetadataPath,
  protectedResourceMetadataUrl,
  type BearerMethod,
  type ProtectedResourceMetadata,
} from '../core/protected-resource-metadata.js';
import type { Issuer, TrustedIssuer } from './issuer.js';

export interface ProtectedResourceOptions {
  /**
   * The resource identifier (RFC 9728 §1.2): an absolute http(s) URL without query or fragment,
   * in canonical form; usually the `aud` the guard accepts. Required.
   */
  resource: string;
  /** Issuer identifiers of the authorization servers whose tokens the resource accepts, or `issuer()` instances. Required, at least one. */
  authorizationServers: readonly (string | Issuer | TrustedIssuer)[];
  /** `scopes_supported`: the scopes a client may need here (RECOMMENDED by RFC 9728 §2). Default: left out. */
  scopesSupported?: readonly string[] | undefined;
  /** `bearer_methods_supported`; must match the guard's `tokenLocations`. Default: `['header']`, the guard's default. */
  bearerMethodsSupported?: readonly BearerMethod[] | undefined;
  /** `resource_name`, human-readable. Default: left out. */
  resourceName?: string | undefined;
  /** `resource_documentation`: an http(s) URL of documentation for developers. Default: left out. */
  resourceDocumentation?: string | undefined;
  /** `jwks_uri`: the http(s) URL of the resource's own public keys, for resources that sign responses. Default: left out. */
  jwksUri?: string | undefined;
  /** `resource_signing_alg_values_supported`: JWS `alg` values of signed responses; never `none`. Default: left out. */
  resourceSigningAlgValuesSupported?: readonly string[] | undefined;
  /** Seconds the document may be cached (`Cache-Control: public, max-age`). Default: 300. */
  maxAge?: number | undefined;
}

/** A protected resource's metadata, ready to serve and to name in challenges. */
export interface ProtectedResource {
  /** The resource identifier, exactly as the document's `resource` states it. */
  readonly resource: string;
  /** The RFC 9728 §2 document. */
  readonly document: Readonly<ProtectedResourceMetadata>;
  /** Serves the document to GET and HEAD; mount with `app.get(metadataPath, …)`. */
  readonly metadata: RequestHandler;
  /** RFC 9728 §3.1: `/.well-known/oauth-protected-resource` plus the identifier's path, without a trailing `/`. */
  readonly metadataPath: string;
  /** The absolute metadata URL: the identifier's origin plus `metadataPath`; what `resource_metadata="…"` carries (§5.1). */
  readonly metadataUrl: string;
}

const OPTION_NAMES = [
  'resource', 'authorizationServers', 'scopesSupported', 'bearerMethodsSupported', 'resourceName', 'resourceDocumentation', 'jwksUri',
  'resourceSigningAlgValuesSupported', 'maxAge',
];

/** What protectedResource() made, so a guard can tell it from a look-alike object. */
const made = new WeakSet<object>();

/**
 * Publishes RFC 9728 protected resource metadata, so that a client holding only a 401 finds the
 * authorization server: pass the result to `authenticate({ resourceMetadata })`.
 * @example
 * const api = protectedResource({ resource: 'https://api.example/api', authorizationServers: ['https://as.example'], scopesSupported: ['read', 'write'] });
 * app.get(api.metadataPath, api.metadata); // /.well-known/oauth-protected-resource/api
 * app.use('/api', authenticate({ issuer: 'https://as.example', jwksUri: 'https://as.example/jwks', audience: api.resource, resourceMetadata: api }));
 */
export function protectedResource(options: ProtectedResourceOptions): ProtectedResource {
  checkOptions(options, OPTION_NAMES, 'protectedResource()');
  const resource = resourceIdentifier(options.resource);
  const document = Object.freeze(
    protectedResourceMetadata({
      resource,
      authorizationServers: authorizationServers(options.authorizationServers),
      scopesSupported: options.scopesSupported === undefined ? undefined : scopeList(options.scopesSupported),
      bearerMethodsSupported: bearerMethods(options.bearerMethodsSupported ?? ['header']),
      jwksUri: options.jwksUri === undefined ? undefined : webUrl(options.jwksUri, 'jwksUri'),
      resourceSigningAlgValuesSupported:
        options.resourceSigningAlgValuesSupported === undefined ? undefined : signingAlgorithms(options.resourceSigningAlgValuesSupported),
      resourceName: options.resourceName === undefined ? undefined : nonEmptyString(options.resourceName, 'resourceName'),
      resourceDocumentation: options.resourceDocumentation === undefined ? undefined : webUrl(options.resourceDocumentation, 'resourceDocumentation'),
    }),
  );
  // Frozen through: the guard compares bearer_methods_supported with its tokenLocations once, at construction.
  for (const value of Object.values(document)) if (Array.isArray(value)) Object.freeze(value);
  const cacheControl = `public, max-age=${positiveInteger(options.maxAge ?? 300, 'maxAge', 'seconds')}`;
  const body = JSON.stringify(document);
  const metadataUrl = protectedResourceMetadataUrl(resource);
  if (!isQuotable(metadataUrl)) throw new ConfigurationError('`resource` gives a metadata URL that cannot stand in a WWW-Authenticate challenge');

  const metadata = function protectedResourceMetadataMiddleware(req: Request, res: Response, next: NextFunction): void {
    if (req.method !== 'GET' && req.method !== 'HEAD') return next();
    res.set('Cache-Control', cacheControl).type('application/json').send(body);
  };
  const result: ProtectedResource = Object.freeze({ resource, document, metadata, metadataPath: protectedResourceMetadataPath(resource), metadataUrl });
  made.add(result);
  return result;
}

/** True for what {@link protectedResource} returned. */
export function isProtectedResource(value: unknown): value is ProtectedResource {
  return typeof value === 'object' && value !== null && made.has(value);
}

/**
 * RFC 9728 §1.2: a URL with no fragment, and (RFC 8707 §2) SHOULD NOT carry a query; here none,
 * since a query would have to follow the well-known path and no route can match on it. The
 * canonical form is required because §3.3 compares the identifier character for character.
 */
function resourceIdentifier(value: unknown): string {
  const resource = absoluteUrl(value, 'resource');
  const url = new URL(resource);
  if (url.username !== '' || url.password !== '') throw new ConfigurationError('`resource` must not carry a user name or password');
  const canonical = url.pathname === '/' && !resource.endsWith('/') ? url.href.slice(0, -1) : url.href;
  if (resource !== canonical) throw new ConfigurationError(`\`resource\` must be in canonical form (lower-case host, no default port, no dot segments): ${canonical}`);
  return resource;
}

function authorizationServers(value: unknown): string[] {
  if (!Array.isArray(value) || value.length === 0) {
    throw new ConfigurationError('`authorizationServers` must list one or more issuer identifiers or issuer() instances');
  }
  return value.map((server: unknown) => {
    const trusted = typeof server === 'function' && 'trust' in server ? (server as Issuer).trust : server;
    const identifier = typeof trusted === 'object' && trusted !== null && 'issuer' in trusted ? (trusted as TrustedIssuer).issuer : trusted;
    // RFC 8414 §2: an issuer identifier is an https URL without query or fragment.
    return absoluteUrl(identifier, 'authorizationServers');
  });
}

function scopeList(value: unknown): string[] {
  if (!Array.isArray(value) || !value.every((scope) => typeof scope === 'string' && isScopeToken(scope))) {
    throw new ConfigurationError('`scopesSupported` must be a list of scope names (printable ASCII, no spaces, quotes or backslashes)');
  }
  return [...new Set(value as string[])];
}

/** RFC 9728 §2: "header", "body" and "query"; `[]` says no Bearer method (a DPoP-only resource). */
function bearerMethods(value: unknown): BearerMethod[] {
  if (!Array.isArray(value) || !value.every((method) => BEARER_METHODS.includes(method as BearerMethod)) || new Set(value).size !== value.length) {
    throw new ConfigurationError('`bearerMethodsSupported` must list distinct values of header, body, query');
  }
  return value as BearerMethod[];
}

/** RFC 9728 §2: "No default algorithms are implied"; "The value none MUST NOT be used." */
function signingAlgorithms(value: unknown): string[] {
  if (!Array.isArray(value) || value.length === 0 || !value.every((alg) => typeof alg === 'string' && alg !== '' && alg !== 'none')) {
    throw new ConfigurationError('`resourceSigningAlgValuesSupported` must list one or more JWS alg names, and never none');
  }
  return value as string[];
}

function nonEmptyString(value: unknown, option: string): string {
  if (typeof value !== 'string' || value.trim() === '') throw new ConfigurationError(`\`${option}\` must be a non-empty string`);
  return value;
}

/** An http(s) URL other than an identifier: a query is fine, a fragment or credentials are not. */
function webUrl(value: unknown, option: string): string {
  if (!isWebUrl(value)) throw new ConfigurationError(`\`${option}\` must be an absolute http(s) URL without fragment or credentials`);
  return value;
}

/**
 * The `resource_metadata` URL of a guard's option: what protectedResource() made, or an absolute
 * http(s) URL that can stand quoted in a challenge.
 */
export function resourceMetadataUrl(value: unknown): string {
  if (isProtectedResource(value)) return value.metadataUrl;
  const url = typeof value === 'string' ? webUrlOrUndefined(value) : undefined;
  if (url === undefined || !isQuotable(url)) {
    throw new ConfigurationError('`resourceMetadata` must be what protectedResource() returns, or an absolute http(s) URL without fragment, quotes or backslashes');
  }
  return url;
}

function webUrlOrUndefined(value: string): string | undefined {
  try {
    return webUrl(value, 'resourceMetadata');
  } catch {
    return undefined;
  }
}
