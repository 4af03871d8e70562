import { execFile } from 'node:child_process';
import { createPublicKey } from 'node:crypto';
import path from 'node:path';
import { promisify } from 'node:util';
import express, { type ErrorRequestHandler, type RequestHandler } from 'express';
import request from 'supertest';
import {
  authenticate,
  ConfigurationError,
  issuer,
  OAuthError,
  requireAnyScope,
  requireScope,
  type AuthenticateOptions,
} from 'express-client-credentials';
import { signJws } from '../../lib/core/jws.js';
import { forgetWarnings } from '../../lib/core/warnings.js';
import { resolveSigningKey } from '../../lib/core/signing-keys.js';
import { aClient, AUDIENCE, hs256, ISSUER, keyPairs, SECRET, tokenServer } from '../support/fixtures.js';

const execFileAsync = promisify(execFile);

const now = () => Math.floor(Date.now() / 1000);
const claims = (overrides: Record<string, unknown> = {}) => ({
  iss: ISSUER, sub: 'svc', client_id: 'svc', aud: AUDIENCE, iat: now(), exp: now() + 600, jti: `j-${Math.random()}`, scope: 'read', ...overrides,
});
const REALM = `realm="${AUDIENCE}"`;

/** A resource server on its own: the guard, then routes that echo req.auth. */
function resourceServer(options: AuthenticateOptions, ...guards: RequestHandler[]) {
  const app = express();
  app.use(express.urlencoded({ extended: false }));
  app.use(authenticate(options));
  app.all('/data', ...guards, (req, res) => {
    res.json({ client_id: req.auth?.clientId, scopes: req.auth?.scopes, jti: req.auth?.claims.jti, token: req.auth?.token });
  });
  return app;
}

const secretApp = resourceServer({ secret: SECRET, issuer: ISSUER, audience: AUDIENCE });

describe('reading the token: RFC 6750 §2', () => {
  it('accepts Authorization: Bearer and sets req.auth with client, scopes, claims and the raw token', async () => {
    const token = hs256(claims({ scope: 'read write' }));
    const res = await request(secretApp).get('/data').set('Authorization', `Bearer ${token}`).expect(200);
    expect(res.body).toEqual({ client_id: 'svc', scopes: ['read', 'write'], jti: expect.stringMatching(/^j-/), token });
  });

  it.each(['bearer', 'BEARER', 'BeArEr'])('treats the scheme %s case-insensitively', async (scheme) => {
    await request(secretApp).get('/data').set('Authorization', `${scheme} ${hs256(claims())}`).expect(200);
  });

  it.each([
    ['no Authorization header', undefined],
    ['the Basic scheme', 'Basic YTpi'],
    ['an unknown scheme', 'Token abc'],
  ])('answers %s with 401 and a Bearer challenge without an error code (§3.1)', async (_name, header) => {
    const req = request(secretApp).get('/data');
    const res = await (header === undefined ? req : req.set('Authorization', header));
    expect(res.status).toBe(401);
    expect(res.headers['www-authenticate']).toBe(`Bearer ${REALM}`);
    expect(res.body).toEqual({ error: 'invalid_token', error_description: 'An access token is required' });
  });

  it.each([
    ['Bearer with no token', 'Bearer'],
    ['Bearer with an empty token', 'Bearer '],
    ['Bearer with two tokens', `Bearer ${hs256(claims())} ${hs256(claims())}`],
    ['a token with characters outside b64token', 'Bearer abc$def'],
  ])('answers %s with 400 invalid_request', async (_name, header) => {
    const res = await request(secretApp).get('/data').set('Authorization', header);
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_request');
    expect(res.headers['www-authenticate']).toMatch(/^Bearer realm="[^"]+", error="invalid_request", error_description="[^"]+"$/);
  });

  it('ignores access_token in the query and the body unless enabled (§2.2, §2.3)', async () => {
    const token = hs256(claims());
    expect((await request(secretApp).get(`/data?access_token=${token}`)).status).toBe(401);
    expect((await request(secretApp).post('/data').type('form').send({ access_token: token })).status).toBe(401);
  });

  it('accepts the query and the form body when enabled, marking query responses private (§2.3)', async () => {
    const open = resourceServer({ secret: SECRET, issuer: ISSUER, tokenLocations: ['header', 'body', 'query'] });
    const token = hs256(claims());
    await request(open).get(`/data?access_token=${token}`).expect(200).expect('Cache-Control', 'private');
    await request(open).post('/data').type('form').send({ access_token: token }).expect(200);
    // §2.2: the body method is for form-encoded, non-GET requests only.
    expect((await request(open).post('/data').type('json').send({ access_token: token })).status).toBe(401);
  });

  it('answers invalid_request to a token sent in more than one way (§3.1), enabled or not', async () => {
    const token = hs256(claims());
    const res = await request(secretApp).get(`/data?access_token=${token}`).set('Authorization', `Bearer ${token}`);
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_request');
    const open = resourceServer({ secret: SECRET, issuer: ISSUER, tokenLocations: ['body', 'query'] });
    expect((await request(open).post(`/data?access_token=${token}`).type('form').send({ access_token: token })).status).toBe(400);
  });
});

