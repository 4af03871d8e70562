// The resource server's Bearer guard: RFC 6750 §2 and §3, RFC 9068 §4.

import type { Request, RequestHandler, Response, NextFunction } from 'express';
import { challenged, findBearerToken, insufficientScope, missingToken, type ChallengeFields, type TokenLocation } from '../core/bearer.js';
import { ConfigurationError, OAuthError } from '../core/errors.js';
import { isScopeToken } from '../core/scope.js';
import { KeySetUnavailableError, RemoteKeySet } from '../core/remote-key-set.js';
import { resolveVerificationKey, type VerificationKey, type VerificationKeyInput } from '../core/signing-keys.js';
import { peekHeader } from '../core/jws.js';
import { MAX_TOKEN_LIFETIME } from '../core/token-lifetime.js';
import { verifyAccessTokenWithKey, type AuthInfo, type VerifierConfig } from '../core/token-verification.js';
import { VerifiedTokenCache } from '../core/token-cache.js';
import { assertRevocationStore, type RevocationStore } from '../core/stores.js';
import { warnOnce } from '../core/warnings.js';
import { defaultAudience, environmentDefaults, issuerIdentifier } from '../env.js';
import type { Issuer } from './issuer.js';
import { issuerOfRequest, issuersVersion, onlyIssuer, SEVERAL, type TrustedIssuer } from './trusted-issuers.js';
import { absoluteUrl, boolean, checkOptions, nonNegativeNumber, oneOf, positiveInteger, realmOption } from '../core/options.js';
import { storeCall } from '../core/store-call.js';
import { REVOCATION_MARGIN } from '../core/token-introspection.js';
import { reportInternalError } from '../core/exchange.js';
import { sendError } from './exchange.js';
import { throttledReporter } from '../core/throttled-report.js';
import { resourceMetadataUrl, isProtectedResource, type ProtectedResource } from './protected-resource.js';
import './augment-request.js';

export type { TokenLocation } from '../core/bearer.js';

interface GuardCommonOptions {
  /** Accepted `aud` values; the token must name one. Default: the issuer's audience, `OAUTH_AUDIENCE`, or issuer + `/api`. */
  audience?: string | readonly string[] | undefined;
  /** Seconds of clock skew tolerated on `exp`, `nbf` and `iat`, at most 300 (revocations are kept that long past `exp`). Default: 5. */
  clockTolerance?: number | undefined;
  /** RFC 9068 profile: `typ: at+jwt` and `sub`, `client_id`, `jti`, `iat` required. `false` also accepts `typ: JWT` from legacy issuers. Default: true. */
  strict?: boolean | undefined;
  /** Seconds a token may still have to live (`exp` - now); longer-lived tokens break policy and are refused. Default: 86400. */
  maxTokenLifetime?: number | undefined;
  /** Where the token may be sent. Default: `['header']`. */
  tokenLocations?: readonly TokenLocation[] | undefined;
  /** The `realm` of the `WWW-Authenticate: Bearer` challenge. Default: the first audience. */
  realm?: string | undefined;
  /** `true` passes errors to `next(err)` (an `OAuthError` with `status` and `headers`) instead of answering. Default: false. */
  delegateErrors?: boolean | undefined;
  /** Refuses tokens revoked at the issuer (RFC 7009). Default: the issuer's store, with an `issuer` instance; else none. */
  revocations?: RevocationStore | undefined;
  /** Milliseconds a revocation store may take before the request fails with a 503. Default: 5000. */
  storeTimeout?: number | undefined;
  /**
   * What a failed or slow revocation lookup means: `'unavailable'` answers 503 (fail closed, the
   * default), `'invalid_token'` answers 401, `'allow'` accepts the token and warns (`ECC_REVOCATION_UNCHECKED`,
   * at most once a minute): availability over revocation, never silently.
   */
  revocationFailure?: 'unavailable' | 'invalid_token' | 'allow' | undefined;
  /**
   * Remembers verified tokens, so a token its client reuses is verified once: `false` turns it off.
   * Expiry, the verifying key's trust and revocation are still checked on every request. Default: `{ maxEntries: 10000 }`.
   */
  tokenCache?: false | { maxEntries?: number } | undefined;
  /**
   * Adds `resource_metadata="<url>"` (RFC 9728 §5.1) to every Bearer challenge: the 401s, the 400s and
   * `requireScope()`'s 403s. What `protectedResource()` returns, or the absolute URL of a metadata
   * document served elsewhere. Default: none.
   */
  resourceMetadata?: string | ProtectedResource | undefined;
  /**
   * Where the guard reports its own failures, the 503s (a revocation store or a key set it cannot
   * reach): one line per kind and 10 s, with a count. Default: the `issuer()`'s `onInternalError`
   * when given an issuer instance, else `console.error`.
   */
  onInternalError?: ((message: string) => void) | undefined;
}

