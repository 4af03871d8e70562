// The calling service's side of the client credentials grant (RFC 6749 §4.4): tokens requested, cached, and sent as Bearer (RFC 6750 §2.1).

import { formatBasic } from '../core/basic-auth.js';
import { BodyCutOff, BodyTooLarge, readBounded } from '../core/bounded-body.js';
import { ConfigurationError } from '../core/errors.js';
import { metadataPath } from '../core/metadata.js';
import { absoluteUrl, checkOptions, isWebUrl, nonNegativeNumber, positiveInteger } from '../core/options.js';
import { formatScope, isScopeToken, parseScope } from '../core/scope.js';

export interface TokenClientOptions {
  /**
   * Absolute http(s) URL of the token endpoint (RFC 6749 §3.2: it may have a query, never a fragment).
   * Pass exactly one of `tokenUrl` and `issuer`.
   */
  tokenUrl?: string | undefined;
  /**
   * Issuer identifier to discover the token endpoint from: its RFC 8414 metadata is fetched on the
   * first `getToken()` (again on the next one if that failed, never after it succeeded), its `issuer`
   * must equal this string exactly (RFC 8414 §3.3), and its `token_endpoint` is used.
   */
  issuer?: string | undefined;
  /** The client identifier (RFC 6749 §2.2). */
  clientId: string;
  /** The client secret. It is sent only to the token endpoint, and appears in no error. */
  clientSecret: string;
  /** Scopes to request, space-delimited or a list of scope tokens (RFC 6749 §3.3). Default: none sent, so the server grants the client's default scopes. */
  scope?: string | readonly string[] | undefined;
  /** How the client authenticates (RFC 6749 §2.3.1). Default: `client_secret_basic`, id and secret form-urlencoded before base64. */
  authMethod?: 'client_secret_basic' | 'client_secret_post' | undefined;
  /** Seconds before `expires_in` runs out that a token counts as expired; never more than half the token's lifetime. Default: 30. */
  refreshSkew?: number | undefined;
  /** Milliseconds each request to the authorization server (token, metadata) may take, body included. Default: 10000. */
  timeout?: number | undefined;
  /** Extra attempts after a 429, a 5xx, a network error or a timeout at the authorization server, from 0 to 10. Default: 3. */
  retries?: number | undefined;
  /** The fetch used for API calls and token requests, e.g. one that goes through a proxy. Default: `globalThis.fetch`, looked up on each call. */
  fetch?: typeof fetch | undefined;
}

export interface TokenClient {
  /**
   * An access token: the cached one until shortly before it expires, else a new one. Concurrent
   * callers share one request. Rejects with {@link TokenRequestError}; the next call tries again.
   */
  getToken(): Promise<string>;
  /**
   * `fetch` with `Authorization: Bearer` set (replacing any given). On a 401 the token is dropped, and
   * the request is sent once more with a new token if its body can be sent again (none, a string,
   * URLSearchParams, FormData, an ArrayBuffer or typed array, a Blob); a stream body gets the 401 back.
   * Rejects with {@link TokenRequestError} when no token can be had.
   */
  fetch(input: string | URL, init?: RequestInit): Promise<Response>;
  /** Forgets the cached token, so the next `getToken()` requests one. A request already under way is still shared and cached. */
  invalidate(): void;
}

/**
 * Getting a token failed. `error` and the message are the token endpoint's `error` and
 * `error_description` (RFC 6749 §5.2) when it sent them; `status` is the HTTP status of the failed
 * response, or 0 when none arrived (network error, timeout). Never contains the client secret: a
 * server text that echoes it is dropped.
 */
export class TokenRequestError extends Error {
  override readonly name = 'TokenRequestError';
  readonly error?: string | undefined;
  readonly status: number;

  constructor(message: string, details: { status: number; error?: string | undefined }, options?: ErrorOptions) {
    super(message, options);
    this.status = details.status;
    if (details.error !== undefined) this.error = details.error;
  }

  toJSON(): { name: string; status: number; error?: string; message: string } {
    return { name: this.name, status: this.status, ...(this.error === undefined ? {} : { error: this.error }), message: this.message };
  }
}

