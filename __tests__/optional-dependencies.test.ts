// The built package without its optional peers (redis, pg, rate-limit-redis): the main entry never
// loads them, and the store entry points load and say what to install only when a part needs one.

import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROOT = join(__dirname, '..');
const OPTIONAL = ['redis', 'pg', 'rate-limit-redis'];

/** A preload that makes the optional packages missing, as in a project that did not install them. */
const hide = join(mkdtempSync(join(tmpdir(), 'ecc-optional-')), 'hide.js');
writeFileSync(
  hide,
  `const Module = require('node:module');
   const load = Module._load;
   Module._load = function (request, ...rest) {
     if (${JSON.stringify(OPTIONAL)}.includes(request) || ${JSON.stringify(OPTIONAL)}.some((name) => request.startsWith(name + '/'))) {
       const error = new Error("Cannot find module '" + request + "'"); error.code = 'MODULE_NOT_FOUND'; throw error;
     }
     return load.call(this, request, ...rest);
   };`,
);

function node(script: string, { hidden = true } = {}): string {
  return execFileSync(process.execPath, [...(hidden ? ['--require', hide] : []), '-e', script], { cwd: ROOT, encoding: 'utf8' }).trim();
}

describe('optional peer dependencies: redis, pg and rate-limit-redis', () => {
  beforeAll(() => {
    if (!existsSync(join(ROOT, 'dist', 'redis.js'))) throw new Error('dist/ is missing: run `npm run build` before the tests');
  });

  it('the preload really hides them', () => {
    expect(node(`try { require('pg'); console.log('loaded') } catch (e) { console.log(e.code) }`)).toBe('MODULE_NOT_FOUND');
  });

  it('loads the main entry point without them, and never loads them even when installed', () => {
    expect(node(`const m = require('express-client-credentials'); console.log(typeof m.issuer, typeof m.requireScope)`)).toBe('function function');
    const loaded = node(
      `require('express-client-credentials'); console.log(Object.keys(require.cache).filter((file) => /node_modules\\/(redis|@redis|pg|rate-limit-redis)\\//.test(file)).length)`,
      { hidden: false },
    );
    expect(loaded).toBe('0');
  });

  it('loads express-client-credentials/redis without them: the stores need only a client, the rate-limit helper names its package', () => {
    const script = `
      const { RedisRevocationStore, RedisReplayCache, redisRateLimitStores } = require('express-client-credentials/redis');
      const client = { sendCommand: async () => 'OK' };
      new RedisRevocationStore(client); new RedisReplayCache(client);
      try { redisRateLimitStores(client); console.log('no error'); } catch (e) { console.log(e.name + ': ' + e.message); }`;
    expect(node(script)).toBe('ConfigurationError: redisRateLimitStores() needs the rate-limit-redis package: npm install rate-limit-redis');
  });

  it('loads express-client-credentials/postgres without pg, with the schema file in the package', () => {
    const script = `
      const { PostgresClientStore, postgresClientTableSql } = require('express-client-credentials/postgres');
      new PostgresClientStore({ query: async () => ({ rows: [] }) });
      const sql = require('node:fs').readFileSync(require.resolve('express-client-credentials/postgres-schema.sql'), 'utf8');
      console.log(sql.endsWith(postgresClientTableSql()));`;
    expect(node(script)).toBe('true');
  });

  it('the CLI says to install pg when asked to write to PostgreSQL without it', () => {
    let stderr = '';
    try {
      execFileSync(process.execPath, ['--require', hide, join(ROOT, 'dist', 'cli.js'), 'migrate', '--database-url', 'postgres://127.0.0.1:9/x'], { cwd: ROOT, encoding: 'utf8', stdio: 'pipe' });
    } catch (error) {
      stderr = String((error as { stderr?: unknown }).stderr);
    }
    expect(stderr).toBe('express-client-credentials: writing to PostgreSQL needs the pg package: npm install pg\n');
  });
});
