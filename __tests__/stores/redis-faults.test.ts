// Redis unreachable, from the start or mid-run (a closed port, or a proxy we cut; the machine's Redis
// is never touched): the issuer and the guard fail closed with a 503 and never hang (RFC 6749 §5.2
// temporarily_unavailable), and recover once Redis is back.

import { createPublicKey, generateKeyPairSync, randomUUID } from 'node:crypto';
import express from 'express';
import { createClient } from 'redis';
import request from 'supertest';
import { issuer, requireScope, type ClientRecord, type IssuerOptions } from 'express-client-credentials';
import { mintToken } from 'express-client-credentials/testing';
import { RedisReplayCache, RedisRevocationStore, redisRateLimitStores, type RedisCommandSender } from 'express-client-credentials/redis';
import { signJws } from '../../lib/core/jws.js';
import { resolveSigningKey } from '../../lib/core/signing-keys.js';
import { aClient, AUDIENCE, ISSUER, SECRET, type TestClient } from '../support/fixtures.js';
import { captureWarnings, closedPort, connectRedis, deleteKeys, describeWithRedis, redisProxy, uniquePrefix, unreachableRedis, type TestRedis } from '../support/services.js';

const CC = { grant_type: 'client_credentials' };
const STORE_TIMEOUT = 800;
const prefix = uniquePrefix();
let client: TestClient;
let cleanup: TestRedis;

type Stores = 'everything' | 'revocations only' | 'per-address limit only';

/** An app whose chosen state lives in Redis behind `redis`; the rest stays in memory. */
function app(redis: RedisCommandSender, stores: Stores, reports: string[] = []) {
  const limits = redisRateLimitStores(redis, { prefix });
  const options: IssuerOptions = {
    issuer: ISSUER,
    signingKey: { secret: SECRET },
    secretHashCost: 4,
    clients: [client.record],
    storeTimeout: STORE_TIMEOUT,
    onInternalError: (line) => reports.push(line),
    ...(stores === 'per-address limit only' ? {} : { revocations: new RedisRevocationStore(redis, { prefix }) }),
    ...(stores === 'everything' ? { replayCache: new RedisReplayCache(redis, { prefix }) } : {}),
    rateLimit: {
      ...(stores === 'revocations only' ? {} : { perAddress: { store: limits.perAddress, passOnStoreError: true } }),
      ...(stores === 'everything' ? { failedAuthentication: { store: limits.failedAuthentication } } : {}),
    },
  };
  const tokens = issuer(options);
  const server = express();
  server.use(tokens);
  server.get('/api/data', requireScope('read'), (req, res) => res.json({ client_id: req.auth?.clientId }));
  return server;
}

const aToken = (): string => mintToken({ clientId: client.id, scope: 'read' }, { secret: SECRET, issuer: ISSUER, audience: AUDIENCE });

/** Sends, and checks the answer came within `ms`. */
async function quickly(send: () => PromiseLike<request.Response>, ms = STORE_TIMEOUT + 700): Promise<request.Response> {
  const started = Date.now();
  const res = await send();
  expect(Date.now() - started).toBeLessThan(ms);
  return res;
}

function expectUnavailable(res: request.Response, description: RegExp): void {
  expect(res.status).toBe(503);
  expect(res.body).toEqual({ error: 'temporarily_unavailable', error_description: expect.stringMatching(description) });
  expect(res.headers['retry-after']).toBe('5');
  expect(res.headers['cache-control']).toBe('no-store');
}