describe('validating the token: RFC 6750 §3.1 and RFC 9068 §4', () => {
  it.each([
    ['a bad signature', hs256(claims(), undefined, 'another-secret-of-at-least-32-bytes!'), 'The token signature is invalid'],
    ['an expired token', hs256(claims({ exp: now() - 60 })), 'The token has expired'],
    ['a token not yet valid', hs256(claims({ nbf: now() + 60 })), 'The token is not valid yet'],
    ['the wrong issuer', hs256(claims({ iss: 'http://127.0.0.1:4000' })), 'The token issuer is not trusted'],
    ['the wrong audience', hs256(claims({ aud: 'http://127.0.0.1:3000/other' })), 'The token audience is not this resource'],
    ['typ JWT', hs256(claims(), { alg: 'HS256', typ: 'JWT' }), 'The token type is not accepted'],
    ['alg none', `${Buffer.from('{"alg":"none","typ":"at+jwt"}').toString('base64url')}.${Buffer.from(JSON.stringify(claims())).toString('base64url')}.`, 'The token is not a JWS'],
    ['garbage', 'abc.def.ghi', 'The token is not a JWS'],
  ])('answers %s with 401 invalid_token and a challenge that says why', async (_name, token, description) => {
    const res = await request(secretApp).get('/data').set('Authorization', `Bearer ${token}`);
    expect(res.status).toBe(401);
    expect(res.headers['www-authenticate']).toBe(`Bearer ${REALM}, error="invalid_token", error_description="${description}"`);
    expect(res.body).toEqual({ error: 'invalid_token', error_description: description });
    expect(res.headers['cache-control']).toBe('no-store');
  });

  it('tolerates clock skew within clockTolerance (5 s by default)', async () => {
    await request(secretApp).get('/data').set('Authorization', `Bearer ${hs256(claims({ exp: now() - 2 }))}`).expect(200);
    const strictClock = resourceServer({ secret: SECRET, issuer: ISSUER, clockTolerance: 0 });
    expect((await request(strictClock).get('/data').set('Authorization', `Bearer ${hs256(claims({ exp: now() - 2 }))}`)).status).toBe(401);
  });

  it('accepts typ JWT from a legacy issuer when strict is off', async () => {
    const legacy = resourceServer({ secret: SECRET, issuer: ISSUER, strict: false });
    await request(legacy).get('/data').set('Authorization', `Bearer ${hs256(claims(), { alg: 'HS256', typ: 'JWT' })}`).expect(200);
  });

  it.each([
    ['a PEM public key', (pem: string) => ({ publicKey: pem })],
    ['a public JWK', (pem: string) => ({ publicKey: createPublicKey(pem).export({ format: 'jwk' }) })],
    ['a list of keys', (pem: string) => ({ publicKey: [createPublicKey(keyPairs.ec()), pem] })],
  ])('verifies with %s alone, for a separate resource server', async (_name, keyOption) => {
    const key = resolveSigningKey({ privateKey: keyPairs.rsa() });
    const pem = createPublicKey(key.signingKey).export({ format: 'pem', type: 'spki' }).toString();
    const app = resourceServer({ ...keyOption(pem), issuer: ISSUER });
    await request(app).get('/data').set('Authorization', `Bearer ${signJws(claims(), key, 'at+jwt')}`).expect(200);
    // No HS/RS confusion: an HS256 token signed with the public PEM as secret is refused.
    const forged = hs256(claims(), { alg: 'HS256', typ: 'at+jwt' }, pem);
    expect((await request(app).get('/data').set('Authorization', `Bearer ${forged}`)).status).toBe(401);
  });

  it('accepts any of several configured audiences', async () => {
    const multi = resourceServer({ secret: SECRET, issuer: ISSUER, audience: ['https://a.example', AUDIENCE] });
    await request(multi).get('/data').set('Authorization', `Bearer ${hs256(claims())}`).expect(200);
  });

  it('uses the realm option in challenges', async () => {
    const named = resourceServer({ secret: SECRET, issuer: ISSUER, realm: 'reports' });
    expect((await request(named).get('/data')).headers['www-authenticate']).toBe('Bearer realm="reports"');
  });
});