/** Verifies with the keys of an `issuer()` in the same process. */
export interface GuardIssuerOptions extends GuardCommonOptions {
  issuer: Issuer | TrustedIssuer;
}
/** Verifies HS256 tokens with a shared secret of at least 32 bytes. */
export interface GuardSecretOptions extends GuardCommonOptions {
  /** The expected `iss`. Default: `OAUTH_ISSUER`, else `http://$HOST:$PORT`. */
  issuer?: string | undefined;
  secret: string | Buffer;
}
/** Verifies tokens signed with an asymmetric key; one algorithm per key, from its type. */
export interface GuardPublicKeyOptions extends GuardCommonOptions {
  /** The expected `iss`. Default: `OAUTH_ISSUER`, else `http://$HOST:$PORT`. */
  issuer?: string | undefined;
  publicKey: VerificationKeyInput | readonly VerificationKeyInput[];
}
/**
 * Verifies with the keys an authorization server in another process publishes: from `jwksUri`, or
 * found through its RFC 8414 metadata with `discover: true`. Keys are cached, refetched at most
 * once per cooldown for an unknown `kid`, and kept while the server is unreachable.
 */
export interface GuardRemoteOptions extends GuardCommonOptions {
  /** The expected `iss`, and with `discover` where the metadata is found. */
  issuer: string;
  jwksUri?: string | undefined;
  discover?: boolean | undefined;
  /** Milliseconds. Defaults: `cooldown` 30 000 between refetches, `maxAge` 600 000 before a refresh, `timeout` 5 000 per fetch. */
  jwksCache?: { cooldown?: number; maxAge?: number; timeout?: number } | undefined;
}
/** With no key option, the key comes from `OAUTH_SIGNING_KEY_FILE` or `OAUTH_TOKEN_SECRET`. */
export interface GuardEnvironmentOptions extends GuardCommonOptions {
  issuer?: string | undefined;
}

export type AuthenticateOptions = GuardIssuerOptions | GuardSecretOptions | GuardPublicKeyOptions | GuardRemoteOptions | GuardEnvironmentOptions;

const OPTION_NAMES = [
  'issuer', 'secret', 'publicKey', 'jwksUri', 'discover', 'jwksCache', 'audience', 'clockTolerance', 'strict', 'maxTokenLifetime', 'tokenLocations', 'realm',
  'delegateErrors', 'revocations', 'storeTimeout', 'revocationFailure', 'tokenCache', 'resourceMetadata', 'onInternalError',
];

interface GuardConfig {
  readonly verifier: VerifierConfig;
  readonly locations: ReadonlySet<TokenLocation>;
  readonly realm: string;
  readonly delegateErrors: boolean;
  readonly revocations: RevocationStore | undefined;
  readonly storeTimeout: number;
  readonly revocationFailure: 'unavailable' | 'invalid_token' | 'allow';
  readonly tokenCache: VerifiedTokenCache | undefined;
  readonly remoteKeys: RemoteKeySet | undefined;
  readonly resourceMetadata: string | undefined;
  readonly challenge: ChallengeFields;
  readonly report: (kind: string, message: string) => void;
}

/**
 * Verifies the Bearer token of each request and sets `req.auth`, or answers 401/400 (RFC 6750 §3).
 * @example
 * app.use('/api', authenticate({ publicKey: fs.readFileSync('issuer.pub.pem', 'utf8'), issuer: 'https://as.example', audience: 'https://api.example' }));
 */
