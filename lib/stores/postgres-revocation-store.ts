// Revoked tokens in a PostgreSQL table, shared by every instance of an app (RFC 7009 §2.1): each
// instance answers from a copy in memory that LISTEN/NOTIFY keeps current, and fails closed when
// it cannot confirm that it is.

import { ConfigurationError } from '../core/errors.js';
import { checkOptions } from '../core/options.js';
import type { RevocationStore } from '../core/stores.js';
import {
  channelFor,
  createTableSql,
  identifier,
  isPool,
  MIGRATION_LOCK,
  PostgresListener,
  quote,
  resolveListenOptions,
  type PostgresListenConnection,
  type PostgresPool,
} from './postgres-listener.js';

export interface PostgresRevocationStoreOptions {
  /** The schema of the table; `migrate()` creates it if missing. Default: `public`. */
  schema?: string | undefined;
  /** The table of revoked token ids. Default: `oauth_revocations`. */
  table?: string | undefined;
  /** Milliseconds between two heartbeats on the listening connection. Default: 1000. */
  heartbeat?: number | undefined;
  /**
   * Milliseconds for which the copy in memory may go unconfirmed: past that, `isRevoked()` rejects
   * (a 503 from the guard and the issuer) until the listening connection is back and has read the
   * table again. Also the longest a token revoked elsewhere can still be accepted here. At least
   * twice `heartbeat`. Default: 5000.
   */
  maxStaleness?: number | undefined;
}

const OPTION_NAMES = Object.keys({ schema: true, table: true, heartbeat: true, maxStaleness: true } satisfies Record<keyof PostgresRevocationStoreOptions, true>);

const DEFAULT_SCHEMA = 'public';
const DEFAULT_TABLE = 'oauth_revocations';
/** Keeps the NOTIFY payload (`<exp> <jti>`) well under PostgreSQL's 8000 bytes; this library's ids are UUIDs. */
const MAX_JTI_BYTES = 4096;
/** Expired rows are deleted at most this often, by the instance that revokes. */
const PURGE_INTERVAL = 60_000;

const now = (): number => Date.now() / 1000;

/**
 * A `RevocationStore` in PostgreSQL, for teams that already run it, and several instances behind
 * a load balancer. `revoke()` writes one row per token (`jti`, `expires_at`) and announces it with
 * NOTIFY in the same statement. Each instance holds the revoked tokens that have not expired in
 * memory (its size is bounded by the tokens revoked within one token lifetime; expired ones are
 * never stored, and swept), loaded from the table at `start()` and kept current by LISTEN on one
 * connection of the pool, so `isRevoked()` runs no query.
 *
 * The delay is bounded and the store fails closed: a heartbeat through the listening connection
 * confirms the copy every `heartbeat` ms; unconfirmed for `maxStaleness` ms (PostgreSQL down,
 * the network stalled), `isRevoked()` rejects, which the issuer and the guards answer with a 503.
 * A lost connection is replaced in the background, with backoff, and the table read again before
 * answers resume, so revocations made meanwhile are not missed. Expired rows are deleted by
 * `revoke()`, at most once a minute per instance. Give the pool an `'error'` listener, as `pg` advises.
 * @example
 * import { Pool } from 'pg';
 * import { PostgresRevocationStore } from 'express-client-credentials/postgres';
 * const pool = new Pool({ connectionString: process.env.DATABASE_URL, connectionTimeoutMillis: 2000 }).on('error', console.error);
 * const revocations = new PostgresRevocationStore(pool);
 * await revocations.migrate();
 * await revocations.start();
 * app.use('/token', issuer({ clients, signingKey, revocations }));
 */
export class PostgresRevocationStore implements RevocationStore {
  readonly #db: PostgresPool;
  readonly #schema: string;
  readonly #table: string;
  readonly #channel: string;
  readonly #listener: PostgresListener;
  /** `jti` → `exp` (seconds since the epoch) of every revoked token known here. */
  readonly #expiry = new Map<string, number>();
  #nextSweep = 0;
  #nextPurge = 0;

