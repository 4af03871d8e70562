import { spawn } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import express, { type Express } from 'express';
import helmet from 'helmet';
import request from 'supertest';
import { PostgresClientStore } from 'express-client-credentials/postgres';
import { createExampleServer, type ExampleServer } from '../examples/server.js';
import { aClient, decodeHeader, decodePayload } from './support/fixtures.js';
import { captureWarnings, closedPort, connectRedis, DATABASE_URL, deleteKeys, describeWithPostgres, describeWithServices, keysUnder, REDIS_URL, temporarySchema, uniquePrefix } from './support/services.js';

const ROOT = join(__dirname, '..');
const CC = { grant_type: 'client_credentials' };
const ENV_NAMES = [
  'PORT', 'HOST', 'OAUTH_ISSUER', 'OAUTH_AUDIENCE', 'OAUTH_CLIENTS_FILE', 'OAUTH_SIGNING_KEY_FILE', 'OAUTH_TOKEN_SECRET',
  'REDIS_URL', 'OAUTH_REDIS_PREFIX', 'DATABASE_URL', 'OAUTH_CLIENTS_TABLE',
];
/** The environment of a child process, without the example's variables of this one. */
const cleanEnv = (vars: Record<string, string>): NodeJS.ProcessEnv => ({
  ...Object.fromEntries(Object.entries(process.env).filter(([name]) => !ENV_NAMES.includes(name))),
  ...vars,
});

/** Runs `body` with exactly these example variables set, as a shell would. */
async function withEnv<T>(vars: Record<string, string>, body: () => Promise<T>): Promise<T> {
  const saved = Object.fromEntries(ENV_NAMES.map((name) => [name, process.env[name]]));
  for (const name of ENV_NAMES) delete process.env[name];
  Object.assign(process.env, vars);
  try {
    return await body();
  } finally {
    for (const name of ENV_NAMES) delete process.env[name];
    for (const [name, value] of Object.entries(saved)) if (value !== undefined) process.env[name] = value;
  }
}

