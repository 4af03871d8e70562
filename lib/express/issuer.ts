// The authorization server as Express middleware: the token endpoint (RFC 6749 §4.4), revocation
// (RFC 7009), introspection (RFC 7662), metadata (RFC 8414) and published keys (RFC 7517).

import { generateKeyPairSync } from 'node:crypto';
import type { Request, RequestHandler } from 'express';
import { ipKeyGenerator } from 'express-rate-limit';
import type { HelmetOptions } from 'helmet';
import { AdmissionQueue, type AdmissionLimits } from '../core/admission.js';
import { auditor, type AuditEvent } from '../core/audit.js';
import { compareWorkers, releaseIdleWorkers } from '../core/bcrypt.js';
import { BCRYPT, DEFAULT_HASH_COST, type ClientRecord } from '../core/client.js';
import { ClientKeys } from '../core/client-assertion.js';
import { clientAuthenticator, type SecretCacheRules } from '../core/client-authentication.js';
import type { ClientEndpointContext } from '../core/client-endpoint.js';
import { ConfigurationError, wwwAuthenticate } from '../core/errors.js';
import { reportInternalError } from '../core/exchange.js';
import { issuerEndpoints } from '../core/issuer-endpoints.js';
import type { JsonObject } from '../core/jws.js';
import { KeyRing, type SigningKeys } from '../core/key-ring.js';
import { isLoopbackHost } from '../core/loopback.js';
import { authorizationServerMetadata, metadataPath, type EndpointUrls } from '../core/metadata.js';
import { absoluteUrl, boolean, checkOptions, definedOptions, positiveInteger, realmOption } from '../core/options.js';
import type { SigningKeyInput } from '../core/signing-keys.js';
import { storeCall } from '../core/store-call.js';
import { assertClientStore, assertReplayCache, assertRevocationStore, type ClientStore, type ReplayCache, type RevocationStore } from '../core/stores.js';
import { throttledReporter } from '../core/throttled-report.js';
import type { OwnTokens } from '../core/token-introspection.js';
import type { GrantContext, IssuanceConfig } from '../core/token-issuance.js';
import { MAX_TOKEN_LIFETIME } from '../core/token-lifetime.js';
import { warnOnce } from '../core/warnings.js';
import { defaultAudience, environmentDefaults, issuerIdentifier } from '../env.js';
import { MemoryClientStore } from '../stores/memory-client-store.js';
import { MemoryReplayCache } from '../stores/memory-replay-cache.js';
import { MemoryRevocationStore } from '../stores/memory-revocation-store.js';
import { serveClientEndpoint, type ServeEndpoint } from './client-endpoint.js';
import { send } from './exchange.js';
import { failureLockRules, perAddressLimiter, type LimiterOptions } from './rate-limits.js';
import { securityHeaders } from './security-headers.js';
import { markRequest, registerIssuer, type TrustedIssuer } from './trusted-issuers.js';

export type { SigningKeys } from '../core/key-ring.js';
export type { TrustedIssuer } from './trusted-issuers.js';

