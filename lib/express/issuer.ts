// The authorization server as Express middleware: the token endpoint (RFC 6749 §4.4), revocation
// (RFC 7009), introspection (RFC 7662), metadata (RFC 8414) and published keys (RFC 7517).

import { generateKeyPairSync } from 'node:crypto';
import express, { type Express, type RequestHandler } from 'express';
import helmet, { type HelmetOptions } from 'helmet';
import { DEFAULT_HASH_COST, type ClientRecord } from '../core/client.js';
import { clientAuthenticator } from '../core/client-authentication.js';
import { ConfigurationError, isQuotable, wwwAuthenticate } from '../core/errors.js';
import { authorizationServerMetadata, jsonWebKeySet, metadataPath, type EndpointUrls } from '../core/metadata.js';
import { resolveSigningKey, type SigningKey, type SigningKeyInput, type VerificationKey } from '../core/signing-keys.js';
import { introspectToken, requireTokenParameter, revokeToken, type OwnTokens } from '../core/token-introspection.js';
import { checkGrantType, issueAccessToken, type IssuanceConfig } from '../core/token-issuance.js';
import { storeCall } from '../core/store-call.js';
import { defaultAudience, environmentDefaults } from '../env.js';
import { assertClientStore, type ClientStore } from '../stores/client-store.js';
import { MemoryClientStore } from '../stores/memory-client-store.js';
import { MemoryRevocationStore } from '../stores/memory-revocation-store.js';
import { assertRevocationStore, type RevocationStore } from '../stores/revocation-store.js';
import { clientEndpoint, failureLock, perAddressLimiter, type EndpointContext, type LimiterOptions } from './client-endpoint.js';
import { absoluteUrl, checkOptions, positiveInteger } from '../core/options.js';

export interface IssuerOptions {
  /** Client registrations: a list of records or a `ClientStore`. Default: the `OAUTH_CLIENTS_FILE` file. */
  clients?: ClientStore | readonly ClientRecord[];
  /** The issuer identifier, the `iss` of every token. Default: `OAUTH_ISSUER`, else `http://$HOST:$PORT`. */
  issuer?: string;
  /** The `aud` of tokens for clients without their own `audience`. Default: `OAUTH_AUDIENCE`, else issuer + `/api`. */
  audience?: string;
  /** The key tokens are signed with. Default: from `OAUTH_SIGNING_KEY_FILE` or `OAUTH_TOKEN_SECRET`, else an ephemeral ES256 key (with a warning). */
  signingKey?: SigningKeyInput;
  /** Keys that are published and accepted but do not sign: the next key before a switch, the previous one after. Default: none. */
  additionalKeys?: readonly SigningKeyInput[];
  /** Where revoked tokens are remembered. Default: a `MemoryRevocationStore`. */
  revocations?: RevocationStore;
  /** Access token lifetime in seconds, unless a client sets `access_token_ttl`. Default: 600. */
  accessTokenTtl?: number;
  /** `scopes_supported` in the metadata. Default: every scope of the clients, when given as a list or a MemoryClientStore. */
  scopesSupported?: readonly string[];
  /** Absolute URLs for the metadata, where the derived ones are wrong (a proxy that rewrites paths). Default: the issuer's origin and path, plus where each endpoint is mounted. */
  endpoints?: EndpointUrls;
  /** Seconds a JWKS response may be cached (`Cache-Control: max-age`). Default: 300. */
  jwksMaxAge?: number;
  /** Largest request body in bytes. Default: 8192. */
  bodyLimit?: number;
  /** Milliseconds a client store lookup may take before the request fails with a 503. Default: 5000. */
  storeTimeout?: number;
  /**
   * Brute-force protection (RFC 6749 §2.3.1), express-rate-limit options for two limiters shared by
   * all client endpoints, or `false` for none. Default: `failedAuthentication` locks a client id
   * from one address after 10 failed authentications in 15 minutes; `perAddress` allows 300
   * requests a minute per address.
   */
  rateLimit?: false | { failedAuthentication?: false | LimiterOptions; perAddress?: false | LimiterOptions };
  /** Options for helmet's headers, or `false` to leave them to the app. Default: helmet's defaults. */
  helmet?: false | HelmetOptions;
  /** The `realm` of `WWW-Authenticate: Basic`. Default: the issuer identifier. */
  realm?: string;
  /** bcrypt cost of the stored hashes (that of `hashSecret()`): unknown clients are compared against a dummy hash of this cost. Default: 10. */
  secretHashCost?: number;
  /** Where our own failures (a store down) are reported, one line each. Default: `console.error`. */
  onInternalError?: (message: string) => void;
}

