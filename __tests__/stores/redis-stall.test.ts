// A Redis that stalls (SIGSTOP: the connection stays open and nothing answers, as in a partition)
// and a Redis that restarts, on a redis-server of the test's own (never the machine's): every
// endpoint and the guard answer 503 within the deadline (RFC 6749 §5.2 temporarily_unavailable),
// recover by themselves, and revocations (RFC 7009) last only as long as Redis keeps them.

import express, { type Express } from 'express';
import request from 'supertest';
import { authenticate, issuer, requireScope } from 'express-client-credentials';
import { RedisReplayCache, RedisRevocationStore, redisRateLimitStores, type RedisCommandSender } from 'express-client-credentials/redis';
import { aClient, ISSUER, SECRET, type TestClient } from '../support/fixtures.js';
import { ownRedis, type OwnRedis, type OwnRedisOptions } from '../support/own-redis.js';
import { captureWarnings, connectRedis, deleteKeys, describeWithRedis, keysUnder, uniquePrefix, waitFor, type TestRedis } from '../support/services.js';

const CC = { grant_type: 'client_credentials' };
const COMMAND_TIMEOUT = 300;
const STORE_TIMEOUT = 1000;
/** Every answer while Redis is stalled comes within this: one or two commands, each cut off at COMMAND_TIMEOUT. */
const BOUND = COMMAND_TIMEOUT + 1000;
/** A request still unanswered after this has hung: supertest gives up, and the test fails saying so. */
const HANG = 5000;
const NOT_DURABLE = /no append-only file.*lost when it restarts.*appendonly yes/;

let owner: TestClient;
let warnings: ReturnType<typeof captureWarnings>;
/** A late reply, or a late rejection after the deadline, must never become an unhandled rejection. */
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown): void => void unhandled.push(reason);

beforeAll(async () => {
  warnings = captureWarnings('ECC_REDIS_NOT_DURABLE');
  process.on('unhandledRejection', onUnhandled);
  owner = await aClient({ scope: 'read' });
});
afterAll(() => {
  process.off('unhandledRejection', onUnhandled);
  warnings.restore();
});

interface Deployment {
  readonly app: Express;
  /** What the issuer told `onInternalError`. */
  readonly reports: string[];
}

/**
 * An authorization server and a resource server in one app, as the README builds them, with all
 * their shared state in Redis: revocations, used assertion ids and both limiters (the per-address
 * cap with passOnStoreError: true). `lock: 'memory'` keeps the failure lock in memory instead, so
 * that the revocation and introspection endpoints get as far as the revocation list.
 */
function deployment(client: RedisCommandSender, { prefix = uniquePrefix(), lock = 'redis' }: { prefix?: string; lock?: 'redis' | 'memory' } = {}): Deployment {
  const reports: string[] = [];
  const options = { prefix, commandTimeout: COMMAND_TIMEOUT };
  const limits = redisRateLimitStores(client, options);
  const tokens = issuer({
    issuer: ISSUER,
    signingKey: { secret: SECRET },
    secretHashCost: 4,
    clients: [owner.record],
    storeTimeout: STORE_TIMEOUT,
    revocations: new RedisRevocationStore(client, options),
    replayCache: new RedisReplayCache(client, options),
    rateLimit: {
      perAddress: { store: limits.perAddress, passOnStoreError: true },
      ...(lock === 'redis' ? { failedAuthentication: { store: limits.failedAuthentication } } : {}),
    },
    onInternalError: (line) => reports.push(line),
  });
  const app = express();
  app.use(tokens);
  app.get('/api/data', authenticate({ issuer: tokens }), requireScope('read'), (req, res) => res.json({ client_id: req.auth?.clientId }));
  return { app, reports };
}

const post = (app: Express, path: string, form: Record<string, string>) => request(app).post(path).auth(owner.id, owner.secret).type('form').send(form).timeout(HANG);
const callApi = (app: Express, token: string) => request(app).get('/api/data').set('Authorization', `Bearer ${token}`).timeout(HANG);

