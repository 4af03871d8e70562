// The token endpoint as Express middleware: RFC 6749 §3.2, §4.4 and §5, hardened by default.

import { generateKeyPairSync } from 'node:crypto';
import express, { type Express, type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import { rateLimit, ipKeyGenerator, type Options as RateLimitOptions } from 'express-rate-limit';
import helmet, { type HelmetOptions } from 'helmet';
import { DEFAULT_HASH_COST, type ClientRecord } from '../core/client.js';
import { clientAuthenticator, extractCredentials, type ClientCredentials } from '../core/client-authentication.js';
import { ConfigurationError, isQuotable, OAuthError, wwwAuthenticate } from '../core/errors.js';
import { authorizationServerMetadata, jsonWebKeySet } from '../core/metadata.js';
import { resolveSigningKey, type SigningKey, type SigningKeyInput, type VerificationKey } from '../core/signing-keys.js';
import { checkGrantType, issueAccessToken, type IssuanceConfig } from '../core/token-issuance.js';
import { defaultAudience, environmentDefaults } from '../env.js';
import { assertClientStore, type ClientStore } from '../stores/client-store.js';
import { MemoryClientStore } from '../stores/memory-client-store.js';
import { NO_STORE, reportInternalError, sendError } from './send-error.js';
import { absoluteUrl, checkOptions, positiveInteger } from './options.js';

type LimiterOptions = Partial<RateLimitOptions>;

export interface IssuerOptions {
  /** Client registrations: a list of records or a `ClientStore`. Default: the `OAUTH_CLIENTS_FILE` file. */
  clients?: ClientStore | readonly ClientRecord[];
  /** The issuer identifier, the `iss` of every token. Default: `OAUTH_ISSUER`, else `http://$HOST:$PORT`. */
  issuer?: string;
  /** The `aud` of tokens for clients without their own `audience`. Default: `OAUTH_AUDIENCE`, else issuer + `/api`. */
  audience?: string;
  /** The key tokens are signed with. Default: from `OAUTH_SIGNING_KEY_FILE` or `OAUTH_TOKEN_SECRET`, else an ephemeral ES256 key (with a warning). */
  signingKey?: SigningKeyInput;
  /** Access token lifetime in seconds, unless a client sets `access_token_ttl`. Default: 600. */
  accessTokenTtl?: number;
  /** `scopes_supported` in the metadata. Default: every scope of the clients, when given as a list or a MemoryClientStore. */
  scopesSupported?: readonly string[];
  /** Absolute URL of the JWKS, for the metadata. Default: issuer + `/.well-known/jwks.json`. */
  jwksUri?: string;
  /** Absolute URL of the token endpoint, for the metadata. Default: the issuer's origin + where the endpoint is mounted. */
  tokenEndpoint?: string;
  /** Largest request body in bytes. Default: 8192. */
  bodyLimit?: number;
  /** Milliseconds a client store lookup may take before the request fails with a 503. Default: 5000. */
  storeTimeout?: number;
  /**
   * Brute-force protection (RFC 6749 §2.3.1), express-rate-limit options for two limiters, or `false` for none.
   * Default: `failedAuthentication` locks a client id from one address after 10 failed authentications in
   * 15 minutes; `perAddress` allows 300 token requests a minute per address.
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

/** What a guard needs to trust an issuer: its identifier, audience and keys. */
export interface TrustedIssuer {
  readonly issuer: string;
  readonly audience: string;
  readonly keys: () => readonly VerificationKey[];
}

/** The token endpoint, mounted with `app.use(path, …)`, and its companion handlers. */
export type Issuer = Express & {
  /** Serves RFC 8414 metadata; mount at `/.well-known/oauth-authorization-server`. */
  readonly metadata: RequestHandler;
  /** Serves the RFC 7517 key set; mount at the path of `jwksUri`. */
  readonly jwks: RequestHandler;
  /** Lets `authenticate({ issuer })` verify this issuer's tokens in the same process. */
  readonly trust: TrustedIssuer;
};

interface IssuerConfig {
  readonly store: ClientStore;
  readonly issuance: IssuanceConfig;
  readonly signingKeys: readonly SigningKey[];
  readonly scopesSupported: readonly string[] | undefined;
  readonly jwksUri: string;
  readonly tokenEndpoint: string | undefined;
  readonly bodyLimit: number;
  readonly storeTimeout: number;
  readonly secretHashCost: number;
  readonly failedAuthLimit: LimiterOptions | false;
  readonly addressLimit: LimiterOptions | false;
  readonly helmet: HelmetOptions | false;
  readonly basicChallenge: string;
  readonly onInternalError: (message: string) => void;
}

const OPTION_NAMES = [
  'clients', 'issuer', 'audience', 'signingKey', 'accessTokenTtl', 'scopesSupported', 'jwksUri', 'tokenEndpoint',
  'bodyLimit', 'storeTimeout', 'rateLimit', 'helmet', 'realm', 'secretHashCost', 'onInternalError',
] as const;

/** Trusted issuers by the app they are mounted in, so that `requireScope()` alone finds its keys. */
export const mountedIssuers = new WeakMap<object, TrustedIssuer>();

/**
 * The token endpoint of the client credentials grant (RFC 6749 §4.4).
 * @example
 * const tokens = issuer({ clients: MemoryClientStore.fromFile('clients.json'), signingKey: { privateKey: pem } });
 * app.use('/token', tokens);
 * app.get('/.well-known/oauth-authorization-server', tokens.metadata);
 * app.get('/.well-known/jwks.json', tokens.jwks);
 */
export function issuer(options: IssuerOptions = {}): Issuer {
  const config = resolveIssuerOptions(options);
  const authenticateClient = clientAuthenticator({
    store: config.store,
    storeTimeout: config.storeTimeout,
    hashCost: config.secretHashCost,
    onCostMismatch: (clientId, cost) =>
      process.emitWarning(
        `client ${JSON.stringify(clientId)} has a bcrypt hash of cost ${cost}, but secretHashCost is ${config.secretHashCost}: timing could tell it from unknown clients`,
        { code: 'ECC_HASH_COST' },
      ),
  });
  const requests = new WeakMap<Request, { scope: string | undefined; credentials: ClientCredentials }>();

  const noStore: RequestHandler = (_req, res, next) => {
    res.set(NO_STORE);
    next();
  };
  const postOnly: RequestHandler = (req, res, next) => {
    if (req.method === 'POST') return next();
    // RFC 6749 §3.2: "The client MUST use the HTTP POST method".
    sendError(res.set('Allow', 'POST'), new OAuthError('invalid_request', 405, 'The token endpoint accepts POST only'));
  };
  const formOnly: RequestHandler = (req, _res, next) => {
    const type = req.get('content-type') ?? '';
    const charset = /;\s*charset\s*=\s*"?([^";\s]*)/i.exec(type)?.[1];
    if (req.is('application/x-www-form-urlencoded') !== 'application/x-www-form-urlencoded' || (charset !== undefined && !/^utf-8$/i.test(charset))) {
      return next(new OAuthError('invalid_request', 400, 'The request body must be application/x-www-form-urlencoded in UTF-8'));
    }
    next();
  };
  const readBody = express.raw({ type: () => true, limit: config.bodyLimit });
  const parseTokenRequest: RequestHandler = (req, _res, next) => {
    const params = formParameters(req.body);
    checkGrantType(params.grant_type);
    const credentials = extractCredentials({
      authorization: req.get('authorization'),
      body: params,
      queryNames: [...new URLSearchParams(req.originalUrl.split('?').slice(1).join('?')).keys()],
    });
    requests.set(req, { scope: params.scope, credentials });
    next();
  };
  const issue: RequestHandler = async (req, res) => {
    const { scope, credentials } = requests.get(req)!;
    const client = await authenticateClient(credentials);
    res.status(200).json(issueAccessToken(client, scope, config.issuance));
  };
  const lock = failureLock(config.failedAuthLimit, (req) => `${ipKeyGenerator(req.ip ?? '')}|${requests.get(req)?.credentials.clientId}`);
  const handleError = (error: unknown, req: Request, res: Response, _next: NextFunction): void => {
    const oauth = asOAuthError(error);
    reportInternalError(oauth, config.onInternalError);
    if (oauth.error !== 'invalid_client') return sendError(res, oauth);
    // RFC 9110 §15.5.2: a 401 carries a challenge; RFC 6749 §5.2 asks for the scheme the client used.
    const challenged = oauth.withHeaders({ 'WWW-Authenticate': config.basicChallenge });
    if (lock === undefined || !requests.has(req)) return sendError(res, challenged);
    void lock.countFailure(req, res, (countError?: unknown) => {
      if (countError !== undefined) reportInternalError(countError, config.onInternalError);
      sendError(res, challenged);
    });
  };

  const app = express();
  app.disable('x-powered-by');
  app.all(
    '/',
    noStore,
    ...(config.helmet === false ? [] : [helmet(config.helmet)]),
    postOnly,
    ...limiter(config.addressLimit, { windowMs: 60_000, limit: 300, identifier: 'per-address' }),
    formOnly,
    (req, res, next) => (req.body === undefined ? readBody(req, res, next) : next()),
    parseTokenRequest,
    ...(lock === undefined ? [] : [lock.refuseLocked]),
    issue,
  );
  app.use(handleError);
  app.on('mount', (parent: object) => mountedIssuers.set(parent, trust));

  const trust: TrustedIssuer = {
    issuer: config.issuance.issuer,
    audience: config.issuance.audience,
    keys: () => config.signingKeys,
  };
  const jwksDocument = jsonWebKeySet(config.signingKeys);
  const metadata: RequestHandler = (_req, res) => {
    const tokenEndpoint = config.tokenEndpoint ?? new URL(app.path() || '/', config.issuance.issuer).href;
    res.json(authorizationServerMetadata({ issuer: trust.issuer, tokenEndpoint, jwksUri: config.jwksUri, scopesSupported: config.scopesSupported }));
  };
  const jwks: RequestHandler = (_req, res) => {
    res.type('application/jwk-set+json').send(JSON.stringify(jwksDocument));
  };
  return Object.assign(app, { metadata, jwks, trust });

  function limiter(options: LimiterOptions | false, defaults: LimiterOptions): RequestHandler[] {
    return options === false ? [] : [rateLimiter({ ...defaults, ...options })];
  }
}