export function authenticate(options: AuthenticateOptions = {}): RequestHandler {
  const config = resolveGuardOptions(options);
  const fail = (error: unknown, res: Response, next: NextFunction): void => {
    if (!(error instanceof OAuthError)) return next(error);
    if (error.status >= 500) reportInternalError(error, (message) => config.report(error.message, message));
    const answer = challenged(error, config.challenge);
    if (config.delegateErrors) return next(answer);
    sendError(res, answer);
  };

  // Synchronous unless a store or a remote key set must be asked: no promise, no tick, for most requests.
  return function authenticateMiddleware(req: Request, res: Response, next: NextFunction): void | Promise<void> {
    let auth: AuthInfo | undefined;
    try {
      const token = bearerToken(req, config.locations);
      // From realm and resource_metadata a client finds where to get a token (RFC 9728 §5.1).
      if (token === undefined) throw missingToken(config.challenge);
      // Remote keys may need fetching first; everything else about a token is known here and now.
      auth = config.tokenCache?.get(token, config.verifier.keys(), Date.now() / 1000, config.verifier.clockTolerance) ?? (config.remoteKeys === undefined ? verify(token, config) : undefined);
      if (auth === undefined || config.revocations !== undefined) {
        const verified = auth !== undefined ? Promise.resolve(auth) : remoteKeysFor(token, config.remoteKeys!).then(() => verify(token, config));
        return verified.then((checked) => checkRevocation(req, checked, config)).then(() => next(), (error: unknown) => fail(error, res, next));
      }
    } catch (error) {
      return fail(error, res, next);
    }
    accept(req, auth, config);
    next();
  };
}

/** Sets `req.auth`, and marks the request as authenticated by this guard for `requireScope()`. */
function accept(req: Request, auth: AuthInfo, config: GuardConfig): void {
  req.auth = auth;
  (req as GuardedRequest)[GUARD] = config;
}

async function checkRevocation(req: Request, auth: AuthInfo, config: GuardConfig): Promise<void> {
  if (config.revocations !== undefined && (await isRevoked(config, auth))) {
    throw new OAuthError('invalid_token', 401, 'The token has been revoked');
  }
  accept(req, auth, config);
}

/** Full verification, remembered in the token cache when there is one. */
function verify(token: string, config: GuardConfig): AuthInfo {
  const { auth, key } = verifyAccessTokenWithKey(token, config.verifier);
  config.tokenCache?.set(token, auth, key);
  return auth;
}

/** Loads the remote keys a token needs; with none to verify against, a 503 rather than a 401. */
async function remoteKeysFor(token: string, keys: RemoteKeySet): Promise<void> {
  try {
    await keys.ensure(peekHeader(token)?.kid);
  } catch (cause) {
    if (!(cause instanceof KeySetUnavailableError)) throw cause;
    throw new OAuthError('temporarily_unavailable', 503, 'The signing keys are unavailable; try again later', { 'Retry-After': '5' }, { cause });
  }
}

/** A store that fails or hangs is answered with a 503: never a silent accept of a token that may be revoked. */
async function isRevoked(config: GuardConfig, auth: AuthInfo): Promise<boolean> {
  try {
    return await storeCall(() => config.revocations!.isRevoked(String(auth.claims.jti)), config.storeTimeout, 'The revocation list is unavailable; try again later');
  } catch (error) {
    if (config.revocationFailure === 'unavailable') throw error;
    if (config.revocationFailure === 'invalid_token') throw new OAuthError('invalid_token', 401, 'The token could not be checked for revocation', {}, { cause: error });
    warnUnchecked();
    return false;
  }
}

let lastUncheckedWarning = 0;
function warnUnchecked(): void {
  if (Date.now() - lastUncheckedWarning < 60_000) return;
  lastUncheckedWarning = Date.now();
  process.emitWarning('the revocation list is unavailable: tokens are accepted unchecked (revocationFailure: allow)', { code: 'ECC_REVOCATION_UNCHECKED' });
}

/**
 * Requires every listed scope (RFC 6750 §3.1 `insufficient_scope`). Runs `authenticate()` first
 * when no guard ran before it, with the `issuer()` mounted in the same app or the environment's key.
 * @example app.get('/reports', requireScope('read'), (req, res) => res.json({ client: req.auth?.clientId }));
 */
export function requireScope(...scopes: string[]): RequestHandler {
  return scopeGuard(scopes, 'every', 'requireScope');
}

