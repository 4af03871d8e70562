// Interoperability: third-party OAuth software, used unchanged, against real servers on loopback.
// openid-client and jose are ESM-only, so they run in a child Node process (__tests__/interop/*.mjs)
// that prints one JSON line; express-oauth2-jwt-bearer (CJS) runs in-process.

import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import express, { type Express } from 'express';
// Ours first: both packages declare `Express.Request.auth` (ours AuthInfo, theirs VerifyJwtResult), and
// TypeScript keeps the first declaration it meets; the second is in a .d.ts that skipLibCheck skips.
import { hashSecret, issuer, requireScope, type ClientRecord, type SigningKeyInput } from 'express-client-credentials';
import { auth, requiredScopes } from 'express-oauth2-jwt-bearer';
import request from 'supertest';
import { createExampleServer } from '../../examples/server.js';
import { close, listenOnLoopback, serve, type Listening } from '../support/servers.js';
import { runNodeScript } from '../support/node-script.js';

const SCRIPT_TIMEOUT_MS = 15_000;

interface Registered {
  readonly id: string;
  readonly secret: string;
  readonly record: ClientRecord;
}

async function register(id: string, secret: string, method: 'client_secret_basic' | 'client_secret_post'): Promise<Registered> {
  return {
    id,
    secret,
    record: { client_id: id, client_secret_hash: await hashSecret(secret, 4), scope: 'read write', token_endpoint_auth_method: method },
  };
}

/** Our issuer as documented: token endpoint, RFC 8414 metadata, JWKS, and a guarded API route. */
function authorizationServer(signingKey: SigningKeyInput, clients: readonly Registered[], seen: string[] = []): (url: string) => Express {
  return (url) => {
    const app = express();
    app.use((req, res, next) => {
      const where = `${req.method} ${req.path}`; // before a mounted app rewrites req.path
      res.on('finish', () => seen.push(`${where} ${res.statusCode}`));
      next();
    });
    const tokens = issuer({ issuer: url, signingKey, secretHashCost: 4, clients: clients.map((client) => client.record) });
    app.use('/token', tokens);
    app.get('/.well-known/oauth-authorization-server', tokens.metadata);
    app.get('/.well-known/jwks.json', tokens.jwks);
    app.get('/api/data', requireScope('read'), (req, res) => {
      res.json({ client_id: req.auth?.clientId, scope: req.auth?.scopes.join(' ') });
    });
    return app;
  };
}

async function tokenFor(server: Listening, client: Registered, scope: string): Promise<string> {
  const res = await request(server.url)
    .post('/token')
    .auth(client.id, client.secret)
    .type('form')
    .send({ grant_type: 'client_credentials', scope });
  expect(res.status).toBe(200);
  const body = res.body as { access_token?: unknown };
  if (typeof body.access_token !== 'string') throw new Error(`no access_token in ${JSON.stringify(res.body)}`);
  return body.access_token;
}

async function metadataOf(server: Listening): Promise<{ issuer: string; jwks_uri: string; token_endpoint: string }> {
  const res = await request(server.url).get('/.well-known/oauth-authorization-server');
  expect(res.status).toBe(200);
  return res.body as { issuer: string; jwks_uri: string; token_endpoint: string };
}

/** The same token with its payload changed and the original signature kept. */
function tampered(token: string, changes: Record<string, unknown>): string {
  const [header, payload, signature] = token.split('.');
  if (header === undefined || payload === undefined || signature === undefined) throw new Error('not a JWS');
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, unknown>;
  const forged = Buffer.from(JSON.stringify({ ...claims, ...changes })).toString('base64url');
  return `${header}.${forged}.${signature}`;
}

// ---------------------------------------------------------------------------------------------
// Child Node processes for the ESM-only libraries

interface ScriptError {
  name: string;
  message: string;
  code?: string;
  status?: number;
  error?: string;
  error_description?: string;
  claim?: string;
  reason?: string;
  cause?: { name: string; message: string; code?: string };
  challenges?: Array<{ scheme: string; parameters: Record<string, string> }>;
  body?: Record<string, unknown>;
}
type ScriptResult<T> = ({ ok: true } & T) | { ok: false; error: ScriptError };

/** Runs a fixture; resolves with the one JSON line it prints. */
async function runFixture<T>(script: string, args: readonly string[], env: Record<string, string>): Promise<ScriptResult<T>> {
  const stdout = await runNodeScript(script, args, env, SCRIPT_TIMEOUT_MS);
  const lines = stdout.split('\n').filter((line) => line !== '');
  if (lines.length !== 1) throw new Error(`${script} printed ${lines.length} lines: ${stdout}`);
  const parsed: unknown = JSON.parse(lines[0] as string);
  if (typeof parsed !== 'object' || parsed === null || typeof (parsed as { ok?: unknown }).ok !== 'boolean') {
    throw new Error(`${script} printed an unexpected shape: ${stdout}`);
  }
  return parsed as ScriptResult<T>;
}