export interface IssuerOptions {
  /** Client registrations: a list of records or a `ClientStore`. Default: the `OAUTH_CLIENTS_FILE` file. */
  clients?: ClientStore | readonly ClientRecord[] | undefined;
  /** The issuer identifier, the `iss` of every token. Default: `OAUTH_ISSUER`; else guessed as `http://$HOST:$PORT` with a warning, and refused under `NODE_ENV=production`. */
  issuer?: string | undefined;
  /** The `aud` of tokens for clients without their own `audience`. Default: `OAUTH_AUDIENCE`, else issuer + `/api`. */
  audience?: string | undefined;
  /** The key tokens are signed with. Default: from `OAUTH_SIGNING_KEY_FILE` or `OAUTH_TOKEN_SECRET`, else an ephemeral ES256 key (with a warning). */
  signingKey?: SigningKeyInput | undefined;
  /** Keys that are published and accepted but do not sign: the next key before a switch, the previous one after. Default: none. */
  additionalKeys?: readonly SigningKeyInput[] | undefined;
  /** Where revoked tokens are remembered. Default: a `MemoryRevocationStore`. */
  revocations?: RevocationStore | undefined;
  /** Where used private_key_jwt assertion ids are remembered, to refuse replays. Default: a `MemoryReplayCache`. */
  replayCache?: ReplayCache | undefined;
  /** Seconds a private_key_jwt assertion may still have to live (`exp` - now). Default: 300. */
  assertionMaxLifetime?: number | undefined;
  /** A policy hook: throw an `OAuthError` (e.g. `unauthorized_client`, `invalid_scope`) to refuse a grant. */
  authorizeGrant?: ((context: GrantContext<Request>) => void | Promise<void>) | undefined;
  /** Claims to add to a token, per client or per request (e.g. a tenant id); registered claims (`iss`, `sub`, `aud`, `exp`, …) are never overridden. */
  extraClaims?: (context: GrantContext<Request>) => JsonObject | undefined | Promise<JsonObject | undefined>;
  /** Receives audit events (token issued or refused, client authentication failed, token revoked, rate limit hit). Never secrets or tokens. */
  onAuditEvent?: ((event: AuditEvent) => void) | undefined;
  /** Access token lifetime in seconds, unless a client sets `access_token_ttl`. Default: 600. */
  accessTokenTtl?: number | undefined;
  /** `scopes_supported` in the metadata. Default: every scope of the clients, when given as a list or a MemoryClientStore. */
  scopesSupported?: readonly string[] | undefined;
  /**
   * Each endpoint's absolute URL, as the metadata lists it and as the issuer serves it (at its
   * path, and at its path without the issuer's own, which a proxy may strip); `false` turns off
   * revocation or introspection. Default: the issuer identifier plus `/token`, `/.well-known/jwks.json`,
   * `/revoke` and `/introspect`.
   */
  endpoints?: EndpointUrls | undefined;
  /** Seconds a JWKS response may be cached (`Cache-Control: max-age`). Default: 300. */
  jwksMaxAge?: number | undefined;
  /** Largest request body in bytes. Default: 8192. */
  bodyLimit?: number | undefined;
  /** Milliseconds a client store lookup may take before the request fails with a 503. Default: 5000. */
  storeTimeout?: number | undefined;
  /**
   * Refuse client credentials that did not arrive over TLS (`req.secure`, which follows the app's
   * `trust proxy`) with 400 `invalid_request`, loopback excepted, and require an https issuer
   * identifier (RFC 6749 §2.3.1, RFC 8414 §2). Default: true under `NODE_ENV=production`.
   */
  requireHttps?: boolean | undefined;
  /**
   * Brute-force protection (RFC 6749 §2.3.1) for all client endpoints together, or `false` for none.
   * `failedAuthentication` (`windowMs`, `limit`, `store`): a client id is judged at most `limit` times
   * from one address in `windowMs`, counted as each judgment starts and given back when it succeeds;
   * then the pair is locked until the window ends. Default: 10 in 15 minutes. `perAddress`:
   * express-rate-limit options for a cap per address and endpoint. Default: 300 a minute, failing
   * open (`passOnStoreError`) when its store is down. Both count in memory by default, at most
   * 100 000 keys each; every store call is bounded by `storeTimeout`.
   */
  rateLimit?: false | { failedAuthentication?: false | LimiterOptions; perAddress?: false | LimiterOptions } | undefined;
  /** Options for helmet's headers, or `false` to leave them to the app. Default: helmet's defaults. */
  helmet?: false | HelmetOptions | undefined;
  /** The `realm` of `WWW-Authenticate: Basic`. Default: the issuer identifier. */
  realm?: string | undefined;
  /** bcrypt cost of the stored hashes (that of `hashSecret()`): unknown clients are compared against a dummy hash of this cost. Default: 10. */
  secretHashCost?: number | undefined;
  /**
   * Remembers, as keyed digests, secrets bcrypt accepted, so a client repeating its right secret
   * costs a hash instead of a bcrypt comparison; a wrong secret always pays bcrypt. An entry lives
   * `ttl` seconds after its last use, and about `maxAge` seconds (±10 %, so that clients that
   * started together do not expire together) after bcrypt accepted it. `false` turns it off.
   * Default: `{ ttl: 60, maxAge: 3600, maxEntries: 10000 }`.
   */
  secretCache?: false | { ttl?: number; maxAge?: number; maxEntries?: number } | undefined;
  /**
   * Admission control for bcrypt comparisons, the one costly thing an unauthenticated request can
   * ask for. A comparison waits at most `maxWait` milliseconds in a queue of at most `maxQueued`,
   * with at most `perAddress` queued or running for one address; otherwise its request is answered
   * at once with 503 `temporarily_unavailable` and `Retry-After`. Clients found in the registry go
   * first, and unknown ids may hold at most half the queue. A secret the cache already accepted
   * never waits. Defaults, with W comparison workers (one per core, up to 4): `maxQueued` 32 × W,
   * `maxWait` 5000, `perAddress` 4 × W.
   */
  comparisonQueue?: { maxQueued?: number; maxWait?: number; perAddress?: number } | undefined;
  /** Where our own failures (a store down) are reported, one line each. Default: `console.error`. */
  onInternalError?: ((message: string) => void) | undefined;
}