interface TokenClientConfig {
  readonly tokenUrl: string | undefined;
  readonly issuer: string | undefined;
  readonly clientId: string;
  readonly clientSecret: string;
  readonly scope: string | undefined;
  readonly authMethod: 'client_secret_basic' | 'client_secret_post';
  readonly refreshSkew: number;
  readonly timeout: number;
  readonly retries: number;
  readonly fetch: typeof fetch;
}

interface IssuedToken {
  readonly token: string;
  /** Seconds from when the request was sent. */
  readonly lifetime: number;
  /** performance.now() when the request that got it was sent. */
  readonly sentAt: number;
}

const OPTION_NAMES = ['tokenUrl', 'issuer', 'clientId', 'clientSecret', 'scope', 'authMethod', 'refreshSkew', 'timeout', 'retries', 'fetch'];
const AUTH_METHODS = ['client_secret_basic', 'client_secret_post'];
const MAX_BYTES = 64 * 1024;
// Without expires_in we cannot know the lifetime; the server's default may be short, so the token is
// treated as living 60 s (fresh for 30 s with the default skew). A 401 in fetch() covers the rest.
const ASSUMED_LIFETIME = 60;
const BACKOFF_BASE_MS = 250;
const BACKOFF_CAP_MS = 10_000;
const RETRY_AFTER_CAP_MS = 30_000;
const MAX_RETRIES = 10;
// RFC 6750 §2.1: b64token, the only token syntax the Authorization header carries.
const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;
// RFC 6749 §5.2: error and error_description are printable ASCII without `"` and `\`.
const ERROR_CODE = /^[\x20\x21\x23-\x5B\x5D-\x7E]+$/;
const MAX_DESCRIPTION = 500;

/**
 * A client of the client credentials grant (RFC 6749 §4.4) for a service that calls APIs: it gets
 * tokens, caches them until shortly before they expire, and sends them as Bearer tokens.
 * @example
 * const api = tokenClient({ issuer: 'https://auth.example', clientId: 'reports', clientSecret: process.env.CLIENT_SECRET!, scope: 'read' });
 * const res = await api.fetch('https://api.example/reports');
 */