describe('scopes: RFC 6750 §3.1 insufficient_scope', () => {
  const app = resourceServer({ secret: SECRET, issuer: ISSUER }, requireScope('read', 'write'));
  const any = resourceServer({ secret: SECRET, issuer: ISSUER }, requireAnyScope('admin', 'write'));
  const bearer = (scope: unknown, claim = 'scope') => `Bearer ${hs256(claims({ scope: undefined, [claim]: scope }))}`;

  it('lets a token with every required scope through', async () => {
    await request(app).get('/data').set('Authorization', bearer('write read extra')).expect(200);
  });

  it('answers 403 with the required scope in the challenge when one is missing', async () => {
    const res = await request(app).get('/data').set('Authorization', bearer('read'));
    expect(res.status).toBe(403);
    expect(res.headers['www-authenticate']).toBe(
      `Bearer ${REALM}, error="insufficient_scope", error_description="The access token lacks the required scope", scope="read write"`,
    );
    expect(res.body).toEqual({ error: 'insufficient_scope', error_description: 'The access token lacks the required scope' });
  });

  it('reads scopes from scp arrays, as Hydra issues them', async () => {
    await request(app).get('/data').set('Authorization', bearer(['read', 'write'], 'scp')).expect(200);
  });

  it('answers invalid_token to a scope claim of another shape', async () => {
    const res = await request(app).get('/data').set('Authorization', bearer(42));
    expect([res.status, res.body.error]).toEqual([401, 'invalid_token']);
  });

  it('accepts any one of several scopes with requireAnyScope', async () => {
    await request(any).get('/data').set('Authorization', bearer('write')).expect(200);
    expect((await request(any).get('/data').set('Authorization', bearer('read'))).status).toBe(403);
  });

  it.each([[[]], [['read write']], [['re"ad']]])('refuses scope names %j at construction', (scopes) => {
    expect(() => requireScope(...scopes)).toThrow(ConfigurationError);
  });
});