/** The keys of an issuer at one moment: one signs, all are published and accepted. */
export interface SigningKeys {
  signingKey: SigningKeyInput;
  additionalKeys?: readonly SigningKeyInput[];
}

/** What a guard needs to trust an issuer: its identifier, audience, keys and revocations. */
export interface TrustedIssuer {
  readonly issuer: string;
  readonly audience: string;
  readonly keys: () => readonly VerificationKey[];
  readonly revocations?: RevocationStore;
  /** Milliseconds a revocation lookup may take. */
  readonly storeTimeout?: number;
}

/** The token endpoint, mounted with `app.use(path, …)`, and its companions. */
export type Issuer = Express & {
  /** Serves RFC 8414 metadata; mount at `metadataPath`. */
  readonly metadata: RequestHandler;
  /** Where RFC 8414 §3 puts the metadata of this issuer: `/.well-known/oauth-authorization-server` plus the issuer's path. */
  readonly metadataPath: string;
  /** Serves the RFC 7517 key set; mount with `app.use(path, …)` so that `jwks_uri` follows. */
  readonly jwks: Express;
  /** The RFC 7009 revocation endpoint; mount with `app.use(path, …)`. */
  readonly revocation: Express;
  /** The RFC 7662 introspection endpoint; mount with `app.use(path, …)`. */
  readonly introspection: Express;
  /** Lets `authenticate({ issuer })` verify this issuer's tokens in the same process. */
  readonly trust: TrustedIssuer;
  /** Replaces the keys at run time, for rotation without a restart. */
  rotateKeys(keys: SigningKeys): void;
};

interface IssuerConfig {
  readonly store: ClientStore;
  readonly revocations: RevocationStore;
  readonly issuer: string;
  readonly audience: string;
  readonly accessTokenTtl: number;
  readonly keys: ResolvedKeys;
  readonly scopesSupported: readonly string[] | undefined;
  readonly endpoints: EndpointUrls;
  readonly jwksMaxAge: number;
  readonly bodyLimit: number;
  readonly storeTimeout: number;
  readonly secretHashCost: number;
  readonly failedAuthLimit: LimiterOptions | false;
  readonly addressLimit: LimiterOptions | false;
  readonly helmet: HelmetOptions | false;
  readonly basicChallenge: string;
  readonly onInternalError: (message: string) => void;
}

interface ResolvedKeys {
  readonly active: SigningKey;
  readonly all: readonly SigningKey[];
  readonly jwks: string;
}

const OPTION_NAMES = [
  'clients', 'issuer', 'audience', 'signingKey', 'additionalKeys', 'revocations', 'accessTokenTtl', 'scopesSupported',
  'endpoints', 'jwksMaxAge', 'bodyLimit', 'storeTimeout', 'rateLimit', 'helmet', 'realm', 'secretHashCost', 'onInternalError',
] as const;

/** Trusted issuers by the app they are mounted in, so that `requireScope()` alone finds its keys. */
export const mountedIssuers = new WeakMap<object, TrustedIssuer>();

/**
 * The authorization server of the client credentials grant (RFC 6749 §4.4).
 * @example
 * const tokens = issuer({ clients: MemoryClientStore.fromFile('clients.json'), signingKey: { privateKey: pem } });
 * app.use('/token', tokens);
 * app.use('/revoke', tokens.revocation);
 * app.use('/introspect', tokens.introspection);
 * app.use('/.well-known/jwks.json', tokens.jwks);
 * app.get(tokens.metadataPath, tokens.metadata);
 */