export function tokenClient(options: TokenClientOptions): TokenClient {
  const config = resolveTokenClientOptions(options);
  const send = config.fetch;
  const basic = formatBasic(config.clientId, config.clientSecret);
  const redact = secretRedactor(config.clientSecret, basic);
  let tokenUrl = config.tokenUrl;
  let cached: { readonly token: string; readonly freshUntil: number } | undefined;
  let inFlight: Promise<string> | undefined;

  async function withRetries<T>(attempt: () => Promise<T>): Promise<T> {
    for (let n = 0; ; n++) {
      try {
        return await attempt();
      } catch (failure: unknown) {
        if (!(failure instanceof RetryableFailure)) throw failure;
        if (n >= config.retries) throw failure.error;
        await sleep(retryDelay(n, failure.retryAfter));
      }
    }
  }

  async function discover(issuer: string): Promise<string> {
    const url = new URL(metadataPath(issuer), issuer).href;
    return withRetries(async () => {
      const signal = AbortSignal.timeout(config.timeout);
      const response = await reach(() => send(url, { headers: { accept: 'application/json' }, redirect: 'manual', signal }), signal, 'The authorization server metadata');
      if (response.status !== 200) {
        await response.body?.cancel().catch(() => undefined);
        throw failed(response, new TokenRequestError(`The authorization server metadata could not be fetched (HTTP ${response.status})`, { status: response.status }));
      }
      const metadata = parseJson(await readBody(response, signal, 'The authorization server metadata'));
      // RFC 8414 §3.3: the issuer returned MUST be identical to the one the URL was built from, else the metadata MUST NOT be used.
      if (!isRecord(metadata) || metadata.issuer !== issuer) throw new TokenRequestError('The authorization server metadata is of another issuer', { status: 200 });
      const endpoint = metadata.token_endpoint;
      if (typeof endpoint !== 'string' || !isWebUrl(endpoint)) throw new TokenRequestError('The authorization server metadata has no valid token_endpoint', { status: 200 });
      // The secret goes wherever the metadata says: never in clear text when the issuer itself uses TLS.
      if (new URL(issuer).protocol === 'https:' && new URL(endpoint).protocol !== 'https:') {
        throw new TokenRequestError('The token_endpoint of an https issuer must use https', { status: 200 });
      }
      return endpoint;
    });
  }

  async function requestOnce(url: string): Promise<IssuedToken> {
    // RFC 6749 §4.4.2: grant_type and an optional scope, form-encoded; §2.3.1: the credentials in Basic or in the body.
    const body = new URLSearchParams({ grant_type: 'client_credentials' });
    if (config.scope !== undefined) body.set('scope', config.scope);
    const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' };
    if (config.authMethod === 'client_secret_basic') {
      headers.authorization = basic;
    } else {
      body.set('client_id', config.clientId);
      body.set('client_secret', config.clientSecret);
    }
    const signal = AbortSignal.timeout(config.timeout);
    const sentAt = performance.now();
    // No redirects: the credentials go to the configured endpoint or nowhere.
    const response = await reach(() => send(url, { method: 'POST', headers, body: body.toString(), redirect: 'manual', signal }), signal, 'The token endpoint');
    const { status } = response;
    if (status !== 200) {
      const error = oauthError(status, parseJson(await readBody(response, signal, 'The token endpoint').catch(() => undefined)), redact);
      throw failed(response, error);
    }
    const document = parseJson(await readBody(response, signal, 'The token response'));
    return { ...parseTokenResponse(document), sentAt };
  }

  async function requestToken(): Promise<string> {
    // Discovery is kept once it succeeded; a failure rejects this call and is retried by the next.
    tokenUrl ??= await discover(config.issuer as string);
    const url = tokenUrl;
    const issued = await withRetries(() => requestOnce(url));
    const skew = Math.min(config.refreshSkew, issued.lifetime / 2);
    // Counted from when the request was sent, so time on the wire only makes us refresh earlier.
    cached = { token: issued.token, freshUntil: issued.sentAt + (issued.lifetime - skew) * 1000 };
    return issued.token;
  }

  function getToken(): Promise<string> {
    // performance.now() rather than Date.now(): a wall-clock step must neither keep a dead token nor drop a live one.
    if (cached !== undefined && performance.now() < cached.freshUntil) return Promise.resolve(cached.token);
    // One request for every caller; when it fails, all of them see the failure and nothing is cached.
    inFlight ??= requestToken().finally(() => {
      inFlight = undefined;
    });
    return inFlight;
  }

  function invalidate(): void {
    cached = undefined;
  }

  async function authorizedFetch(input: string | URL, init: RequestInit = {}): Promise<Response> {
    if (typeof input !== 'string' && !(input instanceof URL)) throw new TypeError('tokenClient().fetch() takes a URL string or a URL');
    const token = await getToken();
    const response = await send(input, withBearer(init, token));
    if (response.status !== 401) return response;
    // The token is refused, so it goes even when this request cannot be retried. Only our own token
    // is dropped: a concurrent caller may already have replaced it with a good one.
    if (cached?.token === token) cached = undefined;
    if (!isReplayable(init.body)) return response;
    await response.body?.cancel().catch(() => undefined);
    // Once: a second 401 is the API's answer, returned as it is, not a reason to loop.
    return send(input, withBearer(init, await getToken()));
  }

  return { getToken, fetch: authorizedFetch, invalidate };
}

/** A failure worth another attempt, carrying the error to throw when attempts run out. */
class RetryableFailure {
  constructor(
    readonly error: TokenRequestError,
    readonly retryAfter: number | undefined,
  ) {}
}

/** Sends a request; a network error or a timeout becomes a retryable failure with status 0. */
async function reach(request: () => Promise<Response>, signal: AbortSignal, what: string): Promise<Response> {
  try {
    return await request();
  } catch (cause: unknown) {
    const message = signal.aborted ? `${what} did not answer in time` : `${what} could not be reached`;
    throw new RetryableFailure(new TokenRequestError(message, { status: 0 }, { cause }), undefined);
  }
}

