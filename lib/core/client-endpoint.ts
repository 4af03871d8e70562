// The steps shared by the endpoints where clients authenticate (token, revocation, introspection):
// RFC 6749 §2.3 and §3.2, hardened by default, over the framework-neutral request.

import type { Auditor, EndpointName, Exchange } from './audit.js';
import { CREDENTIAL_PARAMS, extractCredentials, METHOD_NOT_REGISTERED, type AuthenticatedClient, type AuthenticationContext, type ClientCredentials } from './client-authentication.js';
import { OAuthError } from './errors.js';
import { errorResponse, reportInternalError, type ProtocolRequest, type ProtocolResponse } from './exchange.js';
import { isLoopbackAddress } from './loopback.js';
import { Steps } from './steps.js';

/** What every client endpoint of one issuer shares: one authenticator, one lock, one audit trail. */
export interface ClientEndpointContext {
  readonly authenticateClient: (credentials: ClientCredentials, context: AuthenticationContext) => Promise<AuthenticatedClient>;
  readonly audit: Auditor;
  /** Refuse credentials that did not come over TLS (RFC 6749 §2.3.1), loopback excepted. */
  readonly requireHttps: boolean;
  readonly basicChallenge: string;
  readonly onInternalError: (message: string) => void;
  /** The key the failure lock counts an address under (IPv6 grouped as the rate limits group it). */
  readonly addressKey: (address: string) => string;
}

/** The form parameters an endpoint reads: each once (RFC 6749 §3.2), unless repeatable (RFC 8707 `resource`). */
export interface FormParameters {
  readonly values: Readonly<Record<string, string>>;
  readonly lists: Readonly<Record<string, readonly string[]>>;
}

/** A client endpoint: its name, its steps, and what it answers to a request. */
export interface ClientEndpoint {
  readonly name: EndpointName;
  readonly steps: readonly string[];
  handle(exchange: Exchange): Promise<ProtocolResponse>;
  /** The answer to a failure outside the steps (an adapter's own middleware): reported and audited as the steps' are. */
  refuse(exchange: Exchange, error: unknown): ProtocolResponse;
}

/** The steps every client endpoint starts with, up to the parameters it reads. */
export function formSteps(context: ClientEndpointContext, parameters: readonly string[], repeatable: readonly string[] = []) {
  const known = new Set([...CREDENTIAL_PARAMS, ...parameters]);
  const repeats = new Set(repeatable);
  return new Steps<Exchange>()
    .then('postOnly', ({ request }) => postOnly(request))
    .then('requireTls', ({ request }) => requireTls(request, context.requireHttps))
    .then('formUtf8', ({ request }) => formUtf8(request))
    .then('body', ({ request }) => request.body())
    .then('params', ({ body }) => parseParameters(body, known, repeats));
}

/** The steps after an endpoint's own checks: which credentials were presented, and whose they are. */
export function clientSteps<S extends Exchange & { readonly params: FormParameters }>(context: ClientEndpointContext, steps: Steps<Exchange, S>) {
  return steps
    .then('credentials', ({ request, params }) =>
      extractCredentials({ authorization: request.header('authorization'), body: params.values, queryNames: request.queryNames() }),
    )
    .then('authenticated', (state) => authenticateClient(context, state.request, state.credentials));
}

/**
 * An endpoint from its steps, the last of which is its `response`. Every failure becomes an OAuth
 * error response; a failed client authentication is audited and challenged with the scheme the
 * client used (RFC 6749 §5.2, RFC 9110 §15.5.2).
 */
export function clientEndpoint<S extends { readonly response: ProtocolResponse; readonly credentials?: ClientCredentials }>(
  name: EndpointName,
  context: ClientEndpointContext,
  steps: Steps<Exchange, S>,
): ClientEndpoint {
  return {
    name,
    steps: steps.names,
    handle: (exchange) =>
      steps.run(exchange).then(
        (state) => state.response,
        (error: unknown) => refusal(context, exchange as Exchange & { credentials?: ClientCredentials }, error),
      ),
    refuse: (exchange, error) => refusal(context, exchange, error),
  };
}