describe('the two-line setup: requireScope() alone', () => {
  it('verifies tokens of the issuer() mounted in the same app', async () => {
    const client = await aClient({ scope: 'read write', default_scope: 'read' });
    const { app } = tokenServer([client]);
    const { body } = await request(app).post('/token').auth(client.id, client.secret).type('form').send({ grant_type: 'client_credentials' });
    const res = await request(app).get('/api/data').set('Authorization', `Bearer ${body.access_token}`).expect(200);
    expect(res.body).toEqual({ client_id: client.id, scope: 'read' });
    expect((await request(app).get('/api/data')).headers['www-authenticate']).toBe(`Bearer ${REALM}`);
  });

  it('finds the issuer() whose middleware the request passed through in a parent app, with an ephemeral key', async () => {
    const client = await aClient();
    const parent = express();
    const api = express();
    api.get('/data', requireScope('read'), (req, res) => { res.json({ client_id: req.auth?.clientId }); });
    forgetWarnings();
    const emitWarning = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    try {
      parent.use(issuer({ issuer: ISSUER, secretHashCost: 4, clients: [client.record] }));
      expect(emitWarning.mock.calls).toEqual([[expect.stringContaining('ephemeral ES256 key'), { code: 'ECC_EPHEMERAL_KEY' }]]);
    } finally {
      emitWarning.mockRestore();
    }
    parent.use('/api', api);
    const { body } = await request(parent).post('/token').auth(client.id, client.secret).type('form').send({ grant_type: 'client_credentials', scope: 'read' });
    await request(parent).get('/api/data').set('Authorization', `Bearer ${body.access_token}`).expect(200, { client_id: client.id });
  });

  it('will not guess between two issuers a request passed through: 500, and a warning naming the fix', async () => {
    const client = await aClient({ scope: 'read' });
    const first = issuer({ issuer: ISSUER, signingKey: { secret: SECRET }, secretHashCost: 4, clients: [client.record] });
    const second = issuer({ issuer: 'http://127.0.0.1:3001', signingKey: { secret: SECRET }, secretHashCost: 4, clients: [client.record] });
    const app = express().use(first).use(second).get('/data', requireScope('read'), (_req, res) => { res.json({}); });
    const { body } = await request(app).post('/token').auth(client.id, client.secret).type('form').send({ grant_type: 'client_credentials' });
    forgetWarnings();
    const emitWarning = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    try {
      await request(app).get('/data').set('Authorization', `Bearer ${body.access_token}`).expect(500);
      expect(emitWarning.mock.calls).toEqual([[expect.stringContaining('found two issuer() middlewares'), { code: 'ECC_NO_GUARD' }]]);
    } finally {
      emitWarning.mockRestore();
      forgetWarnings();
    }
  });

  it('answers 500 server_error when it has no key to verify with, and warns the developer once, naming the fix', async () => {
    const app = express();
    app.get('/data', requireScope('read'), (_req, res) => { res.json({}); });
    const emitWarning = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    const answers: request.Response[] = [];
    try {
      for (let i = 0; i < 3; i++) answers.push(await request(app).get('/data').set('Authorization', `Bearer ${hs256(claims())}`));
      const warnings = emitWarning.mock.calls.filter(([message]) => String(message).includes('requireScope() found no issuer()'));
      expect(warnings).toEqual([[expect.stringContaining('put authenticate({ issuer: tokens }) before it'), { code: 'ECC_NO_GUARD' }]]);
    } finally {
      emitWarning.mockRestore();
    }
    for (const res of answers) {
      expect(res.status).toBe(500);
      expect(res.body).toEqual({ error: 'server_error', error_description: 'The server could not handle the request' });
    }
  });

  it('finds the issuer() of its process mounted on a Router, at any depth, which tells it nothing when mounted', async () => {
    // A process of its own: this one has made many issuers, and the rule is "the only one".
    const script = `
      const express = require('express');
      const { issuer, requireScope, hashSecret } = require(${JSON.stringify(path.join(__dirname, '../../lib/index.ts'))});
      (async () => {
        const tokens = issuer({ issuer: 'http://127.0.0.1', endpoints: { token: 'http://127.0.0.1/v1/oauth/token' }, signingKey: { secret: 'x'.repeat(32) }, secretHashCost: 4, clients: [{ client_id: 'svc', client_secret_hash: await hashSecret('a-secret-of-sixteen', 4), scope: 'read' }] });
        const app = express();
        const outer = express.Router();
        const inner = express.Router();
        inner.use('/token', tokens);
        outer.use('/oauth', inner);
        app.use('/v1', outer);
        app.use('/api', express.Router().get('/data', requireScope('read'), (req, res) => res.json({ client_id: req.auth.clientId })));
        const server = app.listen(0, '127.0.0.1', async () => {
          const base = 'http://127.0.0.1:' + server.address().port;
          const body = new URLSearchParams({ grant_type: 'client_credentials', client_id: 'svc', client_secret: 'a-secret-of-sixteen' });
          const token = (await (await fetch(base + '/v1/oauth/token', { method: 'POST', body })).json()).access_token;
          const data = await fetch(base + '/api/data', { headers: { authorization: 'Bearer ' + token } });
          console.log(JSON.stringify({ status: data.status, body: await data.json() }));
          server.close();
        });
      })();`;
    const { stdout, stderr } = await execFileAsync(process.execPath, ['--import', 'tsx', '-e', script], { timeout: 20_000 });
    expect(JSON.parse(stdout)).toEqual({ status: 200, body: { client_id: 'svc' } });
    expect(stderr).not.toMatch(/ECC_NO_GUARD/);
  });
});