/** The successful result, or a test failure that shows what the third-party library said. */
function succeeded<T>(result: ScriptResult<T>): T {
  if (!result.ok) throw new Error(`the third-party library refused: ${JSON.stringify(result.error)}`);
  return result;
}

function failed<T>(result: ScriptResult<T>): ScriptError {
  if (result.ok) throw new Error(`the third-party library accepted what it should refuse: ${JSON.stringify(result)}`);
  return result.error;
}

interface OpenIdClientOutput {
  metadata: { issuer: string; token_endpoint: string; jwks_uri: string };
  tokens: { access_token: string; token_type: string; expires_in?: number; scope?: string };
}

function openIdClientGrant(server: Listening, client: Registered, method: 'basic' | 'post', scope: string, secret = client.secret) {
  return runFixture<OpenIdClientOutput>('openid-client-token.mjs', [server.url, client.id, method, scope], { INTEROP_CLIENT_SECRET: secret });
}

interface JoseOutput {
  protectedHeader: Record<string, unknown>;
  payload: Record<string, unknown>;
}

function joseVerify(jwksUri: string, issuerId: string, audience: string, token: string) {
  return runFixture<JoseOutput>('jose-verify.mjs', [jwksUri, issuerId, audience], { INTEROP_ACCESS_TOKEN: token });
}

// ---------------------------------------------------------------------------------------------

describe('interoperability: openid-client v6 as the OAuth client', () => {
  let as: Listening | undefined;
  // Secrets with characters RFC 6749 §2.3.1 has clients form-encode before Basic's base64.
  let basicClient: Registered;
  let postClient: Registered;

  beforeAll(async () => {
    basicClient = await register('interop:basic client', 'basic s3cret+/=:%&?', 'client_secret_basic');
    postClient = await register('interop-post', 'post s3cret+/=:%&?', 'client_secret_post');
    as = await serve(authorizationServer({ privateKey: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey }, [basicClient, postClient]));
  });
  afterAll(() => close(as));

  const guardedApiAccepts = async (token: string, clientId: string): Promise<void> => {
    const res = await request(as!.url).get('/api/data').set('Authorization', `Bearer ${token}`);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ client_id: clientId, scope: 'read' });
  };

  test('discovery + clientCredentialsGrant with ClientSecretBasic gets a bearer token our guard accepts', async () => {
    const { metadata, tokens } = succeeded(await openIdClientGrant(as!, basicClient, 'basic', 'read'));
    expect(metadata).toEqual({ issuer: as!.url, token_endpoint: `${as!.url}/token`, jwks_uri: `${as!.url}/.well-known/jwks.json` });
    expect(tokens.token_type).toBe('bearer'); // oauth4webapi lower-cases the case-insensitive value
    expect(tokens.scope).toBe('read');
    expect(tokens.expires_in).toBeGreaterThan(590);
    expect(tokens.expires_in).toBeLessThanOrEqual(600);
    await guardedApiAccepts(tokens.access_token, basicClient.id);
  });

  test('discovery + clientCredentialsGrant with ClientSecretPost gets a bearer token our guard accepts', async () => {
    const { tokens } = succeeded(await openIdClientGrant(as!, postClient, 'post', 'read'));
    expect(tokens.token_type).toBe('bearer');
    expect(tokens.scope).toBe('read');
    await guardedApiAccepts(tokens.access_token, postClient.id);
  });

  test('a wrong secret reaches openid-client as a 401 Basic challenge with an invalid_client body', async () => {
    const error = failed(await openIdClientGrant(as!, basicClient, 'basic', 'read', 'not the secret'));
    // oauth4webapi reports any 401 carrying WWW-Authenticate as the challenge, before reading the body.
    expect(error).toMatchObject({ name: 'WWWAuthenticateChallengeError', code: 'OAUTH_WWW_AUTHENTICATE_CHALLENGE', status: 401 });
    expect(error.challenges).toEqual([{ scheme: 'basic', parameters: { realm: as!.url } }]);
    expect(error.body).toMatchObject({ error: 'invalid_client' });
  });
});

