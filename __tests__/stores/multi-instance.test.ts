// Three instances of one authorization server behind a (notional) load balancer: separate Express
// apps on separate ports, one signing key, sharing Redis (revocations, RFC 7009; used assertion ids,
// RFC 7523 §3; rate limits, RFC 6749 §2.3.1) and PostgreSQL (client registrations).

import { createPublicKey, generateKeyPairSync, randomUUID, type KeyObject } from 'node:crypto';
import express from 'express';
import request from 'supertest';
import { issuer, requireScope, type ClientRecord } from 'express-client-credentials';
import { PostgresClientStore } from 'express-client-credentials/postgres';
import { RedisReplayCache, RedisRevocationStore, redisRateLimitStores } from 'express-client-credentials/redis';
import { signJws } from '../../lib/core/jws.js';
import { resolveSigningKey } from '../../lib/core/signing-keys.js';
import { aClient, decodePayload, type TestClient } from '../support/fixtures.js';
import { close, serve, type Listening } from '../support/servers.js';
import { captureWarnings, connectRedis, deleteKeys, describeWithServices, temporarySchema, uniquePrefix, type TestRedis } from '../support/services.js';

/** The one public address of the three: every instance issues and accepts tokens as this issuer. */
const ISSUER = 'https://auth.example.test';
const FAILED_AUTHENTICATION_LIMIT = 5;
const CC = { grant_type: 'client_credentials' };
const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

interface Instance {
  readonly name: string;
  readonly listening: Listening;
  readonly redis: TestRedis;
  readonly clients: PostgresClientStore;
}

const prefix = uniquePrefix();
const signingKey = { privateKey: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey };
let db: Awaited<ReturnType<typeof temporarySchema>>;
let instances: Instance[] = [];

/** One instance, built as a deployment would build it: its own Redis client and pool, shared names. */
async function startInstance(name: string): Promise<Instance> {
  const redis = await connectRedis();
  // cacheTtl 0: the tests change client records between requests; the cache has its own suite.
  const clients = new PostgresClientStore(db.pool, { schema: db.schema, cacheTtl: 0 });
  await clients.migrate();
  const rateLimits = redisRateLimitStores(redis, { prefix });
  const listening = await serve(() => {
    const app = express();
    const tokens = issuer({
      issuer: ISSUER,
      signingKey,
      secretHashCost: 4,
      clients,
      revocations: new RedisRevocationStore(redis, { prefix }),
      replayCache: new RedisReplayCache(redis, { prefix }),
      rateLimit: {
        failedAuthentication: { store: rateLimits.failedAuthentication, limit: FAILED_AUTHENTICATION_LIMIT },
        perAddress: { store: rateLimits.perAddress, passOnStoreError: true },
      },
      onInternalError: () => undefined,
    });
    app.use(tokens);
    app.get('/api/data', requireScope('read'), (req, res) => res.json({ instance: name, client_id: req.auth?.clientId }));
    return app;
  });
  return { name, listening, redis, clients };
}

async function tokenFrom(instance: Instance, client: TestClient): Promise<string> {
  const res = await request(instance.listening.url).post('/token').auth(client.id, client.secret).type('form').send(CC);
  expect(res.status).toBe(200);
  return res.body.access_token as string;
}

const callApi = (instance: Instance, token: string) => request(instance.listening.url).get('/api/data').set('Authorization', `Bearer ${token}`);