const TOO_MANY = new OAuthError('temporarily_unavailable', 429, 'Too many requests; retry later');

function rateLimiter(options: LimiterOptions) {
  return rateLimit({ standardHeaders: 'draft-8', legacyHeaders: false, handler: (_req, res) => sendError(res, TOO_MANY), ...options });
}

/**
 * Locks a (client id, address) pair after `limit` failed authentications within `windowMs`
 * (RFC 6749 §2.3.1: "MUST protect against brute force attacks"). express-rate-limit counts only
 * real failures, after they happen, so concurrent or aborted requests with the right secret never
 * lock a client out; a locked pair is refused before any bcrypt work, the right secret included.
 */
function failureLock(options: LimiterOptions | false, key: (req: Request) => string) {
  if (options === false) return undefined;
  const settings = { windowMs: 15 * 60_000, limit: 10, identifier: 'failed-authentication', ...options, keyGenerator: key };
  const { limit } = settings;
  if (!(Number.isSafeInteger(limit) && (limit as number) > 0)) {
    throw new ConfigurationError('`rateLimit.failedAuthentication.limit` must be a positive whole number');
  }
  if (options.store !== undefined && typeof (options.store as { get?: unknown }).get !== 'function') {
    throw new ConfigurationError('`rateLimit.failedAuthentication.store` must implement get(key) to check locked clients');
  }
  const counter = rateLimiter(settings);
  const refuseLocked: RequestHandler = async (req, res, next) => {
    let info: Awaited<ReturnType<typeof counter.getKey>>;
    try {
      info = await counter.getKey(key(req));
    } catch (cause) {
      throw new OAuthError('temporarily_unavailable', 503, 'The rate limit store is unavailable; try again later', { 'Retry-After': '5' }, { cause });
    }
    const seconds = Math.ceil(((info?.resetTime?.getTime() ?? 0) - Date.now()) / 1000);
    if (info === undefined || info.totalHits < (limit as number) || seconds <= 0) return next();
    // The headers express-rate-limit would send (draft-8), for a request it never counted.
    sendError(res.set({ 'Retry-After': String(seconds), RateLimit: `"${String(settings.identifier)}"; r=0; t=${seconds}` }), TOO_MANY);
  };
  return { refuseLocked, countFailure: counter };
}

