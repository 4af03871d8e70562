// Whether Redis and PostgreSQL answer, probed once per run by jest's globalSetup (no jest globals here).

import { createClient } from 'redis';
import { Client } from 'pg';

export const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
export const DATABASE_URL = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test';
export const REQUIRE_SERVICES = !['', '0', 'false', undefined].includes(process.env.REQUIRE_SERVICES);

export type ServiceName = 'redis' | 'postgres';
export const ENV: Record<ServiceName, string> = { redis: 'ECC_TEST_REDIS', postgres: 'ECC_TEST_POSTGRES' };

/** Asks each service for an answer within two seconds; resolves to why one is unusable, or `undefined`. */
export async function probe(name: ServiceName): Promise<string | undefined> {
  try {
    if (name === 'redis') {
      const client = createClient({ url: REDIS_URL, socket: { connectTimeout: 2000, reconnectStrategy: false } });
      client.on('error', () => undefined);
      await client.connect();
      await client.ping();
      client.destroy();
    } else {
      const client = new Client({ connectionString: DATABASE_URL, connectionTimeoutMillis: 2000 });
      await client.connect();
      await client.query('select 1');
      await client.end();
    }
    return undefined;
  } catch (error) {
    const message = error instanceof Error ? error.message || error.name : String(error);
    return message.replace(/\s+/g, ' ').slice(0, 200) || 'no answer';
  }
}

/** Run once by jest's globalSetup: probes, says what is skipped, and tells the workers through the environment. */
export async function probeServices(): Promise<void> {
  for (const [name, url] of [['redis', REDIS_URL], ['postgres', DATABASE_URL]] as const) {
    const problem = await probe(name);
    process.env[ENV[name]] = problem === undefined ? 'available' : `unreachable: ${problem}`;
    if (problem === undefined) continue;
    const where = `${name === 'redis' ? 'Redis' : 'PostgreSQL'} at ${redact(url)}`;
    if (REQUIRE_SERVICES) throw new Error(`REQUIRE_SERVICES is set, but ${where} is unreachable (${problem})`);
    process.stderr.write(`\n${where} is unreachable (${problem}): its suites are skipped. Set REQUIRE_SERVICES=1 to fail instead.\n`);
  }
}

function redact(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = '***';
    return parsed.href;
  } catch {
    return 'the configured URL';
  }
}

