// The request pipeline shared by the endpoints where clients authenticate (token, revocation,
// introspection): RFC 6749 §2.3 and §3.2, hardened by default.

import express, { type Express, type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import { rateLimit, ipKeyGenerator, type Options as RateLimitOptions, type RateLimitRequestHandler } from 'express-rate-limit';
import { extractCredentials, type AuthenticatedClient, type ClientCredentials } from '../core/client-authentication.js';
import { ConfigurationError, OAuthError } from '../core/errors.js';
import { storeCall } from '../core/store-call.js';
import type { EndpointEvent } from './audit.js';
import { beginRequest, requestState, type EndpointName } from './request-state.js';
import { NO_STORE, reportInternalError, sendError } from './send-error.js';

export type LimiterOptions = Partial<RateLimitOptions>;

/** What every client endpoint of one issuer shares: one authenticator, one lock, one per-address cap. */
export interface EndpointContext {
  readonly authenticateClient: (credentials: ClientCredentials) => Promise<AuthenticatedClient>;
  readonly audit: (req: Request, event: EndpointEvent) => void;
  readonly hardening: readonly RequestHandler[];
  readonly bodyLimit: number;
  readonly basicChallenge: string;
  readonly failureLock: FailureLock | undefined;
  readonly onInternalError: (message: string) => void;
}

/** One endpoint: the parameters it reads, what it checks before authentication, and what it does. */
export interface EndpointAction<P> {
  /** Names the endpoint in rate-limit keys and warnings. */
  readonly name: EndpointName;
  readonly parameters: readonly string[];
  /** Parameters that may repeat (RFC 8707 `resource`); the others may not (RFC 6749 §3.2). */
  readonly repeatable?: readonly string[];
  readonly validate: (params: Readonly<Record<string, string>>, lists: Readonly<Record<string, readonly string[]>>) => P;
  readonly act: (authenticated: AuthenticatedClient, request: P, req: Request, res: Response) => Promise<void>;
}

const CREDENTIAL_PARAMETERS = ['client_id', 'client_secret', 'client_assertion', 'client_assertion_type'];

/** Builds an endpoint as an Express sub-app that answers POST at its mount point. */
export function clientEndpoint<P>(context: EndpointContext, action: EndpointAction<P>): Express {
  const known = new Set([...CREDENTIAL_PARAMETERS, ...action.parameters]);
  const repeatable = new Set(action.repeatable ?? []);
  const readBody = express.raw({ type: () => true, limit: context.bodyLimit });

  let checkedMount = false;
  const begin: RequestHandler = (req, res, next) => {
    beginRequest(req, action.name);
    res.set(NO_STORE);
    if (!checkedMount) checkMount();
    next();
  };
  /** Once, at the first request, when the app is mounted or never will be. */
  const checkMount = (): void => {
    checkedMount = true;
    // Express tells a sub-app where it is mounted only when it is mounted with app.use() on an app.
    if ((app as { parent?: unknown }).parent === undefined) {
      process.emitWarning(
        `the ${action.name} endpoint is not mounted with app.use(path, endpoint) on an Express app (a Router?): the metadata cannot know its URL`,
        { code: 'ECC_MOUNT' },
      );
    } else if (typeof app.mountpath !== 'string' || /[:*?()[\]{}]/.test(app.mountpath)) {
      process.emitWarning(
        `the ${action.name} endpoint is mounted at a pattern or a list of paths, which names no single URL: set the issuer's endpoints option`,
        { code: 'ECC_MOUNT' },
      );
    }
  };
  const readForm: RequestHandler = (req, res, next) => {
    if (req.method !== 'POST') {
      // RFC 6749 §3.2: "The client MUST use the HTTP POST method".
      return sendError(res.set('Allow', 'POST'), new OAuthError('invalid_request', 405, 'This endpoint accepts POST only'));
    }
    const charset = /;\s*charset\s*=\s*"?([^";\s]*)/i.exec(req.get('content-type') ?? '')?.[1];
    if (req.is('application/x-www-form-urlencoded') !== 'application/x-www-form-urlencoded' || (charset !== undefined && !/^utf-8$/i.test(charset))) {
      return next(new OAuthError('invalid_request', 400, 'The request body must be application/x-www-form-urlencoded in UTF-8'));
    }
    // The app may have parsed the body already; repeats then show up as arrays.
    if (req.body !== undefined) return next();
    readBody(req, res, next);
  };
  const parse: RequestHandler = (req, _res, next) => {
    const { params, lists } = formParameters(req.body, known, repeatable);
    const parsed = action.validate(params, lists);
    const query = req.originalUrl.indexOf('?');
    const credentials = extractCredentials({
      authorization: req.get('authorization'),
      body: params,
      queryNames: query === -1 ? [] : [...new URLSearchParams(req.originalUrl.slice(query + 1)).keys()],
    });
    requestState(req)!.request = { parsed, credentials };
    next();
  };
  const refuseLocked: RequestHandler = (req, res, next) => (context.failureLock === undefined ? next() : context.failureLock.refuseLocked(req, res, next));
  const authenticateAndAct: RequestHandler = async (req, res) => {
    const { parsed, credentials } = requestState(req)!.request!;
    await action.act(await context.authenticateClient(credentials), parsed as P, req, res);
  };
  const handleError = (error: unknown, req: Request, res: Response): void => {
    const oauth = asOAuthError(error);
    reportInternalError(oauth, context.onInternalError);
    if (oauth.error !== 'invalid_client') return sendError(res, oauth);
    // RFC 9110 §15.5.2: a 401 carries a challenge; RFC 6749 §5.2 asks for the scheme the client used.
    const challenged = oauth.withHeaders({ 'WWW-Authenticate': context.basicChallenge });
    const credentials = requestState(req)?.request?.credentials;
    context.audit(req, { type: 'client_authentication_failed', clientId: credentials?.clientId, authMethod: credentials?.method });
    if (context.failureLock === undefined || credentials === undefined) return sendError(res, challenged);
    context.failureLock.countFailure(req, res, (countError) => {
      if (countError !== undefined) reportInternalError(countError, context.onInternalError);
      sendError(res, challenged);
    });
  };

  const steps = [begin, ...context.hardening, readForm, parse, refuseLocked, authenticateAndAct];
  // An Express app, for its mount event, parent and mount path (the metadata's URLs), whose
  // handle() runs the steps itself: one URL needs no router, and Express's hand-over to a sub-app
  // (swapping the prototypes of req and res there and back) cost more than all of them. req.app
  // stays the app the endpoint is mounted on, whose settings (trust proxy) apply.
  const app = express();
  (app as unknown as { handle: (req: Request, res: Response, done: NextFunction) => void }).handle = (req, res, done) => {
    if (req.path !== '/') return done();
    runSteps(steps, req, res, (error) => {
      try {
        handleError(error, req, res);
      } catch (failure) {
        done(failure);
      }
    });
  };
  return app;
}

