// The command line as users run it: main(argv, io) with stdin and the environment, the real bin
// through a shell where its process matters, files, and a real issuer on 127.0.0.1.

import { spawn } from 'node:child_process';
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, randomUUID, type KeyObject } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import express from 'express';
import { issuer, MemoryClientStore, type ClientRecord } from 'express-client-credentials';
import { main } from '../lib/cli.js';
import { signJws } from '../lib/core/jws.js';
import { resolveSigningKey } from '../lib/core/signing-keys.js';
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

/**
 * Runs a command in this process through main(argv, io), as the bin does, with stdin fed and the
 * environment given: a process per command cost most of this suite's time. The few tests that
 * must see the real bin, its exit code and its pipes, go through shell() below.
 */
async function cli(args: readonly string[], { input = '', env = {} }: { input?: string; env?: Record<string, string> } = {}): Promise<Run> {
  const commandEnv: NodeJS.ProcessEnv = { ...process.env, ...env };
  if (env.OAUTH_CLIENT_SECRET === undefined) delete commandEnv.OAUTH_CLIENT_SECRET;
  let stdout = '';
  let stderr = '';
  const code = await main(args, {
    env: commandEnv,
    stdinIsTty: false,
    readStdin: async () => Buffer.from(input),
    out: (text) => void (stdout += text),
    err: (text) => void (stderr += text),
  });
  return { code, stdout, stderr };
}