/** 429 and 5xx are worth retrying (RFC 6585 §4, RFC 9110 §15.6); any other status is final. */
function failed(response: Response, error: TokenRequestError): RetryableFailure | TokenRequestError {
  const { status } = response;
  if (status !== 429 && !(status >= 500 && status <= 599)) return error;
  return new RetryableFailure(error, retryAfter(response.headers.get('retry-after')));
}

/** RFC 9110 §10.2.3: delay-seconds or an HTTP-date; anything else is ignored. */
function retryAfter(value: string | null): number | undefined {
  if (value === null) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

/** Retry-After when given (capped at 30 s), else exponential backoff with jitter: 250 ms × 2^n, capped at 10 s. */
function retryDelay(attempt: number, retryAfterMs: number | undefined): number {
  if (retryAfterMs !== undefined) return Math.min(retryAfterMs, RETRY_AFTER_CAP_MS);
  const base = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** attempt);
  // Half fixed, half random: clients that failed together do not all come back together.
  return base / 2 + Math.random() * (base / 2);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** At most 64 KiB of a body. A connection that fails or times out while reading is worth a retry; an oversized body is not. */
async function readBody(response: Response, signal: AbortSignal, what: string): Promise<Buffer> {
  try {
    return await readBounded(response, MAX_BYTES);
  } catch (cause: unknown) {
    if (cause instanceof BodyTooLarge) throw new TokenRequestError(`${what} is larger than 64 KiB`, { status: response.status });
    if (!(cause instanceof BodyCutOff)) throw cause; // a body someone else read first: not the server's doing
    // The stream failed: cut off, or past the deadline. Worth another try.
    const message = signal.aborted ? `${what} did not answer in time` : `${what} was cut off`;
    throw new RetryableFailure(new TokenRequestError(message, { status: 0 }, { cause: cause.cause }), undefined);
  }
}

/** UTF-8 JSON, or `undefined` for anything else. */
function parseJson(bytes: Buffer | undefined): unknown {
  if (bytes === undefined) return undefined;
  try {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes)) as unknown;
  } catch {
    return undefined;
  }
}

/** RFC 6749 §5.1: a Bearer `access_token`, and `expires_in` in seconds when the server says it. */
function parseTokenResponse(document: unknown): Omit<IssuedToken, 'sentAt'> {
  const malformed = (what: string) => new TokenRequestError(`The token response ${what}`, { status: 200 });
  if (!isRecord(document)) throw malformed('is not a JSON object');
  const token = document.access_token;
  if (typeof token !== 'string' || !B64TOKEN.test(token)) throw malformed('has no usable access_token');
  // RFC 6749 §7.1 and §5.1: token_type is case-insensitive; only Bearer (RFC 6750) is understood here.
  if (typeof document.token_type !== 'string' || document.token_type.toLowerCase() !== 'bearer') throw malformed('is not of token_type Bearer');
  return { token, lifetime: expiresIn(document.expires_in) ?? ASSUMED_LIFETIME };
}

function expiresIn(value: unknown): number | undefined {
  if (value === undefined || value === null) return undefined;
  // A few servers send the number as a string of digits; the value means the same.
  const seconds = typeof value === 'string' && /^\d{1,10}$/.test(value) ? Number(value) : value;
  if (typeof seconds !== 'number' || !Number.isFinite(seconds) || seconds < 0) {
    throw new TokenRequestError('The token response has an invalid expires_in', { status: 200 });
  }
  return seconds;
}

/** RFC 6749 §5.2: the server's `error` and `error_description`, when well-formed and free of the secret. */
function oauthError(status: number, document: unknown, redact: (text: string) => string | undefined): TokenRequestError {
  const field = (name: string): string | undefined => {
    const value = isRecord(document) ? document[name] : undefined;
    return typeof value === 'string' && ERROR_CODE.test(value) ? redact(value) : undefined;
  };
  const error = field('error');
  const description = field('error_description')?.slice(0, MAX_DESCRIPTION);
  const message = description ?? `The token endpoint refused the request (HTTP ${status}${error === undefined ? '' : `, ${error}`})`;
  return new TokenRequestError(message, { status, error });
}