describe('authenticate({ issuer }) in the same process', () => {
  it('verifies with the keys, issuer and audience of an issuer() instance', async () => {
    const client = await aClient();
    const tokens = issuer({ issuer: ISSUER, signingKey: { privateKey: keyPairs.ed25519() }, secretHashCost: 4, clients: [client.record] });
    const app = express();
    app.use('/token', tokens);
    app.get('/data', authenticate({ issuer: tokens }), requireScope('read'), (req, res) => { res.json({ client_id: req.auth?.clientId }); });
    const { body } = await request(app).post('/token').auth(client.id, client.secret).type('form').send({ grant_type: 'client_credentials' });
    await request(app).get('/data').set('Authorization', `Bearer ${body.access_token}`).expect(200, { client_id: client.id });
    expect(() => authenticate({ issuer: tokens, secret: SECRET } as AuthenticateOptions)).toThrow(/one of/);
  });

  it("authenticates itself when req.auth was set by another library, rather than trust its shape", async () => {
    const app = express();
    app.use((req, _res, next) => {
      (req as unknown as { auth: unknown }).auth = { payload: { scope: 'read' } };
      next();
    });
    app.get('/data', authenticate({ secret: SECRET, issuer: ISSUER }), requireScope('read'), (req, res) => { res.json({ client_id: req.auth?.clientId }); });
    const stranger = express();
    stranger.use((req, _res, next) => {
      (req as unknown as { auth: unknown }).auth = { payload: { scope: 'read' } };
      next();
    });
    stranger.get('/data', requireScope('read'), (_req, res) => { res.json({}); });
    // Two live issuers, so that "the process's only issuer" cannot stand in, whatever the collector freed.
    const live = [1, 2].map(() => issuer({ issuer: ISSUER, signingKey: { secret: SECRET }, clients: [] }));
    await request(app).get('/data').set('Authorization', `Bearer ${hs256(claims())}`).expect(200, { client_id: 'svc' });
    forgetWarnings();
    const emitWarning = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    try {
      const res = await request(stranger).get('/data');
      expect([res.status, res.body.error]).toEqual([500, 'server_error']);
      // The other library's req.auth does not count: the app has no guard of ours, and is told so.
      expect(emitWarning.mock.calls).toEqual([[expect.stringContaining('requireScope() found no issuer()'), { code: 'ECC_NO_GUARD' }]]);
    } finally {
      emitWarning.mockRestore();
      await Promise.all(live.map((each) => each.close()));
    }
  });
});

