import request from 'supertest';
import { aClient, AUDIENCE, decodePayload, hs256, ISSUER, tokenServer, type TestClient } from '../support/fixtures.js';

const CC = { grant_type: 'client_credentials' };
let owner: TestClient;
let stranger: TestClient;
let resourceServer: TestClient;
beforeAll(async () => {
  owner = await aClient({ scope: 'read write' });
  stranger = await aClient({ scope: 'read' });
  resourceServer = await aClient({ scope: undefined, can_introspect: true });
});

const setUp = async () => {
  const { app } = tokenServer([owner, stranger, resourceServer]);
  const issued = await request(app).post('/token').auth(owner.id, owner.secret).type('form').send({ ...CC, scope: 'read' }).expect(200);
  return { app, token: issued.body.access_token as string };
};
const introspect = (app: Parameters<typeof request>[0], caller: TestClient, token: string) =>
  request(app).post('/introspect').auth(caller.id, caller.secret).type('form').send({ token });

describe('token introspection: RFC 7662 §2', () => {
  it('describes an active token to the client it was issued to', async () => {
    const { app, token } = await setUp();
    const res = await introspect(app, owner, token).expect(200);
    const claims = decodePayload(token);
    expect(res.body).toEqual({
      active: true,
      scope: 'read',
      client_id: owner.id,
      sub: owner.id,
      aud: AUDIENCE,
      iss: ISSUER,
      exp: claims.exp,
      iat: claims.iat,
      jti: claims.jti,
      token_type: 'Bearer',
    });
    expect(res.headers['cache-control']).toBe('no-store');
  });

  it('describes any token to a client registered with can_introspect (a resource server)', async () => {
    const { app, token } = await setUp();
    expect((await introspect(app, resourceServer, token).expect(200)).body).toMatchObject({ active: true, client_id: owner.id });
  });

  it('answers exactly { active: false } for a token of another client', async () => {
    const { app, token } = await setUp();
    expect((await introspect(app, stranger, token).expect(200)).body).toEqual({ active: false });
  });

  it.each([
    ['garbage', () => 'garbage'],
    ['an expired token', () => hs256({ iss: ISSUER, sub: 'x', client_id: 'x', aud: AUDIENCE, iat: 1, exp: 2, jti: 'j' })],
    ['a token of another issuer', () => hs256({ iss: 'http://evil.example', sub: 'x', client_id: 'x', aud: AUDIENCE, iat: 1, exp: 4_000_000_000, jti: 'j' })],
    ['a token signed with another key', () => hs256({ iss: ISSUER, sub: 'x', client_id: 'x', aud: AUDIENCE, iat: 1, exp: 4_000_000_000, jti: 'j' }, undefined, 'x'.repeat(40))],
  ])('answers exactly { active: false } for %s', async (_name, token) => {
    const { app } = await setUp();
    expect((await introspect(app, resourceServer, token()).expect(200)).body).toEqual({ active: false });
  });

  it('answers { active: false } for a revoked token, at introspection as the guard answers 401', async () => {
    const { app, token } = await setUp();
    await request(app).post('/revoke').auth(owner.id, owner.secret).type('form').send({ token }).expect(200);
    expect((await introspect(app, resourceServer, token).expect(200)).body).toEqual({ active: false });
    expect((await request(app).get('/api/data').set('Authorization', `Bearer ${token}`)).status).toBe(401);
  });

  it('requires the caller to authenticate (§2.1): 401 invalid_client', async () => {
    const { app, token } = await setUp();
    const res = await request(app).post('/introspect').type('form').send({ token });
    expect([res.status, res.body.error]).toEqual([401, 'invalid_client']);
    expect(JSON.stringify(res.body)).not.toContain('active');
  });

  it('answers invalid_request without a token parameter', async () => {
    const { app } = await setUp();
    const res = await request(app).post('/introspect').auth(owner.id, owner.secret).type('form').send({ token_type_hint: 'access_token' });
    expect([res.status, res.body.error]).toEqual([400, 'invalid_request']);
  });

  it('is throttled like the token endpoint (§4): failed authentications lock the caller', async () => {
    const { app, token } = await setUp();
    const locked = tokenServer([owner], { rateLimit: { failedAuthentication: { limit: 2 } } }).app;
    for (let i = 0; i < 2; i++) await request(locked).post('/introspect').auth(owner.id, 'wrong').type('form').send({ token }).expect(401);
    expect((await introspect(locked, owner, token)).status).toBe(429);
    // The lock is shared by every endpoint of the issuer.
    expect((await request(locked).post('/token').auth(owner.id, owner.secret).type('form').send(CC)).status).toBe(429);
    await introspect(app, owner, token).expect(200);
  });
});

describe('introspection edge cases', () => {
  it('answers { active: false } for tokens of a client disabled since, to a resource server and to the client itself', async () => {
    const { token } = await setUp();
    const disabledOwner = { ...owner, record: { ...owner.record, disabled: true } };
    const { app } = tokenServer([disabledOwner, resourceServer]);
    expect((await introspect(app, resourceServer, token).expect(200)).body).toEqual({ active: false });
    expect((await introspect(app, disabledOwner, token).expect(200)).body).toEqual({ active: false });
    const removed = tokenServer([resourceServer]).app;
    expect((await introspect(removed, resourceServer, token).expect(200)).body).toEqual({ active: false });
  });

  it('gives introspection its own per-address budget, so a busy resource server can still get tokens', async () => {
    const { app } = tokenServer([owner, resourceServer], { rateLimit: { perAddress: { limit: 2 } } });
    const token = (await request(app).post('/token').auth(owner.id, owner.secret).type('form').send(CC).expect(200)).body.access_token as string;
    await introspect(app, resourceServer, token).expect(200);
    await introspect(app, resourceServer, token).expect(200);
    expect((await introspect(app, resourceServer, token)).status).toBe(429);
    await request(app).post('/token').auth(resourceServer.id, resourceServer.secret).type('form').send(CC).expect(200);
  });
});