/**
 * Requires at least one of the listed scopes.
 * @example app.get('/reports', requireAnyScope('read', 'admin'), handler);
 */
export function requireAnyScope(...scopes: string[]): RequestHandler {
  return scopeGuard(scopes, 'some', 'requireAnyScope');
}

function scopeGuard(required: string[], match: 'every' | 'some', name: string): RequestHandler {
  if (required.length === 0 || !required.every((scope) => typeof scope === 'string' && isScopeToken(scope))) {
    throw new ConfigurationError(`${name}() takes one or more scope names (printable ASCII, no spaces, quotes or backslashes)`);
  }
  const scopeList = required.join(' ');
  const implicitGuards: ImplicitGuards = { byIssuer: new WeakMap(), several: severalIssuers };

  const check = (req: Request, res: Response, next: NextFunction): void => {
    const granted = req.auth!.scopes;
    if (required[match]((scope) => granted.includes(scope))) return next();
    const error = insufficientScope(guardOf(req)?.challenge, scopeList);
    if (delegatesOf(req)) return next(error);
    sendError(res, error);
  };

  return function requireScopeMiddleware(req: Request, res: Response, next: NextFunction): void {
    // Only our own guard's req.auth counts: another library's has another shape.
    if (guardOf(req) !== undefined) return check(req, res, next);
    void implicitGuardFor(req, implicitGuards)(req, res, (error?: unknown) => (error === undefined ? check(req, res, next) : next(error)));
  };
}

/**
 * The guard that authenticated a request, for `requireScope`'s realm and error delivery: a symbol
 * on the request rather than a WeakMap, which would cost the garbage collector on every request.
 */
const GUARD = Symbol('express-client-credentials.guard');
type GuardedRequest = Request & { [GUARD]?: GuardConfig };
const guardOf = (req: Request): GuardConfig | undefined => (req as GuardedRequest)[GUARD];
const delegatesOf = (req: Request): boolean => guardOf(req)?.delegateErrors ?? false;

/** A request that passed through two issuers' middleware: trusting either would be a guess. */
const severalIssuers: RequestHandler = (_req, res) => {
  const error = new ConfigurationError('requireScope() alone found two issuer() middlewares on the request\'s way and will not guess which to trust: put authenticate({ issuer: tokens }) before it (its requests get 500 until then)');
  warnOnce('ECC_NO_GUARD', error.message);
  sendError(res, error);
};

/**
 * The guard `requireScope()` runs alone. It trusts, in this order: the issuer() whose middleware
 * the request passed through; the environment's key; the process's only live issuer(). Made once
 * per issuer, and for the other two made again when issuers are created or closed, so trust
 * follows them. A setup mistake (nothing to trust, an environment that does not resolve) is said
 * once, naming the fix, and answered 500 `server_error` meanwhile.
 */
function implicitGuardFor(req: Request, cache: ImplicitGuards): RequestHandler {
  const passed = issuerOfRequest(req);
  if (passed === SEVERAL) return cache.several;
  if (passed !== undefined) {
    let guard = cache.byIssuer.get(passed);
    if (guard === undefined) cache.byIssuer.set(passed, (guard = authenticate({ issuer: passed })));
    return guard;
  }
  const version = issuersVersion();
  if (cache.fallback !== undefined && cache.fallback.version === version) return cache.fallback.guard;
  let guard: RequestHandler;
  try {
    const environmentKey = environmentDefaults().signingKey !== undefined;
    const trusted = environmentKey ? undefined : onlyIssuer();
    if (trusted === undefined && !environmentKey) {
      throw new ConfigurationError(
        'requireScope() found no issuer() on the request\'s way or in this process to trust, and neither OAUTH_SIGNING_KEY_FILE nor OAUTH_TOKEN_SECRET: mount the issuer with app.use(tokens) before the route, or put authenticate({ issuer: tokens }) before it (its requests get 500 until then)',
      );
    }
    guard = authenticate(trusted === undefined ? {} : { issuer: trusted });
  } catch (error) {
    warnOnce('ECC_NO_GUARD', error instanceof Error ? error.message : String(error));
    guard = (_req, res) => sendError(res, error);
  }
  cache.fallback = { guard, version };
  return guard;
}

