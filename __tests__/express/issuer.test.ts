import { createConnection, type AddressInfo } from 'node:net';
import express from 'express';
import request from 'supertest';
import { forgetWarnings } from '../../lib/core/warnings.js';
import { issuer, ConfigurationError, MemoryClientStore, type ClientStore } from 'express-client-credentials';
import { aClient, AUDIENCE, decodeHeader, decodePayload, ISSUER, SECRET, tokenServer, type TestClient } from '../support/fixtures.js';

const CC = { grant_type: 'client_credentials' };

/** Every response of the token endpoint carries these (RFC 6749 §5.1, §5.2). */
function expectNoStoreJson(res: request.Response): void {
  expect(res.headers['cache-control']).toBe('no-store');
  expect(res.headers.pragma).toBe('no-cache');
  expect(res.headers['content-type']).toMatch(/^application\/json/);
}

function expectOAuthError(res: request.Response, status: number, error: string): void {
  expect(res.status).toBe(status);
  expect(Object.keys(res.body).sort()).toEqual(['error', 'error_description']);
  expect(res.body.error).toBe(error);
  expect(res.body.error_description).toMatch(/^[\x20-\x21\x23-\x5B\x5D-\x7E]+$/); // RFC 6749 §5.2: ASCII, no " or \
  expectNoStoreJson(res);
}

let basicClient: TestClient;
let postClient: TestClient;
let eitherClient: TestClient;
let app: express.Express;

beforeAll(async () => {
  basicClient = await aClient({ scope: 'read write', default_scope: 'read', token_endpoint_auth_method: 'client_secret_basic' });
  postClient = await aClient({ scope: 'read', token_endpoint_auth_method: 'client_secret_post' });
  eitherClient = await aClient({ scope: 'read' });
  ({ app } = tokenServer([basicClient, postClient, eitherClient]));
});

