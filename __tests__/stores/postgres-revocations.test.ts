// PostgresRevocationStore against a real PostgreSQL (DATABASE_URL): the shared RevocationStore
// contract, several instances kept current by LISTEN/NOTIFY, durability, bounded memory, and
// failing closed behind a proxy that cuts or stalls the connections (RFC 7009 §2.1); and
// PostgresClientStore.listen(), which empties each instance's cache at once.

import { randomUUID } from 'node:crypto';
import bcrypt from 'bcryptjs';
import express from 'express';
import { Pool } from 'pg';
import request from 'supertest';
import { authenticate, ConfigurationError } from 'express-client-credentials';
import { PostgresClientStore, PostgresRevocationStore, postgresRevocationTableSql, type PostgresPool, type PostgresRevocationStoreOptions } from 'express-client-credentials/postgres';
import { revocationStoreContract } from './contract.js';
import { aClient, AUDIENCE, ISSUER, SECRET, tokenServer } from '../support/fixtures.js';
import { pgProxy, type PgProxy } from '../support/pg-proxy.js';
import { closedPort, DATABASE_URL, describeWithPostgres, temporarySchema } from '../support/services.js';

/** Small values, so that an outage shows within a test: a heartbeat every 50 ms, stale after 400 ms. */
const HEARTBEAT = 50;
const MAX_STALENESS = 400;

const now = (): number => Date.now() / 1000;
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const id = (): string => randomUUID();
const rejects = (answer: Promise<unknown>): Promise<boolean> => answer.then(() => false, () => true);

/** Milliseconds until `check` holds, polled every 10 ms; throws past `ms`. */
async function within(ms: number, check: () => Promise<boolean>): Promise<number> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > ms) throw new Error(`not within ${ms} ms`);
    await sleep(10);
  }
  return Date.now() - started;
}

let db: Awaited<ReturnType<typeof temporarySchema>>;
let tables = 0;
/** Closed after each test, last opened first: stores, then pools, then proxies. */
let cleanups: (() => Promise<void> | void)[] = [];

const aTable = (): string => `revocations_${++tables}`;

/** An instance's own pool, as a deployment has: with an 'error' listener, as pg advises. */
function aPool(url = DATABASE_URL): Pool {
  const pool = new Pool({ connectionString: url, connectionTimeoutMillis: 1000, max: 3 });
  pool.on('error', () => undefined);
  cleanups.push(() => pool.end());
  return pool;
}

async function aProxy(): Promise<PgProxy> {
  const proxy = await pgProxy();
  cleanups.push(() => proxy.close());
  return proxy;
}

/** A migrated store on a table of this run's schema (a new one unless given). */
async function aStore(options: PostgresRevocationStoreOptions & { pool?: PostgresPool } = {}): Promise<PostgresRevocationStore> {
  const { pool = db.pool, ...rest } = options;
  const store = new PostgresRevocationStore(pool, { schema: db.schema, table: aTable(), heartbeat: HEARTBEAT, maxStaleness: MAX_STALENESS, ...rest });
  cleanups.push(() => store.close());
  await store.migrate();
  return store;
}

/** A schema of its own for the suite, and what each test opened closed after it. */
function useSchema(): void {
  beforeAll(async () => {
    db = await temporarySchema();
  });
  afterEach(async () => {
    jest.restoreAllMocks();
    for (const cleanup of cleanups.reverse()) await cleanup();
    cleanups = [];
  });
  afterAll(() => db.drop());
}

const rowsOf = async (table: string): Promise<string[]> =>
  (await db.pool.query(`select jti from "${db.schema}"."${table}" order by jti`)).rows.map((row: { jti: string }) => row.jti);