  constructor(db: PostgresPool, options: PostgresRevocationStoreOptions = {}) {
    if (!isPool(db)) throw new ConfigurationError('PostgresRevocationStore needs a pg Pool, with query(text, values) and connect()');
    checkOptions(options, OPTION_NAMES, 'PostgresRevocationStore');
    this.#db = db;
    this.#schema = identifier(options.schema ?? DEFAULT_SCHEMA, 'schema');
    this.#table = identifier(options.table ?? DEFAULT_TABLE, 'table');
    this.#channel = channelFor(this.#schema, this.#table);
    this.#listener = new PostgresListener({
      pool: db,
      channel: this.#channel,
      ...resolveListenOptions(options),
      name: 'PostgresRevocationStore',
      resync: (connection) => this.#load(connection),
      notify: (payload) => this.#notified(payload),
    });
  }

  /** Creates the schema and the table if missing; safe to run on every start, by every instance at once. */
  async migrate(): Promise<void> {
    await this.#db.query(`${MIGRATION_LOCK}\n${postgresRevocationTableSql({ schema: this.#schema, table: this.#table })}`);
  }

  /**
   * Takes a connection of the pool to LISTEN on, and loads the table; resolves once `isRevoked()`
   * can answer. On failure it rejects and keeps retrying in the background until `close()`. The
   * first `isRevoked()` starts the store too, and waits for this.
   */
  start(): Promise<void> {
    return this.#listener.start();
  }

  async revoke(jti: string, expiresAt: number): Promise<void> {
    if (typeof jti !== 'string' || Buffer.byteLength(jti) > MAX_JTI_BYTES) throw new TypeError(`PostgresRevocationStore.revoke(): jti must be a string of at most ${MAX_JTI_BYTES} bytes`);
    if (typeof expiresAt !== 'number' || !Number.isFinite(expiresAt)) throw new TypeError('PostgresRevocationStore.revoke(): expiresAt must be seconds since the epoch');
    // Already expired: the token is refused for that.
    if (expiresAt <= now()) return;
    const table = this.#qualified();
    // Concurrent revocations of one token keep the latest expiry; the NOTIFY goes out when the row commits.
    const { rows } = await this.#db.query(
      [
        `with revoked as (insert into ${table} as r (jti, expires_at) values ($1, to_timestamp($2::float8))`,
        '  on conflict (jti) do update set expires_at = greatest(r.expires_at, excluded.expires_at)',
        '  returning r.jti, extract(epoch from r.expires_at) as exp)',
        "select exp::float8 as exp, pg_notify($3, exp::text || ' ' || jti) from revoked",
      ].join('\n'),
      [jti, expiresAt, this.#channel],
    );
    this.#remember(jti, Number((rows[0] as { exp?: unknown } | undefined)?.exp ?? expiresAt));
    await this.#purge();
  }

  async isRevoked(jti: string): Promise<boolean> {
    if (!this.#listener.current) await this.#listener.ensureCurrent();
    const expiresAt = this.#expiry.get(jti);
    return expiresAt !== undefined && expiresAt > now();
  }

  /** Stops the heartbeat and releases the listening connection; the pool stays open. */
  async close(): Promise<void> {
    this.#listener.close();
  }

  /** Revoked tokens held in memory now, expired ones not yet swept included. */
  get size(): number {
    return this.#expiry.size;
  }

  /** Reads every unexpired revocation, on a connection that already listens: merged, as notifications may arrive meanwhile. */
  async #load(connection: PostgresListenConnection): Promise<void> {
    const { rows } = await connection.query(`select jti, extract(epoch from expires_at)::float8 as exp from ${this.#qualified()} where expires_at > now()`);
    for (const row of rows as { jti: string; exp: unknown }[]) this.#remember(row.jti, Number(row.exp));
  }

  /** `<exp> <jti>`, from `revoke()` on any instance; anything else on the channel is not ours. */
  #notified(payload: string): void {
    const space = payload.indexOf(' ');
    const expiresAt = Number(payload.slice(0, space));
    if (space > 0 && Number.isFinite(expiresAt)) this.#remember(payload.slice(space + 1), expiresAt);
  }

  #remember(jti: string, expiresAt: number): void {
    const at = now();
    // Drops expired entries at most once a second, so that remembering stays O(1) on average.
    if (at >= this.#nextSweep) {
      this.#nextSweep = at + 1;
      for (const [known, until] of this.#expiry) if (until <= at) this.#expiry.delete(known);
    }
    if (expiresAt > at) this.#expiry.set(jti, Math.max(expiresAt, this.#expiry.get(jti) ?? 0));
  }

  /** Deletes expired rows, so that the table stays bounded like the copies in memory. */
  async #purge(): Promise<void> {
    if (Date.now() < this.#nextPurge) return;
    this.#nextPurge = Date.now() + PURGE_INTERVAL;
    try {
      await this.#db.query(`delete from ${this.#qualified()} where expires_at < now()`);
    } catch {
      // Housekeeping only: the revocation itself is stored. The next revoke() tries again.
      this.#nextPurge = 0;
    }
  }

  #qualified(): string {
    return `${quote(this.#schema)}.${quote(this.#table)}`;
  }
}

/**
 * The statements that create the revocations table (and a schema other than `public`), for
 * `migrate()` or your own migration tool.
 * @example fs.writeFileSync('migrations/002_oauth_revocations.sql', postgresRevocationTableSql());
 */
export function postgresRevocationTableSql(options: { schema?: string; table?: string } = {}): string {
  return createTableSql(options, DEFAULT_TABLE, [
    '  -- A revoked access token (RFC 7009), kept until it expires; expired rows are deleted by revoke().',
    '  jti        text primary key,',
    '  expires_at timestamptz not null',
  ]);
}