describe('token endpoint: RFC 6749 §4.4 and §5.1', () => {
  it('issues a Bearer token to a client authenticated with HTTP Basic', async () => {
    const res = await request(app).post('/token').auth(basicClient.id, basicClient.secret).type('form').send({ ...CC, scope: 'read write' }).expect(200);
    expect(Object.keys(res.body).sort()).toEqual(['access_token', 'expires_in', 'scope', 'token_type']);
    expect(res.body).toMatchObject({ token_type: 'Bearer', expires_in: 600, scope: 'read write' });
    expectNoStoreJson(res);
  });

  it('issues a token to a client that sends client_id and client_secret in the body (client_secret_post)', async () => {
    const res = await request(app).post('/token').type('form').send({ ...CC, client_id: postClient.id, client_secret: postClient.secret }).expect(200);
    expect(res.body.scope).toBe('read');
  });

  it('decodes Basic credentials that were form-urlencoded before base64 (RFC 6749 §2.3.1)', async () => {
    const odd = await aClient({ client_id: 'svc: reports+ü', secret: 'p@ss word+%/é' });
    const { app: oddApp } = tokenServer([odd]);
    const encode = (value: string) => encodeURIComponent(value).replace(/%20/g, '+');
    const header = `Basic ${Buffer.from(`${encode(odd.id)}:${encode(odd.secret)}`).toString('base64')}`;
    await request(oddApp).post('/token').set('Authorization', header).type('form').send(CC).expect(200);
  });

  it('accepts the client_id repeated in the body next to Basic credentials (RFC 6749 §3.2.1)', async () => {
    await request(app).post('/token').auth(basicClient.id, basicClient.secret).type('form').send({ ...CC, client_id: basicClient.id }).expect(200);
  });

  it('issues no refresh token (RFC 6749 §4.4.3)', async () => {
    const res = await request(app).post('/token').auth(basicClient.id, basicClient.secret).type('form').send(CC).expect(200);
    expect(res.body.refresh_token).toBeUndefined();
  });

  it('answers JSON whatever the Accept header says', async () => {
    const res = await request(app).post('/token').set('Accept', 'text/html').auth(basicClient.id, basicClient.secret).type('form').send(CC).expect(200);
    expectNoStoreJson(res);
  });

  it('RFC 6749 §5.1: answers are never cached, so they carry no ETag validator', async () => {
    const issued = await request(app).post('/token').auth(basicClient.id, basicClient.secret).type('form').send(CC).expect(200);
    const refused = await request(app).post('/token').type('form').send(CC).expect(401);
    for (const res of [issued, refused]) {
      expect(res.headers['cache-control']).toBe('no-store');
      expect(res.headers.etag).toBeUndefined();
    }
  });

  it('answers at its mount point only: a path beneath it goes on to the app', async () => {
    const { app: inner } = tokenServer([basicClient]);
    const outer = express().use(inner).post('/token/other', (_req, res) => void res.status(418).end());
    await request(outer).post('/token/other').auth(basicClient.id, basicClient.secret).type('form').send(CC).expect(418);
    await request(outer).post('/token/').auth(basicClient.id, basicClient.secret).type('form').send(CC).expect(200);
  });

  it("answers JSON as it is, whatever the app's json settings", async () => {
    const { app: inner } = tokenServer([basicClient]);
    const outer = express().set('json spaces', 2).use(inner);
    const res = await request(outer).post('/token').type('form').send(CC).expect(401);
    expect(res.text).toBe(JSON.stringify(res.body));
  });

  it("mounted on a Router, keys its limits on the address the app's trust proxy gives", async () => {
    const tokens = issuer({ issuer: ISSUER, signingKey: { secret: SECRET }, secretHashCost: 4, clients: [basicClient.record], rateLimit: { perAddress: { limit: 1 } } });
    const outer = express().set('trust proxy', 'loopback').use(express.Router().use(tokens));
    const warning = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    try {
      const from = (address: string) => request(outer).post('/token').set('X-Forwarded-For', address).type('form').send(CC);
      expect((await from('203.0.113.30')).status).toBe(401);
      expect((await from('203.0.113.30')).status).toBe(429);
      expect((await from('203.0.113.31')).status).toBe(401);
      // At the path of its URL: nothing to say.
      expect(warning).not.toHaveBeenCalled();
    } finally {
      warning.mockRestore();
    }
  });

  it('mounted at a path its URL does not name, serves nothing there and says so once (ECC_MOUNT)', async () => {
    const tokens = issuer({ issuer: ISSUER, signingKey: { secret: SECRET }, secretHashCost: 4, clients: [basicClient.record] });
    const outer = express().use('/v1', express.Router().use('/token', tokens)).get(tokens.metadataPath, tokens.metadata);
    const warning = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    try {
      for (let i = 0; i < 2; i += 1) await request(outer).post('/v1/token').auth(basicClient.id, basicClient.secret).type('form').send(CC).expect(404);
      expect(warning.mock.calls).toEqual([[expect.stringContaining(`the issuer got a POST at "/v1/token", where it is mounted, but serves its token endpoint at ${ISSUER}/token`), { code: 'ECC_MOUNT' }]]);
    } finally {
      warning.mockRestore();
    }
  });

  it('refuses two endpoints at one path', () => {
    expect(() => issuer({ issuer: ISSUER, signingKey: { secret: SECRET }, clients: [], endpoints: { revocation: `${ISSUER}/token` } })).toThrow('two endpoints at one path');
  });

  it('hands a response it cannot write (the app answered first) to Express, never an unhandled rejection', async () => {
    const slow = { findClient: (id: string) => new Promise<undefined>((resolve) => setTimeout(() => resolve(void id), 100)) };
    const tokens = issuer({ issuer: ISSUER, signingKey: { secret: SECRET }, secretHashCost: 4, clients: slow, rateLimit: false });
    const errors: unknown[] = [];
    const app = express()
      .use((_req, res, next) => { setTimeout(() => res.status(503).end('busy'), 20); next(); })
      .use(tokens)
      .use((error: unknown, _req: express.Request, _res: express.Response, _next: express.NextFunction) => { errors.push(error); });
    const unhandled = jest.fn();
    process.on('unhandledRejection', unhandled);
    try {
      await request(app).post('/token').auth('someone', 'a-wrong-secret').type('form').send(CC).expect(503);
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(unhandled).not.toHaveBeenCalled();
      expect(errors).toEqual([expect.objectContaining({ code: 'ERR_HTTP_HEADERS_SENT' })]);
    } finally {
      process.off('unhandledRejection', unhandled);
    }
  });

  it('with its URL given in endpoints, serves it there, says nothing and lists that URL in the metadata', async () => {
    const tokens = issuer({ issuer: ISSUER, signingKey: { secret: SECRET }, secretHashCost: 4, clients: [basicClient.record], endpoints: { token: `${ISSUER}/v1/token` } });
    const outer = express().use('/v1', express.Router().use('/token', tokens)).get(tokens.metadataPath, tokens.metadata);
    const warning = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    try {
      await request(outer).post('/v1/token').auth(basicClient.id, basicClient.secret).type('form').send(CC).expect(200);
      expect(warning).not.toHaveBeenCalled();
    } finally {
      warning.mockRestore();
    }
    expect((await request(outer).get(tokens.metadataPath).expect(200)).body.token_endpoint).toBe(`${ISSUER}/v1/token`);
  });

  it('is plain middleware: what is not one of its paths goes on to the next handler', async () => {
    const tokens = issuer({ issuer: ISSUER, signingKey: { secret: SECRET }, secretHashCost: 4, clients: [basicClient.record] });
    const app = express().use(tokens).get('/other', (_req, res) => { res.send('next'); });
    await request(app).get('/other').expect(200, 'next');
    await request(app).get('/token').expect(405);
    expect(typeof tokens).toBe('function');
    expect('listen' in tokens).toBe(false);
  });

  it('warns once when its list of clients is empty, since every request would get 401 without a word', () => {
    forgetWarnings();
    const warning = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    try {
      issuer({ issuer: ISSUER, signingKey: { secret: SECRET }, clients: [] });
      issuer({ issuer: ISSUER, signingKey: { secret: SECRET }, clients: [] });
      expect(warning.mock.calls).toEqual([[expect.stringContaining('the client list is empty'), { code: 'ECC_NO_CLIENTS' }]]);
    } finally {
      warning.mockRestore();
    }
  });

  it('sets helmet security headers on its responses', async () => {
    const res = await request(app).post('/token').type('form').send(CC);
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['x-powered-by']).toBeUndefined();
  });
});