interface ImplicitGuards {
  readonly byIssuer: WeakMap<TrustedIssuer, RequestHandler>;
  readonly several: RequestHandler;
  fallback?: { readonly guard: RequestHandler; readonly version: number } | undefined;
}

/** The places of an Express request that may carry a token (RFC 6750 §2), for the core to choose from. */
function bearerToken(req: Request, locations: ReadonlySet<TokenLocation>): string | undefined {
  const body: unknown = req.body;
  const found = findBearerToken(
    {
      authorization: req.get('authorization'),
      bodyToken:
        typeof body === 'object' && body !== null && req.method !== 'GET' && req.is('application/x-www-form-urlencoded') ? (body as Record<string, unknown>).access_token : undefined,
      // req.query parses the query string on every read: only when there is one.
      queryToken: req.url.includes('?') ? (req.query as Record<string, unknown> | undefined)?.access_token : undefined,
    },
    locations,
  );
  // RFC 6750 §2.3: responses to a URI carrying a token SHOULD be marked private.
  if (found?.inQuery === true) req.res?.set('Cache-Control', 'private');
  return found?.token;
}

function resolveGuardOptions(options: AuthenticateOptions): GuardConfig {
  checkOptions(options, OPTION_NAMES, 'authenticate()');
  const given = options as Partial<GuardIssuerOptions & GuardSecretOptions & GuardPublicKeyOptions & Omit<GuardRemoteOptions, 'issuer'>>;
  const instance = typeof given.issuer === 'string' || given.issuer === undefined ? undefined : given.issuer;
  const discover = boolean(given.discover ?? false, 'discover');
  if ([given.secret, given.publicKey, instance, given.jwksUri, discover || undefined].filter((v) => v !== undefined).length > 1) {
    throw new ConfigurationError('authenticate(): pass one of `secret`, `publicKey`, `jwksUri`, `discover` or an `issuer` instance');
  }
  if (given.jwksCache !== undefined && given.jwksUri === undefined && !discover) {
    throw new ConfigurationError('`jwksCache` goes with `jwksUri` or `discover`');
  }
  const env = environmentDefaults();
  let issuer: string;
  let audiences: readonly string[];
  let keys: () => readonly VerificationKey[];
  let revocations: RevocationStore | undefined;
  let remoteKeys: RemoteKeySet | undefined;
  let storeTimeout: number | undefined;
  let report: ((kind: string, message: string) => void) | undefined;
  if (instance !== undefined) {
    // An issuer() is an Express app, so a function; its `trust` says what to verify with.
    const trusted: TrustedIssuer = 'trust' in instance ? (instance as Issuer).trust : instance;
    issuer = trusted.issuer;
    audiences = audienceList(given.audience ?? trusted.audience);
    keys = trusted.keys;
    revocations = trusted.revocations;
    storeTimeout = trusted.storeTimeout;
    report = trusted.report;
  } else if (given.jwksUri !== undefined || discover) {
    if (typeof given.issuer !== 'string') throw new ConfigurationError('`issuer` (the expected iss) is required with `jwksUri` or `discover`');
    issuer = absoluteUrl(given.issuer, 'issuer');
    audiences = audienceList(given.audience ?? env.audience ?? defaultAudience(issuer));
    const cache = given.jwksCache ?? {};
    checkOptions(cache, ['cooldown', 'maxAge', 'timeout'], '`jwksCache`');
    const remote = new RemoteKeySet({
      ...(discover ? { discoverIssuer: issuer } : { jwksUri: given.jwksUri }),
      cooldown: cache.cooldown ?? 30_000,
      maxAge: cache.maxAge ?? 600_000,
      timeout: cache.timeout ?? 5_000,
    });
    remoteKeys = remote;
    keys = () => remote.current();
  } else {
    issuer = issuerIdentifier(given.issuer, 'authenticate()');
    audiences = audienceList(given.audience ?? env.audience ?? defaultAudience(issuer));
    const inputs =
      given.secret !== undefined ? [{ secret: given.secret }]
      : given.publicKey !== undefined ? (Array.isArray(given.publicKey) ? given.publicKey : [given.publicKey])
      : env.signingKey !== undefined ? [verificationInput(env.signingKey)]
      : [];
    if (inputs.length === 0) {
      throw new ConfigurationError('authenticate() needs `secret`, `publicKey` or an `issuer` instance, or OAUTH_SIGNING_KEY_FILE / OAUTH_TOKEN_SECRET');
    }
    const resolved = inputs.map((input: VerificationKeyInput) => resolveVerificationKey(input, given.secret !== undefined ? 'secret' : 'publicKey'));
    keys = () => resolved;
  }
  if (given.revocations !== undefined) assertRevocationStore(given.revocations, 'revocations');
  const locations = new Set<TokenLocation>(given.tokenLocations ?? ['header']);
  if (locations.size === 0 || ![...locations].every((where) => ['header', 'body', 'query'].includes(where))) {
    throw new ConfigurationError('`tokenLocations` must list one or more of header, body, query');
  }
  const realm = realmOption(given.realm ?? audiences[0]);
  const resourceMetadata = given.resourceMetadata === undefined ? undefined : resourceMetadataUrl(given.resourceMetadata);
  if (isProtectedResource(given.resourceMetadata)) sameBearerMethods(given.resourceMetadata, locations);
  return {
    verifier: {
      issuer,
      audiences,
      keys,
      clockTolerance: clockTolerance(given.clockTolerance ?? 5),
      strict: boolean(given.strict ?? true, 'strict'),
      maxLifetime: positiveInteger(given.maxTokenLifetime ?? MAX_TOKEN_LIFETIME, 'maxTokenLifetime', 'seconds'),
    },
    locations,
    realm,
    delegateErrors: boolean(given.delegateErrors ?? false, 'delegateErrors'),
    revocations: given.revocations ?? revocations,
    storeTimeout: positiveInteger(given.storeTimeout ?? storeTimeout ?? 5000, 'storeTimeout', 'milliseconds'),
    revocationFailure: oneOf(given.revocationFailure ?? 'unavailable', ['unavailable', 'invalid_token', 'allow'], 'revocationFailure'),
    tokenCache: tokenCache(given.tokenCache),
    remoteKeys,
    resourceMetadata,
    challenge: { realm, resource_metadata: resourceMetadata },
    report: given.onInternalError !== undefined ? throttledReporter(hook(given.onInternalError, 'onInternalError')) : (report ?? throttledReporter((message) => console.error(message))),
  };
}