/** The parameters this endpoint reads; others are ignored, repeated or not (RFC 6749 §3.2). */
const KNOWN_PARAMETERS = new Set(['grant_type', 'scope', 'client_id', 'client_secret', 'client_assertion', 'client_assertion_type']);

/** Form parameters we read, each at most once (RFC 6749 §3.2), empty values omitted. */
function formParameters(body: unknown): Record<string, string> {
  const entries: [string, unknown][] = Buffer.isBuffer(body)
    ? [...new URLSearchParams(decodeUtf8(body))]
    : typeof body === 'object' && body !== null
      ? Object.entries(body) // the app parsed the body already; repeats show up as arrays
      : [];
  const params: Record<string, string> = Object.create(null);
  for (const [name, value] of entries) {
    if (!KNOWN_PARAMETERS.has(name)) continue; // "MUST ignore unrecognized request parameters"
    if (typeof value !== 'string') throw new OAuthError('invalid_request', 400, 'A request parameter is repeated or malformed');
    if (value === '') continue; // "Parameters sent without a value MUST be treated as if they were omitted"
    if (name in params) throw new OAuthError('invalid_request', 400, 'A request parameter is repeated or malformed');
    params[name] = value;
  }
  return params;
}

function decodeUtf8(bytes: Buffer): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new OAuthError('invalid_request', 400, 'The request body is not valid UTF-8');
  }
}

