// A client endpoint of the core, served through Express: the app's hardening middleware first
// (helmet's headers, the per-address cap), then the endpoint's steps, then the answer.

import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import type { ClientEndpoint } from '../core/client-endpoint.js';
import type { ProtocolResponse } from '../core/exchange.js';
import { beginExchange, ExpressRequest, send } from './exchange.js';

export type ServeEndpoint = (req: Request, res: Response, next: NextFunction) => void;

export function serveClientEndpoint(endpoint: ClientEndpoint, hardening: readonly RequestHandler[], bodyLimit: number): ServeEndpoint {
  const readBody = express.raw({ type: () => true, limit: bodyLimit });
  return (req, res, next) => {
    const exchange = { endpoint: endpoint.name, request: new ExpressRequest(req, res, readBody) };
    beginExchange(req, exchange);
    // A response that cannot be written (the app answered first, a hook's bad header) goes to Express's error handler.
    const write = (response: ProtocolResponse): void => {
      try {
        send(res, response);
      } catch (failure) {
        next(failure);
      }
    };
    runMiddleware(hardening, req, res, (error) => {
      if (error !== undefined) return write(endpoint.refuse(exchange, error));
      endpoint.handle(exchange).then(write, next);
    });
  };
}

/** Runs Express middleware in order, as a route would; an error thrown, rejected or passed to next() ends the run. */
function runMiddleware(steps: readonly RequestHandler[], req: Request, res: Response, done: (error?: unknown) => void): void {
  let index = 0;
  const next = (error?: unknown): void => {
    if (error !== undefined && error !== null) return done(error);
    const step = steps[index++];
    if (step === undefined) return done();
    try {
      const result: unknown = step(req, res, next);
      if (result instanceof Promise) result.catch(done);
    } catch (thrown) {
      done(thrown);
    }
  };
  next();
}