function hook<T>(value: T, option: string): T {
  if (typeof value !== 'function') throw new ConfigurationError(`\`${option}\` must be a function`);
  return value;
}

/** The document must not promise a way of sending the token that this guard refuses, nor hide one it accepts. */
function sameBearerMethods(resource: ProtectedResource, locations: ReadonlySet<TokenLocation>): void {
  const published = resource.document.bearer_methods_supported;
  if (published.length !== locations.size || !published.every((method) => locations.has(method))) {
    throw new ConfigurationError(
      `\`tokenLocations\` (${[...locations].join(', ')}) differs from the bearer_methods_supported of \`resourceMetadata\` (${published.join(', ') || 'none'}); pass the same list to protectedResource({ bearerMethodsSupported })`,
    );
  }
}

function tokenCache(option: unknown): VerifiedTokenCache | undefined {
  if (option === false) return undefined;
  checkOptions(option ?? {}, ['maxEntries'], '`tokenCache`');
  return new VerifiedTokenCache(positiveInteger((option as { maxEntries?: number } | undefined)?.maxEntries ?? 10_000, 'tokenCache.maxEntries', 'entries'));
}

function clockTolerance(value: unknown): number {
  const seconds = nonNegativeNumber(value, 'clockTolerance', 'seconds');
  if (seconds > REVOCATION_MARGIN) throw new ConfigurationError(`\`clockTolerance\` must be at most ${REVOCATION_MARGIN} seconds`);
  return seconds;
}

function audienceList(value: unknown): readonly string[] {
  const list = typeof value === 'string' ? [value] : value;
  if (!Array.isArray(list) || list.length === 0 || !list.every((aud) => typeof aud === 'string' && aud !== '')) {
    throw new ConfigurationError('`audience` must be a non-empty string or list of strings');
  }
  return list;
}

/** The environment's signing key, as a guard verifies with it. */
function verificationInput(key: NonNullable<ReturnType<typeof environmentDefaults>['signingKey']>): VerificationKeyInput {
  return 'secret' in key ? key : { publicKey: key.privateKey };
}
