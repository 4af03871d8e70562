import express, { type ErrorRequestHandler } from 'express';
import request from 'supertest';
import {
  authenticate,
  ConfigurationError,
  issuer,
  MemoryClientStore,
  OAuthError,
  protectedResource,
  requireScope,
  type AuthenticateOptions,
  type ProtectedResourceOptions,
} from 'express-client-credentials';
import { aClient, AUDIENCE, hs256, ISSUER, SECRET } from '../support/fixtures.js';
import { close, serve, type Listening } from '../support/servers.js';

const WELL_KNOWN = '/.well-known/oauth-protected-resource';
const METADATA_URL = `${ISSUER}${WELL_KNOWN}/api`;
const REALM = `realm="${AUDIENCE}"`;
const now = () => Math.floor(Date.now() / 1000);
const claims = (overrides: Record<string, unknown> = {}) => ({
  iss: ISSUER, sub: 'svc', client_id: 'svc', aud: AUDIENCE, iat: now(), exp: now() + 600, jti: `j-${Math.random()}`, scope: 'read', ...overrides,
});

/** The metadata of the fixtures' /api resource, with overrides. */
const anApi = (overrides: Partial<ProtectedResourceOptions> = {}) =>
  protectedResource({ resource: AUDIENCE, authorizationServers: [ISSUER], scopesSupported: ['read', 'write'], ...overrides });

/** An app serving the document at its inserted path. */
function metadataServer(options: Partial<ProtectedResourceOptions> = {}) {
  const api = anApi(options);
  const app = express();
  app.get(api.metadataPath, api.metadata);
  return { app, api };
}

/** A resource server whose guard names the metadata; /data needs read and write. */
function guardedServer(options: Partial<AuthenticateOptions> = {}) {
  const app = express();
  app.use(authenticate({ secret: SECRET, issuer: ISSUER, resourceMetadata: anApi(), ...options } as AuthenticateOptions));
  app.get('/data', requireScope('read', 'write'), (req, res) => { res.json({ client_id: req.auth?.clientId }); });
  return app;
}

/** RFC 7235 §2.1 auth-params of a single challenge, enough for what the guard sends. */
function challengeParams(header: string | undefined): Record<string, string> {
  const params: Record<string, string> = {};
  for (const [, name, value] of (header ?? '').matchAll(/([a-z_]+)="([^"]*)"/g)) params[name!] = value!;
  return params;
}

describe('the metadata document: RFC 9728 §2', () => {
  it('serves resource, authorization_servers, scopes_supported and bearer_methods_supported as cacheable JSON', async () => {
    const { app, api } = metadataServer();
    const res = await request(app).get(`${WELL_KNOWN}/api`).expect(200);
    expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(res.headers['cache-control']).toBe('public, max-age=300');
    expect(res.body).toEqual({
      resource: AUDIENCE,
      authorization_servers: [ISSUER],
      scopes_supported: ['read', 'write'],
      bearer_methods_supported: ['header'],
    });
    expect(api.document).toEqual(res.body);
    expect(api.resource).toBe(AUDIENCE);
  });

  it('adds the optional members when given, and the maxAge to Cache-Control', async () => {
    const { app } = metadataServer({
      scopesSupported: undefined,
      bearerMethodsSupported: ['header', 'body'],
      resourceName: 'Reports API',
      resourceDocumentation: 'https://docs.example/reports?lang=en',
      jwksUri: 'https://api.example/jwks.json',
      resourceSigningAlgValuesSupported: ['ES256'],
      maxAge: 60,
    });
    const res = await request(app).get(`${WELL_KNOWN}/api`).expect(200).expect('Cache-Control', 'public, max-age=60');
    expect(res.body).toEqual({
      resource: AUDIENCE,
      authorization_servers: [ISSUER],
      bearer_methods_supported: ['header', 'body'],
      jwks_uri: 'https://api.example/jwks.json',
      resource_signing_alg_values_supported: ['ES256'],
      resource_name: 'Reports API',
      resource_documentation: 'https://docs.example/reports?lang=en',
    });
  });

  it('names an issuer() instance by its issuer identifier', () => {
    const tokens = issuer({ issuer: 'https://as.example/tenant', signingKey: { secret: SECRET }, secretHashCost: 4, clients: new MemoryClientStore([]) });
    expect(anApi({ authorizationServers: [tokens, tokens.trust, 'https://other-as.example'] }).document.authorization_servers).toEqual([
      'https://as.example/tenant', 'https://as.example/tenant', 'https://other-as.example',
    ]);
  });

  it('answers GET and HEAD only, passing other methods on', async () => {
    const api = anApi();
    const app = express();
    app.use(api.metadataPath, api.metadata);
    await request(app).head(`${WELL_KNOWN}/api`).expect(200).expect('Content-Type', /application\/json/);
    await request(app).post(`${WELL_KNOWN}/api`).expect(404);
  });
});

