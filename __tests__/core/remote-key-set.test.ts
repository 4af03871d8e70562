// A remote key set against real HTTP servers on 127.0.0.1: RFC 7517 §5 (JWKS), RFC 8414 §3 (discovery).

import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ConfigurationError } from '../../lib/core/errors.js';
import { KeySetUnavailableError, RemoteKeySet, type RemoteKeySetOptions } from '../../lib/core/remote-key-set.js';

/** What a route answers: JSON (`json`) or raw text (`raw`), optionally late or with another status. */
interface Reply {
  readonly status?: number;
  readonly json?: unknown;
  readonly raw?: string;
  readonly headers?: Record<string, string>;
  readonly delayMs?: number;
  /** Sent in pieces without Content-Length (chunked transfer coding). */
  readonly chunked?: boolean;
  /** A Content-Length promising more than is sent: the body never ends. */
  readonly declaredLength?: number;
}

interface TestServer {
  readonly origin: string;
  /** Requests received for `path`. */
  hits(path: string): number;
  /** Sets (or, with `undefined`, removes: 404) what `path` answers from now on. */
  route(path: string, reply: Reply | undefined): void;
  /** Takes the server down: open connections are cut and new ones refused. */
  stop(): Promise<void>;
}

const servers: Server[] = [];

async function aServer(routes: Record<string, Reply> = {}): Promise<TestServer> {
  const replies = new Map(Object.entries(routes));
  const hits = new Map<string, number>();
  const server = createServer((req, res) => {
    const path = req.url ?? '';
    hits.set(path, (hits.get(path) ?? 0) + 1);
    const reply = replies.get(path) ?? { status: 404, raw: 'not found' };
    const send = (): void => {
      const body = Buffer.from(reply.raw ?? JSON.stringify(reply.json));
      const length = reply.chunked === true ? {} : { 'content-length': String(reply.declaredLength ?? body.length) };
      res.writeHead(reply.status ?? 200, { 'content-type': 'application/json', ...length, ...reply.headers });
      if (reply.declaredLength !== undefined) return void res.write(body);
      for (let offset = 0; offset < body.length; offset += 64 * 1024) res.write(body.subarray(offset, offset + 64 * 1024));
      res.end();
    };
    if (reply.delayMs === undefined) return send();
    const timer = setTimeout(send, reply.delayMs);
    res.on('close', () => clearTimeout(timer)); // a client that gave up leaves no timer behind
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    hits: (path) => hits.get(path) ?? 0,
    route: (path, reply) => (reply === undefined ? replies.delete(path) : replies.set(path, reply)),
    stop: () => close(server),
  };
}

function close(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

afterAll(async () => {
  await Promise.all(servers.filter((server) => server.listening).map(close));
});

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

let publicKeys: Record<'ec' | 'ec2' | 'rsa' | 'ed25519' | 'p384', KeyObject>;
let privateEc: KeyObject;

beforeAll(() => {
  publicKeys = {
    ec: generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey,
    ec2: generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey,
    rsa: generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey,
    ed25519: generateKeyPairSync('ed25519').publicKey,
    p384: generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey,
  };
  privateEc = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
});

const ALG_OF: Record<string, string> = { ec: 'ES256', rsa: 'RS256', ed25519: 'EdDSA' };

/** A published JWK: the public key (P-256 unless given) with kid, alg and use, plus overrides. */
function aJwk(kid: string, overrides: Record<string, unknown> = {}, key: KeyObject = publicKeys.ec): Record<string, unknown> {
  return { ...key.export({ format: 'jwk' }), kid, alg: ALG_OF[key.asymmetricKeyType ?? ''], use: 'sig', ...overrides };
}

const jwks = (...keys: unknown[]): Reply => ({ json: { keys } });

/** A key set with small timings, so tests wait for real instead of faking the clock. */
function aKeySet(server: TestServer, overrides: Partial<RemoteKeySetOptions> = {}): RemoteKeySet {
  return new RemoteKeySet({ jwksUri: `${server.origin}/jwks`, cooldown: 100, maxAge: 300, timeout: 500, ...overrides });
}

const kids = (keys: RemoteKeySet): string[] => keys.current().map((key) => key.kid);
const randomKid = (): string => `forged-${Math.random().toString(36).slice(2)}`;

/** A usable JWK Set padded with whitespace past 512 KiB: only its size is wrong. */
const oversized = (): string => `${JSON.stringify({ keys: [aJwk('k1')] })}${' '.repeat(512 * 1024)}`;

/**
 * Documents that must never replace a good key set, nor count as one. Functions, as the keys are made
 * in beforeAll; the redirect points at a usable set (`/moved`), which must not be followed to.
 */
const BAD_REPLIES: [string, () => Reply][] = [
  ['a body that is not JSON', () => ({ raw: '{"keys": [' })],
  ['a 500 answer', () => ({ status: 500, json: { keys: [aJwk('k1')] } })],
  ['a redirect', () => ({ status: 302, headers: { location: '/moved' }, raw: '' })],
  ['a JSON document that is not a JWK Set', () => ({ json: { keys: 'none' } })],
  ['a JSON array', () => ({ json: [aJwk('k1')] })],
  ['a JWK Set without a usable key', () => ({ json: { keys: [{ kty: 'oct', k: 'c2VjcmV0' }] } })],
  ['a body over 512 KiB', () => ({ raw: oversized() })],
  ['a body over 512 KiB without Content-Length', () => ({ raw: oversized(), chunked: true })],
  ['a declared Content-Length over 512 KiB', () => ({ raw: '{"keys":', declaredLength: 512 * 1024 + 1 })],
];

/** A server whose `/moved` serves a usable set, for the redirect above. */
async function aServerWithMovedSet(routes: Record<string, Reply>): Promise<TestServer> {
  const server = await aServer(routes);
  server.route('/moved', jwks(aJwk('moved', {}, publicKeys.ec2)));
  return server;
}

describe('remote key set: RFC 7517 §5 JWK Set', () => {
  it('loads the keys on first use, each pinned to the alg and kid of its JWK', async () => {
    const server = await aServer({ '/jwks': jwks(aJwk('ec-1'), aJwk('rsa-1', {}, publicKeys.rsa), aJwk('ed-1', {}, publicKeys.ed25519)) });
    const keys = aKeySet(server);
    expect(keys.current()).toEqual([]);
    await keys.ensure(undefined);
    expect(keys.current().map(({ kid, alg, kidGiven }) => ({ kid, alg, kidGiven }))).toEqual([
      { kid: 'ec-1', alg: 'ES256', kidGiven: true },
      { kid: 'rsa-1', alg: 'RS256', kidGiven: true },
      { kid: 'ed-1', alg: 'EdDSA', kidGiven: true },
    ]);
    await keys.ensure('rsa-1');
    expect(server.hits('/jwks')).toBe(1);
  });

  it('shares one fetch among concurrent first loads', async () => {
    const server = await aServer({ '/jwks': { ...jwks(aJwk('k1')), delayMs: 50 } });
    const keys = aKeySet(server);
    await Promise.all(Array.from({ length: 20 }, (_, i) => keys.ensure(i % 2 === 0 ? 'k1' : randomKid())));
    expect(server.hits('/jwks')).toBe(1);
    expect(kids(keys)).toEqual(['k1']);
  });

  it('starts no second fetch while one is in flight, even when it outlasts the cooldown', async () => {
    const server = await aServer({ '/jwks': jwks(aJwk('k1')) });
    const keys = aKeySet(server, { cooldown: 50, maxAge: 60_000, timeout: 1_000 });
    await keys.ensure('k1');
    server.route('/jwks', { ...jwks(aJwk('k1'), aJwk('k2', {}, publicKeys.ec2)), delayMs: 300 });
    await sleep(100);
    const first = keys.ensure('k2');
    await sleep(150);
    await Promise.all([first, keys.ensure('k2'), keys.ensure(randomKid())]);
    expect(server.hits('/jwks')).toBe(2);
    expect(kids(keys)).toEqual(['k1', 'k2']);
  });

  it('refetches for an unknown kid at most once per cooldown, even under 50 concurrent forged kids', async () => {
    const server = await aServer({ '/jwks': jwks(aJwk('k1')) });
    const keys = aKeySet(server, { cooldown: 150, maxAge: 60_000 });
    await keys.ensure('k1');
    await sleep(200);
    await Promise.all(Array.from({ length: 50 }, () => keys.ensure(randomKid())));
    expect(server.hits('/jwks')).toBe(2);
    await Promise.all(Array.from({ length: 50 }, () => keys.ensure(randomKid())));
    expect(server.hits('/jwks')).toBe(2);
    await sleep(200);
    await keys.ensure(randomKid());
    expect(server.hits('/jwks')).toBe(3);
    expect(kids(keys)).toEqual(['k1']);
  });

  it('never refetches for a token without a string kid while keys are loaded', async () => {
    const server = await aServer({ '/jwks': jwks(aJwk('k1')) });
    const keys = aKeySet(server, { cooldown: 50, maxAge: 60_000 });
    await keys.ensure(undefined);
    await sleep(100);
    await Promise.all([keys.ensure(undefined), keys.ensure(42), keys.ensure(null), keys.ensure('k1')]);
    expect(server.hits('/jwks')).toBe(1);
  });

  it('picks up a rotated key when a token names its kid', async () => {
    const server = await aServer({ '/jwks': jwks(aJwk('old')) });
    const keys = aKeySet(server, { maxAge: 60_000 });
    await keys.ensure('old');
    server.route('/jwks', jwks(aJwk('old'), aJwk('new', {}, publicKeys.ec2)));
    await sleep(150);
    await keys.ensure('new');
    expect(kids(keys)).toEqual(['old', 'new']);
    expect(server.hits('/jwks')).toBe(2);
  });

  it('refreshes a set older than maxAge on next use, in the background: the stale set serves meanwhile', async () => {
    const server = await aServer({ '/jwks': jwks(aJwk('k1')) });
    const keys = aKeySet(server, { cooldown: 50, maxAge: 150 });
    await keys.ensure('k1');
    server.route('/jwks', jwks(aJwk('k2', {}, publicKeys.ec2)));
    await keys.ensure('k1');
    expect(server.hits('/jwks')).toBe(1);
    await sleep(200);
    await keys.ensure(undefined);
    expect(kids(keys)).toEqual(['k1']); // answered at once, from the stale set
    await sleep(100);
    expect(server.hits('/jwks')).toBe(2);
    expect(kids(keys)).toEqual(['k2']);
  });

  it('never makes a request wait for a refresh while it holds the key, even when the server hangs', async () => {
    const server = await aServer({ '/jwks': jwks(aJwk('k1')) });
    const keys = aKeySet(server, { cooldown: 10, maxAge: 20, timeout: 2000 });
    await keys.ensure('k1');
    server.route('/jwks', { ...jwks(aJwk('k1')), delayMs: 1500 }); // answers too late
    await sleep(50);
    const started = performance.now();
    await keys.ensure('k1');
    expect(performance.now() - started).toBeLessThan(100);
    expect(kids(keys)).toEqual(['k1']);
  });

  it('keeps serving the last good keys while the server is down, past maxAge (stale-if-error)', async () => {
    const server = await aServer({ '/jwks': jwks(aJwk('k1')) });
    const keys = aKeySet(server, { cooldown: 50, maxAge: 100 });
    await keys.ensure('k1');
    const loaded = keys.current();
    await server.stop();
    await sleep(150);
    await expect(keys.ensure('k1')).resolves.toBeUndefined();
    await sleep(100);
    await expect(keys.ensure(randomKid())).resolves.toBeUndefined();
    expect(keys.current()).toBe(loaded);
  });

  it('abandons a slow server after timeout, and rejects promptly when nothing is cached', async () => {
    const server = await aServer({ '/jwks': { ...jwks(aJwk('k1')), delayMs: 5_000 } });
    const keys = aKeySet(server, { timeout: 150 });
    const started = Date.now();
    const error: unknown = await keys.ensure('k1').catch((e: unknown) => e);
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(error).toBeInstanceOf(KeySetUnavailableError);
    expect((error as Error).name).toBe('KeySetUnavailableError');
    expect((error as Error).message).not.toContain('127.0.0.1');
    expect(keys.current()).toEqual([]);
  });

  it('retries an empty set at most once a second, so a server that comes back is picked up', async () => {
    const server = await aServer({ '/jwks': { status: 503, raw: 'down' } });
    const keys = aKeySet(server, { cooldown: 60_000 });
    await expect(keys.ensure('k1')).rejects.toThrow(KeySetUnavailableError);
    await expect(keys.ensure('k1')).rejects.toThrow(KeySetUnavailableError);
    expect(server.hits('/jwks')).toBe(1);
    server.route('/jwks', jwks(aJwk('k1')));
    await sleep(1_050);
    await keys.ensure('k1');
    expect(kids(keys)).toEqual(['k1']);
    expect(server.hits('/jwks')).toBe(2);
  });

  it.each(BAD_REPLIES)('keeps the stale set, and waits for the cooldown to try again, after %s', async (_name, reply) => {
    const server = await aServerWithMovedSet({ '/jwks': jwks(aJwk('k1')) });
    const keys = aKeySet(server, { cooldown: 100, maxAge: 60_000 });
    await keys.ensure('k1');
    const loaded = keys.current();
    server.route('/jwks', reply());
    await sleep(150);
    await expect(keys.ensure('k2')).resolves.toBeUndefined();
    await expect(keys.ensure('k3')).resolves.toBeUndefined();
    expect(server.hits('/jwks')).toBe(2);
    expect(keys.current()).toBe(loaded);
  });

  it.each(BAD_REPLIES)('rejects with KeySetUnavailableError when the first load gets %s', async (_name, reply) => {
    const server = await aServerWithMovedSet({ '/jwks': reply() });
    await expect(aKeySet(server).ensure(undefined)).rejects.toThrow(
      new KeySetUnavailableError().message, // a constant: no URL, no response text
    );
  });

  it('refuses a declared Content-Length over 512 KiB without waiting for the body', async () => {
    const server = await aServer({ '/jwks': { raw: '{"keys":', declaredLength: 600 * 1024 } });
    const keys = aKeySet(server, { timeout: 5_000 });
    const started = Date.now();
    await expect(keys.ensure(undefined)).rejects.toThrow(KeySetUnavailableError);
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it('skips JWKs that are symmetric, private, for encryption, not for verifying, or of unsupported type, and keeps the rest', async () => {
    const server = await aServer({
      '/jwks': jwks(
        { kty: 'oct', k: Buffer.from('a-32-byte-secret-for-hs256-tests!').toString('base64url'), kid: 'oct', alg: 'HS256' },
        { ...privateEc.export({ format: 'jwk' }), kid: 'private', alg: 'ES256' },
        aJwk('enc', { use: 'enc' }),
        aJwk('ops', { key_ops: ['encrypt'] }),
        aJwk('p384', { alg: 'ES384' }, publicKeys.p384),
        aJwk('wrong-alg', { alg: 'HS256' }),
        aJwk('rs384', { alg: 'RS384' }, publicKeys.rsa),
        { secret: 'a-32-byte-secret-for-hs256-tests!', kid: 'input-form' },
        aJwk('numeric-kid', { kid: 7 }),
        'not an object',
        aJwk('good', { use: undefined }),
        aJwk('good-ops', { key_ops: ['verify'] }, publicKeys.ec2),
      ),
    });
    const keys = aKeySet(server);
    await keys.ensure(undefined);
    expect(kids(keys)).toEqual(['good', 'good-ops']);
  });

  it('keeps at most 100 keys of a set', async () => {
    const server = await aServer({ '/jwks': jwks(...Array.from({ length: 150 }, (_, i) => aJwk(`k${i}`))) });
    const keys = aKeySet(server);
    await keys.ensure(undefined);
    expect(keys.current()).toHaveLength(100);
  });
});

describe('remote key set: RFC 8414 §3 discovery of jwks_uri', () => {
  it.each([
    ['an issuer with a path', '/tenant', '/.well-known/oauth-authorization-server/tenant'],
    ['an issuer with a terminating slash', '/tenant/', '/.well-known/oauth-authorization-server/tenant'],
    ['an issuer with a deeper path', '/a/b', '/.well-known/oauth-authorization-server/a/b'],
    ['an issuer without path', '', '/.well-known/oauth-authorization-server'],
  ])('inserts the well-known suffix between host and path for %s (§3.1)', async (_name, issuerPath, metadataPath) => {
    const server = await aServer({ '/keys': jwks(aJwk('k1')) });
    const issuer = `${server.origin}${issuerPath}`;
    server.route(metadataPath, { json: { issuer, jwks_uri: `${server.origin}/keys` } });
    const keys = new RemoteKeySet({ discoverIssuer: issuer, cooldown: 50, maxAge: 60_000, timeout: 500 });
    await keys.ensure('k1');
    expect(kids(keys)).toEqual(['k1']);
    expect(server.hits(metadataPath)).toBe(1);
  });

  it('discovers once, and refetches only the JWK Set afterwards', async () => {
    const server = await aServer({ '/keys': jwks(aJwk('k1')) });
    server.route('/.well-known/oauth-authorization-server', { json: { issuer: server.origin, jwks_uri: `${server.origin}/keys` } });
    const keys = new RemoteKeySet({ discoverIssuer: server.origin, cooldown: 50, maxAge: 60_000, timeout: 500 });
    await keys.ensure('k1');
    await sleep(100);
    await keys.ensure(randomKid());
    expect(server.hits('/.well-known/oauth-authorization-server')).toBe(1);
    expect(server.hits('/keys')).toBe(2);
  });

  it('refuses metadata naming another issuer (§3.3), and discovers again later', async () => {
    const server = await aServer({ '/keys': jwks(aJwk('k1')) });
    const issuer = `${server.origin}/tenant`;
    const metadataPath = '/.well-known/oauth-authorization-server/tenant';
    server.route(metadataPath, { json: { issuer: `${server.origin}/other`, jwks_uri: `${server.origin}/keys` } });
    const keys = new RemoteKeySet({ discoverIssuer: issuer, cooldown: 50, maxAge: 60_000, timeout: 500 });
    await expect(keys.ensure('k1')).rejects.toThrow(KeySetUnavailableError);
    expect(server.hits('/keys')).toBe(0);
    server.route(metadataPath, { json: { issuer, jwks_uri: `${server.origin}/keys` } });
    await sleep(1_050);
    await keys.ensure('k1');
    expect(server.hits(metadataPath)).toBe(2);
    expect(kids(keys)).toEqual(['k1']);
  });

  it.each([
    ['no jwks_uri', {}],
    ['a jwks_uri that is not an http(s) URL', { jwks_uri: 'file:///etc/passwd' }],
  ])('refuses metadata with %s', async (_name, extra) => {
    const server = await aServer();
    server.route('/.well-known/oauth-authorization-server', { json: { issuer: server.origin, ...extra } });
    const keys = new RemoteKeySet({ discoverIssuer: server.origin, cooldown: 50, maxAge: 60_000, timeout: 500 });
    await expect(keys.ensure(undefined)).rejects.toThrow(KeySetUnavailableError);
  });
});

describe('remote key set options', () => {
  const timings = { cooldown: 100, maxAge: 1_000, timeout: 500 };
  it.each<[string, unknown, RegExp]>([
    ['both jwksUri and discoverIssuer', { ...timings, jwksUri: 'https://as.example/jwks', discoverIssuer: 'https://as.example' }, /exactly one/],
    ['neither jwksUri nor discoverIssuer', timings, /exactly one/],
    ['a jwksUri that is not http(s)', { ...timings, jwksUri: 'ftp://as.example/jwks' }, /`jwksUri`/],
    ['an issuer with a query (RFC 8414 §2)', { ...timings, discoverIssuer: 'https://as.example?tenant=1' }, /`discoverIssuer`/],
    ['a cooldown that is not positive', { ...timings, jwksUri: 'https://as.example/jwks', cooldown: 0 }, /`cooldown`/],
    ['a maxAge that is not a number', { ...timings, jwksUri: 'https://as.example/jwks', maxAge: '60s' }, /`maxAge`/],
    ['a misspelt option', { ...timings, jwksUri: 'https://as.example/jwks', timeOut: 5 }, /timeOut/],
  ])('refuses %s at construction', (_name, options, message) => {
    expect(() => new RemoteKeySet(options as RemoteKeySetOptions)).toThrow(ConfigurationError);
    expect(() => new RemoteKeySet(options as RemoteKeySetOptions)).toThrow(message);
  });
});