describe('the example server', () => {
  it('creates and prints a demo client without OAUTH_CLIENTS_FILE, and guards GET and POST /api/data by scope', async () => {
    const emitWarning = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    const { app, demoClient } = await withEnv({}, createExampleServer).finally(() => emitWarning.mockRestore());
    expect(demoClient?.id).toBe('demo');
    const { body } = await request(app).post('/token').auth('demo', demoClient?.secret ?? '').type('form').send(CC).expect(200);
    expect(decodePayload(body.access_token)).toMatchObject({ iss: 'http://127.0.0.1:3000', aud: 'http://127.0.0.1:3000/api', scope: 'read' });
    const bearer = `Bearer ${body.access_token}`;
    await request(app).get('/api/data').set('Authorization', bearer).expect(200, { client_id: 'demo', scope: 'read' });
    expect((await request(app).post('/api/data').set('Authorization', bearer)).status).toBe(403);
    const write = await request(app).post('/token').auth('demo', demoClient?.secret ?? '').type('form').send({ ...CC, scope: 'write' });
    await request(app).post('/api/data').set('Authorization', `Bearer ${write.body.access_token}`).expect(200, { client_id: 'demo', scope: 'write' });
  });

  it('serves RFC 9728 metadata for /api, and points to it from every challenge', async () => {
    const emitWarning = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    const { app } = await withEnv({}, createExampleServer).finally(() => emitWarning.mockRestore());
    const document = {
      resource: 'http://127.0.0.1:3000/api',
      authorization_servers: ['http://127.0.0.1:3000'],
      scopes_supported: ['read', 'write'],
      bearer_methods_supported: ['header'],
    };
    await request(app).get('/.well-known/oauth-protected-resource/api').expect(200, document);
    await request(app).get('/.well-known/oauth-protected-resource').expect(200, document);
    const challenge = (await request(app).get('/api/data').expect(401)).headers['www-authenticate'];
    expect(challenge).toBe('Bearer realm="http://127.0.0.1:3000/api", resource_metadata="http://127.0.0.1:3000/.well-known/oauth-protected-resource/api"');
  });

  it("sends the token endpoint's security headers (helmet's) on the API's answers, its 401 and 403, and its metadata", async () => {
    const emitWarning = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    const { app, demoClient } = await withEnv({}, createExampleServer).finally(() => emitWarning.mockRestore());
    // The headers helmet's defaults set, from a bare app: the protection the token endpoint has.
    const bare = await request(express().use(helmet()).get('/', (_req, res) => void res.end())).get('/');
    const names = Object.keys(bare.headers).filter((name) => !['date', 'connection', 'keep-alive', 'content-length', 'transfer-encoding'].includes(name));
    expect(names).toEqual(expect.arrayContaining(['x-content-type-options', 'content-security-policy', 'strict-transport-security', 'x-frame-options']));
    const token = await request(app).post('/token').auth('demo', demoClient?.secret ?? '').type('form').send(CC).expect(200);
    const bearer = `Bearer ${token.body.access_token}`;
    const responses = {
      'GET /api/data': await request(app).get('/api/data').set('Authorization', bearer).expect(200),
      'GET /api/data without a token': await request(app).get('/api/data').expect(401),
      'POST /api/data without the write scope': await request(app).post('/api/data').set('Authorization', bearer).expect(403),
      'GET /.well-known/oauth-protected-resource': await request(app).get('/.well-known/oauth-protected-resource').expect(200),
    };
    const expected = Object.fromEntries(names.map((name) => [name, token.headers[name]]));
    expect(expected['x-content-type-options']).toBe('nosniff');
    for (const [route, res] of Object.entries(responses)) {
      expect([route, Object.fromEntries(names.map((name) => [name, res.headers[name]]))]).toEqual([route, expected]);
      expect([route, res.headers['x-powered-by']]).toEqual([route, undefined]);
    }
  });

  it('reads clients, key, issuer and audience from the environment', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ecc-example-'));
    // Cost 10, as create-client makes it: the example keeps the default secretHashCost.
    const client = await aClient({ scope: 'read', cost: 10 });
    writeFileSync(join(dir, 'clients.json'), JSON.stringify([client.record]));
    const pem = generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
    writeFileSync(join(dir, 'key.pem'), pem);
    const env = {
      OAUTH_ISSUER: 'https://auth.example.test',
      OAUTH_AUDIENCE: 'https://api.example.test',
      OAUTH_CLIENTS_FILE: join(dir, 'clients.json'),
      OAUTH_SIGNING_KEY_FILE: join(dir, 'key.pem'),
    };
    const { app, demoClient } = await withEnv(env, createExampleServer);
    expect(demoClient).toBeUndefined();
    const { body } = await request(app).post('/token').auth(client.id, client.secret).type('form').send(CC).expect(200);
    expect(decodeHeader(body.access_token).alg).toBe('EdDSA');
    expect(decodePayload(body.access_token)).toMatchObject({ iss: env.OAUTH_ISSUER, aud: env.OAUTH_AUDIENCE });
    await request(app).get('/api/data').set('Authorization', `Bearer ${body.access_token}`).expect(200);
    const metadata = await request(app).get('/.well-known/oauth-authorization-server');
    expect(metadata.body).toMatchObject({ issuer: env.OAUTH_ISSUER, token_endpoint: `${env.OAUTH_ISSUER}/token` });
    expect((await request(app).get('/.well-known/jwks.json')).body.keys).toHaveLength(1);
  });

  it('signs with HS256 from OAUTH_TOKEN_SECRET', async () => {
    const emitWarning = jest.spyOn(process, 'emitWarning');
    const { app, demoClient } = await withEnv({ OAUTH_TOKEN_SECRET: 'x'.repeat(32) }, createExampleServer).finally(() => emitWarning.mockRestore());
    expect(emitWarning).not.toHaveBeenCalled();
    const { body } = await request(app).post('/token').auth('demo', demoClient?.secret ?? '').type('form').send(CC).expect(200);
    expect(decodeHeader(body.access_token).alg).toBe('HS256');
  });

  it('starts with npm start and serves the curl session of the README', async () => {
    const port = await freePort();
    const child = spawn('npm', ['start', '--silent'], { cwd: ROOT, env: cleanEnv({ PORT: String(port), HOST: '127.0.0.1' }), detached: true });
    try {
      const output = await new Promise<string>((resolve, reject) => {
        let text = '';
        const timer = setTimeout(() => reject(new Error(`npm start printed: ${text}`)), 15_000);
        child.stdout.on('data', (chunk: Buffer) => {
          text += chunk.toString();
          if (text.includes('client_secret=')) {
            clearTimeout(timer);
            resolve(text);
          }
        });
        child.on('exit', () => reject(new Error(`npm start exited: ${text}`)));
      });
      expect(output).toContain(`express-client-credentials example on http://127.0.0.1:${port}`);
      const secret = /client_secret=(\S+)/.exec(output)?.[1] ?? '';
      const base = `http://127.0.0.1:${port}`;
      const token = await fetch(`${base}/token`, {
        method: 'POST',
        headers: { Authorization: `Basic ${Buffer.from(`demo:${secret}`).toString('base64')}`, 'Content-Type': 'application/x-www-form-urlencoded' },
        body: 'grant_type=client_credentials',
      }).then((res) => res.json() as Promise<{ access_token: string }>);
      const data = await fetch(`${base}/api/data`, { headers: { Authorization: `Bearer ${token.access_token}` } });
      expect([data.status, await data.json()]).toEqual([200, { client_id: 'demo', scope: 'read' }]);
    } finally {
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGTERM');
    }
  });
});