describe('where the document is published: RFC 9728 §3.1 and §3.3', () => {
  it.each([
    ['https://api.example', WELL_KNOWN, `https://api.example${WELL_KNOWN}`],
    ['https://api.example/', WELL_KNOWN, `https://api.example${WELL_KNOWN}`],
    ['https://api.example/api', `${WELL_KNOWN}/api`, `https://api.example${WELL_KNOWN}/api`],
    ['https://api.example/v1/orders/', `${WELL_KNOWN}/v1/orders`, `https://api.example${WELL_KNOWN}/v1/orders`],
    ['http://127.0.0.1:3000/api', `${WELL_KNOWN}/api`, `http://127.0.0.1:3000${WELL_KNOWN}/api`],
  ])('inserts the well-known path before the path of %s, its trailing slash removed', (resource, path, url) => {
    const api = anApi({ resource });
    expect([api.metadataPath, api.metadataUrl]).toEqual([path, url]);
  });

  it.each(['https://api.example', 'https://api.example/api', 'https://api.example/v1/orders/'])(
    'serves, for %s, a document whose resource is the identifier the URL was built from',
    async (resource) => {
      const { app, api } = metadataServer({ resource });
      const fetched = new URL(api.metadataUrl);
      const res = await request(app).get(fetched.pathname).set('Host', fetched.host).expect(200);
      // What a client MUST check before using the document.
      expect(res.body.resource).toBe(resource);
      const rebuilt = new URL(res.body.resource as string);
      expect(`${rebuilt.origin}${WELL_KNOWN}${rebuilt.pathname.replace(/\/$/, '')}`).toBe(api.metadataUrl);
    },
  );

  it('serves the same document at the inserted path and at the root path, for clients that probe the root', async () => {
    const api = anApi();
    const app = express();
    app.get([api.metadataPath, WELL_KNOWN], api.metadata);
    const inserted = await request(app).get(`${WELL_KNOWN}/api`).expect(200);
    const root = await request(app).get(WELL_KNOWN).expect(200);
    expect(root.body).toEqual(inserted.body);
    expect(root.body.resource).toBe(AUDIENCE);
  });
});

describe('challenges carry resource_metadata: RFC 9728 §5.1', () => {
  const app = guardedServer();
  const withMetadata = `resource_metadata="${METADATA_URL}"`;

  it('puts realm and resource_metadata, and no error code, in the 401 to a request without a token', async () => {
    const res = await request(app).get('/data').expect(401);
    expect(res.headers['www-authenticate']).toBe(`Bearer ${REALM}, ${withMetadata}`);
  });

  it('puts it in the invalid_token 401', async () => {
    const res = await request(app).get('/data').set('Authorization', `Bearer ${hs256(claims({ exp: now() - 60 }))}`).expect(401);
    expect(res.headers['www-authenticate']).toBe(`Bearer ${REALM}, error="invalid_token", error_description="The token has expired", ${withMetadata}`);
  });

  it('puts it in the invalid_request 400', async () => {
    const res = await request(app).get('/data').set('Authorization', 'Bearer abc$def').expect(400);
    expect(res.headers['www-authenticate']).toBe(
      `Bearer ${REALM}, error="invalid_request", error_description="The Authorization header is not a single Bearer token", ${withMetadata}`,
    );
  });

  it("puts it in requireScope()'s insufficient_scope 403, after the required scope", async () => {
    const res = await request(app).get('/data').set('Authorization', `Bearer ${hs256(claims({ scope: 'read' }))}`).expect(403);
    expect(res.headers['www-authenticate']).toBe(
      `Bearer ${REALM}, error="insufficient_scope", error_description="The access token lacks the required scope", scope="read write", ${withMetadata}`,
    );
  });

  it('takes the URL of a document served elsewhere as a string', async () => {
    const remote = guardedServer({ resourceMetadata: `https://api.example${WELL_KNOWN}/reports` });
    const res = await request(remote).get('/data').expect(401);
    expect(res.headers['www-authenticate']).toBe(`Bearer ${REALM}, resource_metadata="https://api.example${WELL_KNOWN}/reports"`);
  });

  it('hands it to next(err) with delegateErrors', async () => {
    const seen: OAuthError[] = [];
    const delegating = express();
    delegating.get('/data', authenticate({ secret: SECRET, issuer: ISSUER, resourceMetadata: anApi(), delegateErrors: true }), (_req, res) => { res.json({}); });
    const handler: ErrorRequestHandler = (err: OAuthError, _req, res, _next) => { seen.push(err); res.status(err.status).end(); };
    delegating.use(handler);
    await request(delegating).get('/data').expect(401);
    expect(seen[0]?.headers['WWW-Authenticate']).toBe(`Bearer ${REALM}, ${withMetadata}`);
  });

  it('leaves challenges without it when not configured', async () => {
    const plain = express();
    plain.get('/data', authenticate({ secret: SECRET, issuer: ISSUER }), (_req, res) => { res.json({}); });
    expect((await request(plain).get('/data')).headers['www-authenticate']).toBe(`Bearer ${REALM}`);
  });
});

