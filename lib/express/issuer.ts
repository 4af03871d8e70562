// The authorization server as Express middleware: the token endpoint (RFC 6749 §4.4), revocation
// (RFC 7009), introspection (RFC 7662), metadata (RFC 8414) and published keys (RFC 7517).

import { generateKeyPairSync } from 'node:crypto';
import express, { type Express, type Request, type RequestHandler } from 'express';
import type { HelmetOptions } from 'helmet';
import { BCRYPT, DEFAULT_HASH_COST, type ClientRecord } from '../core/client.js';
import { clientAuthenticator, type SecretCacheRules } from '../core/client-authentication.js';
import { ClientKeys } from '../core/client-assertion.js';
import { ConfigurationError, OAuthError, wwwAuthenticate } from '../core/errors.js';
import type { JsonObject } from '../core/jws.js';
import { authorizationServerMetadata, jsonWebKeySet, metadataPath, type EndpointUrls } from '../core/metadata.js';
import { resolveSigningKey, type SigningKey, type SigningKeyInput, type VerificationKey } from '../core/signing-keys.js';
import { introspectToken, requireTokenParameter, revokeToken, type OwnTokens } from '../core/token-introspection.js';
import { checkGrantType, issueAccessToken, type GrantContext, type IssuanceConfig } from '../core/token-issuance.js';
import { MAX_TOKEN_LIFETIME } from '../core/token-lifetime.js';
import { storeCall } from '../core/store-call.js';
import { defaultAudience, environmentDefaults, issuerIdentifier } from '../env.js';
import { assertClientStore, type ClientStore } from '../core/stores.js';
import { MemoryClientStore } from '../stores/memory-client-store.js';
import { MemoryRevocationStore } from '../stores/memory-revocation-store.js';
import { assertRevocationStore, type RevocationStore } from '../core/stores.js';
import { MemoryReplayCache } from '../stores/memory-replay-cache.js';
import { assertReplayCache, type ReplayCache } from '../core/stores.js';
import { auditor, type AuditEvent } from './audit.js';
import { reportInternalError, sendJson } from './send-error.js';
import { securityHeaders } from './security-headers.js';
import { clientEndpoint, type EndpointContext } from './client-endpoint.js';
import { failureLockRules, perAddressLimiter, type LimiterOptions } from './rate-limits.js';
import { AdmissionQueue, type AdmissionLimits } from '../core/admission.js';
import { compareWorkers, releaseIdleWorkers } from '../core/bcrypt.js';
import { throttledReporter } from '../core/throttled-report.js';
import { isLoopbackHost } from '../core/loopback.js';
import { absoluteUrl, boolean, checkOptions, definedOptions, positiveInteger, realmOption } from '../core/options.js';
import { warnOnce } from '../core/warnings.js';

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
  /** Absolute URLs for the metadata, where the derived ones are wrong (a proxy that rewrites paths). Default: the issuer's origin and path, plus where each endpoint is mounted. */
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

/** The keys of an issuer at one moment: one signs, all are published and accepted. */
export interface SigningKeys {
  signingKey: SigningKeyInput;
  additionalKeys?: readonly SigningKeyInput[] | undefined;
}

/** What a guard needs to trust an issuer: its identifier, audience, keys and revocations. */
export interface TrustedIssuer {
  readonly issuer: string;
  readonly audience: string;
  readonly keys: () => readonly VerificationKey[];
  readonly revocations?: RevocationStore | undefined;
  /** Milliseconds a revocation lookup may take. */
  readonly storeTimeout?: number | undefined;
  /** Where guards verifying for this issuer report their 503s (the issuer's `onInternalError`, throttled). */
  readonly report?: ((kind: string, message: string) => void) | undefined;
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
  /**
   * Stops admitting secret comparisons (new and queued requests get 503 `temporarily_unavailable`),
   * lets the comparisons in flight finish, then stops this issuer's workers. Close the HTTP server
   * first and the stores you passed in after: the issuer does not own them.
   */
  close(): Promise<void>;
  /** The bcrypt comparison queue now: how many wait, and the most that ever waited (for health checks and load tests). */
  readonly comparisons: { readonly queued: number; readonly peakQueued: number };
};

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
  readonly keys: ResolvedKeys;
  readonly scopesSupported: readonly string[] | undefined;
  /** The URLs given, without the names set to undefined. */
  readonly endpoints: { readonly [K in keyof EndpointUrls]?: string };
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

interface ResolvedKeys {
  readonly active: SigningKey;
  readonly all: readonly SigningKey[];
  readonly jwks: string;
}

const OPTION_NAMES = [
  'clients', 'issuer', 'audience', 'signingKey', 'additionalKeys', 'revocations', 'replayCache', 'assertionMaxLifetime', 'authorizeGrant',
  'extraClaims', 'onAuditEvent', 'accessTokenTtl', 'scopesSupported',
  'endpoints', 'jwksMaxAge', 'bodyLimit', 'storeTimeout', 'requireHttps', 'rateLimit', 'helmet', 'realm', 'secretHashCost', 'secretCache', 'comparisonQueue', 'onInternalError',
] as const;

/** Trusted issuers by the app they are mounted in, so that `requireScope()` alone finds its keys. */
export const mountedIssuers = new WeakMap<object, TrustedIssuer>();

/**
 * The issuers of this process that are not closed. A Router tells a sub-app nothing when it is
 * mounted on it, so `requireScope()` alone may trust the one issuer of the process. Weak
 * references: an issuer the app dropped is not kept alive by this list.
 */
const liveIssuers = new Set<WeakRef<TrustedIssuer>>();
let issuersChanged = 0;

/** A number that changes whenever an issuer is made or closed, so that what trusted the only one is made again. */
export const issuersVersion = (): number => issuersChanged;

