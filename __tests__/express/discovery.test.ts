import express from 'express';
import request from 'supertest';
import { issuer, MemoryClientStore } from 'express-client-credentials';
import { aClient, decodeHeader, decodePayload, ISSUER, keyPairs, SECRET, tokenServer } from '../support/fixtures.js';

const METHODS = ['client_secret_basic', 'client_secret_post', 'private_key_jwt'];
const ALGS = ['RS256', 'PS256', 'ES256', 'EdDSA'];

describe('authorization server metadata: RFC 8414 §2 and §3', () => {
  it('describes the issuer, its endpoints, grant, auth methods and scopes', async () => {
    const { app } = tokenServer([await aClient({ scope: 'read write' }), await aClient({ scope: 'admin' })]);
    const res = await request(app).get('/.well-known/oauth-authorization-server').expect(200).expect('Content-Type', /json/);
    expect(res.body).toEqual({
      issuer: ISSUER,
      token_endpoint: `${ISSUER}/token`,
      jwks_uri: `${ISSUER}/.well-known/jwks.json`,
      response_types_supported: [],
      grant_types_supported: ['client_credentials'],
      token_endpoint_auth_methods_supported: METHODS,
      token_endpoint_auth_signing_alg_values_supported: ALGS,
      scopes_supported: ['read', 'write', 'admin'],
      revocation_endpoint: `${ISSUER}/revoke`,
      revocation_endpoint_auth_methods_supported: METHODS,
      revocation_endpoint_auth_signing_alg_values_supported: ALGS,
      introspection_endpoint: `${ISSUER}/introspect`,
      introspection_endpoint_auth_methods_supported: METHODS,
      introspection_endpoint_auth_signing_alg_values_supported: ALGS,
    });
  });

  it('lists every endpoint at its URL from the issuer identifier, and leaves out one turned off with false', async () => {
    const tokens = issuer({ issuer: ISSUER, signingKey: { secret: SECRET }, clients: new MemoryClientStore([]), endpoints: { introspection: false } });
    const app = express().use(tokens);
    const { body } = await request(app).get('/.well-known/oauth-authorization-server').expect(200);
    expect(body).toMatchObject({ token_endpoint: `${ISSUER}/token`, jwks_uri: `${ISSUER}/.well-known/jwks.json`, revocation_endpoint: `${ISSUER}/revoke` });
    expect(body.introspection_endpoint).toBeUndefined();
    // Turned off means not served either.
    await request(app).post('/introspect').type('form').send({ token: 'x' }).expect(404);
    expect(() => issuer({ issuer: ISSUER, signingKey: { secret: SECRET }, clients: [], endpoints: { token: false as unknown as string } })).toThrow('`endpoints.token` cannot be turned off');
  });

  it('serves an endpoint alone wherever it is mounted or routed, and says once when that is not where the metadata says (ECC_MOUNT)', async () => {
    const tokens = issuer({ issuer: ISSUER, signingKey: { secret: SECRET }, clients: new MemoryClientStore([]) });
    const app = express();
    app.use('/revoke', tokens.revocation);
    app.post('/oauth/introspect', tokens.introspection);
    const emitWarning = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    try {
      await request(app).post('/revoke').type('form').send({ token: 'x' }).expect(401);
      expect(emitWarning).not.toHaveBeenCalled();
      for (let i = 0; i < 2; i += 1) await request(app).post('/oauth/introspect').type('form').send({ token: 'x' }).expect(401);
      expect(emitWarning.mock.calls).toEqual([
        [`the introspection endpoint answered at "/oauth/introspect", but the metadata says it is at ${ISSUER}/introspect: clients that read the metadata will not find it. Mount the issuer with app.use(tokens), or set endpoints.introspection to the URL it is reached at`, { code: 'ECC_MOUNT' }],
      ]);
      // Below its mount point an endpoint alone is not reached.
      await request(app).post('/revoke/more').type('form').send({ token: 'x' }).expect(404);
    } finally {
      emitWarning.mockRestore();
    }
  });

  describe('an issuer with a path (RFC 8414 §3 path insertion)', () => {
    const PATHED = `${ISSUER}/tenants/acme`;
    const pathed = (endpoints = {}) => issuer({ issuer: PATHED, signingKey: { privateKey: keyPairs.ec() }, clients: new MemoryClientStore([]), endpoints });
    const expected = {
      issuer: PATHED,
      token_endpoint: `${PATHED}/token`,
      revocation_endpoint: `${PATHED}/revoke`,
      introspection_endpoint: `${PATHED}/introspect`,
      jwks_uri: `${PATHED}/.well-known/jwks.json`,
    };

    it('serves metadata at /.well-known/oauth-authorization-server/tenants/acme, and each endpoint under /tenants/acme', async () => {
      const tokens = pathed();
      const app = express().use(tokens);
      expect(tokens.metadataPath).toBe('/.well-known/oauth-authorization-server/tenants/acme');
      const { body } = await request(app).get('/.well-known/oauth-authorization-server/tenants/acme').expect(200);
      expect(body).toMatchObject(expected);
      await request(app).get('/tenants/acme/.well-known/jwks.json').expect(200);
      await request(app).post('/tenants/acme/token').type('form').send({ grant_type: 'client_credentials' }).expect(401);
    });

    it('serves each endpoint at its own path only: not at the root, where another issuer or the app may be', async () => {
      const other = issuer({ issuer: ISSUER, signingKey: { secret: SECRET }, clients: new MemoryClientStore([]) });
      const app = express().use(pathed()).use(other);
      const keys = await request(app).get('/.well-known/jwks.json').expect(200);
      expect(keys.body).toEqual({ keys: [] }); // the other issuer's: an HS256 secret is never published
      expect((await request(app).get('/tenants/acme/.well-known/jwks.json').expect(200)).body.keys).toHaveLength(1);
    });

    it('serves every endpoint from a Router at any depth, and leaves the Router\'s own root to the app', async () => {
      const tokens = pathed();
      const outer = express().use('/tenants', express.Router().use('/acme', express.Router().use(tokens).get('/', (_req, res) => { res.send('home'); })));
      await request(outer).get('/tenants/acme/').expect(200, 'home');
      outer.get(tokens.metadataPath, tokens.metadata);
      await request(outer).post('/tenants/acme/token').type('form').send({ grant_type: 'client_credentials' }).expect(401);
      await request(outer).post('/tenants/acme/revoke').type('form').send({ token: 'x' }).expect(401);
      expect((await request(outer).get(tokens.metadataPath)).body).toMatchObject(expected);
    });
  });

  it('names the issuer that tokens carry in iss', async () => {
    const client = await aClient();
    const { app } = tokenServer([client]);
    const metadata = await request(app).get('/.well-known/oauth-authorization-server');
    const token = await request(app).post('/token').auth(client.id, client.secret).type('form').send({ grant_type: 'client_credentials' });
    expect(decodePayload(token.body.access_token).iss).toBe(metadata.body.issuer);
  });

  it('takes each URL from the options, and serves the endpoint at its path', async () => {
    const tokens = issuer({ issuer: ISSUER, signingKey: { secret: SECRET }, clients: new MemoryClientStore([]), endpoints: { token: `${ISSUER}/auth/oauth/token`, jwks: 'https://keys.example/k' } });
    const app = express().use('/auth', express().use(tokens)).get('/.well-known/oauth-authorization-server', tokens.metadata);
    expect((await request(app).get('/.well-known/oauth-authorization-server')).body).toMatchObject({ token_endpoint: `${ISSUER}/auth/oauth/token`, jwks_uri: 'https://keys.example/k' });
    expect(tokens.endpoints.token).toBe(`${ISSUER}/auth/oauth/token`);
    await request(app).post('/auth/oauth/token').type('form').send({ grant_type: 'client_credentials' }).expect(401);
    await request(app).post('/auth/token').type('form').send({ grant_type: 'client_credentials' }).expect(404);
  });
});