describe('a client finds the authorization server from a 401 alone: RFC 9728 §5.1 then RFC 8414 §3', () => {
  let listening: Listening | undefined;
  afterAll(() => close(listening));

  it('follows resource_metadata to authorization_servers[0], its metadata and token_endpoint, then gets in', async () => {
    const client = await aClient({ scope: 'read' });
    listening = await serve((url) => {
      const app = express();
      const tokens = issuer({ issuer: url, signingKey: { secret: SECRET }, secretHashCost: 4, clients: [client.record] });
      app.use('/token', tokens);
      app.get(tokens.metadataPath, tokens.metadata);
      const api = protectedResource({ resource: `${url}/api`, authorizationServers: [tokens], scopesSupported: ['read'] });
      app.get([api.metadataPath, WELL_KNOWN], api.metadata);
      app.use('/api', authenticate({ issuer: tokens, resourceMetadata: api }));
      app.get('/api/data', requireScope('read'), (req, res) => { res.json({ client_id: req.auth?.clientId }); });
      return app;
    });
    const resourceUrl = `${listening.url}/api/data`;

    // 1. The 401 names the metadata.
    const refused = await fetch(resourceUrl);
    expect(refused.status).toBe(401);
    const { resource_metadata: metadataUrl } = challengeParams(refused.headers.get('www-authenticate') ?? undefined);
    expect(metadataUrl).toBe(`${listening.url}${WELL_KNOWN}/api`);

    // 2. The document is about the resource requested, and was published where its identifier says.
    const document = (await (await fetch(metadataUrl!)).json()) as { resource: string; authorization_servers: string[] };
    expect(resourceUrl.startsWith(`${document.resource}/`)).toBe(true);
    const identifier = new URL(document.resource);
    expect(`${identifier.origin}${WELL_KNOWN}${identifier.pathname.replace(/\/$/, '')}`).toBe(metadataUrl);

    // 3. RFC 8414 §3: the authorization server's metadata, whose issuer MUST be the identifier asked about.
    const authorizationServer = new URL(document.authorization_servers[0]!);
    const asMetadataUrl = `${authorizationServer.origin}/.well-known/oauth-authorization-server${authorizationServer.pathname.replace(/\/$/, '')}`;
    const asMetadata = (await (await fetch(asMetadataUrl)).json()) as { issuer: string; token_endpoint: string };
    expect(asMetadata.issuer).toBe(document.authorization_servers[0]);
    expect(asMetadata.token_endpoint).toBe(`${listening.url}/token`);

    // 4. A token from that endpoint opens the resource.
    const granted = await fetch(asMetadata.token_endpoint, {
      method: 'POST',
      headers: { Authorization: `Basic ${Buffer.from(`${client.id}:${client.secret}`).toString('base64')}`, 'Content-Type': 'application/x-www-form-urlencoded' },
      body: 'grant_type=client_credentials&scope=read',
    });
    const { access_token: token } = (await granted.json()) as { access_token: string };
    const admitted = await fetch(resourceUrl, { headers: { Authorization: `Bearer ${token}` } });
    expect(admitted.status).toBe(200);
    expect(await admitted.json()).toEqual({ client_id: client.id });
  });
});