async function aToken(app: Express): Promise<string> {
  const res = await post(app, '/token', CC);
  expect(res.status).toBe(200);
  return res.body.access_token as string;
}

/** Sends, and says how long the answer took. */
async function timed(send: () => PromiseLike<request.Response>): Promise<{ res: request.Response; ms: number }> {
  const started = Date.now();
  const res = await send();
  return { res, ms: Date.now() - started };
}

function expectUnavailable(res: request.Response, description: RegExp): void {
  expect(res.status).toBe(503);
  expect(res.body).toEqual({ error: 'temporarily_unavailable', error_description: expect.stringMatching(description) });
  expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
}

/** Waits until the client is connected and the server answers a command. */
async function answering(client: TestRedis): Promise<void> {
  await waitFor(() => client.isReady);
  await client.ping();
}

describe('commandTimeout: a deadline of our own on every Redis command, in flight too', () => {
  /** A test double for a Redis that took the command and never answers. */
  class SilentRedis implements RedisCommandSender {
    sendCommand(): Promise<unknown> {
      return new Promise(() => undefined);
    }
  }
  /** Answers, but only after `ms`: with an error, or with OK. */
  class LateRedis implements RedisCommandSender {
    constructor(
      private readonly ms: number,
      private readonly fails: boolean,
    ) {}
    sendCommand(): Promise<unknown> {
      return new Promise((resolve, reject) => setTimeout(() => (this.fails ? reject(new Error('late')) : resolve('OK')), this.ms));
    }
  }

  it('rejects a command that gets no answer with "Redis <CMD> gave no answer within N ms", after N ms', async () => {
    const started = Date.now();
    await expect(new RedisReplayCache(new SilentRedis(), { commandTimeout: 100 }).markUsed('k', Date.now() / 1000 + 60)).rejects.toThrow(
      new Error('Redis SET gave no answer within 100 ms'),
    );
    expect(Date.now() - started).toBeGreaterThanOrEqual(95);
    expect(Date.now() - started).toBeLessThan(600);
  });

  it.each([
    ['a rejection', true],
    ['a reply', false],
  ])('drops %s that comes after the deadline, with no unhandled rejection', async (_, fails) => {
    const before = unhandled.length;
    await expect(new RedisRevocationStore(new LateRedis(150, fails), { commandTimeout: 50 }).isRevoked('j')).rejects.toThrow('Redis EXISTS gave no answer within 50 ms');
    await new Promise((resolve) => setTimeout(resolve, 250));
    expect(unhandled.slice(before)).toEqual([]);
  });

  it('answers a limiter\'s SCRIPT LOAD that gets no answer with the script\'s SHA1, so that rate-limit-redis can start', async () => {
    const stores = redisRateLimitStores(new SilentRedis(), { commandTimeout: 100 });
    const started = Date.now();
    await stores.perAddress.init?.({ windowMs: 60_000 } as never);
    expect(Date.now() - started).toBeLessThan(600);
  });
});