describe('interoperability: jose v6 verifies our access tokens with the published JWKS', () => {
  const keys: ReadonlyArray<{ alg: string; privateKey: () => KeyObject }> = [
    { alg: 'RS256', privateKey: () => generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey },
    { alg: 'ES256', privateKey: () => generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey },
    { alg: 'EdDSA', privateKey: () => generateKeyPairSync('ed25519').privateKey },
  ];
  const servers = new Map<string, Listening>();
  let client: Registered;

  beforeAll(async () => {
    client = await register('interop-jose', 'jose-secret', 'client_secret_basic');
    for (const { alg, privateKey } of keys) {
      servers.set(alg, await serve(authorizationServer({ privateKey: privateKey() }, [client])));
    }
  });
  afterAll(async () => {
    await Promise.all([...servers.values()].map((server) => close(server)));
  });

  test.each(keys.map(({ alg }) => alg))('createRemoteJWKSet + jwtVerify accept a %s token (typ at+jwt, issuer, audience)', async (alg) => {
    const as = servers.get(alg)!;
    const metadata = await metadataOf(as);
    const token = await tokenFor(as, client, 'read');

    const { protectedHeader, payload } = succeeded(await joseVerify(metadata.jwks_uri, metadata.issuer, `${as.url}/api`, token));

    expect(protectedHeader).toEqual({ alg, typ: 'at+jwt', kid: expect.any(String) });
    expect(payload).toEqual({
      iss: as.url,
      sub: client.id,
      client_id: client.id,
      aud: `${as.url}/api`,
      scope: 'read',
      jti: expect.any(String),
      iat: expect.any(Number),
      exp: expect.any(Number),
    });
    expect((payload.exp as number) - (payload.iat as number)).toBe(600);
  });

  test('jwtVerify refuses a tampered token and a token for another audience (the check is real)', async () => {
    const as = servers.get('ES256')!;
    const metadata = await metadataOf(as);
    const token = await tokenFor(as, client, 'read');

    const forged = failed(await joseVerify(metadata.jwks_uri, metadata.issuer, `${as.url}/api`, tampered(token, { scope: 'read write' })));
    expect(forged.code).toBe('ERR_JWS_SIGNATURE_VERIFICATION_FAILED');

    const elsewhere = failed(await joseVerify(metadata.jwks_uri, metadata.issuer, 'https://other.example/api', token));
    expect(elsewhere).toMatchObject({ code: 'ERR_JWT_CLAIM_VALIDATION_FAILED', claim: 'aud' });
  });

  test('a token signed by another issuer is refused by the first issuer\'s JWKS', async () => {
    const rsa = servers.get('RS256')!;
    const ec = servers.get('ES256')!;
    const token = await tokenFor(ec, client, 'read');
    const rsaMetadata = await metadataOf(rsa);

    const error = failed(await joseVerify(rsaMetadata.jwks_uri, ec.url, `${ec.url}/api`, token));
    expect(error.code).toBe('ERR_JWKS_NO_MATCHING_KEY');
  });
});

describe('interoperability: express-oauth2-jwt-bearer protects a separate resource server', () => {
  let as: Listening | undefined;
  let api: Listening | undefined;
  let client: Registered;
  const seen: string[] = [];

  beforeAll(async () => {
    client = await register('interop-auth0', 'auth0-secret', 'client_secret_basic');
    as = await serve(authorizationServer({ privateKey: generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey }, [client], seen));
    const issuerUrl = as.url;
    api = await serve(() => {
      const app = express();
      // Discovery: /.well-known/openid-configuration is a 404 here, so it falls back to RFC 8414.
      app.use(auth({ issuerBaseURL: issuerUrl, audience: `${issuerUrl}/api`, strict: true }));
      app.get('/anything', (_req, res) => {
        res.json({ ok: true });
      });
      app.get('/reports', requiredScopes('read'), (_req, res) => {
        res.json({ reports: [] });
      });
      app.get('/admin', requiredScopes('admin'), (_req, res) => {
        res.json({ admin: true });
      });
      return app;
    });
  });
  afterAll(async () => {
    await close(api);
    await close(as);
  });

  test('auth({ issuerBaseURL, audience, strict: true }) discovers our RFC 8414 metadata and accepts our RS256 token', async () => {
    const token = await tokenFor(as!, client, 'read');
    const res = await request(api!.url).get('/anything').set('Authorization', `Bearer ${token}`);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ ok: true });
    // OpenID discovery first (we have none), then RFC 8414, then the jwks_uri it names.
    expect(seen).toEqual([
      'POST /token 200',
      'GET /.well-known/openid-configuration 404',
      'GET /.well-known/oauth-authorization-server 200',
      'GET /.well-known/jwks.json 200',
    ]);
  });

  test('requiredScopes() reads our space-delimited scope claim', async () => {
    const token = await tokenFor(as!, client, 'read write');
    const granted = await request(api!.url).get('/reports').set('Authorization', `Bearer ${token}`);
    expect(granted.status).toBe(200);
    expect(granted.body).toEqual({ reports: [] });

    const refused = await request(api!.url).get('/admin').set('Authorization', `Bearer ${token}`);
    expect(refused.status).toBe(403);
    expect(refused.headers['www-authenticate']).toMatch(/error="insufficient_scope"/);
  });

  test('a tampered token (or none) gets 401', async () => {
    const token = await tokenFor(as!, client, 'read');
    const forged = await request(api!.url).get('/anything').set('Authorization', `Bearer ${tampered(token, { scope: 'read admin' })}`);
    expect(forged.status).toBe(401);
    expect(forged.headers['www-authenticate']).toMatch(/error="invalid_token"/);

    const missing = await request(api!.url).get('/anything');
    expect(missing.status).toBe(401);
  });
});

