// The request pipeline shared by the endpoints where clients authenticate (token, revocation,
// introspection): RFC 6749 §2.3 and §3.2, hardened by default.

import express, { type Express, type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import { CREDENTIAL_PARAMS, extractCredentials, METHOD_NOT_REGISTERED, type AuthenticatedClient, type AuthenticationContext, type ClientCredentials } from '../core/client-authentication.js';
import { OAuthError } from '../core/errors.js';
import { isLoopbackAddress } from '../core/loopback.js';
import type { EndpointEvent } from './audit.js';
import { clientAddress } from './rate-limits.js';
import { beginRequest, requestState, type EndpointName } from './request-state.js';
import { NO_STORE, reportInternalError, sendError } from './send-error.js';

/** What every client endpoint of one issuer shares: one authenticator, one lock, one per-address cap. */
export interface EndpointContext {
  readonly authenticateClient: (credentials: ClientCredentials, context: AuthenticationContext) => Promise<AuthenticatedClient>;
  readonly audit: (req: Request, event: EndpointEvent) => void;
  readonly hardening: readonly RequestHandler[];
  /** Endpoints whose public URL the issuer's `endpoints` option gives: where they are mounted does not matter. */
  readonly urlGiven: (name: EndpointName) => boolean;
  /** Refuse credentials that did not come over TLS (RFC 6749 §2.3.1), loopback excepted. */
  readonly requireHttps: boolean;
  readonly bodyLimit: number;
  readonly basicChallenge: string;
  readonly onInternalError: (message: string) => void;
}

/** One endpoint: the parameters it reads, what it checks before authentication, and what it does. */
export interface EndpointAction<P> {
  /** Names the endpoint in rate-limit keys and warnings. */
  readonly name: EndpointName;
  readonly parameters: readonly string[];
  /** Parameters that may repeat (RFC 8707 `resource`); the others may not (RFC 6749 §3.2). */
  readonly repeatable?: readonly string[] | undefined;
  readonly validate: (params: Readonly<Record<string, string>>, lists: Readonly<Record<string, readonly string[]>>) => P;
  readonly act: (authenticated: AuthenticatedClient, request: P, req: Request, res: Response) => Promise<void>;
}


// RFC 6749 §2.3.1: the server "MUST require the use of TLS" when sending client credentials.
const NOT_HTTPS = new OAuthError('invalid_request', 400, 'Client credentials must be sent over https');

/**
 * A request that did not leave this machine: from a loopback socket, and forwarded by nobody. A
 * proxy on this machine forwards traffic from afar (and says so in these headers), and req.ip is
 * only as true as trust proxy is right, so neither may earn the exemption. TLS that ended at a
 * trusted proxy is req.secure, which trust proxy decides.
 */
function fromThisMachine(req: Request): boolean {
  return isLoopbackAddress(req.socket.remoteAddress ?? '') && FORWARDING_HEADERS.every((name) => req.headers[name] === undefined);
}

const FORWARDING_HEADERS = ['forwarded', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-real-ip'];

/** Builds an endpoint as an Express sub-app that answers POST at its mount point. */
export function clientEndpoint<P>(context: EndpointContext, action: EndpointAction<P>): Express {
  const known = new Set([...CREDENTIAL_PARAMS, ...action.parameters]);
  const repeatable = new Set(action.repeatable ?? []);
  const readBody = express.raw({ type: () => true, limit: context.bodyLimit });

  let checkedMount = false;
  const begin: RequestHandler = (req, res, next) => {
    beginRequest(req, action.name);
    res.set(NO_STORE);
    if (!checkedMount) checkMount();
    if (context.requireHttps && !req.secure && !fromThisMachine(req)) return next(NOT_HTTPS);
    next();
  };
  /** Once, at the first request, when the app is mounted or never will be. */
  const checkMount = (): void => {
    checkedMount = true;
    if (context.urlGiven(action.name)) return;
    // Express tells a sub-app where it is mounted only when it is mounted with app.use() on an app.
    if ((app as { parent?: unknown }).parent === undefined) {
      process.emitWarning(
        `the ${action.name} endpoint is not mounted with app.use(path, endpoint) on an Express app (a Router tells it nothing): the metadata cannot know its URL; set the issuer's endpoints option`,
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
    // Whatever goes wrong while reading the body (bad compressed data, an unknown encoding, an
    // aborted upload) is the client's doing: a 4xx, never a 500.
    readBody(req, res, (error?: unknown) => (error === undefined || error === null ? next() : next(bodyError(error))));
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
  const authenticateAndAct: RequestHandler = async (req, res) => {
    const { parsed, credentials } = requestState(req)!.request!;
    // A client that hangs up gives its place in the comparison queue to the next one.
    const gone = new AbortController();
    const onClose = (): void => void (res.writableFinished || gone.abort());
    res.once('close', onClose);
    try {
      const authenticated = await context.authenticateClient(credentials, { address: clientAddress(req), signal: gone.signal });
      await action.act(authenticated, parsed as P, req, res);
    } finally {
      res.off('close', onClose);
    }
  };
  const handleError = (error: unknown, req: Request, res: Response): void => {
    const oauth = asOAuthError(error);
    reportInternalError(oauth, context.onInternalError);
    const credentials = requestState(req)?.request?.credentials;
    if (oauth.status === 429) context.audit(req, { type: 'rate_limited', limiter: 'failed-authentication', clientId: credentials?.clientId });
    if (oauth.error !== 'invalid_client') return sendError(res, oauth);
    context.audit(req, { type: 'client_authentication_failed', clientId: credentials?.clientId, authMethod: credentials?.method, ...(oauth.cause === METHOD_NOT_REGISTERED ? { reason: 'method_not_registered' } : {}) });
    // RFC 9110 §15.5.2: a 401 carries a challenge; RFC 6749 §5.2 asks for the scheme the client used.
    sendError(res, oauth.withHeaders({ 'WWW-Authenticate': context.basicChallenge }));
  };

  const steps = [begin, ...context.hardening, readForm, parse, authenticateAndAct];
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

/** What body-parser raised, as the client's error: too large, an encoding we do not read, or anything else malformed. */
function bodyError(error: unknown): OAuthError {
  const status = (error as { status?: unknown } | null)?.status;
  if (status === 413) return new OAuthError('invalid_request', 413, 'The request body is too large');
  if (status === 415) return new OAuthError('invalid_request', 415, 'The request body uses an unsupported encoding');
  return new OAuthError('invalid_request', 400, 'The request body is malformed', {}, { cause: error });
}

function asOAuthError(error: unknown): OAuthError {
  if (error instanceof OAuthError) return error;
  return new OAuthError('server_error', 500, 'The server could not handle the request', {}, { cause: error });
}