function refusal(context: ClientEndpointContext, exchange: Exchange & { credentials?: ClientCredentials }, error: unknown): ProtocolResponse {
  const oauth = error instanceof OAuthError ? error : new OAuthError('server_error', 500, 'The server could not handle the request', {}, { cause: error });
  reportInternalError(oauth, context.onInternalError);
  const credentials = exchange.credentials;
  if (oauth.status === 429) context.audit(exchange, { type: 'rate_limited', limiter: 'failed-authentication', clientId: credentials?.clientId });
  if (oauth.error !== 'invalid_client') return errorResponse(oauth);
  context.audit(exchange, {
    type: 'client_authentication_failed',
    clientId: credentials?.clientId,
    authMethod: credentials?.method,
    ...(oauth.cause === METHOD_NOT_REGISTERED ? { reason: 'method_not_registered' } : {}),
  });
  return errorResponse(oauth.withHeaders({ 'WWW-Authenticate': context.basicChallenge }));
}

/** RFC 6749 §3.2: "The client MUST use the HTTP POST method". */
export function postOnly(request: ProtocolRequest): void {
  if (request.method !== 'POST') throw new OAuthError('invalid_request', 405, 'This endpoint accepts POST only', { Allow: 'POST' });
}

// RFC 6749 §2.3.1: the server "MUST require the use of TLS" when sending client credentials.
const NOT_HTTPS = new OAuthError('invalid_request', 400, 'Client credentials must be sent over https');

export function requireTls(request: ProtocolRequest, required: boolean): void {
  if (required && !request.secure && !fromThisMachine(request)) throw NOT_HTTPS;
}

/**
 * A request that did not leave this machine: from a loopback socket, and forwarded by nobody. A
 * proxy on this machine forwards traffic from afar (and says so in these headers), and the client
 * address is only as true as the app's proxy settings are right, so neither may earn the
 * exemption. TLS that ended at a trusted proxy is `secure`, which those settings decide.
 */
function fromThisMachine(request: ProtocolRequest): boolean {
  return isLoopbackAddress(request.socketAddress) && FORWARDING_HEADERS.every((name) => request.header(name) === undefined);
}

const FORWARDING_HEADERS = ['forwarded', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-real-ip'];

const NOT_FORM = new OAuthError('invalid_request', 400, 'The request body must be application/x-www-form-urlencoded in UTF-8');

/** RFC 6749 §3.2 and Appendix B: the body is a form, in UTF-8. */
export function formUtf8(request: ProtocolRequest): void {
  const [type = '', ...params] = (request.header('content-type') ?? '').split(';');
  if (type.trim().toLowerCase() !== 'application/x-www-form-urlencoded') throw NOT_FORM;
  for (const param of params) {
    const equals = param.indexOf('=');
    if (equals !== -1 && param.slice(0, equals).trim().toLowerCase() === 'charset' && !/^"?utf-8"?$/i.test(param.slice(equals + 1).trim())) throw NOT_FORM;
  }
}

/** The parameters the endpoint reads, each at most once unless repeatable (RFC 6749 §3.2), empty values omitted. */
export function parseParameters(body: unknown, known: ReadonlySet<string>, repeatable: ReadonlySet<string>): FormParameters {
  const entries: [string, unknown][] =
    body instanceof Uint8Array ? [...new URLSearchParams(decodeUtf8(body))]
    : typeof body === 'object' && body !== null ? Object.entries(body)
    : [];
  const values: Record<string, string> = Object.create(null);
  const lists: Record<string, string[]> = Object.create(null);
  const malformed = () => new OAuthError('invalid_request', 400, 'A request parameter is repeated or malformed');
  for (const [name, given] of entries) {
    if (!known.has(name) && !repeatable.has(name)) continue; // "MUST ignore unrecognized request parameters"
    for (const value of repeatable.has(name) && Array.isArray(given) ? given : [given]) {
      if (typeof value !== 'string') throw malformed();
      if (value === '') continue; // "Parameters sent without a value MUST be treated as if they were omitted"
      if (repeatable.has(name)) (lists[name] ??= []).push(value);
      else if (name in values) throw malformed();
      else values[name] = value;
    }
  }
  return { values, lists };
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

function decodeUtf8(bytes: Uint8Array): string {
  try {
    return UTF8.decode(bytes);
  } catch {
    throw new OAuthError('invalid_request', 400, 'The request body is not valid UTF-8');
  }
}

/** The failure lock and the secret check; a client that hangs up gives its place in the comparison queue to the next one. */
function authenticateClient(context: ClientEndpointContext, request: ProtocolRequest, credentials: ClientCredentials): Promise<AuthenticatedClient> {
  return context.authenticateClient(credentials, { address: context.addressKey(request.clientAddress), signal: request.signal });
}
