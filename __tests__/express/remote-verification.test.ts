// Two real servers on loopback: an authorization server, and a resource server in "another
// process" that trusts it only through its published keys (RFC 7517, RFC 8414, RFC 9068 §4).

import express from 'express';
import request from 'supertest';
import { authenticate, issuer, requireScope, type AuthenticateOptions, type Issuer, type SigningKeyInput } from 'express-client-credentials';
import { resolveSigningKey } from '../../lib/core/signing-keys.js';
import { signJws } from '../../lib/core/jws.js';
import { aClient, decodeHeader, decodePayload, keyPairs, type TestClient } from '../support/fixtures.js';
import { close, listenOnLoopback, serve, type Listening } from '../support/servers.js';

const CC = { grant_type: 'client_credentials', scope: 'read' };
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let client: TestClient;
beforeAll(async () => {
  client = await aClient({ scope: 'read' });
});

interface AuthorizationServer extends Listening {
  readonly tokens: Issuer;
  /** JWKS and metadata requests seen, in order. */
  readonly fetches: string[];
}

async function authorizationServer(signingKey: SigningKeyInput): Promise<AuthorizationServer> {
  const fetches: string[] = [];
  let tokens: Issuer | undefined;
  const listening = await serve((url) => {
    tokens = issuer({ issuer: url, signingKey, secretHashCost: 4, clients: [client.record], rateLimit: false });
    const app = express();
    app.use((req, _res, next) => {
      if (req.method === 'GET') fetches.push(req.path);
      next();
    });
    app.use(tokens);
    return app;
  });
  return { ...listening, tokens: tokens as Issuer, fetches };
}

async function resourceServer(options: AuthenticateOptions): Promise<Listening> {
  return serve(() => {
    const app = express();
    app.get('/reports', authenticate(options), requireScope('read'), (req, res) => { res.json({ client_id: req.auth?.clientId }); });
    return app;
  });
}

const tokenFrom = async (as: Listening) =>
  (await request(as.url).post('/token').auth(client.id, client.secret).type('form').send(CC).expect(200)).body.access_token as string;
const callApi = (rs: Listening, token: string) => request(rs.url).get('/reports').set('Authorization', `Bearer ${token}`);