describeWithRedis('Redis unreachable: the configured failure mode, with no hang', () => {
  // The machine's Redis runs without AOF: its durability warning is asserted in redis-stall.test.ts, kept out of the output here.
  let durability: ReturnType<typeof captureWarnings>;
  beforeAll(() => void (durability = captureWarnings('ECC_REDIS_NOT_DURABLE')));
  afterAll(() => durability.restore());
  beforeAll(async () => {
    client = await aClient({ scope: 'read' });
    cleanup = await connectRedis();
  });
  afterAll(async () => {
    await deleteKeys(cleanup, prefix);
    cleanup.destroy();
  });

  describe('down from the start (a closed port)', () => {
    let down: ReturnType<typeof unreachableRedis>;
    beforeAll(async () => {
      down = unreachableRedis(await closedPort());
    });
    afterAll(() => down.destroy());

    it('guard: refuses to accept a token it cannot check for revocation (503, not 200)', async () => {
      const res = await quickly(() => request(app(down, 'revocations only')).get('/api/data').set('Authorization', `Bearer ${aToken()}`));
      expectUnavailable(res, /revocation list is unavailable/);
    });

    it('revocation and introspection endpoints: 503, and one line for onInternalError for both (one per kind and 10 s)', async () => {
      const reports: string[] = [];
      const server = app(down, 'revocations only', reports);
      for (const path of ['/revoke', '/introspect']) {
        const res = await quickly(() => request(server).post(path).auth(client.id, client.secret).type('form').send({ token: aToken() }));
        expectUnavailable(res, /revocation list is unavailable/);
      }
      expect(reports).toHaveLength(1);
      expect(reports[0]).toMatch(/^express-client-credentials: The revocation list is unavailable; try again later \(Error: Redis (EXISTS|EVAL) failed: .+\)$/);
    });

    it('token endpoint: issues tokens, which need no revocation list', async () => {
      await request(app(down, 'revocations only')).post('/token').auth(client.id, client.secret).type('form').send(CC).expect(200);
    });

    it('token endpoint with the failure lock in Redis: 503 before any secret is checked (brute-force protection fails closed)', async () => {
      const res = await quickly(() => request(app(down, 'everything')).post('/token').auth(client.id, client.secret).type('form').send(CC));
      expectUnavailable(res, /rate limit store is unavailable/);
    });

    it('token endpoint with the replay cache in Redis: 503 for a private_key_jwt client, never a second use unchecked', async () => {
      const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const record: ClientRecord = {
        client_id: 'signer',
        token_endpoint_auth_method: 'private_key_jwt',
        jwks: { keys: [{ ...createPublicKey(privateKey).export({ format: 'jwk' }), kid: 'k1', alg: 'ES256' }] },
        scope: 'read',
      };
      const tokens = issuer({ issuer: ISSUER, signingKey: { secret: SECRET }, clients: [record], rateLimit: false, replayCache: new RedisReplayCache(down, { prefix }), storeTimeout: STORE_TIMEOUT, onInternalError: () => undefined });
      const now = Math.floor(Date.now() / 1000);
      const assertion = signJws({ iss: 'signer', sub: 'signer', aud: ISSUER, iat: now, exp: now + 60, jti: randomUUID() }, resolveSigningKey({ privateKey, alg: 'ES256', kid: 'k1' }), 'JWT');
      const res = await quickly(() =>
        request(express().use('/token', tokens)).post('/token').type('form').send({ ...CC, client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: assertion }),
      );
      expectUnavailable(res, /replay cache is unavailable/);
    });

    it('per-address limit with passOnStoreError: true lets requests through, and says so (a volume cap fails open)', async () => {
      const reports: string[] = [];
      const res = await quickly(() => request(app(down, 'per-address limit only', reports)).post('/token').auth(client.id, client.secret).type('form').send(CC));
      expect(res.status).toBe(200);
      expect(reports).toEqual(['the per-address rate-limit store failed, requests pass unlimited: The client is offline']);
    });
  });

  describe('stopped mid-run, then back (a proxy in front of Redis, cut and restored)', () => {
    it('works, answers 503 while Redis is gone, and works again once it is back', async () => {
      const proxy = await redisProxy();
      const redis = await connectRedis(proxy.url);
      try {
        const server = app(redis, 'everything');
        const token = async (): Promise<request.Response> => request(server).post('/token').auth(client.id, client.secret).type('form').send(CC);
        const first = (await token()).body.access_token as string;
        await request(server).get('/api/data').set('Authorization', `Bearer ${first}`).expect(200);

        await proxy.cut();
        expectUnavailable(await quickly(token), /rate limit store is unavailable/);
        expectUnavailable(await quickly(() => request(server).get('/api/data').set('Authorization', `Bearer ${first}`)), /revocation list is unavailable/);

        await proxy.restore();
        await waitFor(() => redis.isReady);
        const second = (await token().then((res) => (expect(res.status).toBe(200), res))).body.access_token as string;
        await request(server).post('/revoke').auth(client.id, client.secret).type('form').send({ token: first }).expect(200);
        await request(server).get('/api/data').set('Authorization', `Bearer ${first}`).expect(401);
        await request(server).get('/api/data').set('Authorization', `Bearer ${second}`).expect(200);
      } finally {
        redis.destroy();
        await proxy.close();
      }
    });

    it('a client that queues commands while reconnecting is cut off by storeTimeout: 503, no hang', async () => {
      const proxy = await redisProxy();
      // node-redis's defaults: commands wait for the connection to come back.
      const redis = createClient({ url: proxy.url, socket: { reconnectStrategy: () => 100 } });
      redis.on('error', () => undefined);
      await redis.connect();
      try {
        const store = new RedisRevocationStore(redis, { prefix, commandTimeout: 60_000 });
        const tokens = issuer({ issuer: ISSUER, signingKey: { secret: SECRET }, clients: [client.record], revocations: store, storeTimeout: STORE_TIMEOUT, onInternalError: () => undefined });
        const server = express().use(tokens).get('/api/data', requireScope('read'), (_req, res) => res.end('ok'));
        await request(server).get('/api/data').set('Authorization', `Bearer ${aToken()}`).expect(200);
        await proxy.cut();
        await waitFor(() => !redis.isReady);
        const started = Date.now();
        const res = await request(server).get('/api/data').set('Authorization', `Bearer ${aToken()}`);
        expectUnavailable(res, /revocation list is unavailable/);
        expect(Date.now() - started).toBeGreaterThanOrEqual(STORE_TIMEOUT - 50);
        expect(Date.now() - started).toBeLessThan(STORE_TIMEOUT + 700);
      } finally {
        redis.destroy();
        await proxy.close();
      }
    });
  });
});

async function waitFor(condition: () => boolean, ms = 5000): Promise<void> {
  const until = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > until) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
