import { randomBytes } from 'node:crypto';
import express, { type RequestHandler } from 'express';
import helmet, { type HelmetOptions } from 'helmet';
import request from 'supertest';
import { securityHeaders } from '../../lib/express/security-headers.js';

/** The headers a middleware leaves on a plain response, without the ones every response has. */
async function headersOf(middleware: RequestHandler): Promise<Record<string, unknown>> {
  const app = express().use(middleware).get('/', (_req, res) => void res.send('ok'));
  const res = await request(app).get('/').expect(200);
  const { date, etag, connection, 'content-length': _length, 'content-type': _type, ...rest } = res.headers;
  return rest;
}

describe('helmet headers worked out once for the client endpoints', () => {
  it.each<[string, HelmetOptions]>([
    ['the defaults', {}],
    ['custom options', { contentSecurityPolicy: { directives: { defaultSrc: ["'none'"] } }, strictTransportSecurity: { maxAge: 60 }, xFrameOptions: false }],
  ])('sets exactly the headers helmet sets, with %s', async (_name, options) => {
    const ours = await headersOf(securityHeaders(options));
    expect(ours).toEqual(await headersOf(helmet(options)));
    expect(ours['x-content-type-options']).toBe('nosniff');
    expect(ours['x-powered-by']).toBeUndefined();
  });

  it('runs helmet on every request when an option is a function (a CSP nonce)', async () => {
    const nonce: RequestHandler = (_req, res, next) => {
      res.locals.nonce = randomBytes(8).toString('hex');
      next();
    };
    const options: HelmetOptions = { contentSecurityPolicy: { directives: { scriptSrc: [(_req, res) => `'nonce-${(res as express.Response).locals.nonce}'`] } } };
    const app = express().use(nonce, securityHeaders(options)).get('/', (_req, res) => void res.send('ok'));
    const first = await request(app).get('/');
    const second = await request(app).get('/');
    expect(first.headers['content-security-policy']).toMatch(/script-src 'nonce-[0-9a-f]{16}'/);
    expect(second.headers['content-security-policy']).not.toBe(first.headers['content-security-policy']);
  });

  it('refuses invalid helmet options when it is built, as helmet does', () => {
    expect(() => securityHeaders({ strictTransportSecurity: { maxAge: -1 } })).toThrow();
  });
});