describe('options are checked when protectedResource() is called', () => {
  it.each([
    ['no resource', { resource: undefined }, /`resource` must be an absolute http\(s\) URL/],
    ['a relative resource', { resource: '/api' }, /`resource` must be an absolute http\(s\) URL/],
    ['a resource with a fragment (§1.2)', { resource: 'https://api.example/api#v1' }, /without query or fragment/],
    ['a resource with a query', { resource: 'https://api.example/api?v=1' }, /without query or fragment/],
    ['a resource of another scheme', { resource: 'urn:example:api' }, /`resource` must be an absolute http\(s\) URL/],
    ['a resource with credentials', { resource: 'https://user:pw@api.example/api' }, /user name or password/],
    ['a resource with an upper-case host', { resource: 'https://API.example/api' }, /canonical form.*https:\/\/api\.example\/api/],
    ['a resource with the default port', { resource: 'https://api.example:443/api' }, /canonical form/],
    ['a resource with dot segments', { resource: 'https://api.example/v1/../api' }, /canonical form/],
    ['no authorization server', { authorizationServers: [] }, /`authorizationServers` must list one or more/],
    ['a relative authorization server', { authorizationServers: ['as.example'] }, /`authorizationServers` must be an absolute http\(s\) URL/],
    ['an authorization server with a query', { authorizationServers: ['https://as.example/?tenant=1'] }, /`authorizationServers`/],
    ['a scope with a space', { scopesSupported: ['read write'] }, /`scopesSupported`/],
    ['a scope with a quote', { scopesSupported: ['re"ad'] }, /`scopesSupported`/],
    ['an unknown bearer method', { bearerMethodsSupported: ['cookie'] }, /`bearerMethodsSupported`/],
    ['a repeated bearer method', { bearerMethodsSupported: ['header', 'header'] }, /`bearerMethodsSupported`/],
    ['the none signing algorithm', { resourceSigningAlgValuesSupported: ['none'] }, /never none/],
    ['documentation that is no URL', { resourceDocumentation: 'see the wiki' }, /`resourceDocumentation`/],
    ['a jwks_uri with a fragment', { jwksUri: 'https://api.example/jwks#k' }, /`jwksUri`/],
    ['an empty resource name', { resourceName: ' ' }, /`resourceName`/],
    ['a maxAge of 0', { maxAge: 0 }, /`maxAge`/],
    ['a misspelt option', { authorizationServer: [ISSUER] }, /unknown option `authorizationServer`/],
  ])('refuses %s', (_name, overrides, message) => {
    const build = () => anApi(overrides as Partial<ProtectedResourceOptions>);
    expect(build).toThrow(ConfigurationError);
    expect(build).toThrow(message);
  });

  it('refuses a call without options', () => {
    expect(() => protectedResource(undefined as never)).toThrow(ConfigurationError);
  });
});

describe("the guard's resourceMetadata option is checked when authenticate() is called", () => {
  it.each([
    ['a relative URL', '/.well-known/oauth-protected-resource'],
    ['a URL with a fragment', `https://api.example${WELL_KNOWN}#x`],
    ['a URL that cannot be quoted', `https://api.example${WELL_KNOWN}/"x`],
    ['an object protectedResource() did not make', { metadataUrl: METADATA_URL }],
  ])('refuses %s', (_name, resourceMetadata) => {
    const guard = () => authenticate({ secret: SECRET, issuer: ISSUER, resourceMetadata } as AuthenticateOptions);
    expect(guard).toThrow(ConfigurationError);
    expect(guard).toThrow(/`resourceMetadata` must be what protectedResource\(\) returns/);
  });

  it('refuses a document whose bearer_methods_supported differs from tokenLocations, and accepts the same set', () => {
    expect(() => authenticate({ secret: SECRET, issuer: ISSUER, tokenLocations: ['header', 'query'], resourceMetadata: anApi() })).toThrow(
      /`tokenLocations` \(header, query\) differs from the bearer_methods_supported of `resourceMetadata` \(header\)/,
    );
    expect(() =>
      authenticate({ secret: SECRET, issuer: ISSUER, tokenLocations: ['header', 'query'], resourceMetadata: anApi({ bearerMethodsSupported: ['query', 'header'] }) }),
    ).not.toThrow();
  });
});
