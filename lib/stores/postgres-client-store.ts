// Client registrations (RFC 7591 names) in a PostgreSQL table, shared by every instance of an app,
// with a small in-process cache in front of it that NOTIFY can empty at once on every instance.

import { BoundedMap } from '../core/bounded-map.js';
import { resolveClient, type ClientRecord } from '../core/client.js';
import { ConfigurationError } from '../core/errors.js';
import { checkOptions, nonNegativeNumber, positiveInteger } from '../core/options.js';
import type { ClientStore } from '../core/stores.js';
import { channelFor, createTableSql, identifier, isPool, MIGRATION_LOCK, PostgresListener, quote, resolveListenOptions, type PostgresListenOptions } from './postgres-listener.js';

/**
 * A connection to PostgreSQL: a `Pool` or a connected `Client` from `pg` fits as it is. This package
 * does not load `pg` itself.
 */
export interface PostgresQueryable {
  query(text: string, values?: unknown[]): Promise<{ rows: unknown[]; rowCount?: number | null }>;
}

export interface PostgresClientStoreOptions {
  /** The schema of the table; `migrate()` creates it if missing. Default: `public`. */
  schema?: string | undefined;
  /** The table of client records. Default: `oauth_clients`. */
  table?: string | undefined;
  /**
   * Milliseconds a found record is served from this process's cache before it is read again; `0`
   * reads every time. A change made in the table (a client disabled, a secret rolled over) reaches
   * each instance within this time, or at once with `invalidate()`, and at once on every instance
   * that `listen()`s when made by `addClient()` or `updateClient()`. Unknown ids are never cached,
   * so a client added on one instance is known to all at once. Default: 30000.
   */
  cacheTtl?: number | undefined;
  /** Records kept in the cache at most; the oldest goes first. Default: 1000. */
  cacheSize?: number | undefined;
}

interface Cached {
  readonly record: ClientRecord;
  readonly until: number;
}

const DEFAULT_TABLE = 'oauth_clients';
const DEFAULT_SCHEMA = 'public';

/**
 * A `ClientStore` over one PostgreSQL table (see `postgres-schema.sql`): one row per client, its
 * record as `jsonb` in the same RFC 7591 form as a clients file. A query that fails or takes longer
 * than the issuer's `storeTimeout` is answered with a 503.
 * @example
 * import { Pool } from 'pg';
 * import { PostgresClientStore } from 'express-client-credentials/postgres';
 * const clients = new PostgresClientStore(new Pool({ connectionString: process.env.DATABASE_URL }));
 * await clients.migrate();
 * app.use('/token', issuer({ clients, signingKey }));
 */
export class PostgresClientStore implements ClientStore {
  readonly #db: PostgresQueryable;
  readonly #table: string;
  readonly #schema: string;
  /** The NOTIFY channel of the table, on which `addClient()` and `updateClient()` announce changes. */
  readonly #channel: string;
  readonly #cacheTtl: number;
  readonly #cache: BoundedMap<string, Cached>;
  readonly #inFlight = new Map<string, Promise<ClientRecord | undefined>>();
  /** Bumped by `invalidate()`, so that a lookup that started before it does not refill the cache. */
  #generation = 0;
  #listener: PostgresListener | undefined;

  constructor(db: PostgresQueryable, options: PostgresClientStoreOptions = {}) {
    if (typeof db !== 'object' || db === null || typeof (db as PostgresQueryable).query !== 'function') {
      throw new ConfigurationError('PostgresClientStore needs a pg Pool or connected Client, with query(text, values)');
    }
    checkOptions(options, ['schema', 'table', 'cacheTtl', 'cacheSize'], 'PostgresClientStore');
    this.#db = db;
    this.#schema = identifier(options.schema ?? DEFAULT_SCHEMA, 'schema');
    this.#table = identifier(options.table ?? DEFAULT_TABLE, 'table');
    this.#channel = channelFor(this.#schema, this.#table);
    this.#cacheTtl = nonNegativeNumber(options.cacheTtl ?? 30_000, 'cacheTtl', 'milliseconds');
    this.#cache = new BoundedMap(positiveInteger(options.cacheSize ?? 1000, 'cacheSize', 'records'));
  }

  /** Creates the schema and the table if missing; safe to run on every start, by every instance at once. */
  async migrate(): Promise<void> {
    // One simple query is one transaction: the advisory lock serializes instances starting together.
    await this.#db.query(`${MIGRATION_LOCK}\n${postgresClientTableSql({ schema: this.#schema, table: this.#table })}`);
  }

  /**
   * Subscribes this instance to the changes that `addClient()` and `updateClient()` announce from
   * any instance (PostgreSQL NOTIFY on a channel named after the table): the cached record of that
   * client is forgotten at once, so a secret rolled over or a client disabled takes effect
   * everywhere at once. Holds one connection of the pool; after losing it, forgets the whole cache
   * once reconnected. Changes made in the table by other means still wait for `cacheTtl`, which
   * also stays the bound while the connection is down. Resolves once listening; on failure it
   * rejects and keeps retrying in the background until `close()`.
   * @example
   * const clients = new PostgresClientStore(pool);
   * await clients.listen();
   * process.on('SIGTERM', () => clients.close());
   */
  async listen(options: PostgresListenOptions = {}): Promise<void> {
    if (this.#listener === undefined) {
      checkOptions(options, ['heartbeat', 'maxStaleness'], 'PostgresClientStore.listen()');
      if (!isPool(this.#db)) throw new ConfigurationError('PostgresClientStore.listen() needs a pg Pool, with connect()');
      this.#listener = new PostgresListener({
        pool: this.#db,
        channel: this.#channel,
        ...resolveListenOptions(options),
        name: 'PostgresClientStore',
        // Changes may have been missed while no connection listened.
        resync: async () => this.invalidate(),
        notify: (clientId) => this.invalidate(clientId === '' ? undefined : clientId),
      });
    }
    return this.#listener.start();
  }