/** Body-parser's errors carry a 4xx status: they are the client's; anything else is ours. */
function asOAuthError(error: unknown): OAuthError {
  if (error instanceof OAuthError) return error;
  const status = (error as { status?: unknown } | null)?.status;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return status === 413
      ? new OAuthError('invalid_request', 413, 'The request body is too large')
      : new OAuthError('invalid_request', 400, 'The request body is malformed');
  }
  return new OAuthError('server_error', 500, 'The server could not handle the request', {}, { cause: error });
}

function resolveIssuerOptions(options: IssuerOptions): IssuerConfig {
  checkOptions(options, OPTION_NAMES, 'issuer()');
  const env = environmentDefaults();
  const issuerId = absoluteUrl(options.issuer ?? env.issuer, 'issuer');
  const store = resolveStore(options.clients, env.clientsFile);
  const signingKey = resolveSigningKey(options.signingKey ?? env.signingKey ?? ephemeralKey());
  const realm = options.realm ?? issuerId;
  if (typeof realm !== 'string' || !isQuotable(realm)) throw new ConfigurationError('`realm` must be printable ASCII without " or \\');
  const scopesSupported = options.scopesSupported ?? (store instanceof MemoryClientStore ? store.scopes() : undefined);
  const rateLimits = options.rateLimit ?? {};
  return {
    store,
    issuance: {
      issuer: issuerId,
      audience: nonEmpty(options.audience ?? env.audience ?? defaultAudience(issuerId), 'audience'),
      accessTokenTtl: positiveInteger(options.accessTokenTtl ?? 600, 'accessTokenTtl', 'seconds'),
      signingKey: () => signingKey,
    },
    signingKeys: [signingKey],
    scopesSupported,
    jwksUri: absoluteUrl(options.jwksUri ?? `${issuerId}/.well-known/jwks.json`, 'jwksUri'),
    tokenEndpoint: options.tokenEndpoint === undefined ? undefined : absoluteUrl(options.tokenEndpoint, 'tokenEndpoint'),
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
