// Redis and PostgreSQL for the store suites: their URLs, whether they answer, and per-run keys and
// schemas that are removed afterwards. Without a service, only its suites are skipped, unless
// REQUIRE_SERVICES is set (as .ci/run does), when they run and fail.

import { randomBytes } from 'node:crypto';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { createClient } from 'redis';
import { Pool } from 'pg';
import { DATABASE_URL, ENV, REDIS_URL, REQUIRE_SERVICES, type ServiceName } from './service-probe.js';

export { DATABASE_URL, REDIS_URL, REQUIRE_SERVICES };
export { closedPort } from './ports.js';

/** Whether a service's suites run: it answered, or it is required (and then they fail). */
function runs(name: ServiceName): boolean {
  const state = process.env[ENV[name]];
  // Not probed (jest run without globalSetup): run, so that a missing service shows as failures.
  return state === undefined || state === 'available' || REQUIRE_SERVICES;
}

/** `describe` when Redis answered, else jest's skipping variant: its tests are reported as skipped. */
export const describeWithRedis: jest.Describe = runs('redis') ? describe : describe.skip;
export const describeWithPostgres: jest.Describe = runs('postgres') ? describe : describe.skip;
export const describeWithServices: jest.Describe = runs('redis') && runs('postgres') ? describe : describe.skip;

/** A prefix no other run or suite uses. */
export function uniquePrefix(): string {
  return `ecc-test:${process.pid}-${randomBytes(4).toString('hex')}:`;
}

export type TestRedis = Awaited<ReturnType<typeof connectRedis>>;

/**
 * A client configured as the README advises: commands fail at once while disconnected instead of
 * queueing, and reconnection is retried in the background.
 */
export async function connectRedis(url = REDIS_URL) {
  const client = createClient({ url, disableOfflineQueue: true, socket: { connectTimeout: 2000, reconnectStrategy: (retries: number) => Math.min(50 * 2 ** retries, 1000) } });
  client.on('error', () => undefined); // node-redis throws an unhandled 'error' event; failures show in the calls
  await client.connect();
  return client;
}

/**
 * A client on a port where nothing listens (yet): every command fails at once, as with a Redis
 * that is down, while the client keeps trying to connect in the background.
 */
export function unreachableRedis(port: number) {
  const client = createClient({ url: `redis://127.0.0.1:${port}`, disableOfflineQueue: true, socket: { connectTimeout: 500, reconnectStrategy: () => 100 } });
  client.on('error', () => undefined);
  client.connect().catch(() => undefined);
  return client;
}

/** Deletes every key under a prefix. */
export async function deleteKeys(client: TestRedis, prefix: string): Promise<void> {
  for await (const keys of client.scanIterator({ MATCH: `${escapeGlob(prefix)}*`, COUNT: 1000 })) {
    if (keys.length > 0) await client.del(keys);
  }
}

export async function keysUnder(client: TestRedis, prefix: string): Promise<string[]> {
  const found: string[] = [];
  for await (const keys of client.scanIterator({ MATCH: `${escapeGlob(prefix)}*`, COUNT: 1000 })) found.push(...keys);
  return found.sort();
}

function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&');
}

/** A pool on DATABASE_URL and a fresh schema, dropped with everything in it by `drop()`. */
export async function temporarySchema(): Promise<{ pool: Pool; schema: string; drop(): Promise<void> }> {
  const pool = new Pool({ connectionString: DATABASE_URL, connectionTimeoutMillis: 2000, max: 5 });
  const schema = `ecc_test_${process.pid}_${randomBytes(4).toString('hex')}`;
  await pool.query(`create schema "${schema}"`);
  return {
    pool,
    schema,
    async drop() {
      await pool.query(`drop schema if exists "${schema}" cascade`);
      await pool.end();
    },
  };
}

/**
 * A TCP proxy on 127.0.0.1 in front of Redis, that a test can cut and restore: Redis going away
 * and coming back mid-run, without touching the machine's Redis.
 */
export async function redisProxy(url = REDIS_URL): Promise<{ url: string; cut(): Promise<void>; restore(): Promise<void>; close(): Promise<void> }> {
  const target = new URL(url);
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    const upstream = connect(Number(target.port || 6379), target.hostname);
    for (const [from, to] of [[socket, upstream], [upstream, socket]] as const) {
      sockets.add(from);
      from.on('error', () => to.destroy());
      from.on('close', () => (sockets.delete(from), to.destroy()));
      from.pipe(to);
    }
  });
  const listen = (port: number): Promise<void> =>
    new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => (server.off('error', reject), resolve()));
    });
  await listen(0);
  const { port } = server.address() as AddressInfo;
  const stop = (): Promise<void> => {
    for (const socket of sockets) socket.destroy();
    return new Promise((resolve) => (server.listening ? server.close(() => resolve()) : resolve()));
  };
  const proxied = new URL(url);
  proxied.hostname = '127.0.0.1';
  proxied.port = String(port);
  return { url: proxied.href, cut: stop, restore: () => listen(port), close: stop };
}

/**
 * Keeps the process warnings with `code` out of the test output, in `messages` for the test to
 * assert; other warnings are emitted as usual. Start it in `beforeAll` and `restore()` it in `afterAll`.
 * @example
 * const warnings = captureWarnings('ECC_REDIS_NOT_DURABLE');
 */
export function captureWarnings(code: string): { readonly messages: string[]; restore(): void } {
  const messages: string[] = [];
  const emit = process.emitWarning.bind(process) as (...args: unknown[]) => void;
  const spy = jest.spyOn(process, 'emitWarning').mockImplementation(((warning: string | Error, ...rest: unknown[]) => {
    // emitWarning(warning, { code }) or emitWarning(warning, type, code)
    const [options, codeArgument] = rest;
    const given = typeof options === 'object' && options !== null ? (options as { code?: unknown }).code : codeArgument;
    if (given === code) messages.push(typeof warning === 'string' ? warning : warning.message);
    else emit(warning, ...rest);
  }) as typeof process.emitWarning);
  return { messages, restore: () => spy.mockRestore() };
}

/** Resolves once `condition()` holds, checking every 20 ms; rejects after `ms`. */
export async function waitFor(condition: () => boolean, ms = 5000): Promise<void> {
  const until = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > until) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
