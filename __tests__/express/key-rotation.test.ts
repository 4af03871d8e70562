import express from 'express';
import request from 'supertest';
import { authenticate, ConfigurationError, issuer, MemoryClientStore, requireScope } from 'express-client-credentials';
import { aClient, decodeHeader, ISSUER, keyPairs, type TestClient } from '../support/fixtures.js';

const CC = { grant_type: 'client_credentials' };
let client: TestClient;
beforeAll(async () => {
  client = await aClient({ scope: 'read' });
});

describe('key rotation: several keys published (RFC 7517 §5), one signing', () => {
  const oldKey = { privateKey: keyPairs.ec(), kid: 'old' };
  const newKey = { privateKey: keyPairs.ed25519(), kid: 'new' };

  function server() {
    const tokens = issuer({ issuer: ISSUER, signingKey: oldKey, secretHashCost: 4, clients: [client.record] });
    const app = express();
    app.use('/token', tokens);
    app.use('/.well-known/jwks.json', tokens.jwks);
    app.get('/api/data', authenticate({ issuer: tokens }), requireScope('read'), (_req, res) => { res.json({ ok: true }); });
    const token = async () => (await request(app).post('/token').auth(client.id, client.secret).type('form').send(CC).expect(200)).body.access_token as string;
    const kids = async () => ((await request(app).get('/.well-known/jwks.json')).body.keys as { kid: string }[]).map((key) => key.kid);
    const call = (token: string) => request(app).get('/api/data').set('Authorization', `Bearer ${token}`);
    return { tokens, token, kids, call };
  }

  it('adds, switches and retires a key with no failed request', async () => {
    const { tokens, token, kids, call } = server();
    const before = await token();
    expect(decodeHeader(before).kid).toBe('old');

    // 1. Publish the next key; the old one still signs.
    tokens.rotateKeys({ signingKey: oldKey, additionalKeys: [newKey] });
    expect(await kids()).toEqual(['old', 'new']);
    expect(decodeHeader(await token()).kid).toBe('old');

    // 2. Switch: the new key signs; tokens of the old one still pass.
    tokens.rotateKeys({ signingKey: newKey, additionalKeys: [oldKey] });
    const after = await token();
    expect(decodeHeader(after)).toMatchObject({ kid: 'new', alg: 'EdDSA' });
    await call(before).expect(200);
    await call(after).expect(200);

    // 3. Retire the old key once its tokens have expired.
    tokens.rotateKeys({ signingKey: newKey });
    expect(await kids()).toEqual(['new']);
    await call(after).expect(200);
    expect((await call(before)).status).toBe(401);
  });

  it('accepts additionalKeys from the options, publishing them', async () => {
    const tokens = issuer({ issuer: ISSUER, signingKey: newKey, additionalKeys: [oldKey], clients: new MemoryClientStore([]) });
    const jwks = await request(express().use('/jwks', tokens.jwks)).get('/jwks');
    expect(jwks.body.keys.map((key: { kid: string }) => key.kid)).toEqual(['new', 'old']);
  });

  it('refuses keys that share a kid, at construction and at rotation', () => {
    expect(() => issuer({ issuer: ISSUER, signingKey: oldKey, additionalKeys: [{ ...newKey, kid: 'old' }], clients: new MemoryClientStore([]) })).toThrow(ConfigurationError);
    const { tokens } = server();
    expect(() => tokens.rotateKeys({ signingKey: oldKey, additionalKeys: [oldKey] })).toThrow(/its own `kid`/);
    expect(() => tokens.rotateKeys({ signingKey: { secret: 'short' } })).toThrow(/at least 32 bytes/);
    expect(() => tokens.rotateKeys({ signingKey: newKey, additionalKey: [oldKey] } as never)).toThrow(/unknown option `additionalKey`/);
  });
});