/** The token endpoint and its companions, as one Express middleware that serves each at its path. */
export type Issuer = RequestHandler & {
  /** Serves RFC 8414 metadata wherever it is mounted (the issuer itself serves it at `metadataPath`). */
  readonly metadata: RequestHandler;
  /** Where RFC 8414 §3 puts the metadata of this issuer: `/.well-known/oauth-authorization-server` plus the issuer's path. */
  readonly metadataPath: string;
  /** The URL of each endpoint, as the metadata lists them. */
  readonly endpoints: ResolvedEndpoints;
  /** The RFC 7517 key set alone, for a path of your own (set `endpoints.jwks` to match). */
  readonly jwks: RequestHandler;
  /** The token endpoint alone, for a path of your own (set `endpoints.token` to match). */
  readonly token: RequestHandler;
  /** The RFC 7009 revocation endpoint alone, for a path of your own (set `endpoints.revocation` to match). */
  readonly revocation: RequestHandler;
  /** The RFC 7662 introspection endpoint alone, for a path of your own (set `endpoints.introspection` to match). */
  readonly introspection: RequestHandler;
  /** Lets `authenticate({ issuer })` verify this issuer's tokens in the same process. */
  readonly trust: TrustedIssuer;
  /** Replaces the keys at run time, for rotation without a restart; a bad key throws and changes nothing. */
  rotateKeys(keys: SigningKeys): void;
  /**
   * Stops admitting secret comparisons (new and queued requests get 503 `temporarily_unavailable`),
   * lets the comparisons in flight finish, then stops this issuer's workers. Close the HTTP server
   * first and the stores you passed in after: the issuer does not own them.
   */
  close(): Promise<void>;
  /** The bcrypt comparison queue now: how many wait, and the most that ever waited (for health checks and load tests). */
  readonly comparisons: { readonly queued: number; readonly peakQueued: number };
};

/** The endpoints' public URLs; revocation and introspection are absent when turned off. */
export interface ResolvedEndpoints {
  readonly token: string;
  readonly jwks: string;
  readonly revocation?: string | undefined;
  readonly introspection?: string | undefined;
}

interface IssuerConfig {
  readonly store: ClientStore;
  readonly revocations: RevocationStore;
  readonly replayCache: ReplayCache;
  readonly assertionMaxLifetime: number;
  readonly authorizeGrant: IssuerOptions['authorizeGrant'];
  readonly extraClaims: IssuerOptions['extraClaims'];
  readonly onAuditEvent: IssuerOptions['onAuditEvent'];
  readonly issuer: string;
  readonly audience: string;
  readonly accessTokenTtl: number;
  readonly keys: SigningKeys;
  readonly scopesSupported: readonly string[] | undefined;
  readonly endpoints: ResolvedEndpoints;
  readonly jwksMaxAge: number;
  readonly bodyLimit: number;
  readonly storeTimeout: number;
  readonly requireHttps: boolean;
  readonly secretHashCost: number;
  readonly secretCache: SecretCacheRules | undefined;
  readonly comparisonQueue: AdmissionLimits;
  readonly failedAuthLimit: LimiterOptions | false;
  readonly addressLimit: LimiterOptions | false;
  readonly helmet: HelmetOptions | false;
  readonly basicChallenge: string;
  readonly onInternalError: (message: string) => void;
}