/** The one live issuer of this process, if there is exactly one. */
export function onlyIssuer(): TrustedIssuer | undefined {
  const live = [...liveIssuers].map((ref) => ref.deref()).filter((issuer) => issuer !== undefined);
  return live.length === 1 ? live[0] : undefined;
}

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
  // One line per kind of failure and interval: a store that is down fails every request.
  const throttled = throttledReporter(config.onInternalError);
  const onInternalError = (message: string): void => throttled(message.replace(/ \(.*$/s, ''), message);
  const audit = auditor(config.onAuditEvent, (error) => reportInternalError(error, onInternalError));
  const admission = new AdmissionQueue(config.comparisonQueue);

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
      assertions: {
        // RFC 7523 §3 item 3: the issuer identifier, or the token endpoint URL.
        // Read per request: the endpoints below know their URLs once mounted.
        audiences: () => [config.issuer, endpointUrls().token],
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
    hardening: [
      ...(config.helmet === false ? [] : [securityHeaders(config.helmet)]),
      ...(config.addressLimit === false ? [] : [perAddressLimiter(config.addressLimit, audit, config.storeTimeout, throttled)]),
    ],
    requireHttps: config.requireHttps,
    urlGiven: (name) => config.endpoints[name] !== undefined,
    bodyLimit: config.bodyLimit,
    basicChallenge: config.basicChallenge,
    onInternalError,
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

  const app = clientEndpoint(context, {
    name: 'token',
    parameters: ['grant_type', 'scope'],
    repeatable: ['resource'],
    validate: (params, lists) => (checkGrantType(params.grant_type), { scope: params.scope, resources: lists.resource ?? [] }),
    act: async ({ client, secretIndex, method }, request, req, res) => {
      let issued: Awaited<ReturnType<typeof issueAccessToken>>;
      try {
        issued = await issueAccessToken(client, request, issuance, req);
      } catch (error) {
        if (error instanceof OAuthError) audit(req, { type: 'token_refused', clientId: client.id, error: error.error });
        throw error;
      }
      const { claims } = issued;
      audit(req, {
        type: 'token_issued',
        clientId: client.id,
        authMethod: method,
        secretIndex,
        scope: claims.scope as string | undefined,
        audience: claims.aud,
        jti: claims.jti as string,
        expiresAt: claims.exp as number,
      });
      sendJson(res, 200, issued.response);
    },
  });
  const revocation = clientEndpoint(context, {
    name: 'revocation',
    parameters: ['token', 'token_type_hint'],
    // The hint only orders a search (RFC 7009 §2.1); with one kind of token there is nothing to order.
    validate: (params) => requireTokenParameter(params.token),
    act: async ({ client }, token, req, res) => {
      const jti = await revokeToken(token, client, own);
      if (jti !== undefined) audit(req, { type: 'token_revoked', clientId: client.id, jti });
      res.status(200).end();
    },
  });
  const introspection = clientEndpoint(context, {
    name: 'introspection',
    parameters: ['token', 'token_type_hint'],
    validate: (params) => requireTokenParameter(params.token),
    act: async ({ client }, token, _req, res) => {
      sendJson(res, 200, await introspectToken(token, client, own));
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
    report: throttled,
  };
  app.on('mount', (parent: object) => mountedIssuers.set(parent, trust));
  const registered = new WeakRef(trust);
  liveIssuers.add(registered);
  issuersChanged += 1;

  // Express sets `parent` when a sub-app is mounted with app.use(); unmounted endpoints are not listed,
  // and a mount path that is a pattern or a list names no single URL.
  const urlOf = (endpoint: Express): string | undefined => {
    const mount = endpoint.mountpath;
    if ((endpoint as { parent?: unknown }).parent === undefined || typeof mount !== 'string') return undefined;
    return /[:*?()[\]{}]/.test(endpoint.path()) ? undefined : publicUrl(config.issuer, endpoint.path());
  };
  function endpointUrls() {
    return {
      token: urlOf(app) ?? `${config.issuer.replace(/\/$/, '')}/token`,
      jwks: urlOf(jwks) ?? `${config.issuer.replace(/\/$/, '')}/.well-known/jwks.json`,
      revocation: urlOf(revocation),
      introspection: urlOf(introspection),
      ...config.endpoints,
    };
  }
  const metadata: RequestHandler = (_req, res) => {
    res.json(authorizationServerMetadata({ issuer: config.issuer, endpoints: endpointUrls(), scopesSupported: config.scopesSupported }));
  };
  const rotateKeys = (next: SigningKeys): void => {
    checkOptions(next, ['signingKey', 'additionalKeys'], 'rotateKeys()');
    keys = resolveKeys(next.signingKey, next.additionalKeys);
  };
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    if (closing === undefined && liveIssuers.delete(registered)) issuersChanged += 1;
    return (closing ??= admission.close().then(releaseIdleWorkers));
  };
  return Object.assign(app, { metadata, metadataPath: metadataPath(config.issuer), jwks, revocation, introspection, trust, rotateKeys, close, comparisons: admission as Issuer['comparisons'] });
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
    keys: resolveKeys(options.signingKey ?? env.signingKey ?? ephemeralKey(), options.additionalKeys),
    scopesSupported: options.scopesSupported ?? (store instanceof MemoryClientStore ? store.scopes() : undefined),
    endpoints: resolveEndpoints(options.endpoints ?? {}),
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

function resolveEndpoints(endpoints: EndpointUrls): IssuerConfig['endpoints'] {
  checkOptions(endpoints, ['token', 'jwks', 'revocation', 'introspection'], '`endpoints`');
  const given = definedOptions(endpoints);
  for (const [name, url] of Object.entries(given)) absoluteUrl(url, `endpoints.${name}`);
  return given;
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
