// The command line as users run it: real processes (tsx on lib/cli.ts), stdin, files, and a real issuer on 127.0.0.1.

import { spawn } from 'node:child_process';
import { createHash, createPrivateKey, createPublicKey } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import express from 'express';
import { issuer, MemoryClientStore, type ClientRecord } from 'express-client-credentials';
import { decodePayload, SECRET } from './support/fixtures.js';
import { close, listenOnLoopback, serve, type Listening } from './support/servers.js';

const ROOT = join(__dirname, '..');
const TSX = join(ROOT, 'node_modules', 'tsx', 'dist', 'cli.mjs');
const CLI = join(ROOT, 'lib', 'cli.ts');
const dir = mkdtempSync(join(tmpdir(), 'ecc-cli-'));

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the command in a fresh process, in the temp dir, with stdin fed and closed. */
function cli(args: readonly string[], { input = '', env = {} }: { input?: string; env?: Record<string, string> } = {}): Promise<Run> {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env };
  if (env.OAUTH_CLIENT_SECRET === undefined) delete childEnv.OAUTH_CLIENT_SECRET;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [TSX, CLI, ...args], { cwd: dir, env: childEnv });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.stdin.on('error', () => undefined); // a command that reads no stdin may exit before we write
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input);
  });
}

/** One line on stderr, nothing on stdout, no stack trace. */
function expectOneLineError(run: Run, code: number, message: RegExp): void {
  expect(run.code).toBe(code);
  expect(run.stdout).toBe('');
  expect(run.stderr).toMatch(/^[^\n]+\n$/);
  expect(run.stderr).toMatch(message);
}

function secretShown(run: Run): string {
  const match = /^client_secret: (\S+)$/m.exec(run.stderr);
  if (match?.[1] === undefined) throw new Error(`no secret on stderr: ${run.stderr}`);
  return match[1];
}

const mode = (path: string): number => statSync(path).mode & 0o777;

/** RFC 7638 §3, written out here rather than taken from the library. */
function thumbprint(jwk: Record<string, unknown>): string {
  const members: Record<string, string[]> = { EC: ['crv', 'kty', 'x', 'y'], RSA: ['e', 'kty', 'n'], OKP: ['crv', 'kty', 'x'] };
  const required = members[String(jwk.kty)] ?? [];
  return createHash('sha256').update(JSON.stringify(Object.fromEntries(required.map((name) => [name, jwk[name]])))).digest('base64url');
}

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('create-client: a client registration in RFC 7591 names', () => {
  it('prints the record on stdout and its secret once on stderr, and the hash verifies the secret', async () => {
    const run = await cli(['create-client', '--id', 'reports', '--scope', 'read write', '--default-scope', 'read', '--ttl', '300', '--auth-method', 'client_secret_post']);
    expect(run.code).toBe(0);
    const record = JSON.parse(run.stdout) as ClientRecord;
    expect(Object.keys(record)).toEqual(['client_id', 'client_secret_hash', 'scope', 'default_scope', 'access_token_ttl', 'token_endpoint_auth_method']);
    expect(record).toMatchObject({ client_id: 'reports', scope: 'read write', default_scope: 'read', access_token_ttl: 300, token_endpoint_auth_method: 'client_secret_post' });
    expect(record.client_secret_hash).toMatch(/^\$2[aby]\$10\$/);
    const secret = secretShown(run);
    expect(secret).toMatch(/^[A-Za-z0-9_-]{43}$/); // 256 bits, base64url
    expect(await bcrypt.compare(secret, record.client_secret_hash as string)).toBe(true);
    expect(run.stderr).toMatch(/will not be shown again/);
    expect(run.stdout).not.toContain(secret);
  });

  it('appends to --file, creating it with mode 0600, in a form MemoryClientStore.fromFile loads', async () => {
    const file = join(dir, 'clients.json');
    const first = await cli(['create-client', '--id', 'first', '--scope', 'read', '--file', file]);
    const second = await cli(['create-client', '--id', 'second', '--scope', 'write', '--file', file]);
    expect([first.code, second.code]).toEqual([0, 0]);
    const records = JSON.parse(readFileSync(file, 'utf8')) as ClientRecord[];
    expect(records.map((record) => record.client_id)).toEqual(['first', 'second']);
    expect(records[1]).toEqual(JSON.parse(second.stdout));
    expect(mode(file)).toBe(0o600);
    const stored = await MemoryClientStore.fromFile(file).findClient('second');
    expect(await bcrypt.compare(secretShown(second), stored?.client_secret_hash as string)).toBe(true);
  });

  it('refuses an id already in --file, leaving the file unchanged and showing no secret', async () => {
    const file = join(dir, 'taken.json');
    expect((await cli(['create-client', '--id', 'taken', '--scope', 'read', '--file', file])).code).toBe(0);
    const before = readFileSync(file, 'utf8');
    const run = await cli(['create-client', '--id', 'taken', '--scope', 'read write', '--file', file]);
    expectOneLineError(run, 1, /^express-client-credentials: client 'taken' is already in .*taken\.json/);
    expect(readFileSync(file, 'utf8')).toBe(before);
  });

  it('refuses a --file that is not valid JSON, leaving it unchanged', async () => {
    const file = join(dir, 'broken.json');
    writeFileSync(file, '[{"client_id": "a",');
    const run = await cli(['create-client', '--id', 'b', '--scope', 'read', '--file', file]);
    expectOneLineError(run, 1, /broken\.json is not valid JSON/);
    expect(readFileSync(file, 'utf8')).toBe('[{"client_id": "a",');
  });

  it('adds to a { "clients": [...] } file, keeping its other members and its mode', async () => {
    const file = join(dir, 'wrapped.json');
    writeFileSync(file, JSON.stringify({ note: 'kept', clients: [] }));
    chmodSync(file, 0o640);
    const run = await cli(['create-client', '--id', 'wrapped', '--scope', 'read', '--file', file]);
    expect(run.code).toBe(0);
    const document = JSON.parse(readFileSync(file, 'utf8')) as { note: string; clients: ClientRecord[] };
    expect(document.note).toBe('kept');
    expect(document.clients.map((record) => record.client_id)).toEqual(['wrapped']);
    expect(mode(file)).toBe(0o640);
  });
});