describe('error rendering', () => {
  it('passes typed errors to next(err) with delegateErrors, status and headers included', async () => {
    const seen: unknown[] = [];
    const app = express();
    app.get('/data', authenticate({ secret: SECRET, issuer: ISSUER, delegateErrors: true }), requireScope('admin'), (_req, res) => { res.json({}); });
    const handler: ErrorRequestHandler = (err: unknown, _req, res, _next) => {
      seen.push(err);
      res.status((err as OAuthError).status).send('custom');
    };
    app.use(handler);
    expect((await request(app).get('/data')).text).toBe('custom');
    const res = await request(app).get('/data').set('Authorization', `Bearer ${hs256(claims())}`);
    expect([res.status, res.text]).toEqual([403, 'custom']);
    expect(seen[0]).toBeInstanceOf(OAuthError);
    expect(seen.map((e) => (e as OAuthError).error)).toEqual(['invalid_token', 'insufficient_scope']);
    expect((seen[1] as OAuthError).headers['WWW-Authenticate']).toContain('scope="admin"');
  });

  it("works with Express's default error handler, which applies the error's status and headers", async () => {
    const app = express();
    app.get('/data', authenticate({ secret: SECRET, issuer: ISSUER, delegateErrors: true }), (_req, res) => { res.json({}); });
    const res = await request(app).get('/data').set('Authorization', 'Bearer x.y.z');
    expect(res.status).toBe(401);
    expect(res.headers['www-authenticate']).toContain('error="invalid_token"');
  });
});

describe('options are checked when authenticate() is called', () => {
  it.each([
    ['a short secret', { secret: 'short', issuer: ISSUER }, /at least 32 bytes/],
    ['a secret and a public key', { secret: SECRET, publicKey: createPublicKey(keyPairs.ec()) } as AuthenticateOptions, /one of/],
    ['a public key that is no key', { publicKey: 'nope', issuer: ISSUER }, /not a PEM or JWK public key/],
    ['an unknown option', { secret: SECRET, audiance: 'x' } as AuthenticateOptions, /unknown option `audiance`/],
    ['no token location', { secret: SECRET, tokenLocations: [] }, /tokenLocations/],
    ['an unknown token location', { secret: SECRET, tokenLocations: ['cookie'] } as never, /tokenLocations/],
    ['a negative clock tolerance', { secret: SECRET, clockTolerance: -1 }, /clockTolerance/],
    ['an empty audience list', { secret: SECRET, audience: [] }, /audience/],
    ['strict that is no boolean', { secret: SECRET, strict: 'yes' } as never, /strict/],
  ])('refuses %s', (_name, options, message) => {
    // With the issuer named where the row does not: a guess would warn ECC_ISSUER_GUESSED, not the point here.
    const named = { issuer: ISSUER, ...options } as AuthenticateOptions;
    expect(() => authenticate(named)).toThrow(ConfigurationError);
    expect(() => authenticate(named)).toThrow(message);
  });
});

describe('the verified-token cache at the guard', () => {
  it('refuses a cached token once it expires', async () => {
    const app = resourceServer({ secret: SECRET, issuer: ISSUER, clockTolerance: 0 });
    const token = hs256(claims({ exp: now() + 1 }));
    await request(app).get('/data').set('Authorization', `Bearer ${token}`).expect(200);
    await request(app).get('/data').set('Authorization', `Bearer ${token}`).expect(200);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const res = await request(app).get('/data').set('Authorization', `Bearer ${token}`);
    expect([res.status, res.body.error_description]).toEqual([401, 'The token has expired']);
  });

  it('can be turned off, and checks its options', async () => {
    const app = resourceServer({ secret: SECRET, issuer: ISSUER, tokenCache: false });
    await request(app).get('/data').set('Authorization', `Bearer ${hs256(claims())}`).expect(200);
    expect(() => authenticate({ secret: SECRET, issuer: ISSUER, tokenCache: { maxEntries: 0 } })).toThrow(/tokenCache.maxEntries/);
  });
});