describeWithRedis('a stalled Redis (SIGSTOP): 503 with Retry-After within the deadline everywhere, then recovery by itself', () => {
  let redis: OwnRedis;
  let client: TestRedis;
  let everything: Deployment;
  let lockInMemory: Deployment;

  beforeAll(async () => {
    // With AOF, as the README advises: no durability warning in this suite.
    redis = await ownRedis({ appendonly: true });
    client = await connectRedis(redis.url);
    everything = deployment(client);
    lockInMemory = deployment(client, { lock: 'memory' });
  });
  afterAll(async () => {
    client?.destroy();
    await redis?.stop();
  });

  /** Runs `body` while Redis is stopped, and resumes it whatever happens. */
  async function whileStalled<T>(body: () => Promise<T>): Promise<T> {
    redis.stall();
    try {
      return await body();
    } finally {
      redis.resume();
    }
  }

  it.each([
    ['the token endpoint', (app: Express) => post(app, '/token', CC), /rate limit store is unavailable/],
    ['the revocation endpoint', (app: Express, token: string) => post(app, '/revoke', { token }), /rate limit store is unavailable/],
    ['the introspection endpoint', (app: Express, token: string) => post(app, '/introspect', { token }), /rate limit store is unavailable/],
    ['the guard', (app: Express, token: string) => callApi(app, token), /revocation list is unavailable/],
  ])('while Redis is stopped, %s answers 503 temporarily_unavailable with Retry-After within commandTimeout + 1 s, not a hang and not a 500', async (_, send, description) => {
    const token = await aToken(everything.app);
    const { res, ms } = await whileStalled(() => timed(() => send(everything.app, token)));
    expectUnavailable(res, description);
    // It waited for the deadline (Redis took the command and said nothing), and no longer.
    expect(ms).toBeGreaterThanOrEqual(COMMAND_TIMEOUT - 50);
    expect(ms).toBeLessThan(BOUND);
  });

  it('tells onInternalError which command got no answer: Redis <CMD> gave no answer within commandTimeout', () => {
    expect(everything.reports.length).toBeGreaterThan(0);
    expect(everything.reports.join('\n')).toMatch(/Redis (EVALSHA|EXISTS) gave no answer within 300 ms/);
  });

  it.each([
    ['the revocation endpoint', '/revoke'],
    ['the introspection endpoint', '/introspect'],
  ])('with the failure lock in memory, %s reaches the stalled revocation list and answers 503 from it within the bound', async (_, path) => {
    const token = await aToken(lockInMemory.app);
    const { res, ms } = await whileStalled(() => timed(() => post(lockInMemory.app, path, { token })));
    expectUnavailable(res, /revocation list is unavailable/);
    expect(ms).toBeLessThan(BOUND);
    expect(lockInMemory.reports.join('\n')).toMatch(/Redis (EVAL|EXISTS) gave no answer within 300 ms/);
  });

  it('once Redis answers again (SIGCONT), every endpoint and the guard work by themselves: tokens, calls, and a revocation every later call sees', async () => {
    const { app } = everything;
    const earlier = await aToken(app);
    const stalled = await whileStalled(async () => {
      const started = Date.now();
      const answers = await Promise.all([post(app, '/token', CC), post(app, '/revoke', { token: earlier }), post(app, '/introspect', { token: earlier }), callApi(app, earlier)]);
      expect(Date.now() - started).toBeLessThan(BOUND);
      return answers.map((res) => res.status);
    });
    expect(stalled).toEqual([503, 503, 503, 503]);
    // No reconnection to wait for: the connection stayed open, and the late replies are dropped.
    const later = await aToken(app);
    await callApi(app, later).expect(200, { client_id: owner.id });
    await post(app, '/revoke', { token: earlier }).expect(200);
    await callApi(app, earlier).expect(401);
    await post(app, '/introspect', { token: earlier }).expect(200, { active: false });
    expect((await post(app, '/introspect', { token: later }).expect(200)).body).toMatchObject({ active: true, client_id: owner.id });
    await client.ping();
    expect(unhandled).toEqual([]);
  });

  it('a limiter made while Redis is stopped counts in Redis once it is back, even after its scripts are gone (SCRIPT FLUSH)', async () => {
    const prefix = uniquePrefix();
    const made = await whileStalled(async () => {
      const late = deployment(client, { prefix });
      // rate-limit-redis loads its scripts as the limiter starts: let those SCRIPT LOADs time out.
      await new Promise((resolve) => setTimeout(resolve, COMMAND_TIMEOUT + 100));
      return late;
    });
    await client.sendCommand(['SCRIPT', 'FLUSH']);
    await aToken(made.app);
    expect(await keysUnder(client, `${prefix}rl:per-address:`)).toHaveLength(1);
  });
});