const OPTION_NAMES: readonly (keyof IssuerOptions)[] = [
  'clients', 'issuer', 'audience', 'signingKey', 'additionalKeys', 'revocations', 'replayCache', 'assertionMaxLifetime', 'authorizeGrant',
  'extraClaims', 'onAuditEvent', 'accessTokenTtl', 'scopesSupported',
  'endpoints', 'jwksMaxAge', 'bodyLimit', 'storeTimeout', 'requireHttps', 'rateLimit', 'helmet', 'realm', 'secretHashCost', 'secretCache', 'comparisonQueue', 'onInternalError',
];

type EndpointName = keyof ResolvedEndpoints;

/**
 * The authorization server of the client credentials grant (RFC 6749 §4.4), as one middleware:
 * mounted with `app.use(tokens)` it serves every endpoint at the path of its URL (by default the
 * issuer identifier's path plus `/token`, `/revoke`, `/introspect`, `/.well-known/jwks.json`) and the
 * metadata at `metadataPath`, on an app or a Router at any depth. `app.use('/token', tokens)` serves
 * the token endpoint alone.
 * @example
 * const tokens = issuer({ clients: MemoryClientStore.fromFile('clients.json'), signingKey: { privateKey: pem } });
 * app.use(tokens);
 */
export function issuer(options: IssuerOptions = {}): Issuer {
  const config = resolveIssuerOptions(options);
  const keys = new KeyRing(config.keys);
  // One line per kind of failure and interval: a store that is down fails every request.
  const throttled = throttledReporter(config.onInternalError);
  const onInternalError = (message: string): void => throttled(message.replace(/ \(.*$/s, ''), message);
  const audit = auditor(config.onAuditEvent, (error) => reportInternalError(error, onInternalError));
  const admission = new AdmissionQueue(config.comparisonQueue);

  const context: ClientEndpointContext = {
    authenticateClient: clientAuthenticator({
      store: config.store,
      storeTimeout: config.storeTimeout,
      hashCost: config.secretHashCost,
      onCostMismatch: (clientId, cost) =>
        process.emitWarning(
          `client ${JSON.stringify(clientId)} has a bcrypt hash of cost ${cost}, but secretHashCost is ${config.secretHashCost}: timing could tell it from unknown clients`,
          { code: 'ECC_HASH_COST' },
        ),
      assertions: {
        // RFC 7523 §3 item 3: the issuer identifier, or the token endpoint URL.
        audiences: () => [config.issuer, config.endpoints.token],
        replayCache: config.replayCache,
        maxLifetime: config.assertionMaxLifetime,
        clockTolerance: 5,
        storeTimeout: config.storeTimeout,
      },
      clientKeys: new ClientKeys(),
      secretCache: config.secretCache,
      admission,
      failureLock: config.failedAuthLimit === false ? undefined : failureLockRules(config.failedAuthLimit, config.storeTimeout, throttled),
    }),
    audit,
    requireHttps: config.requireHttps,
    basicChallenge: config.basicChallenge,
    onInternalError,
    addressKey: addressKey,
  };
  let warnedClaims = false;
  const issuance: IssuanceConfig<Request> = {
    issuer: config.issuer,
    audience: config.audience,
    accessTokenTtl: config.accessTokenTtl,
    signingKey: () => keys.active,
    authorizeGrant: config.authorizeGrant,
    extraClaims: config.extraClaims,
    onIgnoredClaims: (names) => {
      if (warnedClaims) return;
      warnedClaims = true;
      process.emitWarning(`extraClaims returned registered claims (${names.join(', ')}); they are ignored`, { code: 'ECC_REGISTERED_CLAIMS' });
    },
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
  const endpoints = issuerEndpoints(context, issuance, own);
  const hardening = [
    ...(config.helmet === false ? [] : [securityHeaders(config.helmet)]),
    ...(config.addressLimit === false ? [] : [perAddressLimiter(config.addressLimit, audit, config.storeTimeout, throttled)]),
  ];
  const serve = (name: 'token' | 'revocation' | 'introspection'): ServeEndpoint => serveClientEndpoint(endpoints[name], hardening, config.bodyLimit);
  const jwksHeaders = { 'Cache-Control': `public, max-age=${config.jwksMaxAge}`, 'Content-Type': 'application/jwk-set+json; charset=utf-8' };
  const serveJwks: ServeEndpoint = (req, res, next) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return next();
    send(res, { status: 200, headers: jwksHeaders, body: req.method === 'HEAD' ? undefined : keys.jwks });
  };
  const metadataJson = JSON.stringify(authorizationServerMetadata({ issuer: config.issuer, endpoints: config.endpoints, scopesSupported: config.scopesSupported }));
  const metadata: RequestHandler = (_req, res) => send(res, { status: 200, headers: { 'Content-Type': 'application/json; charset=utf-8' }, body: metadataJson });
  const servers = { token: serve('token'), revocation: serve('revocation'), introspection: serve('introspection'), jwks: serveJwks };

  const trust: TrustedIssuer = {
    issuer: config.issuer,
    audience: config.audience,
    keys: () => keys.all,
    revocations: config.revocations,
    storeTimeout: config.storeTimeout,
    report: throttled,
  };
  const unregister = registerIssuer(trust);
  let closing: Promise<void> | undefined;

  // Each endpoint at the path of its URL.
  const routes = new Map<string, ServeEndpoint>();
  for (const [name, url] of Object.entries(config.endpoints) as [EndpointName, string | undefined][]) {
    if (url !== undefined) routes.set(localPath(url), servers[name]);
  }
  const metadataPathname = metadataPath(config.issuer);
  routes.set(metadataPathname, (req, res, next) => (req.method === 'GET' || req.method === 'HEAD' ? metadata(req, res, next) : next()));
  const mismatch = mismatchWarning(config);
  let saidUnserved = false;
  const unserved = (here: string): void => {
    if (saidUnserved) return;
    saidUnserved = true;
    process.emitWarning(
      `the issuer got a POST at ${JSON.stringify(here.slice(0, 200))}, where it is mounted, but serves its token endpoint at ${config.endpoints.token}: mount it with app.use(tokens), or set endpoints.token to the URL it is reached at`,
      { code: 'ECC_MOUNT' },
    );
  };

  const issuerMiddleware: RequestHandler = function issuerMiddleware(req, res, next) {
    if (closing === undefined) markRequest(req, trust);
    const here = pathHere(req);
    const route = routes.get(here);
    if (route !== undefined) return route(req, res, next);
    // A POST at the issuer's own mount point (`app.use('/oauth/token', tokens)`) names none of its paths: said once.
    if (req.method === 'POST' && req.path === '/' && req.baseUrl !== '') unserved(here);
    next();
  };
  /** One endpoint alone: it answers wherever it is mounted or routed, and says once when that is not where its URL says. */
  const alone = (name: EndpointName): RequestHandler => {
    const path = config.endpoints[name] === undefined ? undefined : localPath(config.endpoints[name]);
    return (req, res, next) => {
      const here = pathHere(req);
      if (here !== path) {
        // Its own mount point or route; elsewhere (below it, or the root of an app it is not mounted on) it is not reached.
        if (req.route === undefined && (req.path !== '/' || req.baseUrl === '')) return next();
        mismatch(name, here);
      }
      servers[name](req, res, next);
    };
  };
  const close = (): Promise<void> => {
    if (closing === undefined) unregister();
    return (closing ??= admission.close().then(releaseIdleWorkers));
  };
  return Object.assign(issuerMiddleware, {
    metadata,
    metadataPath: metadataPathname,
    endpoints: Object.freeze({ ...config.endpoints }),
    jwks: alone('jwks'),
    token: alone('token'),
    revocation: alone('revocation'),
    introspection: alone('introspection'),
    trust,
    rotateKeys: (next: SigningKeys) => keys.rotate(next),
    close,
    comparisons: admission as Issuer['comparisons'],
  });
}

/** The request's path in the app: where it is mounted plus the rest, without a trailing `/`. */
function pathHere(req: Request): string {
  return withoutTrailingSlash(req.baseUrl + req.path);
}

/** Where a request for `url` arrives: its path, without a trailing `/`. */
function localPath(url: string): string {
  return withoutTrailingSlash(new URL(url).pathname);
}

const withoutTrailingSlash = (path: string): string => (path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path);

/** Says once per endpoint that it answered at a path its URL in the metadata does not name. */
function mismatchWarning(config: IssuerConfig): (name: EndpointName, here: string) => void {
  const said = new Set<EndpointName>();
  return (name, here) => {
    if (said.has(name)) return;
    said.add(name);
    const url = config.endpoints[name];
    process.emitWarning(
      url === undefined
        ? `the ${name} endpoint answered at ${JSON.stringify(here.slice(0, 200))}, but it is turned off in the metadata (endpoints.${name}: false): set endpoints.${name} to its URL`
        : `the ${name} endpoint answered at ${JSON.stringify(here.slice(0, 200))}, but the metadata says it is at ${url}: clients that read the metadata will not find it. Mount the issuer with app.use(tokens), or set endpoints.${name} to the URL it is reached at`,
      { code: 'ECC_MOUNT' },
    );
  };
}

const addressKey = (address: string): string => ipKeyGenerator(address);

function resolveIssuerOptions(options: IssuerOptions): IssuerConfig {
  checkOptions(options, OPTION_NAMES, 'issuer()');
  const env = environmentDefaults();
  const issuerId = issuerIdentifier(options.issuer, 'issuer()');
  const requireHttps = boolean(options.requireHttps ?? env.production, 'requireHttps');
  if (options.requireHttps === false) warnOnce('ECC_HTTPS_OFF', 'issuer(): requireHttps is false, so client secrets may travel unencrypted; RFC 6749 §2.3.1 requires TLS. Terminate TLS in front of the app and drop the option.');
  const { protocol, hostname } = new URL(issuerId);
  if (requireHttps && protocol !== 'https:' && !isLoopbackHost(hostname)) {
    throw new ConfigurationError(`\`issuer\` must be an https URL (RFC 8414 §2) while requireHttps is on${env.production ? ' (NODE_ENV=production)' : ''}: the URL clients reach this server at, behind its TLS`);
  }
  const store = resolveStore(options.clients, env.clientsFile);
  const revocations = options.revocations ?? new MemoryRevocationStore();
  assertRevocationStore(revocations, 'revocations');
  const replayCache = options.replayCache ?? new MemoryReplayCache();
  assertReplayCache(replayCache, 'replayCache');
  for (const hook of ['authorizeGrant', 'extraClaims', 'onAuditEvent'] as const) {
    if (options[hook] !== undefined && typeof options[hook] !== 'function') throw new ConfigurationError(`\`${hook}\` must be a function`);
  }
  const realm = realmOption(options.realm ?? issuerId);
  const rateLimits = options.rateLimit ?? {};
  return {
    store,
    revocations,
    replayCache,
    assertionMaxLifetime: positiveInteger(options.assertionMaxLifetime ?? 300, 'assertionMaxLifetime', 'seconds'),
    authorizeGrant: options.authorizeGrant,
    extraClaims: options.extraClaims,
    onAuditEvent: options.onAuditEvent,
    issuer: issuerId,
    audience: nonEmpty(options.audience ?? env.audience ?? defaultAudience(issuerId), 'audience'),
    accessTokenTtl: atMost(positiveInteger(options.accessTokenTtl ?? 600, 'accessTokenTtl', 'seconds'), MAX_TOKEN_LIFETIME, 'accessTokenTtl'),
    keys: { signingKey: options.signingKey ?? env.signingKey ?? ephemeralKey(), additionalKeys: options.additionalKeys },
    scopesSupported: options.scopesSupported ?? (store instanceof MemoryClientStore ? store.scopes() : undefined),
    endpoints: resolveEndpoints(options.endpoints ?? {}, issuerId),
    jwksMaxAge: positiveInteger(options.jwksMaxAge ?? 300, 'jwksMaxAge', 'seconds'),
    bodyLimit: positiveInteger(options.bodyLimit ?? 8192, 'bodyLimit', 'bytes'),
    storeTimeout: positiveInteger(options.storeTimeout ?? 5000, 'storeTimeout', 'milliseconds'),
    requireHttps,
    secretHashCost: hashCostOption(options.secretHashCost ?? DEFAULT_HASH_COST),
    secretCache: secretCacheOption(options.secretCache),
    comparisonQueue: comparisonQueueOption(options.comparisonQueue),
    failedAuthLimit: rateLimits === false ? false : (rateLimits.failedAuthentication ?? {}),
    addressLimit: rateLimits === false ? false : (rateLimits.perAddress ?? {}),
    helmet: options.helmet ?? {},
    basicChallenge: wwwAuthenticate('Basic', { realm }),
    onInternalError: options.onInternalError ?? ((message) => console.error(message)),
  };
}

function resolveEndpoints(endpoints: EndpointUrls, issuerId: string): ResolvedEndpoints {
  checkOptions(endpoints, ['token', 'jwks', 'revocation', 'introspection'], '`endpoints`');
  const base = issuerId.replace(/\/$/, '');
  const url = (name: keyof EndpointUrls, path: string): string | undefined => {
    const given = endpoints[name];
    if (given === false) {
      if (name === 'token' || name === 'jwks') throw new ConfigurationError(`\`endpoints.${name}\` cannot be turned off`);
      return undefined;
    }
    return given === undefined ? `${base}${path}` : absoluteUrl(given, `endpoints.${name}`);
  };
  const resolved = definedOptions({
    token: url('token', '/token')!,
    jwks: url('jwks', '/.well-known/jwks.json')!,
    revocation: url('revocation', '/revoke'),
    introspection: url('introspection', '/introspect'),
  }) as ResolvedEndpoints;
  const paths = Object.values(resolved).map(localPath);
  if (new Set(paths).size !== paths.length) throw new ConfigurationError('`endpoints`: two endpoints at one path; give each its own');
  return resolved;
}

function resolveStore(clients: IssuerOptions['clients'], clientsFile: string | undefined): ClientStore {
  if (clients === undefined) {
    if (clientsFile === undefined) throw new ConfigurationError('issuer() needs `clients` (a list of client records or a ClientStore), or OAUTH_CLIENTS_FILE');
    return MemoryClientStore.fromFile(clientsFile);
  }
  if (Array.isArray(clients)) {
    // Often a file or a variable that was read as empty: every request would get 401 without a word.
    if (clients.length === 0) warnOnce('ECC_NO_CLIENTS', 'issuer(): the client list is empty, so every token request gets 401 invalid_client; register clients with `npx express-client-credentials create-client`');
    return new MemoryClientStore(clients);
  }
  assertClientStore(clients, 'clients');
  return clients;
}

function ephemeralKey(): SigningKeyInput {
  warnOnce('ECC_EPHEMERAL_KEY', 'issuer(): no signing key configured; using an ephemeral ES256 key, so tokens die with this process. Set signingKey, OAUTH_SIGNING_KEY_FILE or OAUTH_TOKEN_SECRET.');
  return { privateKey: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey };
}

function secretCacheOption(option: IssuerOptions['secretCache']): IssuerConfig['secretCache'] {
  if (option === false) return undefined;
  checkOptions(option ?? {}, ['ttl', 'maxAge', 'maxEntries'], '`secretCache`');
  return {
    ttl: positiveInteger(option?.ttl ?? 60, 'secretCache.ttl', 'seconds') * 1000,
    maxAge: positiveInteger(option?.maxAge ?? 3600, 'secretCache.maxAge', 'seconds') * 1000,
    maxEntries: positiveInteger(option?.maxEntries ?? 10_000, 'secretCache.maxEntries', 'entries'),
  };
}

function comparisonQueueOption(option: IssuerOptions['comparisonQueue']): AdmissionLimits {
  checkOptions(option ?? {}, ['maxQueued', 'maxWait', 'perAddress'], '`comparisonQueue`');
  return {
    concurrency: compareWorkers,
    maxQueued: positiveInteger(option?.maxQueued ?? 32 * compareWorkers, 'comparisonQueue.maxQueued', 'comparisons'),
    maxWait: positiveInteger(option?.maxWait ?? 5000, 'comparisonQueue.maxWait', 'milliseconds'),
    perAddress: positiveInteger(option?.perAddress ?? 4 * compareWorkers, 'comparisonQueue.perAddress', 'comparisons'),
  };
}

function atMost(value: number, max: number, option: string): number {
  if (value > max) throw new ConfigurationError(`\`${option}\` must be at most ${max} seconds (a day): guards refuse longer-lived tokens`);
  return value;
}

function hashCostOption(value: unknown): number {
  if (!(Number.isSafeInteger(value) && (value as number) >= BCRYPT.minCost && (value as number) <= BCRYPT.maxCost)) {
    throw new ConfigurationError(`\`secretHashCost\` must be a bcrypt cost from ${BCRYPT.minCost} to ${BCRYPT.maxCost}`);
  }
  return value as number;
}

function nonEmpty(value: unknown, option: string): string {
  if (typeof value !== 'string' || value === '') throw new ConfigurationError(`\`${option}\` must be a non-empty string`);
  return value;
}