export function issuer(options: IssuerOptions = {}): Issuer {
  const config = resolveIssuerOptions(options);
  let keys = config.keys;

  const context: EndpointContext = {
    authenticateClient: clientAuthenticator({
      store: config.store,
      storeTimeout: config.storeTimeout,
      hashCost: config.secretHashCost,
      onCostMismatch: (clientId, cost) =>
        process.emitWarning(
          `client ${JSON.stringify(clientId)} has a bcrypt hash of cost ${cost}, but secretHashCost is ${config.secretHashCost}: timing could tell it from unknown clients`,
          { code: 'ECC_HASH_COST' },
        ),
    }),
    hardening: [
      ...(config.helmet === false ? [] : [helmet(config.helmet)]),
      ...(config.addressLimit === false ? [] : [perAddressLimiter(config.addressLimit)]),
    ],
    bodyLimit: config.bodyLimit,
    basicChallenge: config.basicChallenge,
    failureLock: config.failedAuthLimit === false ? undefined : failureLock(config.failedAuthLimit),
    onInternalError: config.onInternalError,
  };
  const issuance: IssuanceConfig = {
    issuer: config.issuer,
    audience: config.audience,
    accessTokenTtl: config.accessTokenTtl,
    signingKey: () => keys.active,
  };
  const own: OwnTokens = {
    // The issuer checks its own tokens whatever their audience, to the second.
    verifier: { issuer: config.issuer, audiences: undefined, keys: () => keys.all, clockTolerance: 0, strict: true },
    revocations: config.revocations,
    clientIsActive: async (clientId) => {
      const record = await storeCall(() => config.store.findClient(clientId), config.storeTimeout, 'The client registry is unavailable; try again later');
      return record !== undefined && record.disabled !== true;
    },
    storeTimeout: config.storeTimeout,
  };

  const app = clientEndpoint(context, {
    name: 'token',
    parameters: ['grant_type', 'scope'],
    validate: (params) => (checkGrantType(params.grant_type), params.scope),
    act: async (client, scope, res) => {
      res.status(200).json(issueAccessToken(client, scope, issuance));
    },
  });
  const revocation = clientEndpoint(context, {
    name: 'revocation',
    parameters: ['token', 'token_type_hint'],
    // The hint only orders a search (RFC 7009 §2.1); with one kind of token there is nothing to order.
    validate: (params) => requireTokenParameter(params.token),
    act: async (client, token, res) => {
      await revokeToken(token, client, own);
      res.status(200).end();
    },
  });
  const introspection = clientEndpoint(context, {
    name: 'introspection',
    parameters: ['token', 'token_type_hint'],
    validate: (params) => requireTokenParameter(params.token),
    act: async (client, token, res) => {
      res.status(200).json(await introspectToken(token, client, own));
    },
  });
  const jwks = express();
  jwks.disable('x-powered-by');
  // Any GET that reaches it: mounted with app.use, or used as a route handler.
  jwks.use((req, res, next) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return next();
    res.set('Cache-Control', `public, max-age=${config.jwksMaxAge}`).type('application/jwk-set+json').send(keys.jwks);
  });

  const trust: TrustedIssuer = {
    issuer: config.issuer,
    audience: config.audience,
    keys: () => keys.all,
    revocations: config.revocations,
    storeTimeout: config.storeTimeout,
  };
  app.on('mount', (parent: object) => mountedIssuers.set(parent, trust));

  // Express sets `parent` when a sub-app is mounted with app.use(); unmounted endpoints are not listed,
  // and a mount path that is a pattern or a list names no single URL.
  const urlOf = (endpoint: Express): string | undefined => {
    const mount = endpoint.mountpath;
    if ((endpoint as { parent?: unknown }).parent === undefined || typeof mount !== 'string') return undefined;
    return /[:*?()[\]{}]/.test(endpoint.path()) ? undefined : publicUrl(config.issuer, endpoint.path());
  };
  const metadata: RequestHandler = (_req, res) => {
    res.json(
      authorizationServerMetadata({
        issuer: config.issuer,
        endpoints: {
          token: urlOf(app) ?? `${config.issuer.replace(/\/$/, '')}/token`,
          jwks: urlOf(jwks) ?? `${config.issuer.replace(/\/$/, '')}/.well-known/jwks.json`,
          revocation: urlOf(revocation),
          introspection: urlOf(introspection),
          ...config.endpoints,
        },
        scopesSupported: config.scopesSupported,
      }),
    );
  };
  const rotateKeys = (next: SigningKeys): void => {
    checkOptions(next, ['signingKey', 'additionalKeys'], 'rotateKeys()');
    keys = resolveKeys(next.signingKey, next.additionalKeys);
  };
  return Object.assign(app, { metadata, metadataPath: metadataPath(config.issuer), jwks, revocation, introspection, trust, rotateKeys });
}

/**
 * Where a mounted endpoint is reached from outside: the issuer's origin and path followed by the
 * mount path, unless the mount path already starts with the issuer's path (no proxy strips it).
 */
function publicUrl(issuer: string, mountPath: string): string {
  const url = new URL(issuer);
  const base = url.pathname.replace(/\/$/, '');
  const path = base !== '' && (mountPath === base || mountPath.startsWith(`${base}/`)) ? mountPath : `${base}${mountPath}`;
  return `${url.origin}${path}`;
}