describeWithPostgres('PostgresRevocationStore', () => {
  useSchema();

  revocationStoreContract('PostgresRevocationStore', () => aStore());

  describe('several instances: a token revoked through one is refused by all (RFC 7009 §2.1)', () => {
    it('refuses, through instance B, a token revoked through instance A, within maxStaleness', async () => {
      const table = aTable();
      const [a, b] = [await aStore({ table }), await aStore({ table, pool: aPool() })];
      await Promise.all([a.start(), b.start()]);
      const jti = id();
      expect(await b.isRevoked(jti)).toBe(false);
      await a.revoke(jti, now() + 60);
      expect(await a.isRevoked(jti)).toBe(true); // its own revocation: at once
      expect(await within(MAX_STALENESS, () => b.isRevoked(jti))).toBeLessThan(MAX_STALENESS);
    });

    it('answers isRevoked() from memory: no query on the request path', async () => {
      let queries = 0;
      const counted: PostgresPool = {
        query: (text, values) => ((queries += 1), db.pool.query(text, values)),
        connect: () => db.pool.connect(),
      };
      const store = await aStore({ pool: counted });
      await store.start();
      await store.revoke(id(), now() + 60);
      const before = queries;
      await Promise.all(Array.from({ length: 100 }, () => store.isRevoked(id())));
      expect(queries).toBe(before);
    });

    it('keeps revocations across a restart: a new store object loads them from the table', async () => {
      const table = aTable();
      const first = await aStore({ table });
      const jti = id();
      await first.revoke(jti, now() + 60);
      await first.close();
      const restarted = await aStore({ table, pool: aPool() });
      await restarted.start();
      expect(await restarted.isRevoked(jti)).toBe(true);
      expect(await restarted.isRevoked(id())).toBe(false);
    });

    it('keeps the later expiry when two instances revoke one token', async () => {
      const table = aTable();
      const [a, b] = [await aStore({ table }), await aStore({ table, pool: aPool() })];
      await Promise.all([a.start(), b.start()]);
      const jti = id();
      await a.revoke(jti, now() + 60);
      await b.revoke(jti, now() + 0.3);
      const { rows } = await db.pool.query(`select extract(epoch from expires_at)::float8 - extract(epoch from now()) as left from "${db.schema}"."${table}"`);
      expect(rows).toEqual([{ left: expect.any(Number) }]);
      expect((rows[0] as { left: number }).left).toBeGreaterThan(50);
      await sleep(400);
      expect([await a.isRevoked(jti), await b.isRevoked(jti)]).toEqual([true, true]);
    });
  });

  describe('bounded: memory and table hold only revocations that have not expired', () => {
    it('stores a revocation whose expiry is past neither in memory nor in the table', async () => {
      const table = aTable();
      const store = await aStore({ table });
      await store.revoke(id(), now() - 1);
      expect(store.size).toBe(0);
      expect(await rowsOf(table)).toEqual([]);
    });

    it('sweeps expired revocations from memory, and deletes expired rows when it revokes', async () => {
      const table = aTable();
      const store = await aStore({ table });
      await store.start();
      const [soon, later] = [id(), id()];
      await store.revoke(soon, now() + 0.3);
      await store.revoke(later, now() + 60);
      expect(store.size).toBe(2);
      await sleep(1100);
      // A new instance (its first revoke() purges) and the same one (its sweep is due) both forget `soon`.
      const other = await aStore({ table });
      const third = id();
      await other.revoke(third, now() + 60);
      expect(await rowsOf(table)).toEqual([later, third].sort());
      await store.revoke(id(), now() + 60);
      expect(store.size).toBe(3); // later, third (notified) and the last one
      expect(await store.isRevoked(soon)).toBe(false);
      expect(await store.isRevoked(third)).toBe(true);
    });
  });

  describe('failing closed: an answer is never more than maxStaleness out of date', () => {
    it('rejects isRevoked() within maxStaleness when the network stalls, and recovers by itself', async () => {
      const proxy = await aProxy();
      const table = aTable();
      const store = await aStore({ table, pool: aPool(proxy.url) });
      const elsewhere = await aStore({ table });
      await store.start();
      expect(await store.isRevoked(id())).toBe(false);
      proxy.stall();
      const failedAfter = await within(MAX_STALENESS + 300, () => rejects(store.isRevoked(id())));
      expect(failedAfter).toBeLessThanOrEqual(MAX_STALENESS + 150); // + polling, on a busy machine
      await expect(store.isRevoked(id())).rejects.toThrow(/PostgresRevocationStore cannot confirm that it is current: .*maxStaleness \(400 ms\)/);
      const jti = id();
      await elsewhere.revoke(jti, now() + 60); // while the store hears nothing
      proxy.restore();
      await within(3000, async () => !(await rejects(store.isRevoked(id()))));
      expect(await store.isRevoked(jti)).toBe(true);
    });

    it('rejects isRevoked() within maxStaleness when the connection is cut, and reads what it missed once reconnected', async () => {
      const proxy = await aProxy();
      const table = aTable();
      const store = await aStore({ table, pool: aPool(proxy.url) });
      const elsewhere = await aStore({ table });
      await store.start();
      const before = id();
      await elsewhere.revoke(before, now() + 60);
      await within(MAX_STALENESS, () => store.isRevoked(before));
      proxy.cut();
      const failedAfter = await within(MAX_STALENESS + 300, () => rejects(store.isRevoked(id())));
      expect(failedAfter).toBeLessThanOrEqual(MAX_STALENESS + 150); // + polling, on a busy machine
      // Its notification goes nowhere: only reading the table again can show it.
      const missed = id();
      await elsewhere.revoke(missed, now() + 60);
      await sleep(300); // reconnecting fails meanwhile, quietly, with backoff
      proxy.restore();
      await within(3000, async () => !(await rejects(store.isRevoked(id()))));
      expect([await store.isRevoked(before), await store.isRevoked(missed)]).toEqual([true, true]);
    });

    it('rejects before the table could be read: PostgreSQL unreachable at start', async () => {
      const store = new PostgresRevocationStore(aPool(`postgres://postgres@127.0.0.1:${await closedPort()}/test`), { heartbeat: HEARTBEAT, maxStaleness: MAX_STALENESS });
      cleanups.push(() => store.close());
      await expect(store.isRevoked(id())).rejects.toThrow(/PostgresRevocationStore has not yet loaded from PostgreSQL: .*ECONNREFUSED/);
      await expect(store.start()).rejects.toThrow(/ECONNREFUSED/);
    });

    it('answers 503 at the guard while it cannot confirm, 401 for a token revoked at another instance', async () => {
      const client = await aClient({ scope: 'read' });
      const proxy = await aProxy();
      const table = aTable();
      const [atIssuer, atApi] = [await aStore({ table }), await aStore({ table, pool: aPool(proxy.url) })];
      const { app: issuing } = tokenServer([client], { revocations: atIssuer });
      const api = express().get('/data', authenticate({ secret: SECRET, issuer: ISSUER, audience: AUDIENCE, revocations: atApi }), (_req, res) => {
        res.json({});
      });
      const token = (await request(issuing).post('/token').auth(client.id, client.secret).type('form').send({ grant_type: 'client_credentials' }).expect(200)).body.access_token as string;
      const call = () => request(api).get('/data').set('Authorization', `Bearer ${token}`);
      await call().expect(200);
      jest.spyOn(console, 'error').mockImplementation(() => undefined); // the guard reports the 503
      proxy.stall();
      await within(MAX_STALENESS + 300, () => rejects(atApi.isRevoked(id())));
      await call().expect(503).expect('Retry-After', '5');
      proxy.restore();
      await within(3000, async () => !(await rejects(atApi.isRevoked(id()))));
      await call().expect(200);
      await request(issuing).post('/revoke').auth(client.id, client.secret).type('form').send({ token }).expect(200);
      await within(MAX_STALENESS, async () => (await call()).status === 401);
    });

    it('close() stops answering and releases its connection, leaving the pool open', async () => {
      const pool = aPool();
      const store = await aStore({ pool });
      await store.start();
      expect(pool.totalCount - pool.idleCount).toBe(1); // the listening connection
      await store.close();
      expect(pool.totalCount - pool.idleCount).toBe(0);
      await expect(store.isRevoked(id())).rejects.toThrow(/closed/);
      expect((await pool.query('select 1 as one')).rows).toEqual([{ one: 1 }]);
    });
  });

  describe('the table and configuration', () => {
    it('is what postgresRevocationTableSql() says, and migrate() creates exactly it', async () => {
      await db.pool.query(postgresRevocationTableSql({ schema: db.schema, table: 'by_sql' }));
      const store = await aStore({ table: 'by_migrate' });
      await store.migrate(); // idempotent
      const columns = async (table: string) =>
        (
          await db.pool.query(
            'select column_name, data_type, is_nullable from information_schema.columns where table_schema = $1 and table_name = $2 order by ordinal_position',
            [db.schema, table],
          )
        ).rows;
      expect(await columns('by_migrate')).toEqual(await columns('by_sql'));
      expect(await columns('by_sql')).toEqual([
        { column_name: 'jti', data_type: 'text', is_nullable: 'NO' },
        { column_name: 'expires_at', data_type: 'timestamp with time zone', is_nullable: 'NO' },
      ]);
      expect(postgresRevocationTableSql()).toMatch(/^create table if not exists "public"\."oauth_revocations" \(/);
    });

    it('refuses a revocation without a finite expiry with a TypeError', async () => {
      const store = await aStore();
      await expect(store.revoke(id(), Number.NaN)).rejects.toThrow(TypeError);
    });

    it.each([
      ['no pool', () => new PostgresRevocationStore(undefined as never)],
      ['a queryable without connect()', () => new PostgresRevocationStore({ query: db.pool.query.bind(db.pool) } as never)],
      ['a misspelt option', () => new PostgresRevocationStore(db.pool, { maxStale: 1 } as never)],
      ['an empty table name', () => new PostgresRevocationStore(db.pool, { table: '' })],
      ['a name PostgreSQL would cut', () => new PostgresRevocationStore(db.pool, { schema: 's'.repeat(64) })],
      ['a heartbeat of 0', () => new PostgresRevocationStore(db.pool, { heartbeat: 0 })],
      ['a maxStaleness below twice the heartbeat', () => new PostgresRevocationStore(db.pool, { heartbeat: 1000, maxStaleness: 1500 })],
    ])('throws a ConfigurationError for %s', (_, make) => {
      expect(make).toThrow(ConfigurationError);
    });
  });
});

describeWithPostgres('PostgresClientStore.listen(): a changed client takes effect on every instance at once', () => {
  useSchema();

  /** A store caching for a minute, so that only a notification can make it read again. */
  function aClientStore(table: string, pool: PostgresPool = db.pool): PostgresClientStore {
    const store = new PostgresClientStore(pool, { schema: db.schema, table, cacheTtl: 60_000 });
    cleanups.push(() => store.close());
    return store;
  }

  async function registered(table: string) {
    const a = aClientStore(table);
    await a.migrate();
    const client = await aClient({ scope: 'read' });
    await a.addClient(client.record);
    const rolled = await aClient({ client_id: client.id });
    return { a, client, rolled: { ...client.record, client_secret_hash: rolled.record.client_secret_hash }, secret: rolled.secret };
  }

  it('forgets on instance B the cached record of a client that instance A updates: the new secret is accepted at once', async () => {
    const table = `clients_${++tables}`;
    const { a, client, rolled, secret } = await registered(table);
    const b = aClientStore(table, aPool());
    await b.listen({ heartbeat: HEARTBEAT, maxStaleness: MAX_STALENESS });
    expect(await b.findClient(client.id)).toEqual(client.record); // cached for a minute
    await a.updateClient(rolled);
    expect(await within(200, async () => (await b.findClient(client.id))?.client_secret_hash === rolled.client_secret_hash)).toBeLessThan(200);
    expect(bcrypt.compareSync(secret, (await b.findClient(client.id))?.client_secret_hash as string)).toBe(true);
  });

  it('keeps its cached record until cacheTtl without listen(), as before', async () => {
    const table = `clients_${++tables}`;
    const { a, client, rolled } = await registered(table);
    const b = aClientStore(table, aPool());
    expect(await b.findClient(client.id)).toEqual(client.record);
    await a.updateClient(rolled);
    await sleep(200);
    expect(await b.findClient(client.id)).toEqual(client.record);
  });

  it('forgets its whole cache once it has reconnected, so that a change made meanwhile is not missed', async () => {
    const table = `clients_${++tables}`;
    const { a, client, rolled } = await registered(table);
    const proxy = await aProxy();
    const b = aClientStore(table, aPool(proxy.url));
    await b.listen({ heartbeat: HEARTBEAT, maxStaleness: MAX_STALENESS });
    expect(await b.findClient(client.id)).toEqual(client.record);
    proxy.cut();
    await a.updateClient(rolled);
    await sleep(100);
    expect(await b.findClient(client.id)).toEqual(client.record); // cached: nothing to hear it with
    proxy.restore();
    await within(3000, async () => (await b.findClient(client.id).catch(() => undefined))?.client_secret_hash === rolled.client_secret_hash);
  });

  it('refuses to listen() without a pool to take a connection from', async () => {
    const store = new PostgresClientStore({ query: db.pool.query.bind(db.pool) });
    await expect(store.listen()).rejects.toThrow(new ConfigurationError('PostgresClientStore.listen() needs a pg Pool, with connect()'));
    await expect(aClientStore('x').listen({ heartbeat: 1000, maxStaleness: 1000 })).rejects.toThrow(ConfigurationError);
  });
});
