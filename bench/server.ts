// One server variant in its own process: `node --import tsx bench/server.ts <kind> '<json config>'`,
// started by run.ts (pinned to a core of its own where the machine allows). It listens on an
// ephemeral port of 127.0.0.1 and reports it over IPC; each library is imported only by the child
// that runs it.

import http from 'node:http';
import { createPrivateKey, createPublicKey, createSecretKey, type KeyObject } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import express, { type ErrorRequestHandler, type Express, type RequestHandler } from 'express';
import {
  ALGS, AUDIENCE, GUARDED_PATH, HOST, ISSUER, KIDS, SCOPE, TOKEN_PATH, loadFixtures,
  type Alg, type Fixtures, type ServerMessage, type ServerRequest,
} from './common.js';
import { guardWithTokenCache, issuerWithSecretCache, type CacheSetting } from './options.js';
import type { AuthenticateOptions, IssuerOptions, Jwk, SigningKeyInput } from '../lib/index.js';

export interface ServerConfig {
  alg?: Alg;
  cache?: CacheSetting;
}

type Started = { handler: http.RequestListener; notes: string[] };
type Builder = (config: ServerConfig, fixtures: Fixtures) => Promise<Started>;

const answer: RequestHandler = (_req, res) => {
  res.json({ ok: true });
};
/** Peers pass their 401s to next(err); answer them as JSON, as ours does, instead of Express's HTML page with a logged stack. */
const jsonErrors: ErrorRequestHandler = (error: { status?: number; statusCode?: number; code?: string }, _req, res, _next) => {
  res.status(error.status ?? error.statusCode ?? 500).json({ error: error.code ?? 'error' });
};

function app(): Express {
  const created = express();
  created.disable('x-powered-by');
  return created;
}

function algOf(config: ServerConfig): Alg {
  const alg = config.alg;
  if (alg === undefined || !ALGS.includes(alg)) throw new Error(`this variant needs an alg of ${ALGS.join(', ')}`);
  return alg;
}

function signingKeyOf(alg: Alg, fixtures: Fixtures): SigningKeyInput {
  return alg === 'HS256' ? { secret: fixtures.hsSecret, kid: KIDS.HS256 } : { privateKey: fixtures.keys[alg].privateKey, alg, kid: KIDS[alg] };
}

function publicJwk(alg: 'ES256' | 'RS256', fixtures: Fixtures): Jwk {
  return { ...createPublicKey(fixtures.keys[alg].publicKey).export({ format: 'jwk' }), kid: KIDS[alg], alg, use: 'sig' };
}