describe('hash-secret: a bcrypt hash of a secret read from stdin', () => {
  it('hashes stdin without its one trailing newline, at the cost asked', async () => {
    const run = await cli(['hash-secret', '--cost', '4'], { input: 'pass word\n\n' });
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^\$2[aby]\$04\$[./A-Za-z0-9]{53}\n$/);
    const hash = run.stdout.trim();
    expect(await bcrypt.compare('pass word\n', hash)).toBe(true);
    expect(await bcrypt.compare('pass word', hash)).toBe(false);
  });

  it('hashes at cost 10 by default, as the issuer expects', async () => {
    const run = await cli(['hash-secret'], { input: 's3cret' });
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^\$2[aby]\$10\$/);
    expect(await bcrypt.compare('s3cret', run.stdout.trim())).toBe(true);
  });

  it.each([
    ['an empty stdin', '', /no secret on stdin/],
    ['a lone newline', '\n', /no secret on stdin/],
    ['a secret past the 72 bytes bcrypt reads', `${'é'.repeat(36)}x`, /longer than 72 bytes/],
  ])('refuses %s with exit code 1', async (_, input, message) => {
    expectOneLineError(await cli(['hash-secret', '--cost', '4'], { input }), 1, message);
  });
});

describe('keygen: signing keys as PKCS#8 PEM and public JWK (RFC 7517, RFC 7638)', () => {
  it.each([
    ['ES256', 'ec'],
    ['RS256', 'rsa'],
    ['EdDSA', 'ed25519'],
  ])('%s: writes the private key to --out with mode 0600 and prints its public JWK with the thumbprint kid', async (alg, type) => {
    const out = join(dir, `${alg}.pem`);
    const run = await cli(['keygen', '--alg', alg, '--out', out]);
    expect(run.code).toBe(0);
    const pem = readFileSync(out, 'utf8');
    expect(pem).toMatch(/^-----BEGIN PRIVATE KEY-----\n[\s\S]+\n-----END PRIVATE KEY-----\n$/);
    expect(mode(out)).toBe(0o600);
    const key = createPrivateKey(pem);
    expect(key.asymmetricKeyType).toBe(type);
    if (type === 'rsa') expect(key.asymmetricKeyDetails?.modulusLength).toBe(3072);
    if (type === 'ec') expect(key.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    const publicJwk = createPublicKey(key).export({ format: 'jwk' }) as Record<string, unknown>;
    expect(JSON.parse(run.stdout)).toEqual({ ...publicJwk, kid: thumbprint(publicJwk), alg, use: 'sig' });
    expect(run.stdout).not.toMatch(/"d"/);
  });

  it('prints the PEM alone on stdout and the JWK on stderr without --out, with the kid given', async () => {
    const run = await cli(['keygen', '--alg', 'ES256', '--kid', 'key-2025']);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^-----BEGIN PRIVATE KEY-----\n[\s\S]+\n-----END PRIVATE KEY-----\n$/);
    const publicJwk = createPublicKey(createPrivateKey(run.stdout)).export({ format: 'jwk' });
    expect(JSON.parse(run.stderr)).toEqual({ ...publicJwk, kid: 'key-2025', alg: 'ES256', use: 'sig' });
  });

  it('refuses to overwrite an existing --out file', async () => {
    const out = join(dir, 'existing.pem');
    writeFileSync(out, 'keep me');
    const run = await cli(['keygen', '--alg', 'EdDSA', '--out', out]);
    expectOneLineError(run, 1, /existing\.pem already exists/);
    expect(readFileSync(out, 'utf8')).toBe('keep me');
  });
});

