// The command line against a real PostgreSQL (DATABASE_URL): `migrate`, and `create-client
// --database-url` registering clients (RFC 7591 names) that an issuer on the table then serves.

import { spawn } from 'node:child_process';
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import express from 'express';
import request from 'supertest';
import { issuer, type ClientRecord } from 'express-client-credentials';
import { PostgresClientStore } from 'express-client-credentials/postgres';
import { signJws } from '../../lib/core/jws.js';
import { resolveSigningKey } from '../../lib/core/signing-keys.js';
import { ISSUER, SECRET } from '../support/fixtures.js';
import { closedPort, DATABASE_URL, describeWithPostgres, temporarySchema } from '../support/services.js';

const ROOT = join(__dirname, '..', '..');

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs lib/cli.ts in a fresh process, as cli.test.ts does, with DATABASE_URL only when given. */
function cli(args: readonly string[], env: Record<string, string> = {}): Promise<Run> {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env };
  if (env.DATABASE_URL === undefined) delete childEnv.DATABASE_URL;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(ROOT, 'node_modules', 'tsx', 'dist', 'cli.mjs'), join(ROOT, 'lib', 'cli.ts'), ...args], { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    let [stdout, stderr] = ['', ''];
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const secretShown = (run: Run): string => /^client_secret: (\S+)$/m.exec(run.stderr)?.[1] ?? '';
let db: Awaited<ReturnType<typeof temporarySchema>>;
const keyDir = mkdtempSync(join(tmpdir(), 'ecc-pg-cli-'));
afterAll(() => rmSync(keyDir, { recursive: true, force: true }));

/** An issuer on the table, as an app would mount it. */
const issuerApp = (table: string) =>
  express().use('/token', issuer({ issuer: ISSUER, signingKey: { secret: SECRET }, clients: new PostgresClientStore(db.pool, { schema: db.schema, table }) }));
const basicToken = (app: express.Express, id: string, secret: string) => request(app).post('/token').auth(id, secret).type('form').send({ grant_type: 'client_credentials' });
const recordOf = async (table: string, id: string) => (await db.pool.query(`select record from "${db.schema}"."${table}" where client_id = $1`, [id])).rows[0]?.record as ClientRecord | undefined;

describeWithPostgres('the CLI and PostgreSQL', () => {
  beforeAll(async () => {
    db = await temporarySchema();
  });
  afterAll(() => db.drop());

  it('migrate creates the table from DATABASE_URL, and running it again changes nothing', async () => {
    const first = await cli(['migrate', '--schema', db.schema], { DATABASE_URL });
    expect(first).toEqual({ code: 0, stdout: '', stderr: `The table ${db.schema}.oauth_clients is ready.\n` });
    await db.pool.query(`insert into "${db.schema}".oauth_clients (client_id, record) values ('kept', '{"client_id": "kept"}')`);
    expect((await cli(['migrate', '--schema', db.schema, '--database-url', DATABASE_URL])).code).toBe(0);
    expect((await db.pool.query(`select client_id from "${db.schema}".oauth_clients`)).rows).toEqual([{ client_id: 'kept' }]);
  });

  it('create-client --database-url registers a client that an issuer on the table serves', async () => {
    const table = 'registered';
    expect((await cli(['migrate', '--schema', db.schema, '--table', table, '--database-url', DATABASE_URL])).code).toBe(0);
    const run = await cli(['create-client', '--id', 'reports', '--scope', 'read write', '--default-scope', 'read', '--database-url', DATABASE_URL, '--schema', db.schema, '--table', table]);
    expect(run.code).toBe(0);
    expect(run.stderr).toContain(`Added client 'reports' to the table ${db.schema}.${table}.\n`);
    const printed = JSON.parse(run.stdout) as ClientRecord;
    const { rows } = await db.pool.query(`select record from "${db.schema}"."${table}" where client_id = 'reports'`);
    expect(rows).toEqual([{ record: printed }]);
    expect(await bcrypt.compare(secretShown(run), printed.client_secret_hash as string)).toBe(true);

    const clients = new PostgresClientStore(db.pool, { schema: db.schema, table });
    const app = express().use('/token', issuer({ issuer: 'http://127.0.0.1:3000', signingKey: { secret: SECRET }, clients }));
    const res = await request(app).post('/token').auth('reports', secretShown(run)).type('form').send({ grant_type: 'client_credentials' });
    expect([res.status, res.body.scope]).toEqual([200, 'read']);
  });

  it('refuses an id already in the table, showing no secret and changing nothing', async () => {
    await cli(['migrate', '--schema', db.schema, '--database-url', DATABASE_URL]);
    expect((await cli(['create-client', '--id', 'taken', '--scope', 'read', '--database-url', DATABASE_URL, '--schema', db.schema])).code).toBe(0);
    const before = (await db.pool.query(`select record from "${db.schema}".oauth_clients where client_id = 'taken'`)).rows;
    const run = await cli(['create-client', '--id', 'taken', '--scope', 'write', '--database-url', DATABASE_URL, '--schema', db.schema]);
    expect(run).toEqual({ code: 1, stdout: '', stderr: "express-client-credentials: client 'taken' is already in the database; nothing was changed\n" });
    expect((await db.pool.query(`select record from "${db.schema}".oauth_clients where client_id = 'taken'`)).rows).toEqual(before);
  });

  it('create-client --public-key --database-url registers a key client, with no secret, that gets a token with its key', async () => {
    const table = 'keyed';
    expect((await cli(['migrate', '--schema', db.schema, '--table', table, '--database-url', DATABASE_URL])).code).toBe(0);
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const keyFile = join(keyDir, 'billing.pem');
    writeFileSync(keyFile, publicKey.export({ type: 'spki', format: 'pem' }));
    const run = await cli(['create-client', '--id', 'billing', '--scope', 'read', '--public-key', keyFile, '--database-url', DATABASE_URL, '--schema', db.schema, '--table', table]);
    expect(run).toMatchObject({ code: 0, stderr: `Added client 'billing' to the table ${db.schema}.${table}.\n` });
    const printed = JSON.parse(run.stdout) as ClientRecord;
    expect(printed).toMatchObject({ client_id: 'billing', token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [{ ...publicKey.export({ format: 'jwk' }), use: 'sig' }] } });
    expect(printed).not.toHaveProperty('client_secret_hash');
    expect(await recordOf(table, 'billing')).toEqual(printed);

    const now = Math.floor(Date.now() / 1000);
    const assertion = signJws({ iss: 'billing', sub: 'billing', aud: ISSUER, exp: now + 60, jti: randomUUID() }, resolveSigningKey({ privateKey }), 'JWT');
    const res = await request(issuerApp(table))
      .post('/token')
      .type('form')
      .send({ grant_type: 'client_credentials', client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: assertion });
    expect([res.status, res.body.scope]).toEqual([200, 'read']);
  });

  it('rotate-secret --database-url updates the row: an issuer on the table takes the old and the new secret', async () => {
    const table = 'rotated';
    expect((await cli(['migrate', '--schema', db.schema, '--table', table, '--database-url', DATABASE_URL])).code).toBe(0);
    const created = await cli(['create-client', '--id', 'reports', '--scope', 'read', '--database-url', DATABASE_URL, '--schema', db.schema, '--table', table]);
    const oldSecret = secretShown(created);
    const oldHash = (JSON.parse(created.stdout) as ClientRecord).client_secret_hash;
    const run = await cli(['rotate-secret', '--id', 'reports', '--database-url', DATABASE_URL, '--schema', db.schema, '--table', table, '--old-expires-in', '600']);
    expect(run.code).toBe(0);
    expect(run.stderr).toMatch(new RegExp(`\nRotated the secret of client 'reports' in the table ${db.schema}\\.${table}; the old secret works until `));
    const printed = JSON.parse(run.stdout) as ClientRecord;
    const { rows } = await db.pool.query(`select record, updated_at > created_at as bumped from "${db.schema}"."${table}" where client_id = 'reports'`);
    expect(rows).toEqual([{ record: printed, bumped: true }]);
    const [old, fresh] = printed.client_secret_hash as [{ hash: string; expires_at: number }, string];
    expect(old.hash).toBe(oldHash);
    expect(old.expires_at).toBeGreaterThanOrEqual(Math.floor(Date.now() / 1000) + 590);
    expect(await bcrypt.compare(secretShown(run), fresh)).toBe(true);

    const app = issuerApp(table);
    expect((await basicToken(app, 'reports', oldSecret)).status).toBe(200);
    expect((await basicToken(app, 'reports', secretShown(run))).status).toBe(200);
  });

  it('rotate-secret keeps both new secrets when two rotations of one client run at once', async () => {
    const table = 'rotated_together';
    expect((await cli(['migrate', '--schema', db.schema, '--table', table, '--database-url', DATABASE_URL])).code).toBe(0);
    expect((await cli(['create-client', '--id', 'busy', '--scope', 'read', '--database-url', DATABASE_URL, '--schema', db.schema, '--table', table])).code).toBe(0);
    const rotate = () => cli(['rotate-secret', '--id', 'busy', '--database-url', DATABASE_URL, '--schema', db.schema, '--table', table]);
    const runs = await Promise.all([rotate(), rotate()]);
    expect(runs.map((run) => run.code)).toEqual([0, 0]);
    const hashes = (await recordOf(table, 'busy'))?.client_secret_hash as unknown[];
    expect(hashes).toHaveLength(3);
    const app = issuerApp(table);
    for (const run of runs) expect((await basicToken(app, 'busy', secretShown(run))).status).toBe(200);
  });

  it.each([
    ['an unknown id', 'ghost', "express-client-credentials: client 'ghost' is not in the database; nothing was changed\n"],
    ['a private_key_jwt client', 'keyed', "express-client-credentials: client 'keyed' authenticates with private_key_jwt and has no secret to rotate; nothing was changed\n"],
  ])('rotate-secret --database-url refuses %s, showing no secret and changing nothing', async (_, id, stderr) => {
    const table = 'refusing';
    await cli(['migrate', '--schema', db.schema, '--table', table, '--database-url', DATABASE_URL]);
    await db.pool.query(`insert into "${db.schema}"."${table}" (client_id, record) values ('keyed', $1) on conflict do nothing`, [
      { client_id: 'keyed', token_endpoint_auth_method: 'private_key_jwt', jwks_uri: 'https://keyed.example/jwks.json', scope: 'read' },
    ]);
    const before = (await db.pool.query(`select client_id, record, updated_at from "${db.schema}"."${table}" order by client_id`)).rows;
    const run = await cli(['rotate-secret', '--id', id, '--database-url', DATABASE_URL, '--schema', db.schema, '--table', table]);
    expect(run).toEqual({ code: 1, stdout: '', stderr });
    expect((await db.pool.query(`select client_id, record, updated_at from "${db.schema}"."${table}" order by client_id`)).rows).toEqual(before);
  });

  it('says to run migrate first when the table is missing', async () => {
    const run = await cli(['create-client', '--id', 'early', '--scope', 'read', '--database-url', DATABASE_URL, '--schema', db.schema, '--table', 'missing']);
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toMatch(/^express-client-credentials: the database refused: relation ".+\.missing" does not exist; run the migrate command first\n$/);
  });

  it('fails in one line, without the password of the URL, when the database is unreachable', async () => {
    const url = `postgres://app:hunter2@127.0.0.1:${await closedPort()}/test`;
    for (const args of [['migrate', '--database-url', url], ['create-client', '--id', 'a', '--scope', 'read', '--database-url', url], ['rotate-secret', '--id', 'a', '--database-url', url]]) {
      const run = await cli(args);
      expect(run).toMatchObject({ code: 1, stdout: '' });
      expect(run.stderr).toMatch(/^express-client-credentials: cannot connect to the database: connect ECONNREFUSED 127\.0\.0\.1:\d+\n$/);
    }
  });

  it('migrate without --database-url or DATABASE_URL is a usage error', async () => {
    expect(await cli(['migrate'])).toEqual({ code: 2, stdout: '', stderr: 'express-client-credentials: missing --database-url, and DATABASE_URL is unset; see --help\n' });
  });
});
