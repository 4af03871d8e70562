// What the PostgreSQL stores share: quoted names, and one dedicated connection that LISTENs for
// their NOTIFY messages, reconnected in the background, with a heartbeat that bounds how stale a
// copy kept in memory may be.

import { createHash } from 'node:crypto';
import { ConfigurationError } from '../core/errors.js';
import { positiveInteger } from '../core/options.js';
import type { PostgresQueryable } from './postgres-client-store.js';

/** A connection checked out of a `pg` Pool, as listening uses it. */
export interface PostgresListenConnection {
  query(text: string, values?: unknown[]): Promise<{ rows: unknown[] }>;
  on(event: 'notification', listener: (message: { channel: string; payload?: string | undefined }) => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
  release(destroy?: Error | boolean): void;
}

/**
 * A `pg` Pool fits as it is: queries, and `connect()` for the one connection that listens, which
 * it holds for as long as it listens (size the pool one larger). This package does not load `pg`.
 */
export interface PostgresPool extends PostgresQueryable {
  connect(): Promise<PostgresListenConnection>;
}

export interface PostgresListenOptions {
  /** Milliseconds between two heartbeats (`select 1`) on the listening connection. Default: 1000. */
  heartbeat?: number | undefined;
  /**
   * Milliseconds after which what was received is no longer known to be current: no heartbeat sent
   * since then has been answered. The connection is then replaced. At least twice `heartbeat`. Default: 5000.
   */
  maxStaleness?: number | undefined;
}

export interface ListenerConfig {
  readonly pool: PostgresPool;
  readonly channel: string;
  readonly heartbeat: number;
  readonly maxStaleness: number;
  /** The store, for messages. */
  readonly name: string;
  /**
   * Reads what a new connection may have missed, once its LISTEN is in effect and before it counts
   * as current: every change committed from then on is notified, every earlier one is in the table.
   */
  readonly resync: (connection: PostgresListenConnection) => Promise<void>;
  readonly notify: (payload: string) => void;
}

/** Serializes the `migrate()` of every store and instance: one simple query is one transaction. */
export const MIGRATION_LOCK = "select pg_advisory_xact_lock(hashtext('express-client-credentials migrate'));";

/** Heartbeat and staleness, checked once; a heartbeat late by one interval must not count as an outage. */
export function resolveListenOptions(options: PostgresListenOptions): { heartbeat: number; maxStaleness: number } {
  const heartbeat = positiveInteger(options.heartbeat ?? 1000, 'heartbeat', 'milliseconds');
  const maxStaleness = positiveInteger(options.maxStaleness ?? 5000, 'maxStaleness', 'milliseconds');
  if (maxStaleness < 2 * heartbeat) throw new ConfigurationError('`maxStaleness` must be at least twice `heartbeat`: raise it, or lower `heartbeat`');
  return { heartbeat, maxStaleness };
}

/** True for a pool that can lend a connection to listen on. */
export function isPool(db: unknown): db is PostgresPool {
  const candidate = db as Partial<PostgresPool> | null;
  return typeof candidate === 'object' && candidate !== null && typeof candidate.query === 'function' && typeof candidate.connect === 'function';
}

/** A PostgreSQL identifier of at most 63 bytes (longer ones are silently cut), quoted when used. */
export function identifier(value: unknown, option: string): string {
  if (typeof value !== 'string' || value === '' || value.includes('\0') || Buffer.byteLength(value) > 63) {
    throw new ConfigurationError(`\`${option}\` must be a PostgreSQL name of 1 to 63 bytes`);
  }
  return value;
}

export function quote(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** `create table if not exists` with these column lines (and `create schema` for a schema other than `public`). */
export function createTableSql(options: { schema?: string; table?: string }, defaultTable: string, columns: readonly string[]): string {
  const schema = identifier(options.schema ?? 'public', 'schema');
  const table = identifier(options.table ?? defaultTable, 'table');
  return [
    ...(schema === 'public' ? [] : [`create schema if not exists ${quote(schema)};`]),
    `create table if not exists ${quote(schema)}.${quote(table)} (`,
    ...columns,
    ');',
    '',
  ].join('\n');
}

/**
 * The NOTIFY channel of a table: `schema.table` while that fits the 63 bytes of a name and is
 * unambiguous (no dot in either part), else a digest of both.
 */
export function channelFor(schema: string, table: string): string {
  const plain = `${schema}.${table}`;
  if (!schema.includes('.') && !table.includes('.') && Buffer.byteLength(plain) <= 63) return plain;
  return `ecc_${createHash('sha256').update(JSON.stringify([schema, table])).digest('hex').slice(0, 40)}`;
}

/** Destroys a connection rather than return it to the pool, still listening; once only (pg throws on a second release). */
const released = new WeakSet<PostgresListenConnection>();
function release(connection: PostgresListenConnection): void {
  if (released.has(connection)) return;
  released.add(connection);
  connection.release(true);
}

const ignore = (): void => undefined;

/**
 * Holds one connection of the pool that LISTENs on a channel. Every `heartbeat` it asks
 * `select 1` through it: an answer proves that every notification committed before the question
 * was sent has been received (PostgreSQL sends them before the answer), so what was received is
 * current as of that moment. A connection lost, or silent for `maxStaleness`, is replaced in the
 * background, with backoff, and counts as current again only once `resync` has run on the new one.
 */
export class PostgresListener {
  readonly #config: ListenerConfig;
  #connection: PostgresListenConnection | undefined;
  /** At most one `connect()` in flight: one that hangs is waited for again, not piled up in the pool. */
  #pending: Promise<PostgresListenConnection> | undefined;
  #initial: Promise<void> | undefined;
  #settled = false;
  #closed = false;
  #attempting = false;
  #failures = 0;
  #nextAttempt = 0;
  #heartbeatSent: number | undefined;
  /** `performance.now()` as of which everything committed has been received. */
  #confirmedAt = -Infinity;
  #lastError: unknown;
  #timer: NodeJS.Timeout | undefined;

  constructor(config: ListenerConfig) {
    this.#config = config;
  }

  /** Connects and resyncs; resolves once current, or rejects with why the first attempt failed (retrying goes on). Idempotent. */
  start(): Promise<void> {
    if (this.#closed) return Promise.reject(new Error(`${this.#config.name} is closed`));
    if (this.#initial === undefined) {
      this.#initial = this.#attempt().finally(() => (this.#settled = true));
      this.#initial.catch(ignore);
      this.#schedule();
    }
    return this.#initial;
  }

  /** Whether everything committed up to `maxStaleness` ago has been received. */
  get current(): boolean {
    return !this.#closed && performance.now() - this.#confirmedAt <= this.#config.maxStaleness;
  }

  /** Resolves when current; starts on first use, and waits for the first attempt, never for a reconnection. */
  async ensureCurrent(): Promise<void> {
    if (!this.#settled) await this.start().catch(ignore);
    if (this.current) return;
    const { name, maxStaleness } = this.#config;
    if (this.#closed) throw new Error(`${name} is closed`);
    // Not `instanceof Error`: errors from node:net may come from another realm (a vm, jest).
    const message = (this.#lastError as { message?: unknown } | undefined)?.message;
    const cause = typeof message === 'string' && message !== '' ? `: ${message}` : '';
    const age = performance.now() - this.#confirmedAt;
    throw new Error(
      Number.isFinite(age)
        ? `${name} cannot confirm that it is current: last confirmed ${Math.round(age)} ms ago, more than maxStaleness (${maxStaleness} ms)${cause}`
        : `${name} has not yet loaded from PostgreSQL${cause}`,
      { cause: this.#lastError },
    );
  }

  /** Stops the timer and destroys the listening connection; the pool stays open. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    if (this.#connection !== undefined) release(this.#connection);
    this.#connection = undefined;
    this.#pending?.then(release, ignore);
  }

  #schedule(): void {
    this.#timer = setTimeout(() => this.#tick(), this.#config.heartbeat);
    this.#timer.unref(); // never what keeps a process alive
  }

  #tick(): void {
    if (this.#closed) return;
    const now = performance.now();
    const connection = this.#connection;
    if (connection === undefined) {
      if (!this.#attempting && now >= this.#nextAttempt) this.#attempt().catch(ignore);
    } else if (this.#heartbeatSent === undefined) {
      this.#heartbeat(connection, now);
    } else if (now - this.#heartbeatSent > this.#config.maxStaleness) {
      // A stalled network keeps the socket open: only the missing answer shows it.
      this.#lost(connection, new Error(`no answer to the heartbeat within ${this.#config.maxStaleness} ms`));
    }
    this.#schedule();
  }

  #heartbeat(connection: PostgresListenConnection, sentAt: number): void {
    this.#heartbeatSent = sentAt;
    connection.query('select 1').then(
      () => {
        if (connection !== this.#connection) return;
        this.#heartbeatSent = undefined;
        this.#confirmedAt = Math.max(this.#confirmedAt, sentAt);
      },
      (error: unknown) => this.#lost(connection, error),
    );
  }

  async #attempt(): Promise<void> {
    this.#attempting = true;
    const limit = timeLimit(this.#config.maxStaleness);
    let connection: PostgresListenConnection | undefined;
    try {
      this.#pending ??= this.#connect();
      connection = await limit.race(this.#pending);
      this.#pending = undefined;
      this.#assertOpen();
      await limit.race(connection.query(`listen ${quote(this.#config.channel)}`));
      this.#assertOpen();
      const readFrom = performance.now();
      await limit.race(this.#config.resync(connection));
      this.#assertOpen();
      this.#connection = connection;
      this.#heartbeatSent = undefined;
      this.#confirmedAt = readFrom;
      this.#failures = 0;
      this.#lastError = undefined;
    } catch (error) {
      if (connection !== undefined) release(connection);
      this.#failures += 1;
      this.#lastError = error;
      const { heartbeat, maxStaleness } = this.#config;
      this.#nextAttempt = performance.now() + Math.min(heartbeat * 2 ** (this.#failures - 1), maxStaleness);
      throw error;
    } finally {
      limit.clear();
      this.#attempting = false;
    }
  }

  #connect(): Promise<PostgresListenConnection> {
    const pending = this.#config.pool.connect().then((connection) => {
      // At once: an 'error' event without a listener would crash the process.
      connection.on('error', (error) => this.#lost(connection, error));
      connection.on('notification', (message) => {
        if (!this.#closed && message.channel === this.#config.channel) this.#config.notify(message.payload ?? '');
      });
      if (this.#closed) release(connection);
      return connection;
    });
    pending.catch(() => {
      if (this.#pending === pending) this.#pending = undefined;
    });
    return pending;
  }

  #lost(connection: PostgresListenConnection, error: unknown): void {
    release(connection);
    if (connection !== this.#connection) return;
    // What was received stays current until `maxStaleness` after its last confirmation.
    this.#connection = undefined;
    this.#heartbeatSent = undefined;
    this.#lastError = error;
    this.#nextAttempt = 0;
  }

  #assertOpen(): void {
    if (this.#closed) throw new Error(`${this.#config.name} is closed`);
  }
}

/** One deadline for the steps of an attempt; a step still running past it is abandoned. */
function timeLimit(ms: number): { race<T>(step: Promise<T>): Promise<T>; clear(): void } {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`PostgreSQL did not answer within ${ms} ms`)), ms);
    timer.unref();
  });
  expired.catch(ignore);
  return { race: (step) => Promise.race([step, expired]), clear: () => clearTimeout(timer) };
}