  /** Stops listening and releases the listening connection; the pool stays open. */
  async close(): Promise<void> {
    this.#listener?.close();
    this.#listener = undefined;
  }

  /**
   * With `fresh` (the issuer asks so when a secret fails), reads the table past the cache and
   * refills it; the cached record stays until then, so a fresh read that fails evicts nothing.
   */
  async findClient(clientId: string, options?: { readonly fresh?: boolean }): Promise<ClientRecord | undefined> {
    // A lookup that began before this fresh read must not refill the cache after it.
    if (options?.fresh === true) this.#generation += 1;
    const cached = options?.fresh === true ? undefined : this.#cache.get(clientId);
    if (cached !== undefined && cached.until > Date.now()) return structuredClone(cached.record);
    // Concurrent requests for one client share one query; a fresh read does not join one that began before it.
    let lookup = options?.fresh === true ? undefined : this.#inFlight.get(clientId);
    if (lookup === undefined) {
      lookup = this.#read(clientId).finally(() => this.#inFlight.delete(clientId));
      this.#inFlight.set(clientId, lookup);
    }
    const record = await lookup;
    return record === undefined ? undefined : structuredClone(record);
  }

  /**
   * Registers a client, validated as the issuer would; refuses an id that is already registered and
   * a record with a plaintext `client_secret`.
   * @example await clients.addClient({ client_id: 'reports', client_secret_hash: await hashSecret(secret), scope: 'read' });
   */
  async addClient(record: ClientRecord): Promise<void> {
    const client = resolveClient(record);
    const { rows } = await this.#db.query(
      `with added as (insert into ${this.#qualified()} (client_id, record) values ($1, $2::jsonb) on conflict (client_id) do nothing returning client_id)\n${notifyFrom('added')}`,
      [client.id, JSON.stringify(record), this.#channel],
    );
    if (rows.length === 0) throw new ConfigurationError(`client ${JSON.stringify(client.id)} is already registered`);
    this.invalidate(client.id);
  }

  /**
   * Replaces the record of a registered client (a secret rolled over, a scope added), validated as
   * the issuer would; refuses an unknown id and a record with a plaintext `client_secret`. Sets
   * `updated_at`, and forgets this process's cached copy; other instances see it within `cacheTtl`,
   * or at once if they `listen()`.
   * @example await clients.updateClient({ ...record, disabled: true });
   */
  async updateClient(record: ClientRecord): Promise<void> {
    const client = resolveClient(record);
    try {
      const { rows } = await this.#db.query(
        `with updated as (update ${this.#qualified()} set record = $2::jsonb, updated_at = now() where client_id = $1 returning client_id)\n${notifyFrom('updated')}`,
        [client.id, JSON.stringify(record), this.#channel],
      );
      if (rows.length === 0) throw new ConfigurationError(`client ${JSON.stringify(client.id)} is not registered`);
    } finally {
      // Even when the update failed midway: the next lookup reads what the table really holds.
      this.invalidate(client.id);
    }
  }

  /** Forgets the cached record of one client, or of all: the next lookup reads the table. */
  invalidate(clientId?: string): void {
    this.#generation += 1;
    if (clientId === undefined) this.#cache.clear();
    else this.#cache.delete(clientId);
  }

  async #read(clientId: string): Promise<ClientRecord | undefined> {
    const generation = this.#generation;
    const { rows } = await this.#db.query(`select record from ${this.#qualified()} where client_id = $1`, [clientId]);
    const record = (rows[0] as { record?: ClientRecord } | undefined)?.record;
    // The table answered, so forgetting the cached copy is safe: a record changed or removed since
    // is not served again. It is cached anew only if nothing was invalidated during the read.
    this.#cache.delete(clientId);
    if (record !== undefined && this.#cacheTtl > 0 && generation === this.#generation) {
      this.#cache.set(clientId, { record, until: Date.now() + this.#cacheTtl });
    }
    return record;
  }

  #qualified(): string {
    return `${quote(this.#schema)}.${quote(this.#table)}`;
  }
}

/**
 * Announces the changed client id to the instances that `listen()`, when the change commits. A
 * payload must stay under 8000 bytes: a longer id is announced as `''`, which forgets every client.
 */
function notifyFrom(changed: string): string {
  return `select client_id, pg_notify($3, case when octet_length(client_id) < 8000 then client_id else '' end) from ${changed}`;
}

/**
 * The statements that create the table (and a schema other than `public`), for `migrate()` or your
 * own migration tool; `postgres-schema.sql` holds them for the defaults.
 * @example fs.writeFileSync('migrations/001_oauth_clients.sql', postgresClientTableSql({ table: 'oauth_clients' }));
 */
export function postgresClientTableSql(options: { schema?: string; table?: string } = {}): string {
  return createTableSql(options, DEFAULT_TABLE, [
    '  client_id  text primary key,',
    '  -- The client record in RFC 7591 names, as in a clients file; validated when read.',
    '  record     jsonb not null check (jsonb_typeof(record) = \'object\' and record ->> \'client_id\' = client_id),',
    '  created_at timestamptz not null default now(),',
    '  updated_at timestamptz not null default now()',
  ]);
}