describe('token: the client credentials grant (RFC 6749 §4.4) against a real issuer', () => {
  // An id that needs RFC 6749 §2.3.1's form-urlencoding inside Basic: a colon, a space and a plus.
  const BASIC_ID = 'svc: reports+1';
  let server: Listening;
  let basicSecret: string;
  let postSecret: string;

  beforeAll(async () => {
    const file = join(dir, 'issuer-clients.json');
    const [basic, post] = await Promise.all([
      cli(['create-client', '--id', BASIC_ID, '--scope', 'read write', '--default-scope', 'read']),
      cli(['create-client', '--id', 'poster', '--scope', 'read', '--auth-method', 'client_secret_post']),
    ]);
    basicSecret = secretShown(basic);
    postSecret = secretShown(post);
    writeFileSync(file, JSON.stringify([JSON.parse(basic.stdout), JSON.parse(post.stdout)]));
    server = await serve((url) => express().use('/token', issuer({ issuer: url, signingKey: { secret: SECRET }, clients: MemoryClientStore.fromFile(file) })));
  });

  afterAll(() => close(server));

  it('prints only the access token, using HTTP Basic and the secret from OAUTH_CLIENT_SECRET', async () => {
    const run = await cli(['token', '--url', `${server.url}/token`, '--id', BASIC_ID, '--scope', 'read write'], { env: { OAUTH_CLIENT_SECRET: basicSecret } });
    expect(run).toMatchObject({ code: 0, stderr: '' });
    expect(run.stdout).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+\n$/);
    expect(decodePayload(run.stdout.trim())).toMatchObject({ client_id: BASIC_ID, scope: 'read write' });
  });

  it('sends client_secret_post credentials in the body, reading the secret from stdin', async () => {
    const run = await cli(['token', '--url', `${server.url}/token`, '--id', 'poster', '--auth-method', 'client_secret_post'], { input: `${postSecret}\n` });
    expect(run.code).toBe(0);
    expect(decodePayload(run.stdout.trim())).toMatchObject({ client_id: 'poster', scope: 'read' });
    expect(`${run.stdout}${run.stderr}`).not.toContain(postSecret);
  });

  it('prints the OAuth error on stderr and exits 1 for a wrong secret, never printing a secret', async () => {
    const wrong = `${basicSecret.slice(0, -1)}X`;
    const run = await cli(['token', '--url', `${server.url}/token`, '--id', BASIC_ID], { env: { OAUTH_CLIENT_SECRET: wrong } });
    expect(run).toEqual({ code: 1, stdout: '', stderr: 'error: invalid_client: Client authentication failed\n' });
  });

  it('prints the OAuth error for a client using the method it is not registered for', async () => {
    const run = await cli(['token', '--url', `${server.url}/token`, '--id', 'poster'], { input: postSecret });
    expect(run).toEqual({ code: 1, stdout: '', stderr: 'error: invalid_client: Client authentication failed\n' });
  });

  it('refuses to run without a secret from OAUTH_CLIENT_SECRET or stdin', async () => {
    const run = await cli(['token', '--url', `${server.url}/token`, '--id', 'poster'], { input: '' });
    expectOneLineError(run, 1, /no client secret on stdin and OAUTH_CLIENT_SECRET is unset/);
  });

  it('exits 1 with one line when the token endpoint cannot be reached', async () => {
    const closed = await listenOnLoopback();
    await close(closed);
    const run = await cli(['token', '--url', `${closed.url}/token`, '--id', 'poster'], { env: { OAUTH_CLIENT_SECRET: postSecret } });
    expectOneLineError(run, 1, /^express-client-credentials: POST http:\/\/127\.0\.0\.1:\d+\/token failed: The token endpoint could not be reached \(ECONNREFUSED\)\n$/);
  });
});