function resolveKeys(signingKey: SigningKeyInput, additionalKeys: readonly SigningKeyInput[] = []): ResolvedKeys {
  if (!Array.isArray(additionalKeys)) throw new ConfigurationError('`additionalKeys` must be a list of keys');
  const active = resolveSigningKey(signingKey);
  const all = [active, ...additionalKeys.map((key, i) => resolveSigningKey(key, `additionalKeys[${i}]`))];
  const kids = all.map((key) => key.kid);
  if (new Set(kids).size !== kids.length) throw new ConfigurationError('every signing key needs its own `kid`');
  return { active, all, jwks: JSON.stringify(jsonWebKeySet(all)) };
}

function resolveIssuerOptions(options: IssuerOptions): IssuerConfig {
  checkOptions(options, OPTION_NAMES, 'issuer()');
  const env = environmentDefaults();
  const issuerId = absoluteUrl(options.issuer ?? env.issuer, 'issuer');
  const store = resolveStore(options.clients, env.clientsFile);
  const revocations = options.revocations ?? new MemoryRevocationStore();
  assertRevocationStore(revocations, 'revocations');
  const realm = options.realm ?? issuerId;
  if (typeof realm !== 'string' || !isQuotable(realm)) throw new ConfigurationError('`realm` must be printable ASCII without " or \\');
  const rateLimits = options.rateLimit ?? {};
  return {
    store,
    revocations,
    issuer: issuerId,
    audience: nonEmpty(options.audience ?? env.audience ?? defaultAudience(issuerId), 'audience'),
    accessTokenTtl: positiveInteger(options.accessTokenTtl ?? 600, 'accessTokenTtl', 'seconds'),
    keys: resolveKeys(options.signingKey ?? env.signingKey ?? ephemeralKey(), options.additionalKeys),
    scopesSupported: options.scopesSupported ?? (store instanceof MemoryClientStore ? store.scopes() : undefined),
    endpoints: resolveEndpoints(options.endpoints ?? {}),
    jwksMaxAge: positiveInteger(options.jwksMaxAge ?? 300, 'jwksMaxAge', 'seconds'),
    bodyLimit: positiveInteger(options.bodyLimit ?? 8192, 'bodyLimit', 'bytes'),
    storeTimeout: positiveInteger(options.storeTimeout ?? 5000, 'storeTimeout', 'milliseconds'),
    secretHashCost: hashCostOption(options.secretHashCost ?? DEFAULT_HASH_COST),
    failedAuthLimit: rateLimits === false ? false : (rateLimits.failedAuthentication ?? {}),
    addressLimit: rateLimits === false ? false : (rateLimits.perAddress ?? {}),
    helmet: options.helmet ?? {},
    basicChallenge: wwwAuthenticate('Basic', { realm }),
    onInternalError: options.onInternalError ?? ((message) => console.error(message)),
  };
}

function resolveEndpoints(endpoints: EndpointUrls): EndpointUrls {
  checkOptions(endpoints, ['token', 'jwks', 'revocation', 'introspection'], '`endpoints`');
  for (const [name, url] of Object.entries(endpoints)) if (url !== undefined) absoluteUrl(url, `endpoints.${name}`);
  return endpoints;
}

function resolveStore(clients: IssuerOptions['clients'], clientsFile: string | undefined): ClientStore {
  if (clients === undefined) {
    if (clientsFile === undefined) throw new ConfigurationError('issuer() needs `clients` (a list of client records or a ClientStore), or OAUTH_CLIENTS_FILE');
    return MemoryClientStore.fromFile(clientsFile);
  }
  if (Array.isArray(clients)) return new MemoryClientStore(clients);
  assertClientStore(clients, 'clients');
  return clients;
}

function ephemeralKey(): SigningKeyInput {
  process.emitWarning(
    'issuer(): no signing key configured; using an ephemeral ES256 key, so tokens die with this process. Set signingKey, OAUTH_SIGNING_KEY_FILE or OAUTH_TOKEN_SECRET.',
    { code: 'ECC_EPHEMERAL_KEY' },
  );
  return { privateKey: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey };
}

function hashCostOption(value: unknown): number {
  if (!(Number.isSafeInteger(value) && (value as number) >= 4 && (value as number) <= 31)) {
    throw new ConfigurationError('`secretHashCost` must be a bcrypt cost from 4 to 31');
  }
  return value as number;
}

function nonEmpty(value: unknown, option: string): string {
  if (typeof value !== 'string' || value === '') throw new ConfigurationError(`\`${option}\` must be a non-empty string`);
  return value;
}