describe('JWT access tokens: RFC 9068 §2', () => {
  it('puts typ at+jwt and kid in the header, and every required claim in the payload', async () => {
    const before = Math.floor(Date.now() / 1000);
    const res = await request(app).post('/token').auth(basicClient.id, basicClient.secret).type('form').send(CC).expect(200);
    expect(decodeHeader(res.body.access_token)).toEqual({ alg: 'HS256', typ: 'at+jwt', kid: expect.any(String) });
    const claims = decodePayload(res.body.access_token);
    expect(claims).toEqual({
      iss: ISSUER,
      sub: basicClient.id,
      client_id: basicClient.id,
      aud: AUDIENCE,
      iat: expect.any(Number),
      exp: expect.any(Number),
      jti: expect.any(String),
      scope: 'read',
    });
    expect(claims.iat).toBeGreaterThanOrEqual(before);
    expect((claims.exp as number) - (claims.iat as number)).toBe(600);
  });

  it('gives every token a unique jti', async () => {
    const jtis = new Set<unknown>();
    for (let i = 0; i < 5; i++) {
      const res = await request(app).post('/token').auth(basicClient.id, basicClient.secret).type('form').send(CC);
      jtis.add(decodePayload(res.body.access_token).jti);
    }
    expect(jtis.size).toBe(5);
  });

  it('takes the lifetime from the issuer option, or from the client record when it has one', async () => {
    const short = await aClient({ access_token_ttl: 60 });
    const { app: ttlApp } = tokenServer([basicClient, short], { accessTokenTtl: 1200 });
    const global = await request(ttlApp).post('/token').auth(basicClient.id, basicClient.secret).type('form').send(CC);
    const own = await request(ttlApp).post('/token').auth(short.id, short.secret).type('form').send(CC);
    expect([global.body.expires_in, own.body.expires_in]).toEqual([1200, 60]);
    const claims = decodePayload(own.body.access_token);
    expect((claims.exp as number) - (claims.iat as number)).toBe(60);
  });

  it("uses the client's audience, else the issuer's default audience (RFC 9068 §3)", async () => {
    const audienced = await aClient({ audience: ['https://reports.example', 'https://other.example'] });
    const { app: audApp } = tokenServer([audienced]);
    const res = await request(audApp).post('/token').auth(audienced.id, audienced.secret).type('form').send(CC);
    expect(decodePayload(res.body.access_token).aud).toBe('https://reports.example');
  });
});

