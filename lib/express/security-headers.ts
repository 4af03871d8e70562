// helmet's headers for the client endpoints, worked out once instead of on every request.

import type { Request, RequestHandler, Response } from 'express';
import helmet, { type HelmetOptions } from 'helmet';

/**
 * helmet's middleware, or an equivalent that replays the headers it set on a trial run. helmet
 * sets the same headers on every response unless an option is a function (a CSP nonce, say):
 * with one, or if the trial does not end in a plain `next()`, helmet runs on every request.
 */
export function securityHeaders(options: HelmetOptions): RequestHandler {
  const middleware = helmet(options);
  if (containsFunction(options)) return middleware;
  const set: [string, string | string[]][] = [];
  const removed: string[] = [];
  const recorder = {
    setHeader: (name: string, value: string | string[]) => void set.push([name, value]),
    removeHeader: (name: string) => void removed.push(name),
  };
  let replayable = false;
  middleware({ headers: {} } as Request, recorder as unknown as Response, (error?: unknown) => {
    replayable = error === undefined;
  });
  if (!replayable) return middleware;
  return (_req, res, next) => {
    for (const name of removed) res.removeHeader(name);
    for (const [name, value] of set) res.setHeader(name, value);
    next();
  };
}

function containsFunction(value: unknown): boolean {
  if (typeof value === 'function') return true;
  if (typeof value !== 'object' || value === null) return false;
  return Object.values(value).some(containsFunction);
}
