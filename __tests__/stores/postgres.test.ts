// PostgresClientStore against a real PostgreSQL (DATABASE_URL): the shared ClientStore contract,
// the documented table, registration, and the in-process cache and its invalidation.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Pool } from 'pg';
import request from 'supertest';
import { ConfigurationError, hashSecret, type ClientRecord } from 'express-client-credentials';
import { PostgresClientStore, postgresClientTableSql, type PostgresQueryable } from 'express-client-credentials/postgres';
import { clientStoreContract } from './contract.js';
import { aClient, tokenServer } from '../support/fixtures.js';
import { closedPort, DATABASE_URL, describeWithPostgres, temporarySchema } from '../support/services.js';

let db: Awaited<ReturnType<typeof temporarySchema>>;
let tables = 0;

/** A store on a new table of this run's schema. */
async function freshStore(options: { cacheTtl?: number; db?: PostgresQueryable } = {}): Promise<PostgresClientStore> {
  const store = new PostgresClientStore(options.db ?? db.pool, { schema: db.schema, table: `clients_${++tables}`, cacheTtl: options.cacheTtl });
  await store.migrate();
  return store;
}

/** Counts the queries that reach the database. */
function counting(pool: Pool): PostgresQueryable & { count: number } {
  const counter = {
    count: 0,
    query: (text: string, values?: unknown[]) => {
      counter.count += 1;
      return pool.query(text, values);
    },
  };
  return counter;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describeWithPostgres('PostgresClientStore', () => {
  beforeAll(async () => {
    db = await temporarySchema();
  });
  afterAll(() => db.drop());

  clientStoreContract('PostgresClientStore', async (records) => {
    const store = await freshStore();
    for (const record of records) await store.addClient(record);
    return store;
  });

  describe('the table (lib/stores/postgres-schema.sql)', () => {
    it('is what postgres-schema.sql documents, and migrate() creates exactly it', async () => {
      const file = readFileSync(join(__dirname, '..', '..', 'lib', 'stores', 'postgres-schema.sql'), 'utf8');
      expect(file.endsWith(postgresClientTableSql())).toBe(true);
      expect(file).toMatch(/^-- /);
      // The file, with the default names, run in our schema, matches what migrate() makes there.
      const client = await db.pool.connect();
      try {
        await client.query(`set search_path to "${db.schema}"`);
        await client.query(file.replace('"public".', ''));
      } finally {
        await client.query('reset search_path');
        client.release();
      }
      await new PostgresClientStore(db.pool, { schema: db.schema, table: 'by_migrate' }).migrate();
      const columns = async (table: string) =>
        (
          await db.pool.query(
            'select column_name, data_type, is_nullable, column_default from information_schema.columns where table_schema = $1 and table_name = $2 order by ordinal_position',
            [db.schema, table],
          )
        ).rows;
      expect(await columns('by_migrate')).toEqual(await columns('oauth_clients'));
      expect((await columns('oauth_clients')).map((column: { column_name: string }) => column.column_name)).toEqual(['client_id', 'record', 'created_at', 'updated_at']);
    });

    it('migrate() is idempotent and safe when instances start together', async () => {
      const pools = [1, 2, 3, 4, 5].map(() => new Pool({ connectionString: DATABASE_URL, max: 1 }));
      const schema = `${db.schema}_together`;
      try {
        await Promise.all(pools.map((pool) => new PostgresClientStore(pool, { schema }).migrate()));
        await new PostgresClientStore(db.pool, { schema }).migrate();
        const { rows } = await db.pool.query('select count(*)::int as n from information_schema.tables where table_schema = $1', [schema]);
        expect(rows[0]).toEqual({ n: 1 });
      } finally {
        await db.pool.query(`drop schema if exists "${schema}" cascade`);
        await Promise.all(pools.map((pool) => pool.end()));
      }
    });

    it('takes any table name, quoted', async () => {
      const store = new PostgresClientStore(db.pool, { schema: db.schema, table: 'OAuth "Clients"; drop table x' });
      await store.migrate();
      const { record } = await aClient();
      await store.addClient(record);
      expect(await store.findClient(record.client_id)).toEqual(record);
    });

    it('refuses a row whose record names another client', async () => {
      await freshStore();
      const { record } = await aClient();
      await expect(db.pool.query(`insert into "${db.schema}"."clients_${tables}" (client_id, record) values ('other', $1)`, [record])).rejects.toThrow(/check constraint/);
    });
  });

  describe('addClient()', () => {
    it('refuses an id already registered, leaving the first record', async () => {
      const store = await freshStore();
      const first = await aClient({ scope: 'read' });
      await store.addClient(first.record);
      const second = await aClient({ client_id: first.id, scope: 'write' });
      await expect(store.addClient(second.record)).rejects.toThrow(new ConfigurationError(`client "${first.id}" is already registered`));
      expect(await store.findClient(first.id)).toEqual(first.record);
    });

    it.each([
      ['a record without a bcrypt hash', { client_id: 'no-hash', client_secret_hash: 'plain' }, /bcrypt/],
      ['a default scope outside its scope', { client_id: 'bad-scope', scope: 'read', default_scope: 'write' }, /default_scope/],
      ['a plaintext client_secret', { client_id: 'plain', client_secret: 'hunter2' }, /`client_secret` holds a plaintext secret/],
    ])('refuses %s with a ConfigurationError, writing nothing', async (_, fields, message) => {
      const store = await freshStore();
      const { record } = await aClient();
      const bad = { ...record, ...fields } as ClientRecord;
      await expect(store.addClient(bad)).rejects.toThrow(ConfigurationError);
      await expect(store.addClient(bad)).rejects.toThrow(message);
      expect((await db.pool.query(`select count(*)::int as n from "${db.schema}"."clients_${tables}"`)).rows[0]).toEqual({ n: 0 });
    });
  });

  describe('updateClient()', () => {
    const row = async (table: number, clientId: string) =>
      (await db.pool.query(`select record, updated_at > created_at as bumped from "${db.schema}"."clients_${table}" where client_id = $1`, [clientId])).rows[0] as
        | { record: ClientRecord; bumped: boolean }
        | undefined;

    it('replaces the record, sets updated_at, and forgets the cached copy at once', async () => {
      const store = await freshStore({ cacheTtl: 60_000 });
      const { record } = await aClient({ scope: 'read' });
      await store.addClient(record);
      expect(await store.findClient(record.client_id)).toEqual(record); // now cached for a minute
      expect((await row(tables, record.client_id))?.bumped).toBe(false);
      const rolled = (await aClient({ client_id: record.client_id })).record.client_secret_hash as string;
      const updated: ClientRecord = { ...record, client_secret_hash: [{ hash: record.client_secret_hash as string, expires_at: 1_900_000_000 }, rolled], scope: 'read write' };
      await store.updateClient(updated);
      expect(await store.findClient(record.client_id)).toEqual(updated);
      expect(await row(tables, record.client_id)).toEqual({ record: updated, bumped: true });
    });

    it('refuses an id that is not registered, adding nothing', async () => {
      const store = await freshStore();
      const { record } = await aClient();
      await expect(store.updateClient(record)).rejects.toThrow(new ConfigurationError(`client "${record.client_id}" is not registered`));
      expect((await db.pool.query(`select count(*)::int as n from "${db.schema}"."clients_${tables}"`)).rows[0]).toEqual({ n: 0 });
    });

    it.each([
      ['a record without a bcrypt hash', { client_secret_hash: 'plain' }, /bcrypt/],
      ['a private_key_jwt record without keys', { token_endpoint_auth_method: 'private_key_jwt', client_secret_hash: undefined }, /jwks/],
      ['a plaintext client_secret', { client_secret: 'hunter2' }, /`client_secret` holds a plaintext secret/],
    ])('refuses %s with a ConfigurationError, leaving the row as it was', async (_, fields, message) => {
      const store = await freshStore();
      const { record } = await aClient();
      await store.addClient(record);
      const bad = JSON.parse(JSON.stringify({ ...record, ...fields })) as ClientRecord;
      await expect(store.updateClient(bad)).rejects.toThrow(ConfigurationError);
      await expect(store.updateClient(bad)).rejects.toThrow(message);
      expect((await row(tables, record.client_id))?.record).toEqual(record);
    });
  });

  describe('the in-process cache', () => {
    const update = (table: number, clientId: string, fields: object) =>
      db.pool.query(`update "${db.schema}"."clients_${table}" set record = record || $2::jsonb, updated_at = now() where client_id = $1`, [clientId, JSON.stringify(fields)]);

    it('reads a client once per cacheTtl, and again after invalidate(clientId)', async () => {
      const queries = counting(db.pool);
      const store = await freshStore({ db: queries });
      const { record } = await aClient({ scope: 'read' });
      await store.addClient(record);
      const before = queries.count;
      expect(await store.findClient(record.client_id)).toEqual(record);
      await update(tables, record.client_id, { disabled: true });
      expect(await store.findClient(record.client_id)).toEqual(record);
      expect(queries.count - before).toBe(1);
      store.invalidate(record.client_id);
      expect(await store.findClient(record.client_id)).toEqual({ ...record, disabled: true });
      expect(queries.count - before).toBe(2);
    });

    it('reads past the cache with findClient(id, { fresh: true }), and caches what it read', async () => {
      const queries = counting(db.pool);
      const store = await freshStore({ db: queries });
      const { record } = await aClient({ scope: 'read' });
      await store.addClient(record);
      await store.findClient(record.client_id);
      await update(tables, record.client_id, { scope: 'read write' });
      expect(await store.findClient(record.client_id, { fresh: true })).toMatchObject({ scope: 'read write' });
      const before = queries.count;
      expect(await store.findClient(record.client_id)).toMatchObject({ scope: 'read write' });
      expect(queries.count).toBe(before);
    });

    it('keeps the cached record when a fresh read fails, and forgets it when a fresh read finds the client removed', async () => {
      let down = false;
      const store = await freshStore({ db: { query: (text: string, values?: unknown[]) => (down ? Promise.reject(new Error('connection lost')) : db.pool.query(text, values)) } });
      const { record } = await aClient({ scope: 'read' });
      await store.addClient(record);
      await store.findClient(record.client_id);
      down = true;
      await expect(store.findClient(record.client_id, { fresh: true })).rejects.toThrow('connection lost');
      expect(await store.findClient(record.client_id)).toEqual(record);
      down = false;
      await db.pool.query(`delete from "${db.schema}"."clients_${tables}" where client_id = $1`, [record.client_id]);
      expect(await store.findClient(record.client_id, { fresh: true })).toBeUndefined();
      expect(await store.findClient(record.client_id)).toBeUndefined();
    });

    it('does not serve the old record again after a fresh read that overlapped an invalidation', async () => {
      let release: () => void = () => undefined;
      let stall = false;
      const store = await freshStore({
        db: {
          query: async (text: string, values?: unknown[]) => {
            const result = await db.pool.query(text, values);
            if (stall) await new Promise<void>((resolve) => (release = resolve));
            return result;
          },
        },
      });
      const { record } = await aClient({ scope: 'read' });
      await store.addClient(record);
      await store.findClient(record.client_id);
      await db.pool.query(`delete from "${db.schema}"."clients_${tables}" where client_id = $1`, [record.client_id]);
      stall = true;
      const fresh = store.findClient(record.client_id, { fresh: true });
      await new Promise((resolve) => setTimeout(resolve, 50));
      store.invalidate('someone-else'); // a NOTIFY about another client, while the fresh read is out
      stall = false;
      release();
      expect(await fresh).toBeUndefined();
      expect(await store.findClient(record.client_id)).toBeUndefined();
    });

    it('a secret rotated through another instance is accepted at once, and its client is never locked out', async () => {
      const table = `clients_${++tables}`;
      const [a, b] = [new PostgresClientStore(db.pool, { schema: db.schema, table }), new PostgresClientStore(db.pool, { schema: db.schema, table, cacheTtl: 60_000 })];
      await a.migrate();
      const client = await aClient();
      await a.addClient(client.record);
      const { app } = tokenServer([], { clients: b });
      await request(app).post('/token').auth(client.id, client.secret).type('form').send({ grant_type: 'client_credentials' }).expect(200); // b caches the record
      await a.updateClient({ ...client.record, client_secret_hash: await hashSecret('rotated-secret', 4) });
      for (let i = 0; i < 15; i++) {
        await request(app).post('/token').auth(client.id, 'rotated-secret').type('form').send({ grant_type: 'client_credentials' }).expect(200);
      }
    });

    it('forgets every client with invalidate()', async () => {
      const store = await freshStore();
      const clients = await Promise.all([aClient(), aClient()]);
      for (const { record } of clients) await store.addClient(record);
      for (const { record } of clients) await store.findClient(record.client_id);
      for (const { record } of clients) await update(tables, record.client_id, { scope: 'changed' });
      store.invalidate();
      for (const { record } of clients) expect(await store.findClient(record.client_id)).toMatchObject({ scope: 'changed' });
    });

    it('reads the table again once cacheTtl has passed', async () => {
      const store = await freshStore({ cacheTtl: 150 });
      const { record } = await aClient({ scope: 'read' });
      await store.addClient(record);
      await store.findClient(record.client_id);
      await update(tables, record.client_id, { scope: 'read write' });
      expect(await store.findClient(record.client_id)).toMatchObject({ scope: 'read' });
      await sleep(250);
      expect(await store.findClient(record.client_id)).toMatchObject({ scope: 'read write' });
    });

    it('reads every time with cacheTtl: 0', async () => {
      const queries = counting(db.pool);
      const store = await freshStore({ cacheTtl: 0, db: queries });
      const { record } = await aClient();
      await store.addClient(record);
      const before = queries.count;
      for (let i = 0; i < 3; i += 1) await store.findClient(record.client_id);
      expect(queries.count - before).toBe(3);
    });

    it('does not cache an unknown id: a client added elsewhere is found at once', async () => {
      const here = await freshStore();
      const other = new PostgresClientStore(db.pool, { schema: db.schema, table: `clients_${tables}` });
      const { record } = await aClient();
      expect(await here.findClient(record.client_id)).toBeUndefined();
      await other.addClient(record);
      expect(await here.findClient(record.client_id)).toEqual(record);
    });

    it('shares one query among concurrent lookups of one client', async () => {
      const queries = counting(db.pool);
      const store = await freshStore({ db: queries });
      const { record } = await aClient();
      await store.addClient(record);
      const before = queries.count;
      const found = await Promise.all(Array.from({ length: 10 }, () => store.findClient(record.client_id)));
      expect(found).toEqual(found.map(() => record));
      expect(queries.count - before).toBe(1);
    });

    it('does not let a lookup that started before invalidate() fill the cache with what it read', async () => {
      let release: () => void = () => undefined;
      const gate = new Promise<void>((resolve) => (release = resolve));
      const slow: PostgresQueryable = { query: async (text, values) => (text.startsWith('select record') ? gate.then(() => db.pool.query(text, values)) : db.pool.query(text, values)) };
      const store = await freshStore({ db: slow });
      const { record } = await aClient({ scope: 'read' });
      await store.addClient(record);
      const pending = store.findClient(record.client_id);
      store.invalidate(record.client_id);
      release();
      await pending;
      await update(tables, record.client_id, { scope: 'write' });
      expect(await store.findClient(record.client_id)).toMatchObject({ scope: 'write' });
    });

    it('hands out copies: changing a returned record changes nothing', async () => {
      const store = await freshStore();
      const { record } = await aClient({ scope: 'read' });
      await store.addClient(record);
      const found = await store.findClient(record.client_id);
      if (found !== undefined) found.scope = 'read write admin';
      expect(await store.findClient(record.client_id)).toEqual(record);
    });
  });

  describe('failures and configuration', () => {
    it('rejects, and does not hang, when PostgreSQL is unreachable', async () => {
      const pool = new Pool({ connectionString: `postgres://postgres@127.0.0.1:${await closedPort()}/test`, connectionTimeoutMillis: 1000 });
      try {
        const started = Date.now();
        await expect(new PostgresClientStore(pool).findClient('any')).rejects.toThrow(/ECONNREFUSED/);
        expect(Date.now() - started).toBeLessThan(1000);
      } finally {
        await pool.end();
      }
    });

    it.each([
      ['no pool', () => new PostgresClientStore(undefined as never)],
      ['a misspelt option', () => new PostgresClientStore(db.pool, { tabel: 'x' } as never)],
      ['an empty table name', () => new PostgresClientStore(db.pool, { table: '' })],
      ['a name PostgreSQL would cut', () => new PostgresClientStore(db.pool, { schema: 's'.repeat(64) })],
      ['a negative cacheTtl', () => new PostgresClientStore(db.pool, { cacheTtl: -1 })],
      ['a cacheSize of 0', () => new PostgresClientStore(db.pool, { cacheSize: 0 })],
    ])('throws a ConfigurationError for %s', (_, make) => {
      expect(make).toThrow(ConfigurationError);
    });
  });
});