describe('the example server with a Redis it cannot reach', () => {
  it('fails to start, in a few seconds, rather than serve without its shared state', async () => {
    const started = Date.now();
    const env = { REDIS_URL: `redis://127.0.0.1:${await closedPort()}`, OAUTH_TOKEN_SECRET: 'x'.repeat(32) };
    const errors = jest.spyOn(console, 'error').mockImplementation(() => undefined);
    await expect(withEnv(env, createExampleServer).finally(() => errors.mockRestore())).rejects.toThrow(/ECONNREFUSED/);
    expect(Date.now() - started).toBeLessThan(5000);
  });
});

describeWithServices('the example server scaled out: two copies sharing Redis and PostgreSQL', () => {
  // The machine's Redis has no AOF: the example warns once per store (asserted in redis-stall.test.ts).
  let durability: ReturnType<typeof captureWarnings>;
  beforeAll(() => void (durability = captureWarnings('ECC_REDIS_NOT_DURABLE')));
  afterAll(() => durability.restore());
  const prefix = uniquePrefix();
  const table = `oauth_clients_example_${randomBytes(4).toString('hex')}`;
  const CLIENT = { id: 'scaled', secret: 'scaled-secret' };
  let servers: ExampleServer[] = [];

  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ecc-example-scaled-'));
    const { record } = await aClient({ client_id: CLIENT.id, secret: CLIENT.secret, scope: 'read', cost: 10 });
    writeFileSync(join(dir, 'clients.json'), JSON.stringify([record]));
    const env = {
      OAUTH_ISSUER: 'http://127.0.0.1:4100',
      OAUTH_TOKEN_SECRET: 'a-secret-both-copies-share-32-bytes!',
      OAUTH_CLIENTS_FILE: join(dir, 'clients.json'),
      DATABASE_URL,
      OAUTH_CLIENTS_TABLE: table,
      REDIS_URL,
      OAUTH_REDIS_PREFIX: prefix,
    };
    // Started together, as two processes behind a load balancer would be.
    servers = await withEnv(env, () => Promise.all([createExampleServer(), createExampleServer()]));
  });

  afterAll(async () => {
    await Promise.all(servers.map((server) => server.close()));
    const redis = await connectRedis();
    await deleteKeys(redis, prefix);
    redis.destroy();
    const db = await temporarySchema();
    await db.pool.query(`drop table if exists "public"."${table}"`);
    await db.drop();
  });

  const [a, b] = [() => servers[0]?.app as Express, () => servers[1]?.app as Express];
  const token = async (app: Express): Promise<string> => (await request(app).post('/token').auth(CLIENT.id, CLIENT.secret).type('form').send(CC).expect(200)).body.access_token;

  it('creates the table and imports OAUTH_CLIENTS_FILE once, though both copies start together', async () => {
    expect(servers.map((server) => server.demoClient)).toEqual([undefined, undefined]);
    const imported = servers.map((server) => Number(/, (\d+) imported from /.exec(server.notes.join('\n'))?.[1]));
    expect(imported.sort()).toEqual([0, 1]);
    expect(servers[0]?.notes).toContain(`revocations, used assertion ids and rate limits: Redis, keys ${prefix}*`);
    const db = await temporarySchema();
    try {
      expect((await db.pool.query(`select client_id from "public"."${table}"`)).rows).toEqual([{ client_id: CLIENT.id }]);
    } finally {
      await db.drop();
    }
  });

  it('accepts on one copy the tokens of the other, and refuses on both a token revoked through one', async () => {
    const issued = await token(a());
    await request(b()).get('/api/data').set('Authorization', `Bearer ${issued}`).expect(200, { client_id: CLIENT.id, scope: 'read' });
    await request(b()).post('/revoke').auth(CLIENT.id, CLIENT.secret).type('form').send({ token: issued }).expect(200);
    for (const app of [a(), b()]) expect((await request(app).get('/api/data').set('Authorization', `Bearer ${issued}`)).status).toBe(401);
  });

  it('keeps revocations and rate-limit counters in Redis under OAUTH_REDIS_PREFIX', async () => {
    const redis = await connectRedis();
    try {
      const keys = await keysUnder(redis, prefix);
      expect(keys.some((key) => key.startsWith(`${prefix}revoked:`))).toBe(true);
      expect(keys.some((key) => key.startsWith(`${prefix}rl:per-address:`))).toBe(true);
    } finally {
      redis.destroy();
    }
  });

  it('locks the client after 10 failed authentications in total, alternating between the copies', async () => {
    for (let i = 0; i < 10; i += 1) await request(i % 2 === 0 ? a() : b()).post('/token').auth(CLIENT.id, 'wrong').type('form').send(CC).expect(401);
    for (const app of [a(), b()]) expect((await request(app).post('/token').auth(CLIENT.id, CLIENT.secret).type('form').send(CC)).status).toBe(429);
  });
});

