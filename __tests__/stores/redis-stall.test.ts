// A Redis that stalls (SIGSTOP: the connection stays open, nothing answers, as in a partition) and
// a Redis that restarts, on a redis-server of the test's own: every endpoint and the guard answer
// 503 within the deadline, recover by themselves, and revocations last only as long as Redis keeps them.

import express from 'express';
import request from 'supertest';
import { issuer, requireScope } from 'express-client-credentials';
import { RedisReplayCache, RedisRevocationStore, redisRateLimitStores } from 'express-client-credentials/redis';
import { aClient, ISSUER, SECRET, type TestClient } from '../support/fixtures.js';
import { ownRedis, type OwnRedis } from '../support/own-redis.js';
import { captureWarnings, connectRedis, describeWithRedis, type TestRedis } from '../support/services.js';

const CC = { grant_type: 'client_credentials' };
const COMMAND_TIMEOUT = 300;
const STORE_TIMEOUT = 1000;

describeWithRedis('a stalled Redis (SIGSTOP): 503 within the deadline everywhere, then recovery by itself', () => {
  let redis: OwnRedis;
  let client: TestRedis;
  let owner: TestClient;
  let app: express.Express;
  let warnings: ReturnType<typeof captureWarnings>;
  const reports: string[] = [];

  beforeAll(async () => {
    warnings = captureWarnings('ECC_REDIS_NOT_DURABLE');
    redis = await ownRedis();
    client = await connectRedis(redis.url);
    owner = await aClient();
    const options = { prefix: 'stall:', commandTimeout: COMMAND_TIMEOUT };
    const limits = redisRateLimitStores(client, options);
    const tokens = issuer({
      issuer: ISSUER,
      signingKey: { secret: SECRET },
      secretHashCost: 4,
      clients: [owner.record],
      storeTimeout: STORE_TIMEOUT,
      revocations: new RedisRevocationStore(client, options),
      replayCache: new RedisReplayCache(client, options),
      rateLimit: { failedAuthentication: { store: limits.failedAuthentication }, perAddress: { store: limits.perAddress } },
      onInternalError: (line) => reports.push(line),
    });
    app = express();
    app.use('/token', tokens);
    app.use('/revoke', tokens.revocation);
    app.use('/introspect', tokens.introspection);
    app.get('/api/data', requireScope('read'), (req, res) => res.json({ client_id: req.auth?.clientId }));
  });
  afterAll(async () => {
    await client?.destroy();
    await redis?.stop();
    warnings.restore();
  });

  const everyEndpoint = (token: string) => [
    request(app).post('/token').auth(owner.id, owner.secret).type('form').send(CC),
    request(app).post('/revoke').auth(owner.id, owner.secret).type('form').send({ token }),
    request(app).post('/introspect').auth(owner.id, owner.secret).type('form').send({ token }),
    request(app).get('/api/data').set('Authorization', `Bearer ${token}`),
  ];

  it('token, revocation, introspection and the guard each answer 503 with Retry-After within storeTimeout, and work again once Redis answers', async () => {
    const issued = await request(app).post('/token').auth(owner.id, owner.secret).type('form').send(CC).expect(200);
    const token = issued.body.access_token as string;
    await request(app).get('/api/data').set('Authorization', `Bearer ${token}`).expect(200);
    redis.stall();
    try {
      const started = Date.now();
      const answers = await Promise.all(everyEndpoint(token));
      expect(Date.now() - started).toBeLessThan(STORE_TIMEOUT + 1000);
      for (const res of answers) {
        expect([res.status, res.body.error]).toEqual([503, 'temporarily_unavailable']);
        expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
      }
      // Reported, one line per kind of failure: not one per request.
      expect(reports.length).toBeGreaterThan(0);
      expect(reports.length).toBeLessThanOrEqual(4);
      expect(reports.every((line) => /gave no answer within 300 ms|did not answer within/.test(line))).toBe(true);
    } finally {
      redis.resume();
    }
    const answers = await Promise.all(everyEndpoint('not-a-token'));
    expect(answers.map((res) => res.status)).toEqual([200, 200, 200, 401]);
    await request(app).get('/api/data').set('Authorization', `Bearer ${token}`).expect(200);
  });

  it('warns once that revocations in a Redis without AOF are lost when it restarts (ECC_REDIS_NOT_DURABLE)', () => {
    expect(warnings.messages).toEqual([expect.stringMatching(/no append-only file.*lost when it restarts.*appendonly yes/)]);
  });
});

describeWithRedis('revocations last only as long as Redis keeps them', () => {
  let warnings: ReturnType<typeof captureWarnings>;
  beforeAll(() => void (warnings = captureWarnings('ECC_REDIS_NOT_DURABLE')));
  afterAll(() => warnings.restore());

  async function revokeThenRestart(appendonly: boolean): Promise<{ revokedAfterRestart: boolean; warned: number }> {
    const before = warnings.messages.length;
    const redis = await ownRedis({ appendonly });
    const client = await connectRedis(redis.url);
    try {
      const store = new RedisRevocationStore(client, { commandTimeout: 1000 });
      await store.revoke('jti-1', Date.now() / 1000 + 600);
      expect(await store.isRevoked('jti-1')).toBe(true);
      await redis.restart();
      // The client reconnects by itself; wait until it answers again.
      for (let i = 0; i < 100 && !client.isReady; i++) await new Promise((resolve) => setTimeout(resolve, 20));
      await new Promise((resolve) => setTimeout(resolve, 50));
      return { revokedAfterRestart: await store.isRevoked('jti-1'), warned: warnings.messages.length - before };
    } finally {
      await client.destroy();
      await redis.stop();
    }
  }

  it('without persistence (appendonly no), a revoked token is accepted again after Redis restarts, and the store has warned', async () => {
    expect(await revokeThenRestart(false)).toEqual({ revokedAfterRestart: false, warned: 1 });
  });

  it('with appendonly yes, revocations survive a restart, and there is no warning', async () => {
    expect(await revokeThenRestart(true)).toEqual({ revokedAfterRestart: true, warned: 0 });
  });
});
