// The Redis stores against a real Redis (REDIS_URL): the shared contracts, their keys and expiry,
// sharing between clients, and failing fast when Redis is unreachable.

import express from 'express';
import { rateLimit } from 'express-rate-limit';
import { createClient } from 'redis';
import request from 'supertest';
import { ConfigurationError } from 'express-client-credentials';
import { RedisReplayCache, RedisRevocationStore, redisRateLimitStores } from 'express-client-credentials/redis';
import { replayCacheContract, revocationStoreContract } from './contract.js';
import { captureWarnings, closedPort, connectRedis, deleteKeys, describeWithRedis, keysUnder, redisProxy, uniquePrefix, unreachableRedis, type TestRedis } from '../support/services.js';

const prefix = uniquePrefix();
let redis: TestRedis;
let other: TestRedis;

describeWithRedis('Redis stores', () => {
  // The machine's Redis runs without AOF: its durability warning is asserted in redis-stall.test.ts, kept out of the output here.
  let durability: ReturnType<typeof captureWarnings>;
  beforeAll(() => void (durability = captureWarnings('ECC_REDIS_NOT_DURABLE')));
  afterAll(() => durability.restore());
  beforeAll(async () => {
    [redis, other] = [await connectRedis(), await connectRedis()];
  });
  afterAll(async () => {
    await deleteKeys(redis, prefix);
    redis.destroy();
    other.destroy();
  });

  revocationStoreContract('RedisRevocationStore', () => new RedisRevocationStore(redis, { prefix }));
  replayCacheContract('RedisReplayCache', () => new RedisReplayCache(redis, { prefix }));

  describe('RedisRevocationStore', () => {
    it('keeps one key per token, <prefix>revoked:<jti>, that Redis expires at expiresAt', async () => {
      const store = new RedisRevocationStore(redis, { prefix: `${prefix}keys:` });
      const expiresAt = Math.floor(Date.now() / 1000) + 600.25;
      await store.revoke('jti-1', expiresAt);
      expect(await keysUnder(redis, `${prefix}keys:`)).toEqual([`${prefix}keys:revoked:jti-1`]);
      expect(await redis.pExpireTime(`${prefix}keys:revoked:jti-1`)).toBe(Math.ceil(expiresAt * 1000));
    });

    it('is shared by every store on the same Redis and prefix, whatever the client', async () => {
      const [here, there] = [new RedisRevocationStore(redis, { prefix }), new RedisRevocationStore(other, { prefix })];
      await here.revoke('shared-jti', Date.now() / 1000 + 60);
      expect(await there.isRevoked('shared-jti')).toBe(true);
    });

    it('keeps prefixes apart', async () => {
      await new RedisRevocationStore(redis, { prefix: `${prefix}a:` }).revoke('jti', Date.now() / 1000 + 60);
      expect(await new RedisRevocationStore(redis, { prefix: `${prefix}b:` }).isRevoked('jti')).toBe(false);
    });

    it('uses the prefix ecc: by default', async () => {
      const jti = `${prefix}default`;
      try {
        await new RedisRevocationStore(redis).revoke(jti, Date.now() / 1000 + 60);
        expect(await redis.exists(`ecc:revoked:${jti}`)).toBe(1);
      } finally {
        await redis.del(`ecc:revoked:${jti}`);
      }
    });
  });

  describe('RedisReplayCache', () => {
    it('keeps <prefix>jti:<key> until expiresAt, and a second instance on another client refuses the key', async () => {
      const expiresAt = Date.now() / 1000 + 300;
      expect(await new RedisReplayCache(redis, { prefix }).markUsed('client|assertion-1', expiresAt)).toBe(true);
      expect(await redis.pExpireTime(`${prefix}jti:client|assertion-1`)).toBe(Math.ceil(expiresAt * 1000));
      expect(await new RedisReplayCache(other, { prefix }).markUsed('client|assertion-1', expiresAt)).toBe(false);
    });
  });

  describe('redisRateLimitStores(): rate-limit-redis stores for the two limiters', () => {
    it('counts each limiter under its own prefix, and the failure lock can read a count back with get()', async () => {
      const stores = redisRateLimitStores(redis, { prefix: `${prefix}rl-test:` });
      expect(stores.failedAuthentication).not.toBe(stores.perAddress);
      const app = express();
      app.use(rateLimit({ store: stores.perAddress, limit: 2, windowMs: 60_000, keyGenerator: () => 'k' }));
      app.use(rateLimit({ store: stores.failedAuthentication, limit: 5, windowMs: 60_000, keyGenerator: () => 'k' }));
      app.get('/', (_req, res) => res.end('ok'));
      await request(app).get('/').expect(200);
      await request(app).get('/').expect(200);
      await request(app).get('/').expect(429);
      expect(await keysUnder(redis, `${prefix}rl-test:`)).toEqual([`${prefix}rl-test:rl:failed-authentication:k`, `${prefix}rl-test:rl:per-address:k`]);
      expect(await stores.failedAuthentication.get?.('k')).toMatchObject({ totalHits: 2 });
      expect(await stores.perAddress.get?.('k')).toMatchObject({ totalHits: 3 });
    });

    it('recovers when Redis was down as the limiter was made (rate-limit-redis loads its scripts then)', async () => {
      const proxy = await redisProxy();
      await proxy.cut();
      const client = unreachableRedis(Number(new URL(proxy.url).port));
      try {
        const stores = redisRateLimitStores(client, { prefix: `${prefix}late:` });
        const limiter = rateLimit({ store: stores.perAddress, limit: 1, windowMs: 60_000, keyGenerator: () => 'k', passOnStoreError: false });
        const app = express().use(limiter).get('/', (_req, res) => res.end('ok'));
        expect((await request(app).get('/')).status).toBe(500);
        await proxy.restore();
        await waitFor(() => client.isReady);
        await request(app).get('/').expect(200);
        await request(app).get('/').expect(429);
      } finally {
        client.destroy();
        await proxy.close();
      }
    });
  });

  describe('configuration, checked at construction', () => {
    it.each([
      ['no client', () => new RedisRevocationStore(undefined as never)],
      ['an ioredis-like client without sendCommand(args)', () => new RedisReplayCache({ call: () => undefined } as never)],
      ['a misspelt option', () => new RedisRevocationStore(redis, { prefx: 'x' } as never)],
      ['a prefix that is not a string', () => new RedisReplayCache(redis, { prefix: 1 as never })],
      ['a commandTimeout of 0', () => redisRateLimitStores(redis, { commandTimeout: 0 })],
    ])('throws a ConfigurationError for %s', (_, make) => {
      expect(make).toThrow(ConfigurationError);
    });
  });

  describe('Redis unreachable: calls reject, and never hang', () => {
    it.each([
      ['RedisRevocationStore.isRevoked', (client: ReturnType<typeof unreachableRedis>) => new RedisRevocationStore(client, { prefix }).isRevoked('j')],
      ['RedisRevocationStore.revoke', (client: ReturnType<typeof unreachableRedis>) => new RedisRevocationStore(client, { prefix }).revoke('j', Date.now() / 1000 + 60)],
      ['RedisReplayCache.markUsed', (client: ReturnType<typeof unreachableRedis>) => new RedisReplayCache(client, { prefix }).markUsed('j', Date.now() / 1000 + 60)],
    ])('%s rejects at once on a closed port', async (_, call) => {
      const client = unreachableRedis(await closedPort());
      try {
        const started = Date.now();
        await expect(call(client)).rejects.toThrow();
        expect(Date.now() - started).toBeLessThan(500);
      } finally {
        client.destroy();
      }
    });

    it('rejects within commandTimeout on a client that queues commands while it reconnects', async () => {
      const proxy = await redisProxy();
      const client = await connectRedisQueueing(proxy.url).catch(async (error: unknown) => {
        await proxy.close();
        throw error;
      });
      try {
        const store = new RedisRevocationStore(client, { prefix, commandTimeout: 300 });
        await store.revoke('queued', Date.now() / 1000 + 60);
        await proxy.cut();
        await waitFor(() => !client.isReady);
        const started = Date.now();
        await expect(store.isRevoked('queued')).rejects.toThrow('Redis EXISTS gave no answer within 300 ms');
        expect(Date.now() - started).toBeGreaterThanOrEqual(250);
        expect(Date.now() - started).toBeLessThan(1000);
        await proxy.restore();
        await waitFor(() => client.isReady);
        expect(await store.isRevoked('queued')).toBe(true);
      } finally {
        client.destroy();
        await proxy.close();
      }
    });
  });
});

/** node-redis's default: commands wait in a queue while the client reconnects. */
async function connectRedisQueueing(url: string) {
  const client = createClient({ url, socket: { connectTimeout: 500, reconnectStrategy: () => 100 } });
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

async function waitFor(condition: () => boolean, ms = 5000): Promise<void> {
  const until = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > until) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
