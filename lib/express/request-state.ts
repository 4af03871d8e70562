// What the client endpoints learn about a request as it passes through them, kept on the request
// under a symbol: a WeakMap entry per request would cost the garbage collector on every request.

import type { Request } from 'express';
import type { ClientCredentials } from '../core/client-authentication.js';

export type EndpointName = 'token' | 'revocation' | 'introspection';

export interface RequestState {
  readonly endpoint: EndpointName;
  /** The endpoint's validated parameters and the presented credentials, once parsed. */
  request?: { readonly parsed: unknown; readonly credentials: ClientCredentials } | undefined;
  /** The audit trail's request id, once an event needed it. */
  requestId?: string | undefined;
}

const STATE = Symbol('express-client-credentials.request');
type WithState = Request & { [STATE]?: RequestState };

export function beginRequest(req: Request, endpoint: EndpointName): RequestState {
  const state: RequestState = { endpoint };
  (req as WithState)[STATE] = state;
  return state;
}

export function requestState(req: Request): RequestState | undefined {
  return (req as WithState)[STATE];
}