describeWithPostgres('the example server with DATABASE_URL alone', () => {
  it('reads clients from the table, made if missing, and makes no demo client', async () => {
    const table = `oauth_clients_example_${randomBytes(4).toString('hex')}`;
    const server = await withEnv({ DATABASE_URL, OAUTH_CLIENTS_TABLE: table, OAUTH_TOKEN_SECRET: 'x'.repeat(32) }, createExampleServer);
    const db = await temporarySchema();
    try {
      expect(server.demoClient).toBeUndefined();
      expect(server.notes).toEqual([`clients: PostgreSQL table ${table}`]);
      const client = await aClient({ scope: 'read', cost: 10 });
      await request(server.app).post('/token').auth(client.id, client.secret).type('form').send(CC).expect(401);
      await new PostgresClientStore(db.pool, { table }).addClient(client.record);
      await request(server.app).post('/token').auth(client.id, client.secret).type('form').send(CC).expect(200);
    } finally {
      await server.close();
      await db.pool.query(`drop table if exists "public"."${table}"`);
      await db.drop();
    }
  });
});

describeWithServices('the cluster example: two copies behind a load balancer', () => {
  it('runs with npm run example:cluster: one token served by both copies, revoked on both, and one lock for both', async () => {
    const [lb, portA, portB] = [await freePort(), await freePort(), await freePort()];
    const output = await new Promise<string>((resolve, reject) => {
      const child = spawn('npm', ['run', 'example:cluster', '--silent'], {
        cwd: ROOT,
        env: cleanEnv({ LB_PORT: String(lb), PORT_A: String(portA), PORT_B: String(portB), REDIS_URL, DATABASE_URL }),
      });
      let text = '';
      child.stdout.on('data', (chunk: Buffer) => (text += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (text += chunk.toString()));
      const timer = setTimeout(() => (child.kill(), reject(new Error(`timed out: ${text}`))), 40_000);
      child.on('exit', (code) => (clearTimeout(timer), code === 0 ? resolve(text) : reject(new Error(`exit ${code}: ${text}`))));
    });
    const lines = output.split('\n');
    expect(lines).toContain(`[a] express-client-credentials example on http://127.0.0.1:${portA}`);
    expect(lines).toContain(`[b] express-client-credentials example on http://127.0.0.1:${portB}`);
    expect(lines.filter((line) => / 1 imported from /.test(line))).toHaveLength(1);
    expect(lines).toContain(`load balancer on http://127.0.0.1:${lb}, round-robin over a (:${portA}) and b (:${portB})`);
    expect(lines).toContain('POST /token by a: 200');
    expect(lines).toContain('GET /api/data by b: 200 {"client_id":"cluster-demo","scope":"read"}');
    expect(lines).toContain('POST /revoke by a: 200');
    expect(lines).toContain('GET /api/data by b: 401 (revoked everywhere)');
    expect(lines).toContain('GET /api/data by a: 401 (revoked everywhere)');
    expect(lines).toContain(`10 wrong secrets: ${Array.from({ length: 10 }, (_, i) => `401 by ${i % 2 === 0 ? 'b' : 'a'}`).join(', ')}`);
    expect(lines).toContain('the right secret by b: 429 (locked on every instance: the limit counts across them)');
    expect(lines).toContain('the right secret by a: 429 (locked on every instance: the limit counts across them)');
    // It removes what it made.
    const redis = await connectRedis();
    try {
      expect(await keysUnder(redis, 'ecc-cluster-')).toEqual([]);
    } finally {
      redis.destroy();
    }
  }, 60_000); // past the child's own 40 s deadline, which kills it: a jest timeout first would leave it running
});

describe('the split example: authorization server, resource server and calling service', () => {
  it('runs the trio with npm run example:split: three calls answered with one client id', async () => {
    const [asPort, apiPort] = [await freePort(), await freePort()];
    const output = await new Promise<string>((resolve, reject) => {
      const child = spawn('npm', ['run', 'example:split', '--silent'], { cwd: ROOT, env: cleanEnv({ AS_PORT: String(asPort), API_PORT: String(apiPort) }) });
      let text = '';
      child.stdout.on('data', (chunk: Buffer) => (text += chunk.toString()));
      const timer = setTimeout(() => (child.kill(), reject(new Error(`timed out: ${text}`))), 30_000);
      child.on('exit', (code) => (clearTimeout(timer), code === 0 ? resolve(text) : reject(new Error(`exit ${code}: ${text}`))));
    });
    expect(output).toContain(`[authorization-server] authorization server on http://127.0.0.1:${asPort}`);
    expect(output).toContain(`[resource-server] resource server on http://127.0.0.1:${apiPort}`);
    const calls = output.split('\n').filter((line) => line.startsWith('[calling-service] '));
    expect(calls.map((line) => JSON.parse(line.slice('[calling-service] '.length)))).toEqual(
      [1, 2, 3].map((call) => ({ call, status: 200, body: { reports: ['q1', 'q2'], client_id: 'reports-caller' } })),
    );
  }, 45_000); // past the child's own 30 s deadline, as above
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}