describe('scope: RFC 6749 §3.3', () => {
  it("grants the client's default scopes when the request names none", async () => {
    const res = await request(app).post('/token').auth(basicClient.id, basicClient.secret).type('form').send(CC).expect(200);
    expect(res.body.scope).toBe('read');
  });

  it('treats an empty scope parameter as omitted (RFC 6749 §3.2)', async () => {
    const res = await request(app).post('/token').auth(basicClient.id, basicClient.secret).type('form').send({ ...CC, scope: '' }).expect(200);
    expect(res.body.scope).toBe('read');
  });

  it.each([['admin'], ['read admin'], ['Read'], ['read  write']])('answers invalid_scope for %j', async (scope) => {
    const res = await request(app).post('/token').auth(basicClient.id, basicClient.secret).type('form').send({ ...CC, scope });
    expectOAuthError(res, 400, 'invalid_scope');
  });

  it('omits scope from the response and the token when nothing was granted', async () => {
    const scopeless = await aClient({ scope: undefined });
    const { app: bare } = tokenServer([scopeless]);
    const res = await request(bare).post('/token').auth(scopeless.id, scopeless.secret).type('form').send(CC).expect(200);
    expect(res.body.scope).toBeUndefined();
    expect(decodePayload(res.body.access_token).scope).toBeUndefined();
  });
});

