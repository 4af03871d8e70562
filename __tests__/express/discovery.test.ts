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

  it('lists only the endpoints that are mounted', async () => {
    const tokens = issuer({ issuer: ISSUER, signingKey: { secret: SECRET }, clients: new MemoryClientStore([]) });
    const app = express().use('/token', tokens).get(tokens.metadataPath, tokens.metadata);
    const { body } = await request(app).get('/.well-known/oauth-authorization-server');
    expect(body.revocation_endpoint).toBeUndefined();
    expect(body.introspection_endpoint).toBeUndefined();
    expect(body.token_endpoint).toBe(`${ISSUER}/token`);
  });

  it('lists no URL for a mount path that names none (a pattern or a list), and warns about a Router mount', async () => {
    const tokens = issuer({ issuer: ISSUER, signingKey: { secret: SECRET }, clients: new MemoryClientStore([]) });
    const app = express();
    app.use('/:tenant/revoke', tokens.revocation);
    const router = express.Router();
    router.use('/introspect', tokens.introspection);
    app.use('/oauth', router);
    app.get(tokens.metadataPath, tokens.metadata);
    const { body } = await request(app).get('/.well-known/oauth-authorization-server');
    expect(body.revocation_endpoint).toBeUndefined();
    expect(body.introspection_endpoint).toBeUndefined();
    const emitWarning = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    try {
      await request(app).post('/oauth/introspect').type('form').send({ token: 'x' });
      expect(emitWarning).toHaveBeenCalledWith(expect.stringContaining('not mounted with app.use(path, endpoint) on an Express app'), { code: 'ECC_MOUNT' });
    } finally {
      emitWarning.mockRestore();
    }
  });

  describe('an issuer with a path (RFC 8414 §3 path insertion)', () => {
    const PATHED = `${ISSUER}/tenants/acme`;
    const mountAll = (app: express.Express, prefix: string) => {
      const tokens = issuer({ issuer: PATHED, signingKey: { privateKey: keyPairs.ec() }, clients: new MemoryClientStore([]) });
      app.use(`${prefix}/token`, tokens);
      app.use(`${prefix}/revoke`, tokens.revocation);
      app.use(`${prefix}/introspect`, tokens.introspection);
      app.use(`${prefix}/jwks`, tokens.jwks);
      app.get(tokens.metadataPath, tokens.metadata);
      return tokens;
    };
    const expected = {
      issuer: PATHED,
      token_endpoint: `${PATHED}/token`,
      revocation_endpoint: `${PATHED}/revoke`,
      introspection_endpoint: `${PATHED}/introspect`,
      jwks_uri: `${PATHED}/jwks`,
    };

    it('serves metadata at /.well-known/oauth-authorization-server/tenants/acme', async () => {
      const app = express();
      const tokens = mountAll(app, '/tenants/acme');
      expect(tokens.metadataPath).toBe('/.well-known/oauth-authorization-server/tenants/acme');
      const { body } = await request(app).get('/.well-known/oauth-authorization-server/tenants/acme').expect(200);
      expect(body).toMatchObject(expected);
    });

    it('gives the same URLs when a proxy strips the issuer path before the app', async () => {
      const app = express();
      mountAll(app, '');
      expect((await request(app).get('/.well-known/oauth-authorization-server/tenants/acme')).body).toMatchObject(expected);
    });

    it('follows nested routers and sub-apps', async () => {
      const outer = express();
      const inner = express();
      mountAll(inner, '/acme');
      outer.use('/tenants', inner);
      const { body } = await request(outer).get('/tenants/.well-known/oauth-authorization-server/tenants/acme');
      expect(body).toMatchObject(expected);
    });
  });

  it('names the issuer that tokens carry in iss', async () => {
    const client = await aClient();
    const { app } = tokenServer([client]);
    const metadata = await request(app).get('/.well-known/oauth-authorization-server');
    const token = await request(app).post('/token').auth(client.id, client.secret).type('form').send({ grant_type: 'client_credentials' });
    expect(decodePayload(token.body.access_token).iss).toBe(metadata.body.issuer);
  });

  it('derives token_endpoint from where the endpoint is mounted, or takes it from the options', async () => {
    const app = express();
    const nested = express();
    const tokens = issuer({ issuer: ISSUER, signingKey: { secret: SECRET }, clients: new MemoryClientStore([]) });
    nested.use('/oauth/token', tokens);
    app.use('/auth', nested);
    app.get('/.well-known/oauth-authorization-server', tokens.metadata);
    expect((await request(app).get('/.well-known/oauth-authorization-server')).body.token_endpoint).toBe(`${ISSUER}/auth/oauth/token`);
    const explicit = issuer({ issuer: ISSUER, signingKey: { secret: SECRET }, clients: new MemoryClientStore([]), endpoints: { token: 'https://as.example/t', jwks: 'https://as.example/k' } });
    const other = express().get('/m', explicit.metadata);
    expect((await request(other).get('/m')).body).toMatchObject({ token_endpoint: 'https://as.example/t', jwks_uri: 'https://as.example/k' });
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
