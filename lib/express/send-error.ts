// The one place an error becomes an HTTP response: JSON `{ error, error_description }` (RFC 6749 §5.2, RFC 6750 §3).

import type { Response } from 'express';
import { OAuthError } from '../core/errors.js';

/** Anything that is not an OAuthError is our fault: answered without a word about it. */
const INTERNAL = new OAuthError('server_error', 500, 'The server could not handle the request');

/**
 * Sends an OAuth error. Errors are never cached (RFC 6749 §5.1 asks it of token responses, and
 * an error about credentials is no more cacheable), and never carry input, stacks or secrets.
 */
export function sendError(res: Response, error: unknown): void {
  const oauth = error instanceof OAuthError ? error : INTERNAL;
  sendJson(res.set(oauth.headers).set(NO_STORE), oauth.status, oauth.toJSON());
}

/**
 * Sends a JSON body as it is, whatever the app's settings: no ETag (the answers of the endpoints
 * and the guard are never stored, so a validator would be computed for nothing), no `json spaces`.
 */
export function sendJson(res: Response, status: number, body: unknown): void {
  res.statusCode = status;
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.end(JSON.stringify(body));
}

export const NO_STORE = { 'Cache-Control': 'no-store', Pragma: 'no-cache' } as const;

/** Reports our own failures (5xx) in one line: no stack, no request data. */
export function reportInternalError(error: unknown, report: (message: string) => void): void {
  const oauth = error instanceof OAuthError ? error : undefined;
  if (oauth !== undefined && oauth.status < 500) return;
  const cause = oauth?.cause ?? error;
  const detail = cause instanceof Error ? `${cause.name}: ${cause.message}` : typeof cause;
  report(`express-client-credentials: ${oauth?.message ?? 'unexpected error'} (${detail.replace(/\s+/g, ' ').slice(0, 300)})`);
}