describe('request format: RFC 6749 §3.2', () => {
  it.each(['get', 'put', 'delete', 'patch', 'options'] as const)('answers %s with a JSON 405 and Allow: POST', async (method) => {
    const res = await request(app)[method]('/token');
    expectOAuthError(res, 405, 'invalid_request');
    expect(res.headers.allow).toBe('POST');
  });

  it('answers HEAD with 405 and Allow: POST', async () => {
    const res = await request(app).head('/token');
    expect(res.status).toBe(405);
    expect(res.headers.allow).toBe('POST');
  });

  it.each([
    ['JSON', 'application/json', JSON.stringify(CC)],
    ['text', 'text/plain', 'grant_type=client_credentials'],
    ['multipart', 'multipart/form-data; boundary=x', '--x--'],
    ['a non-UTF-8 charset', 'application/x-www-form-urlencoded; charset=iso-8859-1', 'grant_type=client_credentials'],
  ])('answers invalid_request to a %s body', async (_name, type, body) => {
    const res = await request(app).post('/token').auth(basicClient.id, basicClient.secret).set('Content-Type', type).send(body);
    expectOAuthError(res, 400, 'invalid_request');
  });

  it('answers invalid_request to a POST without a body', async () => {
    const res = await request(app).post('/token').auth(basicClient.id, basicClient.secret);
    expectOAuthError(res, 400, 'invalid_request');
  });

  it('accepts an explicit UTF-8 charset', async () => {
    await request(app).post('/token').auth(basicClient.id, basicClient.secret)
      .set('Content-Type', 'application/x-www-form-urlencoded; charset=UTF-8').send('grant_type=client_credentials').expect(200);
  });

  it('answers 413 invalid_request to an oversized body, never a 5xx', async () => {
    const res = await request(app).post('/token').auth(basicClient.id, basicClient.secret).type('form').send(`grant_type=client_credentials&x=${'a'.repeat(9000)}`);
    expectOAuthError(res, 413, 'invalid_request');
  });

  it('answers invalid_request to a body that is not UTF-8', async () => {
    const res = await request(app).post('/token').auth(basicClient.id, basicClient.secret).type('form').send(Buffer.from([0x67, 0x3d, 0xff, 0xfe]));
    expectOAuthError(res, 400, 'invalid_request');
  });

  it('answers invalid_request when grant_type is missing or empty (§4.4.2)', async () => {
    expectOAuthError(await request(app).post('/token').auth(basicClient.id, basicClient.secret).type('form').send({ scope: 'read' }), 400, 'invalid_request');
    expectOAuthError(await request(app).post('/token').auth(basicClient.id, basicClient.secret).type('form').send({ grant_type: '' }), 400, 'invalid_request');
  });

  it.each(['password', 'authorization_code', 'refresh_token', 'CLIENT_CREDENTIALS'])('answers unsupported_grant_type to grant_type=%s', async (grant) => {
    const res = await request(app).post('/token').auth(basicClient.id, basicClient.secret).type('form').send({ grant_type: grant });
    expectOAuthError(res, 400, 'unsupported_grant_type');
  });

  it.each([
    ['grant_type', 'grant_type=client_credentials&grant_type=client_credentials'],
    ['scope', 'grant_type=client_credentials&scope=read&scope=write'],
    ['client_id', 'grant_type=client_credentials&client_id=a&client_id=a&client_secret=b'],
  ])('answers invalid_request when %s is repeated', async (_name, body) => {
    const res = await request(app).post('/token').auth(basicClient.id, basicClient.secret).type('form').send(body);
    expectOAuthError(res, 400, 'invalid_request');
  });

  it('ignores unknown parameters (§3.2), repeated or not', async () => {
    await request(app).post('/token').auth(basicClient.id, basicClient.secret).type('form').send({ ...CC, unknown: 'x' }).expect(200);
    await request(app).post('/token').auth(basicClient.id, basicClient.secret).type('form')
      .send('grant_type=client_credentials&extension=1&extension=2&x[y]=z').expect(200);
  });

  it('answers a request whose target is in absolute form, even one a URL parser refuses', async () => {
    const server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    const { port } = server.address() as AddressInfo;
    const body = 'grant_type=client_credentials';
    const credentials = Buffer.from(`${basicClient.id}:${basicClient.secret}`).toString('base64');
    const raw = await new Promise<string>((resolve, reject) => {
      let text = '';
      const socket = createConnection(port, '127.0.0.1', () => {
        socket.end(`POST http://x:99999/token HTTP/1.1\r\nHost: x\r\nAuthorization: Basic ${credentials}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
      });
      socket.on('data', (chunk) => (text += chunk.toString()));
      socket.on('end', () => resolve(text));
      socket.on('error', reject);
    }).finally(() => server.close());
    expect(raw).toMatch(/^HTTP\/1\.1 200 /);
  });

  it('works behind an app that parsed the form already, still refusing repeats', async () => {
    const parsed = express();
    parsed.use(express.urlencoded({ extended: true }));
    parsed.use('/token', issuer({ issuer: ISSUER, signingKey: { secret: SECRET }, secretHashCost: 4, clients: [basicClient.record] }));
    await request(parsed).post('/token').auth(basicClient.id, basicClient.secret).type('form').send(CC).expect(200);
    expectOAuthError(await request(parsed).post('/token').auth(basicClient.id, basicClient.secret).type('form').send('grant_type=client_credentials&scope=a&scope=b'), 400, 'invalid_request');
    expectOAuthError(await request(parsed).post('/token').auth(basicClient.id, basicClient.secret).type('form').send('grant_type=client_credentials&scope[x]=a'), 400, 'invalid_request');
  });
});

describe('client authentication: RFC 6749 §2.3 and §5.2', () => {
  const basicChallenge = `Basic realm="${ISSUER}"`;

  it('answers 401 invalid_client with a Basic challenge to a wrong secret', async () => {
    const res = await request(app).post('/token').auth(basicClient.id, 'wrong').type('form').send(CC);
    expectOAuthError(res, 401, 'invalid_client');
    expect(res.headers['www-authenticate']).toBe(basicChallenge);
  });

  it('answers an unknown client exactly as a wrong secret: same status, body and headers', async () => {
    const wrong = await request(app).post('/token').auth(basicClient.id, 'wrong').type('form').send(CC);
    const unknown = await request(app).post('/token').auth('nobody', 'wrong').type('form').send(CC);
    expect([unknown.status, unknown.body, unknown.headers['www-authenticate']]).toEqual([wrong.status, wrong.body, wrong.headers['www-authenticate']]);
  });

  it('answers 401 invalid_client to a wrong client_secret_post secret', async () => {
    const res = await request(app).post('/token').type('form').send({ ...CC, client_id: postClient.id, client_secret: 'wrong' });
    expectOAuthError(res, 401, 'invalid_client');
    // RFC 9110 §15.5.2: a 401 always carries a challenge.
    expect(res.headers['www-authenticate']).toBe(basicChallenge);
  });

  it('answers 401 invalid_client to a request without credentials, or with a client_id alone', async () => {
    expectOAuthError(await request(app).post('/token').type('form').send(CC), 401, 'invalid_client');
    expectOAuthError(await request(app).post('/token').type('form').send({ ...CC, client_id: basicClient.id }), 401, 'invalid_client');
  });

  it('answers invalid_client when a client uses a method it is not registered for', async () => {
    expectOAuthError(await request(app).post('/token').auth(postClient.id, postClient.secret).type('form').send(CC), 401, 'invalid_client');
    expectOAuthError(
      await request(app).post('/token').type('form').send({ ...CC, client_id: basicClient.id, client_secret: basicClient.secret }),
      401,
      'invalid_client',
    );
  });

  it('accepts a client whose record names no method with either secret method, Basic or the body (§2.3.1)', async () => {
    await request(app).post('/token').auth(eitherClient.id, eitherClient.secret).type('form').send(CC).expect(200);
    await request(app).post('/token').type('form').send({ ...CC, client_id: eitherClient.id, client_secret: eitherClient.secret }).expect(200);
    // Still one method per request: "MUST NOT use more than one authentication method in each request".
    const both = await request(app).post('/token').auth(eitherClient.id, eitherClient.secret).type('form').send({ ...CC, client_secret: eitherClient.secret });
    expectOAuthError(both, 400, 'invalid_request');
  });

  it('answers invalid_request to a request that uses two methods (§2.3)', async () => {
    const res = await request(app).post('/token').auth(basicClient.id, basicClient.secret).type('form').send({ ...CC, client_secret: basicClient.secret });
    expectOAuthError(res, 400, 'invalid_request');
  });

  it('answers invalid_request to credentials in the query string (§2.3.1)', async () => {
    const res = await request(app).post(`/token?client_id=${postClient.id}&client_secret=${postClient.secret}`).type('form').send(CC);
    expectOAuthError(res, 400, 'invalid_request');
  });

  it('answers unauthorized_client to a disabled client with the right secret', async () => {
    const disabled = await aClient({ disabled: true });
    const { app: disabledApp } = tokenServer([disabled]);
    expectOAuthError(await request(disabledApp).post('/token').auth(disabled.id, disabled.secret).type('form').send(CC), 400, 'unauthorized_client');
    expectOAuthError(await request(disabledApp).post('/token').auth(disabled.id, 'wrong').type('form').send(CC), 401, 'invalid_client');
  });

  it('answers unauthorized_client to a client whose grant_types leave out client_credentials (RFC 6749 §5.2), and a secret past client_secret_expires_at is wrong', async () => {
    const elsewhere = await aClient({ grant_types: ['authorization_code'] });
    const expired = await aClient({ client_secret_expires_at: Math.floor(Date.now() / 1000) - 10 });
    const { app: strictApp } = tokenServer([elsewhere, expired]);
    expectOAuthError(await request(strictApp).post('/token').auth(elsewhere.id, elsewhere.secret).type('form').send(CC), 400, 'unauthorized_client');
    expectOAuthError(await request(strictApp).post('/token').auth(expired.id, expired.secret).type('form').send(CC), 401, 'invalid_client');
  });

  it('never puts a secret or a hash in a response', async () => {
    const responses = await Promise.all([
      request(app).post('/token').auth(basicClient.id, basicClient.secret).type('form').send(CC),
      request(app).post('/token').auth(basicClient.id, 'wrong').type('form').send(CC),
      request(app).post('/token').auth(basicClient.id, basicClient.secret).type('form').send({ ...CC, scope: 'admin' }),
      request(app).post('/token').auth(basicClient.id, basicClient.secret).type('form').send({ ...CC, client_secret: basicClient.secret }),
    ]);
    for (const res of responses) {
      const text = JSON.stringify(res.headers) + res.text;
      expect(text).not.toContain(basicClient.secret);
      expect(text).not.toContain(basicClient.record.client_secret_hash as string);
      expect(text).not.toContain('$2');
    }
  });
});

describe('store failures', () => {
  const failing = (findClient: ClientStore['findClient']) => {
    const reports: string[] = [];
    const failingApp = express();
    failingApp.use('/token', issuer({ issuer: ISSUER, signingKey: { secret: SECRET }, secretHashCost: 4, clients: { findClient }, storeTimeout: 100, onInternalError: (line) => reports.push(line) }));
    return { failingApp, reports };
  };

  it.each([
    ['throws', (): Promise<undefined> => { throw new Error('connection refused'); }],
    ['rejects', (): Promise<undefined> => Promise.reject(new Error('connection refused'))],
    ['hangs', (): Promise<undefined> => new Promise(() => undefined)],
  ])('answers a clean 503 with no token and no stack when the store %s, and reports one line', async (_name, findClient) => {
    const { failingApp, reports } = failing(findClient);
    const res = await request(failingApp).post('/token').auth('a', 'b').type('form').send(CC);
    expectOAuthError(res, 503, 'temporarily_unavailable');
    expect(res.headers['retry-after']).toBe('5');
    expect(res.text).not.toMatch(/at .*\.(ts|js)|connection refused/);
    expect(reports).toHaveLength(1);
    expect(reports[0]).toMatch(/^express-client-credentials: The client registry is unavailable; try again later \(Error: /);
    expect(reports[0]).not.toContain('\n');
  });

  it('recovers by itself once the store answers again', async () => {
    let down = true;
    const { failingApp } = failing(async (id) => {
      if (down) return new Promise(() => undefined);
      return id === basicClient.id ? basicClient.record : undefined;
    });
    expectOAuthError(await request(failingApp).post('/token').auth(basicClient.id, basicClient.secret).type('form').send(CC), 503, 'temporarily_unavailable');
    down = false;
    await request(failingApp).post('/token').auth(basicClient.id, basicClient.secret).type('form').send(CC).expect(200);
  });

  it('answers 500 server_error, reported, when the store returns a malformed record', async () => {
    const { failingApp, reports } = failing(async () => ({ client_id: 'a', client_secret_hash: 'not-a-hash' }));
    expectOAuthError(await request(failingApp).post('/token').auth('a', 'b').type('form').send(CC), 500, 'server_error');
    expect(reports).toEqual([expect.stringContaining('The client registration is invalid')]);
  });
});

describe('options are checked when issuer() is called', () => {
  const base = { issuer: ISSUER, signingKey: { secret: SECRET }, clients: new MemoryClientStore([]) };

  it.each([
    ['a secret under 32 bytes', { signingKey: { secret: 'short' } }, /at least 32 bytes/],
    ['no clients', { clients: undefined }, /needs `clients`/],
    ['a store without findClient', { clients: { find: () => undefined } as unknown as ClientStore }, /findClient/],
    ['an unknown algorithm', { signingKey: { privateKey: 'x', alg: 'HS512' } as never }, /privateKey/],
    ['a malformed client record', { clients: [{ client_id: 'a', client_secret_hash: 'plain' }] }, /bcrypt hash/],
    ['a typo in an option name', { acessTokenTtl: 60 } as never, /unknown option `acessTokenTtl` \(did you mean `accessTokenTtl`\?\)/],
    ['a plural for a singular', { endpoint: {} } as never, /unknown option `endpoint` \(did you mean `endpoints`\?\)/],
    ['an issuer that is no URL', { issuer: 'my-issuer' }, /`issuer` must be an absolute http\(s\) URL/],
    ['an issuer with a query', { issuer: `${ISSUER}?x=1` }, /without query or fragment/],
    ['a lifetime of zero', { accessTokenTtl: 0 }, /`accessTokenTtl` must be a positive whole number/],
    ['a realm with a quote', { realm: 'a"b' }, /`realm`/],
  ])('refuses %s with a message that says how to fix it', (_name, override, message) => {
    expect(() => issuer({ ...base, ...override })).toThrow(ConfigurationError);
    expect(() => issuer({ ...base, ...override })).toThrow(message);
  });

  it('takes an option set to undefined as absent: an endpoint URL, a rate limit', async () => {
    const client = await aClient();
    const { app } = tokenServer([client], { endpoints: { token: undefined }, rateLimit: { perAddress: { limit: undefined } } });
    const metadata = await request(app).get('/.well-known/oauth-authorization-server').expect(200);
    expect(metadata.body.token_endpoint).toBe(`${ISSUER}/token`);
    const res = await request(app).post('/token').auth(client.id, client.secret).type('form').send(CC).expect(200);
    expect(res.headers.ratelimit).toMatch(/"per-address"; r=299;/);
  });

  it('does not change the options object it was given', () => {
    const options = Object.freeze({ ...base, rateLimit: Object.freeze({ perAddress: Object.freeze({ limit: 5 }) }) });
    expect(() => issuer(options)).not.toThrow();
  });
});