/** A JWKS document on a loopback port of its own in the same process, for the peers that fetch keys. */
async function jwksServer(alg: 'ES256' | 'RS256', fixtures: Fixtures): Promise<string> {
  const body = JSON.stringify({ keys: [publicJwk(alg, fixtures)] });
  const server = http.createServer((_req, res) => {
    res.writeHead(200, { 'Content-Type': 'application/json' }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  return `http://${HOST}:${(server.address() as AddressInfo).port}/jwks.json`;
}

const builders: Record<string, Builder> = {
  /** The floor of the guard group: the same route and answer, no guard. */
  async 'guard-floor'() {
    const created = app();
    created.get(GUARDED_PATH, answer);
    return { handler: created, notes: [] };
  },

  async 'guard-ours'(config, fixtures) {
    const alg = algOf(config);
    const options: AuthenticateOptions =
      alg === 'HS256' ? { secret: fixtures.hsSecret, issuer: ISSUER, audience: AUDIENCE }
      : { publicKey: { publicKey: fixtures.keys[alg].publicKey, alg, kid: KIDS[alg] }, issuer: ISSUER, audience: AUDIENCE };
    const guard = guardWithTokenCache(options, config.cache ?? 'on');
    const created = app();
    created.get(GUARDED_PATH, guard.value, answer);
    return { handler: created, notes: [guard.note] };
  },

  /** express-oauth2-jwt-bearer: `secret` + `tokenSigningAlg` for HS256, else a JWKS on loopback (`jwksUri`). */
  async 'guard-eojb'(config, fixtures) {
    const alg = algOf(config);
    const { auth } = await import('express-oauth2-jwt-bearer');
    const guard =
      alg === 'HS256' ? auth({ issuer: ISSUER, audience: AUDIENCE, secret: fixtures.hsSecret, tokenSigningAlg: 'HS256' })
      : auth({ issuer: ISSUER, audience: AUDIENCE, jwksUri: await jwksServer(alg, fixtures), tokenSigningAlg: alg });
    const created = app();
    created.get(GUARDED_PATH, guard, answer);
    created.use(jsonErrors);
    return { handler: created, notes: [alg === 'HS256' ? 'secret + tokenSigningAlg' : 'jwksUri on loopback'] };
  },

  /** express-jwt: the string secret as users write it for HS256, jwks-rsa's expressJwtSecret on a loopback JWKS otherwise. */
  async 'guard-express-jwt'(config, fixtures) {
    const alg = algOf(config);
    const { expressjwt } = await import('express-jwt');
    let secret: Parameters<typeof expressjwt>[0]['secret'];
    if (alg === 'HS256') {
      secret = fixtures.hsSecret;
    } else {
      const jwksRsa = await import('jwks-rsa');
      secret = jwksRsa.expressJwtSecret({ jwksUri: await jwksServer(alg, fixtures), cache: true, rateLimit: true }) as typeof secret;
    }
    const created = app();
    created.get(GUARDED_PATH, expressjwt({ secret, algorithms: [alg], issuer: ISSUER, audience: AUDIENCE }), answer);
    created.use(jsonErrors);
    return { handler: created, notes: [alg === 'HS256' ? 'string secret' : 'jwks-rsa expressJwtSecret (cache, rateLimit)'] };
  },

  /** The floor of the token group: parses the form and answers a constant JSON. */
  async 'token-floor'() {
    const created = app();
    const constant = { access_token: 'x'.repeat(400), token_type: 'Bearer', expires_in: 600, scope: SCOPE };
    created.post(TOKEN_PATH, express.urlencoded({ extended: false, limit: 8192 }), (req, res) => {
      if ((req.body as Record<string, unknown>).grant_type !== 'client_credentials') return void res.status(400).json({ error: 'unsupported_grant_type' });
      res.set('Cache-Control', 'no-store').json(constant);
    });
    return { handler: created, notes: [] };
  },

  /** Ours: bcrypt cost 10 hashes, helmet and both limiters on (the per-address cap raised). */
  async 'token-ours'(config, fixtures) {
    const alg = algOf(config);
    const options: IssuerOptions = {
      issuer: ISSUER,
      audience: AUDIENCE,
      clients: fixtures.repeatClients.map((client) => ({ client_id: client.id, client_secret_hash: client.hash, scope: SCOPE })),
      signingKey: signingKeyOf(alg, fixtures),
      // One address sends everything here: the cap is raised, the limiter stays in the path.
      rateLimit: { perAddress: { limit: 1_000_000_000 } },
    };
    const tokens = issuerWithSecretCache(options, config.cache ?? 'on');
    const created = app();
    created.use(TOKEN_PATH, tokens.value);
    return { handler: created, notes: [tokens.note, 'helmet on, failedAuthentication on, perAddress limit 1e9', await bcryptNote()] };
  },

  /**
   * Not a product: the least a token endpoint can do with the libraries ours must use (helmet's
   * headers replayed, a per-address count and a failure-lock lookup in express-rate-limit stores,
   * an HMAC of a secret bcrypt accepted at start-up, a jsonwebtoken signature), without client
   * stores, scopes, audit, hooks or error handling. What it reaches bounds what ours can.
   */
  async 'token-reference'(config, fixtures) {
    const alg = algOf(config);
    if (alg !== 'HS256') throw new Error('the reference endpoint signs HS256');
    const [{ default: bcrypt }, { default: jwt }, { MemoryStore, ipKeyGenerator }, { securityHeaders }, { createHmac, randomBytes, randomUUID, timingSafeEqual }] = await Promise.all([
      import('bcryptjs'), import('jsonwebtoken'), import('express-rate-limit'), import('../lib/express/security-headers.js'), import('node:crypto'),
    ]);
    const digestKey = randomBytes(32);
    const digest = (secret: string) => createHmac('sha256', digestKey).update(secret).digest();
    const verified = new Map<string, Buffer>();
    for (const client of fixtures.repeatClients) if (await bcrypt.compare(client.secret, client.hash)) verified.set(client.id, digest(client.secret));
    const perAddress = new MemoryStore();
    const failures = new MemoryStore();
    perAddress.init({ windowMs: 60_000 } as never);
    failures.init({ windowMs: 15 * 60_000 } as never);
    const key = createSecretKey(Buffer.from(fixtures.hsSecret));
    const helmetHeaders = securityHeaders({});
    const refuse = (res: express.Response, status: number, error: string) => void res.status(status).set('Cache-Control', 'no-store').json({ error });
    const created = app();
    created.post(TOKEN_PATH, helmetHeaders, async (req, res, next) => {
      const address = ipKeyGenerator(req.ip ?? '');
      const { totalHits } = await perAddress.increment(`token|${address}`);
      if (totalHits > 1_000_000_000) return refuse(res, 429, 'temporarily_unavailable');
      res.set('RateLimit', `"per-address"; r=${1_000_000_000 - totalHits}; t=60`);
      next();
    }, express.urlencoded({ extended: false, limit: 8192 }), async (req, res) => {
      if ((req.body as Record<string, unknown>).grant_type !== 'client_credentials') return refuse(res, 400, 'unsupported_grant_type');
      const [id = '', secret = ''] = Buffer.from((req.get('authorization') ?? '').slice(6), 'base64').toString().split(':').map(decodeURIComponent);
      if (((await failures.get(`${ipKeyGenerator(req.ip ?? '')}|${id}`))?.totalHits ?? 0) >= 10) return refuse(res, 429, 'temporarily_unavailable');
      const expected = verified.get(id);
      if (expected === undefined || !timingSafeEqual(digest(secret), expected)) return refuse(res, 401, 'invalid_client');
      const iat = Math.floor(Date.now() / 1000);
      const claims = { iss: ISSUER, sub: id, client_id: id, aud: AUDIENCE, iat, exp: iat + 600, jti: randomUUID(), scope: SCOPE };
      const token = jwt.sign(JSON.stringify(claims), key, { algorithm: 'HS256', keyid: KIDS.HS256, header: { alg: 'HS256', typ: 'at+jwt' } });
      res.set({ 'Cache-Control': 'no-store', Pragma: 'no-cache' }).json({ access_token: token, token_type: 'Bearer', expires_in: 600, scope: SCOPE });
    });
    return { handler: created, notes: ['not a product: the least a token endpoint does with helmet, express-rate-limit stores, an HMAC of a bcrypt-accepted secret and jsonwebtoken'] };
  },

  /** oidc-provider (ESM only), standalone, client credentials with JWT access tokens through resource indicators. */
  async 'token-oidc-provider'(config, fixtures) {
    const alg = algOf(config);
    if (alg === 'RS256') throw new Error('oidc-provider variants are HS256 and ES256');
    const { default: Provider } = await import('oidc-provider');
    const privateJwk = (which: 'ES256' | 'RS256') => ({ ...createPrivateKey(fixtures.keys[which].privateKey).export({ format: 'jwk' }), kid: KIDS[which], alg: which, use: 'sig' });
    const provider = new Provider(ISSUER, {
      clients: fixtures.repeatClients.map((client) => ({
        client_id: client.id,
        client_secret: client.secret, // plaintext, as oidc-provider stores client secrets
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        token_endpoint_auth_method: 'client_secret_basic',
        scope: SCOPE,
      })),
      // RS256 for its ID token default, ES256 for the access tokens of the ES256 variant.
      jwks: { keys: [privateJwk('RS256'), privateJwk('ES256')] as never },
      scopes: [SCOPE],
      features: {
        devInteractions: { enabled: false },
        clientCredentials: { enabled: true },
        resourceIndicators: {
          enabled: true,
          defaultResource: () => AUDIENCE,
          useGrantedResource: () => true,
          getResourceServerInfo: () => ({
            scope: SCOPE,
            audience: AUDIENCE,
            accessTokenTTL: 600,
            accessTokenFormat: 'jwt',
            jwt: { sign: alg === 'HS256' ? { alg: 'HS256', key: createSecretKey(Buffer.from(fixtures.hsSecret)) } : { alg: 'ES256' } },
          }),
        },
      },
    });
    const callback = provider.callback() as http.RequestListener;
    return { handler: callback, notes: ['standalone (its Koa app), plaintext secrets, accessTokenFormat jwt via resourceIndicators'] };
  },

  /** @node-oauth/oauth2-server on Express with a minimal in-memory model issuing JWTs (jsonwebtoken, a prebuilt KeyObject). */
  async 'token-oauth2-server'(config, fixtures) {
    const alg = algOf(config);
    if (alg === 'RS256') throw new Error('oauth2-server variants are HS256 and ES256');
    const { default: OAuth2Server, Request, Response } = await import('@node-oauth/oauth2-server');
    const { default: jwt } = await import('jsonwebtoken');
    const { randomUUID } = await import('node:crypto');
    const key: KeyObject = alg === 'HS256' ? createSecretKey(Buffer.from(fixtures.hsSecret)) : createPrivateKey(fixtures.keys.ES256.privateKey);
    const clients = new Map(fixtures.repeatClients.map((client) => [client.id, client]));
    const server = new OAuth2Server({
      accessTokenLifetime: 600,
      model: {
        async getClient(clientId: string, clientSecret: string) {
          const client = clients.get(clientId);
          // Plaintext secrets, as in its examples.
          if (client === undefined || client.secret !== clientSecret) return false;
          return { id: client.id, grants: ['client_credentials'], accessTokenLifetime: 600 };
        },
        async getUserFromClient(client: { id: string }) {
          return { id: client.id };
        },
        async validateScope(_user: unknown, _client: unknown, scope?: string[]) {
          return scope !== undefined && scope.every((s) => s === SCOPE) ? scope : false;
        },
        async generateAccessToken(client: { id: string }, _user: unknown, scope: string[]) {
          return jwt.sign({ client_id: client.id, scope: scope.join(' '), jti: randomUUID() }, key, {
            algorithm: alg,
            keyid: KIDS[alg],
            expiresIn: 600,
            issuer: ISSUER,
            audience: AUDIENCE,
            subject: client.id,
            header: { alg, typ: 'at+jwt' },
          });
        },
        async saveToken(token: Record<string, unknown>, client: unknown, user: unknown) {
          return { ...token, client, user };
        },
        async getAccessToken() {
          return false;
        },
      } as never,
    });
    const created = app();
    created.post(TOKEN_PATH, express.urlencoded({ extended: false, limit: 8192 }), async (req, res) => {
      const request = new Request(req);
      const response = new Response(res);
      try {
        await server.token(request, response);
      } catch {
        // The error is in response.status and response.body.
      }
      res.set(response.headers as Record<string, string>).status(response.status ?? 500).json(response.body);
    });
    return { handler: created, notes: ['Express, plaintext secrets, jsonwebtoken.sign with a prebuilt KeyObject'] };
  },

  /** The memory test: guard and issuer in one app, 1,000 clients, tokens from run.ts. */
  async memory(_config, fixtures) {
    const tokens = issuerWithSecretCache(
      {
        issuer: ISSUER,
        audience: AUDIENCE,
        clients: fixtures.memoryClients.map((client) => ({ client_id: client.id, client_secret_hash: client.hash, scope: SCOPE })),
        secretHashCost: fixtures.memoryHashCost,
        signingKey: signingKeyOf('ES256', fixtures),
        rateLimit: { perAddress: { limit: 1_000_000_000 } },
      },
      'on',
    );
    const guard = guardWithTokenCache({ issuer: tokens.value }, 'on');
    const created = app();
    created.use((_req, _res, next) => {
      requests += 1;
      next();
    });
    created.use(TOKEN_PATH, tokens.value);
    created.get(GUARDED_PATH, guard.value, answer);
    return { handler: created, notes: [tokens.note, guard.note, `client hashes of bcrypt cost ${fixtures.memoryHashCost}`, await bcryptNote()] };
  },

  /** The burst test: first-time clients (bcrypt cost 10) at the token endpoint, a guarded route next to it. */
  async burst(_config, fixtures) {
    const tokens = issuerWithSecretCache(
      {
        issuer: ISSUER,
        audience: AUDIENCE,
        clients: fixtures.burstClients.map((client) => ({ client_id: client.id, client_secret_hash: client.hash, scope: SCOPE })),
        signingKey: signingKeyOf('ES256', fixtures),
        rateLimit: { perAddress: { limit: 1_000_000_000 } },
      },
      'on',
    );
    const guard = guardWithTokenCache({ issuer: tokens.value }, 'on');
    const created = app();
    created.use(TOKEN_PATH, tokens.value);
    created.get(GUARDED_PATH, guard.value, answer);
    return { handler: created, notes: [tokens.note, guard.note, await bcryptNote()] };
  },
};

let requests = 0;

/** Which bcrypt compares secrets in this process: the native package when it loads, else bcryptjs. */
async function bcryptNote(): Promise<string> {
  try {
    const { bcryptImplementation } = await import('../lib/core/bcrypt.js');
    return `secrets compared with ${bcryptImplementation()}`;
  } catch {
    return 'bcrypt implementation unknown';
  }
}

function send(message: ServerMessage): void {
  process.send?.(message);
}

async function main(): Promise<void> {
  const [kind = '', configText = '{}'] = process.argv.slice(2);
  const build = builders[kind];
  if (build === undefined) throw new Error(`unknown server kind ${JSON.stringify(kind)}; known: ${Object.keys(builders).join(', ')}`);
  const started = await build(JSON.parse(configText) as ServerConfig, loadFixtures());
  const server = http.createServer(started.handler);
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, HOST, resolve);
  });
  process.on('message', (message: ServerRequest) => {
    if (message.type !== 'memory') return;
    const gc = (globalThis as { gc?: () => void }).gc;
    if (message.gc && gc !== undefined) {
      gc();
      gc();
    }
    const usage = process.memoryUsage();
    send({ type: 'memory', rss: usage.rss, heapUsed: usage.heapUsed, heapTotal: usage.heapTotal, external: usage.external, requests });
  });
  // An orderly exit, so that --cpu-prof (BENCH_SERVER_NODE_ARGS) gets to write its profile.
  process.on('SIGTERM', () => process.exit(0));
  process.on('disconnect', () => process.exit(0));
  send({ type: 'ready', port: (server.address() as AddressInfo).port, notes: started.notes });
}

main().catch((error: unknown) => {
  send({ type: 'error', message: error instanceof Error ? (error.stack ?? error.message) : String(error) });
  setTimeout(() => process.exit(1), 100);
});