describeWithRedis('RedisRevocationStore warns once when Redis would lose revocations on a restart (ECC_REDIS_NOT_DURABLE)', () => {
  it('warns once per store on the machine\'s Redis, which runs without AOF (appendonly no), however many calls it serves', async () => {
    const shared = await connectRedis();
    const prefix = uniquePrefix();
    try {
      // The machine's Redis (and CI's, see .ci/run) runs with --appendonly no.
      expect(/^aof_enabled:(\d)/m.exec(String(await shared.sendCommand(['INFO', 'persistence'])))?.[1]).toBe('0');
      const before = warnings.messages.length;
      const store = new RedisRevocationStore(shared, { prefix });
      await store.revoke('jti', Date.now() / 1000 + 60);
      for (let i = 0; i < 3; i++) expect(await store.isRevoked('jti')).toBe(true);
      await waitFor(() => warnings.messages.length > before);
      await shared.ping();
      expect(warnings.messages.slice(before)).toEqual([expect.stringMatching(NOT_DURABLE)]);
      await new RedisRevocationStore(shared, { prefix }).isRevoked('jti');
      await waitFor(() => warnings.messages.length > before + 1);
      expect(warnings.messages).toHaveLength(before + 2);
    } finally {
      await deleteKeys(shared, prefix);
      shared.destroy();
    }
  });

  it('says nothing and serves every call when Redis refuses INFO (an ACL user without it)', async () => {
    const redis = await ownRedis();
    const admin = await connectRedis(redis.url);
    let limited: TestRedis | undefined;
    try {
      await admin.sendCommand(['ACL', 'SETUSER', 'revoker', 'on', '>revoker-password', '~*', '+@all', '-info']);
      const url = new URL(redis.url);
      [url.username, url.password] = ['revoker', 'revoker-password'];
      limited = await connectRedis(url.href);
      await expect(limited.sendCommand(['INFO', 'persistence'])).rejects.toThrow(/NOPERM/);
      const before = warnings.messages.length;
      const store = new RedisRevocationStore(limited);
      await store.revoke('jti', Date.now() / 1000 + 60);
      expect(await store.isRevoked('jti')).toBe(true);
      await limited.ping();
      expect(warnings.messages).toHaveLength(before);
    } finally {
      limited?.destroy();
      admin.destroy();
      await redis.stop();
    }
  });
});

describeWithRedis('revocations (RFC 7009) last only as long as Redis keeps them', () => {
  /** Issues a token, revokes it, checks the guard refuses it, restarts Redis (as a crash would), and calls again. */
  async function revokeThenRestart(options: OwnRedisOptions): Promise<{ guard: number; introspection: unknown; warned: string[] }> {
    const before = warnings.messages.length;
    const redis = await ownRedis(options);
    const client = await connectRedis(redis.url);
    try {
      const { app } = deployment(client);
      const token = await aToken(app);
      await post(app, '/revoke', { token }).expect(200);
      await callApi(app, token).expect(401);
      await redis.restart();
      await answering(client);
      const guard = (await callApi(app, token)).status;
      const introspection = (await post(app, '/introspect', { token })).body as unknown;
      return { guard, introspection: (introspection as { active?: unknown }).active, warned: warnings.messages.slice(before) };
    } finally {
      client.destroy();
      await redis.stop();
    }
  }

  it('without AOF (appendonly no), a revoked token is accepted again once Redis restarts: the revocation is lost, as the one warning said', async () => {
    expect(await revokeThenRestart({ appendonly: false })).toEqual({ guard: 200, introspection: true, warned: [expect.stringMatching(NOT_DURABLE)] });
  });

  it('with AOF (appendonly yes), a revoked token stays refused after Redis restarts, and there is no warning', async () => {
    expect(await revokeThenRestart({ appendonly: true })).toEqual({ guard: 401, introspection: false, warned: [] });
  });
});
