// The framework-neutral shape of one HTTP exchange: what the protocol core reads of a request and
// what it answers. Adapters (lib/express/) translate their framework's objects to and from these.

import { OAuthError } from './errors.js';

/** A request as the protocol core sees it. `N` is the framework's own request, for the app's hooks. */
export interface ProtocolRequest<N = unknown> {
  readonly method: string;
  /** A header's value by its lower-case name; a repeated header as the framework joins it. */
  header(name: string): string | undefined;
  /** The request arrived over TLS, here or at a proxy the app trusts. */
  readonly secure: boolean;
  /** The TCP peer's address, before any proxy header is believed. */
  readonly socketAddress: string;
  /** The client's address as the app's proxy settings give it: what rate limits count. */
  readonly clientAddress: string;
  /** Names of the query string's parameters. */
  queryNames(): readonly string[];
  /** The body: its bytes, or the object an app's own body parser made of it (repeats as arrays). */
  body(): Promise<Uint8Array | Readonly<Record<string, unknown>> | undefined>;
  /** Aborted when the client hangs up. */
  readonly signal?: AbortSignal | undefined;
  readonly native: N;
}

/** A response: a status, headers, and a body already serialized (JSON text), if any. */
export interface ProtocolResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body?: string | undefined;
}

/**
 * Never cached: RFC 6749 §5.1 asks it of token responses, and an answer about credentials or
 * tokens is no more cacheable.
 */
export const NO_STORE = { 'Cache-Control': 'no-store', Pragma: 'no-cache' } as const;

const JSON_TYPE = { 'Content-Type': 'application/json; charset=utf-8' } as const;

export function jsonResponse(status: number, body: unknown, headers: Readonly<Record<string, string>> = NO_STORE): ProtocolResponse {
  return { status, headers: { ...headers, ...JSON_TYPE }, body: JSON.stringify(body) };
}

/** Anything that is not an OAuthError is our fault: answered without a word about it. */
const INTERNAL = new OAuthError('server_error', 500, 'The server could not handle the request');

/** The one place an error becomes a response (RFC 6749 §5.2, RFC 6750 §3): no input, stack or secret. */
export function errorResponse(error: unknown): ProtocolResponse {
  const oauth = error instanceof OAuthError ? error : INTERNAL;
  return jsonResponse(oauth.status, oauth.toJSON(), { ...oauth.headers, ...NO_STORE });
}

/** Reports our own failures (5xx) in one line: no stack, no request data. */
export function reportInternalError(error: unknown, report: (message: string) => void): void {
  const oauth = error instanceof OAuthError ? error : undefined;
  if (oauth !== undefined && oauth.status < 500) return;
  const cause = oauth?.cause ?? error;
  const detail = cause instanceof Error ? `${cause.name}: ${cause.message}` : typeof cause;
  report(`express-client-credentials: ${oauth?.message ?? 'unexpected error'} (${detail.replace(/\s+/g, ' ').slice(0, 300)})`);
}
