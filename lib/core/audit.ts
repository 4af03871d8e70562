// Audit events: what the issuer did, with client id, scope, jti and request id, never a secret
// or a token, for the app to log with its own logger.

import { randomUUID } from 'node:crypto';
import type { ProtocolRequest } from './exchange.js';

/** The endpoints where clients authenticate. */
export type EndpointName = 'token' | 'revocation' | 'introspection';

/** One request at a client endpoint, as its steps and its audit events see it. */
export interface Exchange<N = unknown> {
  readonly endpoint: EndpointName;
  readonly request: ProtocolRequest<N>;
  /** The audit trail's request id, once an event needed it. */
  requestId?: string | undefined;
}

/** Fields every event has. */
interface EventBase {
  /** `X-Request-Id` when the request carried a sane one, else a new UUID. */
  readonly requestId: string;
  /** The client's address as the app sees it (in Express `req.ip`, after `trust proxy`). */
  readonly address: string | undefined;
  readonly endpoint: EndpointName;
}

export type AuditEvent = EventBase &
  (
    | {
        readonly type: 'token_issued';
        readonly clientId: string;
        readonly authMethod: string;
        /** Which secret hash matched, by index (for a roll-over), never the secret. */
        readonly secretIndex: number | undefined;
        readonly scope: string | undefined;
        readonly audience: unknown;
        readonly jti: string;
        readonly expiresAt: number;
      }
    | { readonly type: 'token_refused'; readonly clientId: string; readonly error: string }
    | {
        readonly type: 'client_authentication_failed';
        readonly clientId: string | undefined;
        readonly authMethod: string | undefined;
        /** Set when the secret was right but the client's record pins another method (not counted by the failure lock). */
        readonly reason?: 'method_not_registered' | undefined;
      }
    | { readonly type: 'token_revoked'; readonly clientId: string; readonly jti: string }
    | { readonly type: 'rate_limited'; readonly limiter: 'failed-authentication' | 'per-address'; readonly clientId: string | undefined }
  );

/** An event as an endpoint reports it; the request fills in the common fields. */
export type EndpointEvent = AuditEvent extends infer E ? (E extends AuditEvent ? Omit<E, keyof EventBase> : never) : never;

/** Makes the function endpoints report with; a listener that throws or rejects never breaks a request. */
export function auditor(listener: ((event: AuditEvent) => unknown) | undefined, onError: (error: unknown) => void) {
  return (exchange: Exchange, event: EndpointEvent): void => {
    if (listener === undefined) return;
    const clientId = 'clientId' in event && event.clientId !== undefined ? { clientId: loggable(event.clientId) } : {};
    try {
      const result = listener({ ...event, ...clientId, requestId: requestId(exchange), address: exchange.request.clientAddress || undefined, endpoint: exchange.endpoint } as AuditEvent);
      if (result instanceof Promise) result.catch(onError);
    } catch (error) {
      onError(error);
    }
  };
}

/** A client id as presented may be anything: no control characters (log injection), at most 256 characters. */
function loggable(clientId: string): string {
  return clientId.replace(/[\x00-\x1F\x7F]/g, '?').slice(0, 256);
}

function requestId(exchange: Exchange): string {
  if (exchange.requestId !== undefined) return exchange.requestId;
  const given = exchange.request.header('x-request-id');
  return (exchange.requestId = given !== undefined && /^[\x21-\x7E]{1,128}$/.test(given) ? given : randomUUID());
}

export type Auditor = ReturnType<typeof auditor>;