describe('a separate resource server verifying through the JWKS: RFC 7517 and RFC 8414', () => {
  const open: Listening[] = [];
  afterEach(async () => {
    await Promise.all(open.splice(0).map(close));
  });
  const track = <T extends Listening>(listening: T): T => (open.push(listening), listening);

  it('discovers the JWKS from the issuer metadata, and fetches it once for many requests', async () => {
    const as = track(await authorizationServer({ privateKey: keyPairs.ec() }));
    const rs = track(await resourceServer({ issuer: as.url, discover: true }));
    const token = await tokenFrom(as);
    for (let i = 0; i < 5; i++) await callApi(rs, token).expect(200, { client_id: client.id });
    expect(as.fetches).toEqual(['/.well-known/oauth-authorization-server', '/.well-known/jwks.json']);
  });

  it('verifies with a configured jwksUri, and refuses tokens of another audience', async () => {
    const as = track(await authorizationServer({ privateKey: keyPairs.rsa() }));
    const rs = track(await resourceServer({ issuer: as.url, jwksUri: `${as.url}/.well-known/jwks.json`, audience: 'https://elsewhere.example' }));
    const res = await callApi(rs, await tokenFrom(as));
    expect(res.status).toBe(401);
    expect(res.body.error_description).toBe('The token audience is not this resource');
  });

  it('refetches for an unknown kid at most once per cooldown: forged kids cause no refetch storm', async () => {
    const as = track(await authorizationServer({ privateKey: keyPairs.ec() }));
    const rs = track(await resourceServer({ issuer: as.url, jwksUri: `${as.url}/.well-known/jwks.json`, jwksCache: { cooldown: 200 } }));
    const token = await tokenFrom(as);
    await callApi(rs, token).expect(200);
    await sleep(250); // past the cooldown of the first fetch: one unknown kid may refetch, once
    const attacker = keyPairs.ec();
    const forged = Array.from({ length: 30 }, (_, i) =>
      signJws(decodePayload(token), resolveSigningKey({ privateKey: attacker, kid: `forged-${i}` }), 'at+jwt'),
    );
    const statuses = await Promise.all(forged.map(async (bad) => (await callApi(rs, bad)).status));
    expect(statuses).toEqual(Array(30).fill(401));
    expect(as.fetches.filter((path) => path === '/.well-known/jwks.json')).toHaveLength(2);
    await callApi(rs, token).expect(200);
  });

  it('keeps serving from its cache while the authorization server is down, past maxAge', async () => {
    const as = await authorizationServer({ privateKey: keyPairs.ed25519() });
    const rs = track(await resourceServer({ issuer: as.url, jwksUri: `${as.url}/.well-known/jwks.json`, jwksCache: { maxAge: 50, cooldown: 10 } }));
    const token = await tokenFrom(as);
    await callApi(rs, token).expect(200);
    await close(as);
    await sleep(100);
    await callApi(rs, token).expect(200);
    await callApi(rs, token).expect(200);
  });

  it('answers 503 within the timeout, never hanging, when it has no keys and the server does not answer', async () => {
    const silent = track(await listenOnLoopback()); // accepts connections, never answers
    const reports: string[] = [];
    const rs = track(await resourceServer({ issuer: silent.url, jwksUri: `${silent.url}/jwks`, jwksCache: { timeout: 300 }, onInternalError: (line) => reports.push(line) }));
    const token = signJws({ iss: silent.url, sub: 'x', client_id: 'x', aud: `${silent.url}/api`, iat: 1, exp: 4e9, jti: 'j' }, resolveSigningKey({ privateKey: keyPairs.ec() }), 'at+jwt');
    const started = Date.now();
    const res = await callApi(rs, token);
    expect(Date.now() - started).toBeLessThan(3000);
    expect([res.status, res.body.error, res.headers['retry-after']]).toEqual([503, 'temporarily_unavailable', '5']);
    expect(reports).toEqual([expect.stringMatching(/^express-client-credentials: The signing keys are unavailable; try again later/)]);
  });

  it('needs the expected issuer with jwksUri or discover', () => {
    expect(() => authenticate({ jwksUri: 'http://127.0.0.1:1/jwks' } as AuthenticateOptions)).toThrow(/`issuer` \(the expected iss\) is required/);
    expect(() => authenticate({ issuer: 'http://127.0.0.1:1', discover: true, secret: 'x'.repeat(32) } as AuthenticateOptions)).toThrow(/pass one of/);
  });
});

describe('key rotation while traffic flows: no failed request', () => {
  it('adds, switches and retires a key while clients keep calling the API', async () => {
    const current = { privateKey: keyPairs.ec(), kid: 'k1' };
    const next = { privateKey: keyPairs.ed25519(), kid: 'k2' };
    const as = await authorizationServer(current);
    // The resource server refreshes its cache every 150 ms; the steps below wait longer than that.
    const rs = await resourceServer({ issuer: as.url, discover: true, jwksCache: { maxAge: 150, cooldown: 50 } });
    const failures: string[] = [];
    const kidsSeen = new Set<unknown>();
    let running = true;
    const traffic = async () => {
      while (running) {
        const token = await tokenFrom(as);
        kidsSeen.add(decodeHeader(token).kid);
        const res = await callApi(rs, token);
        if (res.status !== 200) failures.push(`${res.status} ${JSON.stringify(res.body)}`);
      }
    };
    try {
      const clients = [traffic(), traffic(), traffic()];
      await sleep(300);
      as.tokens.rotateKeys({ signingKey: current, additionalKeys: [next] }); // 1. publish the next key
      await sleep(400);
      as.tokens.rotateKeys({ signingKey: next, additionalKeys: [current] }); // 2. switch
      await sleep(400);
      as.tokens.rotateKeys({ signingKey: next }); // 3. retire, once k1's tokens are no longer in use
      await sleep(400);
      running = false;
      await Promise.all(clients);
      expect(failures).toEqual([]);
      expect([...kidsSeen].sort()).toEqual(['k1', 'k2']);
    } finally {
      running = false;
      await close(rs);
      await close(as);
    }
  });
});
