// Express ↔ the protocol core: a request read through Express, a ProtocolResponse written to `res`.

import type { Request, RequestHandler, Response } from 'express';
import type { Exchange } from '../core/audit.js';
import { OAuthError } from '../core/errors.js';
import { errorResponse, type ProtocolRequest, type ProtocolResponse } from '../core/exchange.js';

type Body = Awaited<ReturnType<ProtocolRequest['body']>>;

/** An Express request as the core reads it; a class, so that a request costs one object and no closures. */
export class ExpressRequest implements ProtocolRequest<Request> {
  readonly #readBody: RequestHandler | undefined;
  readonly #res: Response;
  #aborted: AbortController | undefined;

  constructor(readonly native: Request, res: Response, readBody?: RequestHandler) {
    this.#res = res;
    this.#readBody = readBody;
  }

  get method(): string {
    return this.native.method;
  }

  header(name: string): string | undefined {
    const value = this.native.headers[name];
    return Array.isArray(value) ? value.join(', ') : value;
  }

  get secure(): boolean {
    return this.native.secure;
  }

  get socketAddress(): string {
    return this.native.socket.remoteAddress ?? '';
  }

  get clientAddress(): string {
    return this.native.ip ?? '';
  }

  queryNames(): readonly string[] {
    const url = this.native.originalUrl;
    const query = url.indexOf('?');
    return query === -1 ? [] : [...new URLSearchParams(url.slice(query + 1)).keys()];
  }

  /** What the app's body parser made of the body, or its bytes, read within the issuer's limit. */
  body(): Promise<Body> {
    const req = this.native;
    if (req.body !== undefined || this.#readBody === undefined) return Promise.resolve(req.body as Body);
    return new Promise((resolve, reject) => {
      // Whatever goes wrong while reading the body (bad compressed data, an unknown encoding, an
      // aborted upload) is the client's doing: a 4xx, never a 500.
      this.#readBody!(req, this.#res, (error?: unknown) => (error === undefined || error === null ? resolve(req.body as Body) : reject(bodyError(error))));
    });
  }

  /** Aborted when the client hangs up before its answer is written. */
  get signal(): AbortSignal {
    if (this.#aborted === undefined) {
      const aborted = (this.#aborted = new AbortController());
      const res = this.#res;
      const onClose = (): void => void (res.writableFinished || aborted.abort());
      res.once('close', onClose);
    }
    return this.#aborted.signal;
  }
}

/** What body-parser raised, as the client's error: too large, an encoding we do not read, or anything else malformed. */
function bodyError(error: unknown): OAuthError {
  const status = (error as { status?: unknown } | null)?.status;
  if (status === 413) return new OAuthError('invalid_request', 413, 'The request body is too large');
  if (status === 415) return new OAuthError('invalid_request', 415, 'The request body uses an unsupported encoding');
  return new OAuthError('invalid_request', 400, 'The request body is malformed', {}, { cause: error });
}

/**
 * Writes a response as it is, whatever the app's settings: no ETag (these answers are never
 * stored, so a validator would be computed for nothing), no `json spaces`.
 */
export function send(res: Response, response: ProtocolResponse): void {
  res.statusCode = response.status;
  for (const name in response.headers) res.setHeader(name, response.headers[name]!);
  res.end(response.body);
}

export function sendError(res: Response, error: unknown): void {
  send(res, errorResponse(error));
}

/** The exchange a client endpoint is handling, kept on the request (a WeakMap would cost the collector on every request). */
const EXCHANGE = Symbol('express-client-credentials.exchange');
type WithExchange = Request & { [EXCHANGE]?: Exchange };

export function beginExchange(req: Request, exchange: Exchange): void {
  (req as WithExchange)[EXCHANGE] = exchange;
}

export function exchangeOf(req: Request): Exchange | undefined {
  return (req as WithExchange)[EXCHANGE];
}