/** Runs Express middleware in order, as a route would; an error thrown, rejected or passed to next() goes to `fail`. */
function runSteps(steps: readonly RequestHandler[], req: Request, res: Response, fail: (error: unknown) => void): void {
  let index = 0;
  const next = (error?: unknown): void => {
    if (error !== undefined && error !== null) return fail(error);
    const step = steps[index++];
    if (step === undefined) return;
    try {
      const result: unknown = step(req, res, next);
      if (result instanceof Promise) result.catch(fail);
    } catch (thrown) {
      fail(thrown);
    }
  };
  next();
}

/** The parameters the endpoint reads, each at most once unless repeatable (RFC 6749 §3.2), empty values omitted. */
function formParameters(body: unknown, known: ReadonlySet<string>, repeatable: ReadonlySet<string>) {
  const entries: [string, unknown][] = Buffer.isBuffer(body)
    ? [...new URLSearchParams(decodeUtf8(body))]
    : typeof body === 'object' && body !== null
      ? Object.entries(body)
      : [];
  const params: Record<string, string> = Object.create(null);
  const lists: Record<string, string[]> = Object.create(null);
  const malformed = () => new OAuthError('invalid_request', 400, 'A request parameter is repeated or malformed');
  for (const [name, given] of entries) {
    if (!known.has(name) && !repeatable.has(name)) continue; // "MUST ignore unrecognized request parameters"
    for (const value of repeatable.has(name) && Array.isArray(given) ? given : [given]) {
      if (typeof value !== 'string') throw malformed();
      if (value === '') continue; // "Parameters sent without a value MUST be treated as if they were omitted"
      if (repeatable.has(name)) (lists[name] ??= []).push(value);
      else if (name in params) throw malformed();
      else params[name] = value;
    }
  }
  return { params, lists };
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

function decodeUtf8(bytes: Buffer): string {
  try {
    return UTF8.decode(bytes);
  } catch {
    throw new OAuthError('invalid_request', 400, 'The request body is not valid UTF-8');
  }
}

/** The errors body-parser names by `type`: the client's. Anything else (a hook's error included) is ours. */
const BODY_ERRORS = new Set(['entity.too.large', 'entity.parse.failed', 'entity.verify.failed', 'encoding.unsupported', 'charset.unsupported', 'request.aborted', 'request.size.invalid', 'stream.encoding.set', 'stream.not.readable', 'parameters.too.many']);

function asOAuthError(error: unknown): OAuthError {
  if (error instanceof OAuthError) return error;
  const type = (error as { type?: unknown } | null)?.type;
  if (typeof type === 'string' && BODY_ERRORS.has(type)) {
    return type === 'entity.too.large'
      ? new OAuthError('invalid_request', 413, 'The request body is too large')
      : new OAuthError('invalid_request', 400, 'The request body is malformed');
  }
  return new OAuthError('server_error', 500, 'The server could not handle the request', {}, { cause: error });
}

const TOO_MANY = new OAuthError('temporarily_unavailable', 429, 'Too many requests; retry later');

/**
 * The per-address cap: one limiter for all endpoints, with a budget per endpoint, so that a
 * resource server introspecting on every call cannot use up its own token requests.
 */
export function perAddressLimiter(options: LimiterOptions, audit: Audit): RequestHandler {
  return rateLimiter(
    {
      windowMs: 60_000,
      limit: 300,
      identifier: 'per-address',
      keyGenerator: (req) => `${requestState(req)?.endpoint}|${ipKeyGenerator(req.ip ?? '')}`,
      // A flood cap fails open when its store is down; the failure lock, which guards secrets, fails closed.
      passOnStoreError: true,
      ...options,
    },
    audit,
    'per-address',
  );
}

type Audit = EndpointContext['audit'];

/** An express-rate-limit limiter that answers with our JSON error and draft-8 headers, and reports it. */
export function rateLimiter(options: LimiterOptions, audit: Audit, limiter: 'failed-authentication' | 'per-address', clientId?: (req: Request) => string | undefined): RateLimitRequestHandler {
  return rateLimit({
    standardHeaders: 'draft-8',
    legacyHeaders: false,
    handler: (req, res) => {
      audit(req, { type: 'rate_limited', limiter, clientId: clientId?.(req) });
      sendError(res, TOO_MANY);
    },
    ...options,
  });
}

export interface FailureLock {
  refuseLocked(req: Request, res: Response, next: NextFunction): Promise<void>;
  countFailure(req: Request, res: Response, done: (error?: unknown) => void): void;
}

/**
 * Locks a (client id, address) pair after `limit` failed authentications within `windowMs`
 * (RFC 6749 §2.3.1: "MUST protect against brute force attacks"). express-rate-limit counts only
 * real failures, after they happen, so concurrent or aborted requests with the right secret never
 * lock a client out; a locked pair is refused before any bcrypt work, the right secret included.
 */
export function failureLock(options: LimiterOptions, audit: Audit, storeTimeout: number): FailureLock {
  const clientId = (req: Request): string | undefined => requestState(req)?.request?.credentials.clientId;
  const key = (req: Request): string => `${ipKeyGenerator(req.ip ?? '')}|${clientId(req)}`;
  const settings = { windowMs: 15 * 60_000, limit: 10, identifier: 'failed-authentication', ...options, keyGenerator: key };
  const { limit } = settings;
  if (!(Number.isSafeInteger(limit) && (limit as number) > 0)) {
    throw new ConfigurationError('`rateLimit.failedAuthentication.limit` must be a positive whole number');
  }
  if (options.store !== undefined && typeof (options.store as { get?: unknown }).get !== 'function') {
    throw new ConfigurationError('`rateLimit.failedAuthentication.store` must implement get(key) to check locked clients');
  }
  const counter = rateLimiter(settings, audit, 'failed-authentication', clientId);
  return {
    async refuseLocked(req, res, next) {
      const info = await storeCall(() => counter.getKey(key(req)), storeTimeout, 'The rate limit store is unavailable; try again later');
      const seconds = Math.ceil(((info?.resetTime?.getTime() ?? 0) - Date.now()) / 1000);
      if (info === undefined || info.totalHits < (limit as number) || seconds <= 0) return next();
      audit(req, { type: 'rate_limited', limiter: 'failed-authentication', clientId: clientId(req) });
      // The headers express-rate-limit would send (draft-8), for a request it never counted.
      sendError(res.set({ 'Retry-After': String(seconds), RateLimit: `"${String(settings.identifier)}"; r=0; t=${seconds}` }), TOO_MANY);
    },
    countFailure(req, res, done) {
      void counter(req, res, done);
    },
  };
}