describe('JSON Web Key Set: RFC 7517 §5', () => {
  it.each([
    ['RSA', keyPairs.rsa, 'RS256', ['alg', 'e', 'kid', 'kty', 'n', 'use']],
    ['EC P-256', keyPairs.ec, 'ES256', ['alg', 'crv', 'kid', 'kty', 'use', 'x', 'y']],
    ['Ed25519', keyPairs.ed25519, 'EdDSA', ['alg', 'crv', 'kid', 'kty', 'use', 'x']],
  ])('publishes the public half of a %s key with kid, alg and use, and nothing private', async (_name, make, alg, members) => {
    const client = await aClient();
    const { app } = tokenServer([client], { signingKey: { privateKey: make() } });
    const res = await request(app).get('/.well-known/jwks.json').expect(200).expect('Content-Type', /^application\/jwk-set\+json/);
    expect(res.body.keys).toHaveLength(1);
    const [jwk] = res.body.keys;
    expect(Object.keys(jwk).sort()).toEqual(members);
    expect(jwk).toMatchObject({ alg, use: 'sig' });
    for (const member of ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k']) expect(jwk[member]).toBeUndefined();
    const token = await request(app).post('/token').auth(client.id, client.secret).type('form').send({ grant_type: 'client_credentials' });
    expect(decodeHeader(token.body.access_token)).toEqual({ alg, typ: 'at+jwt', kid: jwk.kid });
  });

  it('lets clients cache the key set (Cache-Control: max-age), 300 s by default', async () => {
    const { app } = tokenServer([], { signingKey: { privateKey: keyPairs.ec() } });
    expect((await request(app).get('/.well-known/jwks.json')).headers['cache-control']).toBe('public, max-age=300');
    const { app: short } = tokenServer([], { signingKey: { privateKey: keyPairs.ec() }, jwksMaxAge: 60 });
    expect((await request(short).get('/.well-known/jwks.json')).headers['cache-control']).toBe('public, max-age=60');
  });

  it('serves the key set as a route handler too', async () => {
    const tokens = issuer({ issuer: ISSUER, signingKey: { privateKey: keyPairs.ec() }, clients: new MemoryClientStore([]) });
    const app = express().get('/keys.json', tokens.jwks);
    expect((await request(app).get('/keys.json').expect(200)).body.keys).toHaveLength(1);
  });

  it('never publishes an HS256 secret', async () => {
    const { app } = tokenServer([]);
    const res = await request(app).get('/.well-known/jwks.json').expect(200);
    expect(res.body).toEqual({ keys: [] });
    expect(res.text).not.toContain(Buffer.from(SECRET).toString('base64url'));
  });
});