describe('migrate --print: the SQL of the clients table, for your own migration tool', () => {
  it('prints postgres-schema.sql for the default names, and the schema and table asked for', async () => {
    const run = await cli(['migrate', '--print']);
    expect(run).toMatchObject({ code: 0, stderr: '' });
    expect(readFileSync(join(ROOT, 'lib', 'stores', 'postgres-schema.sql'), 'utf8').endsWith(run.stdout)).toBe(true);
    const named = await cli(['migrate', '--print', '--schema', 'auth', '--table', 'clients']);
    expect(named.stdout).toMatch(/^create schema if not exists "auth";\ncreate table if not exists "auth"\."clients" \(\n/);
  });
});

describe('help and usage errors', () => {
  // Concurrent: these only spawn and read, and a fresh tsx process takes a third of a second to start.
  it.concurrent.each([
    [['--help'], 'create-client'],
    [['-h'], 'keygen'],
    [['help'], 'hash-secret'],
    [['help', 'token'], '--url TOKEN_URL'],
    [['create-client', '--help'], '--default-scope'],
    [['hash-secret', '-h'], '--cost N'],
    [['keygen', '--alg', 'ES256', '--help'], '--out FILE'],
    [['token', '--help'], 'OAUTH_CLIENT_SECRET'],
    [['migrate', '--help'], '--database-url URL'],
    [['create-client', '-h'], '--database-url URL'],
  ])('%j prints usage, flags and an example, and exits 0', async (args, mentions) => {
    const run = await cli(args);
    expect(run).toMatchObject({ code: 0, stderr: '' });
    expect(run.stdout).toMatch(/^Usage: express-client-credentials /);
    expect(run.stdout).toMatch(/\nExamples?:\n {2}\S/);
    expect(run.stdout).toContain(mentions);
  });

  it.concurrent.each([
    ['no command', [], /missing command/],
    ['an unknown command', ['frobnicate'], /unknown command 'frobnicate'/],
    ['an unknown flag', ['create-client', '--id', 'a', '--scope', 'read', '--bogus'], /unknown option '--bogus'/],
    ['a secret on the command line', ['token', '--url', 'http://127.0.0.1:9/token', '--id', 'a', '--secret', 's3cret'], /unknown option '--secret'/],
    ['a missing required flag', ['create-client', '--scope', 'read'], /missing --id/],
    ['a flag without its value', ['keygen', '--alg'], /option '--alg <value>' argument missing/],
    ['a repeated flag', ['create-client', '--id', 'a', '--id', 'b', '--scope', 'read'], /--id is given more than once/],
    ['a positional argument', ['keygen', 'ES256'], /unexpected argument 'ES256'/],
    ['an algorithm keygen does not make', ['keygen', '--alg', 'HS256'], /--alg must be one of ES256, RS256, EdDSA/],
    ['a bcrypt cost below 4', ['hash-secret', '--cost', '3'], /--cost must be a whole number from 4 to 31/],
    ['a default scope outside the scope', ['create-client', '--id', 'a', '--scope', 'read', '--default-scope', 'write'], /--default-scope must be a subset of --scope/],
    ['a token lifetime of 0', ['create-client', '--id', 'a', '--scope', 'read', '--ttl', '0'], /--ttl must be a positive whole number of seconds/],
    ['an unknown auth method', ['token', '--url', 'http://127.0.0.1:9/token', '--id', 'a', '--auth-method', 'private_key_jwt'], /--auth-method must be one of/],
    ['a URL that is not http(s)', ['token', '--url', 'ftp://127.0.0.1/token', '--id', 'a'], /--url must be an absolute http\(s\) URL/],
    ['both a file and a database', ['create-client', '--id', 'a', '--scope', 'read', '--file', 'c.json', '--database-url', 'postgres://127.0.0.1:9/x'], /give --file or --database-url, not both/],
    ['a table name without a database', ['create-client', '--id', 'a', '--scope', 'read', '--table', 'clients'], /--schema and --table go with --database-url/],
    ['a database URL that is not PostgreSQL', ['migrate', '--database-url', 'mysql://127.0.0.1/x'], /must start with postgres:\/\//],
    ['--print with a database', ['migrate', '--print', '--database-url', 'postgres://127.0.0.1:9/x'], /--print connects to nothing/],
    ['a table name PostgreSQL would cut', ['migrate', '--print', '--table', 't'.repeat(64)], /--table must be a PostgreSQL name of 1 to 63 bytes/],
  ])('refuses %s with one line on stderr and exit code 2', async (_, args, message) => {
    const run = await cli(args);
    expectOneLineError(run, 2, /^express-client-credentials: .+; see --help\n$/);
    expect(run.stderr).toMatch(message);
    expect(run.stderr).not.toContain('s3cret');
  });
});