/** The example server on a loopback port, configured by the environment as `npm start` is; `stop()` restores it. */
async function startExample(clientsFile: string | undefined): Promise<{ example: Listening; demo: { id: string; secret: string } | undefined; stop: () => Promise<void> }> {
  const saved = { OAUTH_ISSUER: process.env.OAUTH_ISSUER, OAUTH_CLIENTS_FILE: process.env.OAUTH_CLIENTS_FILE };
  const example = await listenOnLoopback();
  process.env.OAUTH_ISSUER = example.url;
  if (clientsFile === undefined) delete process.env.OAUTH_CLIENTS_FILE;
  else process.env.OAUTH_CLIENTS_FILE = clientsFile;
  const emitWarning = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined); // the ephemeral-key warning
  try {
    const { app, demoClient } = await createExampleServer();
    example.server.on('request', app);
    return {
      example,
      demo: demoClient,
      stop: async () => {
        for (const [name, value] of Object.entries(saved)) value === undefined ? delete process.env[name] : (process.env[name] = value);
        await close(example);
      },
    };
  } finally {
    emitWarning.mockRestore();
  }
}

describe('interoperability: openid-client v6 introspects and revokes at the example server (RFC 7662, RFC 7009)', () => {
  let example: Listening | undefined;
  let demo: { id: string; secret: string } | undefined;
  let stop = async (): Promise<void> => undefined;

  beforeAll(async () => {
    ({ example, demo, stop } = await startExample(undefined));
  });

  afterAll(() => stop());

  it('sees the token active, revokes it, then sees it inactive; the API refuses it', async () => {
    if (example === undefined || demo === undefined) throw new Error('the example server did not start');
    const result = succeeded(
      await runFixture<{ metadata: Record<string, string>; token: string; before: Record<string, unknown>; after: Record<string, unknown> }>(
        'openid-client-lifecycle.mjs',
        [example.url, demo.id],
        { INTEROP_CLIENT_SECRET: demo.secret },
      ),
    );
    expect(result.metadata).toEqual({ revocation_endpoint: `${example.url}/revoke`, introspection_endpoint: `${example.url}/introspect` });
    expect(result.before).toMatchObject({ active: true, client_id: 'demo', scope: 'read', token_type: 'Bearer', iss: example.url });
    expect(result.after).toEqual({ active: false });
    const api = await request(example.url).get('/api/data').set('Authorization', `Bearer ${result.token}`);
    expect(api.status).toBe(401);
  });
});

describe('interoperability: openid-client v6 authenticates with PrivateKeyJwt at the example server (RFC 7523)', () => {
  let example: Listening | undefined;
  let stop = async (): Promise<void> => undefined;
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const privateJwk = { ...privateKey.export({ format: 'jwk' }), kid: 'svc-key-1', alg: 'ES256' };
  const { d: _private, ...publicJwk } = privateJwk;

  beforeAll(async () => {
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'ecc-pkjwt-')), 'clients.json');
    // The example server's clients file takes private_key_jwt records as they are.
    writeFileSync(file, JSON.stringify([{ client_id: 'svc-keys', token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [{ ...publicJwk, use: 'sig' }] }, scope: 'read' }]));
    ({ example, stop } = await startExample(file));
  });

  afterAll(() => stop());

  it('gets a token the API accepts', async () => {
    if (example === undefined) throw new Error('the example server did not start');
    const result = succeeded(
      await runFixture<{ tokens: { access_token: string; token_type: string; scope?: string } }>('openid-client-private-key-jwt.mjs', [example.url, 'svc-keys', 'read'], {
        INTEROP_PRIVATE_JWK: JSON.stringify(privateJwk),
      }),
    );
    expect(result.tokens).toMatchObject({ token_type: 'bearer', scope: 'read' });
    await request(example.url).get('/api/data').set('Authorization', `Bearer ${result.tokens.access_token}`).expect(200, { client_id: 'svc-keys', scope: 'read' });
  });
});