describeWithServices('several instances sharing Redis and PostgreSQL', () => {
  // The machine's Redis runs without AOF: its durability warning is asserted in redis-stall.test.ts, kept out of the output here.
  let durability: ReturnType<typeof captureWarnings>;
  beforeAll(() => void (durability = captureWarnings('ECC_REDIS_NOT_DURABLE')));
  afterAll(() => durability.restore());
  beforeAll(async () => {
    db = await temporarySchema();
    instances = [await startInstance('a'), await startInstance('b'), await startInstance('c')];
  });

  afterAll(async () => {
    await Promise.all(instances.map((instance) => close(instance.listening)));
    if (instances[0] !== undefined) await deleteKeys(instances[0].redis, prefix);
    for (const instance of instances) instance.redis.destroy();
    await db?.drop();
  });

  it('runs each instance on its own port', () => {
    expect(new Set(instances.map((instance) => instance.listening.url)).size).toBe(3);
  });

  it('serves a client added through PostgreSQL on every instance, and each accepts the tokens of the others', async () => {
    const client = await aClient({ scope: 'read' });
    const [a, b, c] = instances as [Instance, Instance, Instance];
    // Unknown everywhere until it is registered: nothing kept it per instance.
    for (const instance of instances) {
      await request(instance.listening.url).post('/token').auth(client.id, client.secret).type('form').send(CC).expect(401);
    }
    await c.clients.addClient(client.record);
    for (const issuing of instances) {
      const token = await tokenFrom(issuing, client);
      expect(decodePayload(token)).toMatchObject({ iss: ISSUER, client_id: client.id });
      for (const verifying of [a, b, c]) await callApi(verifying, token).expect(200, { instance: verifying.name, client_id: client.id });
    }
  });

  it('refuses on every instance a token revoked through one of them', async () => {
    const client = await aClient({ scope: 'read' });
    await instances[0]?.clients.addClient(client.record);
    const [a, b, c] = instances as [Instance, Instance, Instance];
    const token = await tokenFrom(a, client);
    const other = await tokenFrom(a, client);
    for (const instance of instances) await callApi(instance, token).expect(200);
    await request(b.listening.url).post('/revoke').auth(client.id, client.secret).type('form').send({ token }).expect(200);
    for (const instance of [a, b, c]) {
      const res = await callApi(instance, token);
      expect(res.status).toBe(401);
      expect(res.headers['www-authenticate']).toContain('error_description="The token has been revoked"');
      const introspection = await request(instance.listening.url).post('/introspect').auth(client.id, client.secret).type('form').send({ token });
      expect(introspection.body).toEqual({ active: false });
      await callApi(instance, other).expect(200);
    }
  });

  it('locks a client id after the configured total of failed authentications, counted across instances', async () => {
    const client = await aClient({ scope: 'read' });
    const bystander = await aClient({ scope: 'read' });
    for (const record of [client.record, bystander.record]) await instances[0]?.clients.addClient(record);
    // One fewer failure than the limit, spread over the instances: none of them locks alone.
    for (let attempt = 0; attempt < FAILED_AUTHENTICATION_LIMIT - 1; attempt += 1) {
      const instance = instances[attempt % instances.length] as Instance;
      await request(instance.listening.url).post('/token').auth(client.id, 'wrong').type('form').send(CC).expect(401);
    }
    await tokenFrom(instances[1] as Instance, client);
    await request(instances[2]?.listening.url ?? '').post('/token').auth(client.id, 'wrong').type('form').send(CC).expect(401);
    // The limit is reached in total: every instance refuses even the right secret, before bcrypt.
    for (const instance of instances) {
      const res = await request(instance.listening.url).post('/token').auth(client.id, client.secret).type('form').send(CC);
      expect(res.status).toBe(429);
      expect(res.body.error).toBe('temporarily_unavailable');
      expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
    }
    // The lock is for that client id: another client from the same address is served.
    for (const instance of instances) await tokenFrom(instance, bystander);
  });

  it('accepts a private_key_jwt assertion once across all instances (RFC 7523 §3 item 7)', async () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const id = `svc-${randomUUID().slice(0, 8)}`;
    const record: ClientRecord = {
      client_id: id,
      token_endpoint_auth_method: 'private_key_jwt',
      jwks: { keys: [{ ...createPublicKey(privateKey).export({ format: 'jwk' }), kid: 'k1', alg: 'ES256', use: 'sig' }] },
      scope: 'read',
    };
    await instances[2]?.clients.addClient(record);
    const assertion = clientAssertion(id, privateKey);
    const send = (instance: Instance, jwt: string) =>
      request(instance.listening.url).post('/token').type('form').send({ ...CC, client_assertion_type: JWT_BEARER, client_assertion: jwt });
    await send(instances[0] as Instance, assertion).expect(200);
    for (const instance of instances) expect((await send(instance, assertion)).status).toBe(401);
    // A fresh assertion (a new jti) is accepted anywhere.
    await send(instances[1] as Instance, clientAssertion(id, privateKey)).expect(200);
  });
});

function clientAssertion(clientId: string, privateKey: KeyObject): string {
  const now = Math.floor(Date.now() / 1000);
  const claims = { iss: clientId, sub: clientId, aud: ISSUER, iat: now, exp: now + 60, jti: randomUUID() };
  return signJws(claims, resolveSigningKey({ privateKey, alg: 'ES256', kid: 'k1' }), 'JWT');
}