/**
 * A server that echoes what it got (a buggy one, or one that is not the token endpoint) could put
 * the secret into an error; such a text is dropped whole rather than patched.
 */
function secretRedactor(secret: string, basic: string): (text: string) => string | undefined {
  const forms = [secret, encodeURIComponent(secret), new URLSearchParams([['', secret]]).toString().slice(1), basic.slice('Basic '.length)];
  return (text) => (forms.some((form) => text.includes(form)) ? undefined : text);
}

function withBearer(init: RequestInit, token: string): RequestInit {
  // A copy: the caller's init and headers are left as they were.
  const headers = new Headers(init.headers);
  headers.set('authorization', `Bearer ${token}`);
  return { ...init, headers };
}

/** Bodies fetch can send twice; a stream is consumed by the first attempt. */
function isReplayable(body: RequestInit['body']): boolean {
  return (
    body === undefined ||
    body === null ||
    typeof body === 'string' ||
    body instanceof URLSearchParams ||
    body instanceof FormData ||
    body instanceof Blob ||
    body instanceof ArrayBuffer ||
    ArrayBuffer.isView(body)
  );
}

function resolveTokenClientOptions(options: TokenClientOptions): TokenClientConfig {
  checkOptions(options, OPTION_NAMES, 'tokenClient()');
  const { tokenUrl, issuer, clientId, clientSecret, scope, authMethod = 'client_secret_basic', fetch: fetchOption } = options;
  if ((tokenUrl === undefined) === (issuer === undefined)) throw new ConfigurationError('tokenClient(): pass exactly one of `tokenUrl` and `issuer`');
  if (tokenUrl !== undefined && !isWebUrl(tokenUrl)) {
    throw new ConfigurationError('`tokenUrl` must be an absolute http(s) URL without fragment or credentials');
  }
  // RFC 8414 §2: an issuer identifier has no query or fragment.
  if (issuer !== undefined) absoluteUrl(issuer, 'issuer');
  if (typeof clientId !== 'string' || clientId === '') throw new ConfigurationError('`clientId` must be a non-empty string');
  if (typeof clientSecret !== 'string' || clientSecret === '') throw new ConfigurationError('`clientSecret` must be a non-empty string');
  if (!AUTH_METHODS.includes(authMethod)) throw new ConfigurationError(`\`authMethod\` must be one of ${AUTH_METHODS.join(', ')}`);
  const retries = options.retries ?? 3;
  if (!(Number.isSafeInteger(retries) && retries >= 0 && retries <= MAX_RETRIES)) {
    throw new ConfigurationError(`\`retries\` must be a whole number from 0 to ${MAX_RETRIES}`);
  }
  if (fetchOption !== undefined && typeof fetchOption !== 'function') throw new ConfigurationError('`fetch` must be a function like globalThis.fetch');
  return {
    tokenUrl,
    issuer,
    clientId,
    clientSecret,
    scope: resolveScope(scope),
    authMethod,
    refreshSkew: nonNegativeNumber(options.refreshSkew ?? 30, 'refreshSkew', 'seconds'),
    timeout: positiveInteger(options.timeout ?? 10_000, 'timeout', 'milliseconds'),
    retries,
    // Looked up on each call, so that tools which replace globalThis.fetch later still see our requests.
    fetch: fetchOption ?? ((input, init) => globalThis.fetch(input, init)),
  };
}

/** RFC 6749 §3.3: a space-delimited list of scope tokens, sent once each. */
function resolveScope(scope: unknown): string | undefined {
  if (scope === undefined) return undefined;
  const scopes =
    typeof scope === 'string'
      ? parseScope(scope)
      : Array.isArray(scope) && scope.every((token) => typeof token === 'string' && isScopeToken(token))
        ? [...new Set(scope as string[])]
        : undefined;
  if (scopes === undefined || scopes.length === 0) {
    throw new ConfigurationError('`scope` must be scope tokens (printable ASCII without space, " or \\), space-delimited or in a list; omit it for the default scopes');
  }
  return formatScope(scopes);
}


function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