/** Runs a shell command line in `cwd`, with the command on PATH under its own name, as users type it. */
function shell(script: string, cwd: string): Promise<Run> {
  const bin = join(dir, 'bin');
  mkdirSync(bin, { recursive: true });
  writeFileSync(join(bin, 'express-client-credentials'), `#!/bin/sh\nexec '${process.execPath}' '${TSX}' '${CLI}' "$@"\n`, { mode: 0o755 });
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/sh', ['-c', script], { cwd, env: { ...process.env, PATH: `${bin}:${process.env.PATH ?? ''}` }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
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

  it('writes no auth method unless asked, so a client it makes gets tokens with Basic and with the tutorial request, credentials in the body', async () => {
    const file = join(dir, 'tutorial.json');
    const run = await cli(['create-client', '--id', 'tutorial', '--scope', 'read', '--file', file]);
    expect(JSON.parse(run.stdout)).not.toHaveProperty('token_endpoint_auth_method');
    const secret = secretShown(run);
    const server = await issuerOverFile(file);
    try {
      const tokenUrl = `${server.url}/token`;
      expect((await requestToken(tokenUrl, {}, ['tutorial', secret])).status).toBe(200);
      expect((await requestToken(tokenUrl, { client_id: 'tutorial', client_secret: secret })).status).toBe(200);
    } finally {
      await close(server);
    }
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

const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const publicJwk = (key: KeyObject): Record<string, unknown> => createPublicKey(key).export({ format: 'jwk' }) as Record<string, unknown>;

/** A client assertion (RFC 7523 §3) for the token endpoint at `tokenUrl`, signed by our own JWS code. */
function clientAssertion(clientId: string, tokenUrl: string, signer: { key: string | KeyObject; alg: 'ES256' | 'RS256' | 'PS256' | 'EdDSA'; kid?: string }): string {
  const now = Math.floor(Date.now() / 1000);
  const key = resolveSigningKey({ privateKey: signer.key, alg: signer.alg, ...(signer.kid === undefined ? {} : { kid: signer.kid }) });
  return signJws({ iss: clientId, sub: clientId, aud: tokenUrl, exp: now + 60, jti: randomUUID() }, key, 'JWT');
}

/** POSTs a client credentials grant, with HTTP Basic when `basic` is given. */
async function requestToken(tokenUrl: string, body: Record<string, string>, basic?: readonly [string, string]): Promise<{ status: number; body: Record<string, string> }> {
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
  if (basic !== undefined) headers.authorization = `Basic ${Buffer.from(`${basic[0]}:${basic[1]}`).toString('base64')}`;
  const response = await fetch(tokenUrl, { method: 'POST', headers, body: new URLSearchParams({ grant_type: 'client_credentials', ...body }) });
  return { status: response.status, body: (await response.json()) as Record<string, string> };
}

/** An issuer on loopback over a clients file, read once, as an app would. */
const issuerOverFile = (file: string): Promise<Listening> =>
  serve((url) => express().use('/token', issuer({ issuer: url, signingKey: { secret: SECRET }, clients: MemoryClientStore.fromFile(file) })));

describe('create-client --public-key and --jwks-uri: clients that sign their requests (private_key_jwt, RFC 7523)', () => {
  it('keygen --out | create-client --public-key: the documented chain registers a client that gets a token with its key', async () => {
    const work = join(dir, 'chain');
    mkdirSync(work);
    const run = await shell(
      'express-client-credentials keygen --alg ES256 --out svc.pem > svc.jwk.json && express-client-credentials create-client --id svc --scope read --public-key svc.jwk.json --file clients.json',
      work,
    );
    // No secret is made, so none is shown.
    expect(run).toMatchObject({ code: 0, stderr: "Wrote the ES256 private key to svc.pem (mode 0600).\nAdded client 'svc' to clients.json.\n" });
    const jwk = JSON.parse(readFileSync(join(work, 'svc.jwk.json'), 'utf8')) as Record<string, unknown>;
    const records = JSON.parse(readFileSync(join(work, 'clients.json'), 'utf8')) as ClientRecord[];
    expect(records).toEqual([{ client_id: 'svc', scope: 'read', token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [jwk] } }]);
    expect(JSON.parse(run.stdout)).toEqual(records[0]);
    expect(mode(join(work, 'clients.json'))).toBe(0o600);

    const server = await issuerOverFile(join(work, 'clients.json'));
    try {
      const tokenUrl = `${server.url}/token`;
      const pem = readFileSync(join(work, 'svc.pem'), 'utf8');
      const granted = await requestToken(tokenUrl, { client_assertion_type: JWT_BEARER, client_assertion: clientAssertion('svc', tokenUrl, { key: pem, alg: 'ES256' }) });
      expect(granted.status).toBe(200);
      expect(decodePayload(granted.body.access_token as string)).toMatchObject({ client_id: 'svc', scope: 'read' });
      // Another key, even under the registered kid, is refused.
      const impostor = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
      const refused = await requestToken(tokenUrl, { client_assertion_type: JWT_BEARER, client_assertion: clientAssertion('svc', tokenUrl, { key: impostor, alg: 'ES256', kid: String(jwk.kid) }) });
      expect([refused.status, refused.body.error]).toEqual([401, 'invalid_client']);
    } finally {
      await close(server);
    }
  });

  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  const ed = generateKeyPairSync('ed25519').privateKey;
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  type Signer = { key: KeyObject; alg: 'ES256' | 'RS256' | 'PS256' | 'EdDSA'; kid?: string };

  it.each<[string, () => string, () => Record<string, unknown>[], Signer[]]>([
    [
      'a PEM public key: the thumbprint kid, use "sig", no alg',
      () => createPublicKey(rsa).export({ type: 'spki', format: 'pem' }).toString(),
      () => [{ ...publicJwk(rsa), kid: thumbprint(publicJwk(rsa)), use: 'sig' }],
      [{ key: rsa, alg: 'RS256' }],
    ],
    [
      'a JWK with its own kid and alg, kept',
      () => JSON.stringify({ ...publicJwk(rsa), kid: 'billing-pss', alg: 'PS256' }),
      () => [{ ...publicJwk(rsa), kid: 'billing-pss', alg: 'PS256', use: 'sig' }],
      [{ key: rsa, alg: 'PS256', kid: 'billing-pss' }],
    ],
    [
      'a JWK Set: every key, with only its public members',
      () => JSON.stringify({ keys: [{ ...publicJwk(ed), key_ops: ['verify'], x5t: 'ignored' }, { ...publicJwk(ec), kid: 'ec-1', use: 'sig' }] }),
      () => [
        { ...publicJwk(ed), kid: thumbprint(publicJwk(ed)), use: 'sig' },
        { ...publicJwk(ec), kid: 'ec-1', use: 'sig' },
      ],
      [{ key: ed, alg: 'EdDSA' }, { key: ec, alg: 'ES256', kid: 'ec-1' }],
    ],
  ])('registers %s, and each key gets a token', async (name, keyText, expected, signers) => {
    const id = `keyed-${randomUUID().slice(0, 8)}`;
    const keyFile = join(dir, `${id}.key`);
    const file = join(dir, `${id}.json`);
    writeFileSync(keyFile, keyText());
    const run = await cli(['create-client', '--id', id, '--scope', 'read', '--public-key', keyFile, '--file', file]);
    expect(run).toMatchObject({ code: 0, stderr: `Added client '${id}' to ${file}.\n` });
    const record = JSON.parse(run.stdout) as ClientRecord;
    expect(record).toEqual({ client_id: id, scope: 'read', token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: expected() } });
    const server = await issuerOverFile(file);
    try {
      const tokenUrl = `${server.url}/token`;
      for (const signer of signers) {
        const res = await requestToken(tokenUrl, { client_assertion_type: JWT_BEARER, client_assertion: clientAssertion(id, tokenUrl, signer) });
        expect([name, signer.alg, res.status]).toEqual([name, signer.alg, 200]);
      }
    } finally {
      await close(server);
    }
  });

  const privateRsa = rsa.export({ format: 'jwk' });
  const privateEc = ec.export({ format: 'jwk' });
  it.each<[string, () => string, RegExp]>([
    ['a private key in PEM', () => ec.export({ type: 'pkcs8', format: 'pem' }).toString(), /\.key holds a private key: register only the public key/],
    ['a private key in SEC1 PEM', () => ec.export({ type: 'sec1', format: 'pem' }).toString(), /\.key holds a private key/],
    ['a private JWK', () => JSON.stringify(privateEc), /the key in .*\.key is private \(it has "d"\)/],
    ['a JWK Set with one private key among public ones', () => JSON.stringify({ keys: [publicJwk(ec), privateRsa] }), /key 2 of .*\.key is private \(it has "d", "p", "q", "dp", "dq", "qi"\)/],
    ['a symmetric key', () => JSON.stringify({ kty: 'oct', k: 'c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA' }), /is private \(it has "k"\)/],
    ['a key published for encryption', () => JSON.stringify({ ...publicJwk(ec), use: 'enc' }), /is not a public signing key the issuer can use/],
    ['an RSA key of 1024 bits', () => createPublicKey(generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey).export({ type: 'spki', format: 'pem' }).toString(), /is not a public signing key the issuer can use/],
    ['a curve the issuer does not take', () => JSON.stringify(publicJwk(generateKeyPairSync('ec', { namedCurve: 'secp256k1' }).privateKey)), /is not a public signing key the issuer can use/],
    ['an alg that does not fit the key', () => JSON.stringify({ ...publicJwk(ec), alg: 'RS256' }), /is not a public signing key the issuer can use/],
    ['two keys under one kid', () => JSON.stringify({ keys: [{ ...publicJwk(ec), kid: 'same' }, { ...publicJwk(ed), kid: 'same' }] }), /holds two keys with kid 'same'/],
    ['an empty JWK Set', () => JSON.stringify({ keys: [] }), /the JWK Set in .*\.key has no keys/],
    ['two PEM blocks', () => `${createPublicKey(ec).export({ type: 'spki', format: 'pem' })}${createPublicKey(ed).export({ type: 'spki', format: 'pem' })}`, /holds more than one PEM block/],
    ['text that is no key', () => 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5 me@host', /\.key is not a PEM public key, a JWK or a JWK Set/],
  ])('refuses %s with exit code 1, showing no secret and leaving the clients file unchanged', async (_, keyText, message) => {
    const keyFile = join(dir, `refused-${randomUUID().slice(0, 8)}.key`);
    const file = join(dir, 'refusing.json');
    writeFileSync(file, '[]\n');
    writeFileSync(keyFile, keyText());
    const run = await cli(['create-client', '--id', 'refused', '--scope', 'read', '--public-key', keyFile, '--file', file]);
    expectOneLineError(run, 1, message);
    expect(run.stderr).not.toContain(String(privateEc.d));
    expect(readFileSync(file, 'utf8')).toBe('[]\n');
  });

  it('refuses a --public-key file that cannot be read', async () => {
    expectOneLineError(await cli(['create-client', '--id', 'a', '--scope', 'read', '--public-key', join(dir, 'no-such.jwk.json')]), 1, /cannot read .*no-such\.jwk\.json: ENOENT/);
  });

  it('--jwks-uri registers where the client publishes its keys; an issuer fetches them and grants a token', async () => {
    const jwks = await serve(() => express().get('/jwks.json', (_req, res) => void res.json({ keys: [{ ...publicJwk(ec), kid: 'published' }] })));
    const file = join(dir, 'by-uri.json');
    try {
      const run = await cli(['create-client', '--id', 'by-uri', '--scope', 'read', '--auth-method', 'private_key_jwt', '--jwks-uri', `${jwks.url}/jwks.json`, '--file', file]);
      expect(run).toMatchObject({ code: 0, stderr: `Added client 'by-uri' to ${file}.\n` });
      expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual([{ client_id: 'by-uri', scope: 'read', token_endpoint_auth_method: 'private_key_jwt', jwks_uri: `${jwks.url}/jwks.json` }]);
      const server = await issuerOverFile(file);
      try {
        const tokenUrl = `${server.url}/token`;
        const res = await requestToken(tokenUrl, { client_assertion_type: JWT_BEARER, client_assertion: clientAssertion('by-uri', tokenUrl, { key: ec, alg: 'ES256', kid: 'published' }) });
        expect(res.status).toBe(200);
      } finally {
        await close(server);
      }
    } finally {
      await close(jwks);
    }
  });

  it('prints a --jwks-uri record on stdout alone without --file, and takes https for any host', async () => {
    const run = await cli(['create-client', '--id', 'remote', '--scope', 'read write', '--default-scope', 'read', '--jwks-uri', 'https://remote.example/.well-known/jwks.json']);
    expect(run).toMatchObject({ code: 0, stderr: '' });
    expect(JSON.parse(run.stdout)).toEqual({
      client_id: 'remote',
      scope: 'read write',
      default_scope: 'read',
      token_endpoint_auth_method: 'private_key_jwt',
      jwks_uri: 'https://remote.example/.well-known/jwks.json',
    });
  });
});

describe('rotate-secret: a new secret, the old ones kept for a while', () => {
  interface SecretEntry {
    hash: string;
    expires_at: number;
    [member: string]: unknown;
  }

  it('adds a new secret, gives the old one a day, writes the file keeping its mode, and an issuer takes both', async () => {
    const file = join(dir, 'rotate.json');
    const created = await cli(['create-client', '--id', 'roller', '--scope', 'read', '--file', file]);
    const oldSecret = secretShown(created);
    const oldHash = (JSON.parse(created.stdout) as ClientRecord).client_secret_hash as string;
    chmodSync(file, 0o640);
    const before = Date.now() / 1000;
    const run = await cli(['rotate-secret', '--id', 'roller', '--file', file]);
    const after = Date.now() / 1000;
    expect(run.code).toBe(0);
    const record = JSON.parse(run.stdout) as ClientRecord;
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual([record]);
    expect(mode(file)).toBe(0o640);
    const [old, fresh] = record.client_secret_hash as [SecretEntry, string];
    expect(record).toEqual({ client_id: 'roller', client_secret_hash: [{ hash: oldHash, expires_at: old.expires_at }, fresh], scope: 'read' });
    expect(Number.isInteger(old.expires_at)).toBe(true);
    expect(old.expires_at).toBeGreaterThanOrEqual(before + 86_400);
    expect(old.expires_at).toBeLessThanOrEqual(Math.ceil(after) + 86_400);

    const newSecret = secretShown(run);
    expect(newSecret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(newSecret).not.toBe(oldSecret);
    expect(fresh).toMatch(/^\$2[aby]\$10\$/);
    expect(await bcrypt.compare(newSecret, fresh)).toBe(true);
    expect(run.stderr.split(newSecret)).toHaveLength(2); // shown once
    expect(run.stdout).not.toContain(newSecret);
    expect(run.stderr).toMatch(/\nRotated the secret of client 'roller' in .*rotate\.json; the old secret works until \d{4}-\d\d-\d\dT[\d:.]+Z: give the client the new one before then\.\n$/);

    const server = await issuerOverFile(file);
    try {
      const tokenUrl = `${server.url}/token`;
      expect((await requestToken(tokenUrl, {}, ['roller', oldSecret])).status).toBe(200);
      expect((await requestToken(tokenUrl, {}, ['roller', newSecret])).status).toBe(200);
      expect((await requestToken(tokenUrl, {}, ['roller', `${newSecret.slice(0, -1)}X`])).status).toBe(401);
    } finally {
      await close(server);
    }
  });

  it('with --old-expires-in 1: both secrets work during the roll-over, and past its end only the new one', async () => {
    const file = join(dir, 'rotate-short.json');
    const oldSecret = secretShown(await cli(['create-client', '--id', 'short', '--scope', 'read', '--file', file]));
    const run = await cli(['rotate-secret', '--id', 'short', '--file', file, '--old-expires-in', '1']);
    expect(run.code).toBe(0);
    const newSecret = secretShown(run);
    const [old] = (JSON.parse(readFileSync(file, 'utf8')) as ClientRecord[])[0]?.client_secret_hash as [SecretEntry, string];
    const server = await issuerOverFile(file);
    try {
      const tokenUrl = `${server.url}/token`;
      const during = await Promise.all([requestToken(tokenUrl, {}, ['short', oldSecret]), requestToken(tokenUrl, {}, ['short', newSecret])]);
      expect(during.map((res) => res.status)).toEqual([200, 200]);
      // expires_at is a whole second at least 1 s ahead: about 1.5 s, never more than 2.
      await sleep(Math.max(0, old.expires_at * 1000 - Date.now()) + 250);
      const refused = await requestToken(tokenUrl, {}, ['short', oldSecret]);
      expect([refused.status, refused.body.error]).toEqual([401, 'invalid_client']);
      expect((await requestToken(tokenUrl, {}, ['short', newSecret])).status).toBe(200);
    } finally {
      await close(server);
    }
  });

  it('drops expired hashes, keeps an earlier expiry, cuts a later one, and keeps the rest of the record and the file', async () => {
    const file = join(dir, 'rotate-many.json');
    const now = Math.floor(Date.now() / 1000);
    const [expired, soon, late, plain, otherHash] = await Promise.all(['a', 'b', 'c', 'd', 'e'].map((secret) => bcrypt.hash(secret, 4)));
    const record = {
      client_id: 'many',
      client_secret_hash: [
        { hash: expired, expires_at: now - 10 },
        { hash: soon, expires_at: now + 100, note: 'deploy 41' },
        { hash: late, expires_at: now + 10_000_000 },
        plain,
      ],
      scope: 'read',
      audience: 'https://api.example',
      metadata: { tenant: 'acme' },
    };
    const other = { client_id: 'other', client_secret_hash: otherHash, scope: 'read' };
    writeFileSync(file, JSON.stringify({ note: 'kept', clients: [other, record] }));
    const run = await cli(['rotate-secret', '--id', 'many', '--file', file, '--old-expires-in', '3600']);
    expect(run.code).toBe(0);
    const rotated = JSON.parse(run.stdout) as ClientRecord;
    const entries = rotated.client_secret_hash as [SecretEntry, SecretEntry, SecretEntry, string];
    const until = entries[1].expires_at;
    expect(until).toBeGreaterThanOrEqual(now + 3600);
    expect(until).toBeLessThanOrEqual(Math.ceil(Date.now() / 1000) + 3600);
    expect(rotated).toEqual({
      ...record,
      client_secret_hash: [{ hash: soon, expires_at: now + 100, note: 'deploy 41' }, { hash: late, expires_at: until }, { hash: plain, expires_at: until }, entries[3]],
    });
    expect(Object.keys(rotated)).toEqual(Object.keys(record));
    // The new hash has the cost of the newest old one: what the issuer's secretHashCost was set to.
    expect(entries[3]).toMatch(/^\$2[aby]\$04\$/);
    expect(await bcrypt.compare(secretShown(run), entries[3])).toBe(true);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({ note: 'kept', clients: [other, rotated] });
    expect(run.stderr).toMatch(/its 3 old secrets work until/);
  });

  it('with --old-expires-in 0 ends the old secrets at once', async () => {
    const file = join(dir, 'rotate-cut.json');
    const oldSecret = secretShown(await cli(['create-client', '--id', 'cut', '--scope', 'read', '--file', file]));
    const run = await cli(['rotate-secret', '--id', 'cut', '--file', file, '--old-expires-in', '0']);
    expect(run.code).toBe(0);
    const [record] = JSON.parse(readFileSync(file, 'utf8')) as ClientRecord[];
    expect(record?.client_secret_hash).toEqual([expect.stringMatching(/^\$2[aby]\$10\$/)]);
    expect(await bcrypt.compare(secretShown(run), (record?.client_secret_hash as string[])[0] as string)).toBe(true);
    expect(await bcrypt.compare(oldSecret, (record?.client_secret_hash as string[])[0] as string)).toBe(false);
    expect(run.stderr).toMatch(/no old secret works any more/);
  });

  it.each<[string, string, RegExp]>([
    ['an unknown id', 'ghost', /^express-client-credentials: client 'ghost' is not in .*rotate-refused\.json; the file was left unchanged\n$/],
    ['a private_key_jwt client', 'keyed', /^express-client-credentials: client 'keyed' authenticates with private_key_jwt and has no secret to rotate; the file was left unchanged\n$/],
  ])('refuses %s with exit code 1, showing no secret and leaving the file unchanged', async (_, id, message) => {
    const file = join(dir, 'rotate-refused.json');
    const text = `${JSON.stringify([
      { client_id: 'present', client_secret_hash: await bcrypt.hash('x', 4), scope: 'read' },
      { client_id: 'keyed', token_endpoint_auth_method: 'private_key_jwt', jwks_uri: 'https://keyed.example/jwks.json', scope: 'read' },
    ])}\n`;
    writeFileSync(file, text);
    const run = await cli(['rotate-secret', '--id', id, '--file', file]);
    expectOneLineError(run, 1, message);
    expect(readFileSync(file, 'utf8')).toBe(text);
  });

  it('refuses a --file that does not exist, and does not make it', async () => {
    const file = join(dir, 'rotate-missing.json');
    expectOneLineError(await cli(['rotate-secret', '--id', 'a', '--file', file]), 1, /client 'a' is not in .*rotate-missing\.json/);
    expect(() => statSync(file)).toThrow(/ENOENT/);
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

  it('makes an ES256 key (EC P-256) when --alg is not given', async () => {
    const out = join(dir, 'default-alg.pem');
    const run = await cli(['keygen', '--out', out]);
    expect(run).toMatchObject({ code: 0, stderr: `Wrote the ES256 private key to ${out} (mode 0600).\n` });
    const key = createPrivateKey(readFileSync(out, 'utf8'));
    expect([key.asymmetricKeyType, key.asymmetricKeyDetails?.namedCurve]).toEqual(['ec', 'prime256v1']);
    expect(JSON.parse(run.stdout)).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig' });
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

  it('prints the OAuth error on one line with the prefix of every other error, and exits 1 for a wrong secret, never printing a secret', async () => {
    const wrong = `${basicSecret.slice(0, -1)}X`;
    const run = await cli(['token', '--url', `${server.url}/token`, '--id', BASIC_ID], { env: { OAUTH_CLIENT_SECRET: wrong } });
    expectOneLineError(run, 1, /^express-client-credentials: /);
    expect(run.stderr).toBe('express-client-credentials: invalid_client: Client authentication failed\n');
  });

  it('prints the OAuth error, with the same prefix, for a client using the method it is not registered for', async () => {
    const run = await cli(['token', '--url', `${server.url}/token`, '--id', 'poster'], { input: postSecret });
    expect(run).toEqual({ code: 1, stdout: '', stderr: 'express-client-credentials: invalid_client: Client authentication failed\n' });
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
  it('is a real bin: exit code 0 for help, 2 for a usage error, 1 for a failure, and its output pipes', async () => {
    const run = await shell('express-client-credentials --help | head -1; echo "help=$?"; express-client-credentials --bogus; echo "usage=$?"; express-client-credentials hash-secret < /dev/null; echo "failure=$?"', dir);
    expect(run.stdout).toMatch(/help=0\n/);
    expect(run.stdout).toMatch(/usage=2\n/);
    expect(run.stdout).toMatch(/failure=1\n/);
    expect(run.stderr).toMatch(/^express-client-credentials: unknown option '--bogus'.*; see --help\n/m);
  });

  it.concurrent.each([
    [['--help'], 'create-client'],
    [['-h'], 'keygen'],
    [['help'], 'hash-secret'],
    [['help', 'token'], '--url TOKEN_URL'],
    [['create-client', '--help'], '--default-scope'],
    [['hash-secret', '-h'], '--cost N'],
    [['keygen', '--alg', 'ES256', '--help'], '--out FILE'],
    [['keygen', '--help'], 'ES256, RS256 or EdDSA (default: ES256)'],
    [['token', '--help'], 'OAUTH_CLIENT_SECRET'],
    [['migrate', '--help'], '--database-url URL'],
    [['create-client', '-h'], '--database-url URL'],
    [['create-client', '--help'], '--public-key FILE'],
    [['--help'], 'rotate-secret'],
    [['rotate-secret', '--help'], '--old-expires-in SECONDS'],
    [['help', 'rotate-secret'], 'private_key_jwt'],
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
    ['both a public key and a JWKS URL', ['create-client', '--id', 'a', '--scope', 'read', '--public-key', 'k.json', '--jwks-uri', 'https://a.example/jwks.json'], /give --public-key or --jwks-uri, not both/],
    ['a secret method with a public key', ['create-client', '--id', 'a', '--scope', 'read', '--public-key', 'k.json', '--auth-method', 'client_secret_post'], /--public-key registers a private_key_jwt client, which has no secret; drop --auth-method client_secret_post/],
    ['a secret method with a JWKS URL', ['create-client', '--id', 'a', '--scope', 'read', '--jwks-uri', 'https://a.example/jwks.json', '--auth-method', 'client_secret_basic'], /--jwks-uri registers a private_key_jwt client/],
    ['private_key_jwt without a key', ['create-client', '--id', 'a', '--scope', 'read', '--auth-method', 'private_key_jwt'], /--auth-method private_key_jwt needs --public-key FILE or --jwks-uri URL/],
    ['a JWKS URL over plain http to another host', ['create-client', '--id', 'a', '--scope', 'read', '--jwks-uri', 'http://a.example/jwks.json'], /--jwks-uri must be an absolute https URL/],
    ['a relative JWKS URL', ['create-client', '--id', 'a', '--scope', 'read', '--jwks-uri', '/jwks.json'], /--jwks-uri must be an absolute https URL/],
    ['a JWKS URL with credentials', ['create-client', '--id', 'a', '--scope', 'read', '--jwks-uri', 'https://u:p@a.example/jwks.json'], /--jwks-uri must be an absolute https URL without credentials/],
    ['rotate-secret without --id', ['rotate-secret', '--file', 'c.json'], /missing --id/],
    ['rotate-secret without a file or a database', ['rotate-secret', '--id', 'a'], /give --file or --database-url: where the client is/],
    ['rotate-secret with a file and a database', ['rotate-secret', '--id', 'a', '--file', 'c.json', '--database-url', 'postgres://127.0.0.1:9/x'], /give --file or --database-url, not both/],
    ['rotate-secret with a table but no database', ['rotate-secret', '--id', 'a', '--file', 'c.json', '--table', 'clients'], /--schema and --table go with --database-url/],
    ['an old-expires-in that is not whole seconds', ['rotate-secret', '--id', 'a', '--file', 'c.json', '--old-expires-in', '1.5'], /--old-expires-in must be a whole number of seconds from 0 to 315360000/],
    ['an old-expires-in past ten years', ['rotate-secret', '--id', 'a', '--file', 'c.json', '--old-expires-in', '315360001'], /--old-expires-in must be a whole number of seconds/],
    ['rotate-secret with a database URL that is not PostgreSQL', ['rotate-secret', '--id', 'a', '--database-url', 'mysql://127.0.0.1/x'], /must start with postgres:\/\//],
  ])('refuses %s with one line on stderr and exit code 2', async (_, args, message) => {
    const run = await cli(args);
    expectOneLineError(run, 2, /^express-client-credentials: .+; see --help\n$/);
    expect(run.stderr).toMatch(message);
    expect(run.stderr).not.toContain('s3cret');
  });
});
