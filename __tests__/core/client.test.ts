import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { ConfigurationError, generateClientSecret, hashSecret, MemoryClientStore } from 'express-client-credentials';
import { resolveClient } from '../../lib/core/client.js';
import { bcryptImplementation, compareSecret } from '../../lib/core/bcrypt.js';
import { aClient } from '../support/fixtures.js';

describe('client records: RFC 7591 names', () => {
  it('resolves a record with its defaults: either secret method, default scope = all allowed', async () => {
    const { record } = await aClient({ client_id: 'reports', scope: 'read write' });
    expect(resolveClient(record)).toEqual({
      id: 'reports',
      secrets: [{ hash: record.client_secret_hash, expiresAt: undefined }],
      scopes: ['read', 'write'],
      defaultScopes: ['read', 'write'],
      audiences: [],
      accessTokenTtl: undefined,
      authMethods: ['client_secret_basic', 'client_secret_post'],
      jwks: undefined,
      jwksUri: undefined,
      disabled: false,
      mayUseGrant: true,
      canIntrospect: false,
      record,
    });
  });

  it('tolerates and ignores registered client metadata (RFC 7591 §2) that other software keeps in the record, and fields of your own in metadata', async () => {
    const { record } = await aClient({
      client_name: 'Reports', 'client_name#fr': 'Rapports', contacts: ['ops@example.com'], grant_types: ['client_credentials'], client_id_issued_at: 1,
      metadata: { tenant_id: 'acme' },
    });
    expect(resolveClient(record).record.metadata).toEqual({ tenant_id: 'acme' });
  });

  it.each([
    ['scopes', 'scope'],
    ['scpoe', 'scope'],
    ['token_endpoint_auth_methods', 'token_endpoint_auth_method'],
    ['disable', 'disabled'],
    ['Scope', 'scope'],
  ])('refuses the misspelt field %s, naming %s', async (field, meant) => {
    const { record } = await aClient();
    expect(() => resolveClient({ ...record, [field]: true })).toThrow(`unknown field \`${field}\` (did you mean \`${meant}\`?)`);
  });

  it('honours the tolerated fields that restrict a client, and refuses those it cannot honour: a record never grants more than it says', async () => {
    const { record } = await aClient();
    expect(resolveClient({ ...record, grant_types: ['authorization_code'] }).mayUseGrant).toBe(false);
    expect(resolveClient({ ...record, grant_types: ['client_credentials'] }).mayUseGrant).toBe(true);
    expect(resolveClient({ ...record, client_secret_expires_at: 1_700_000_000 }).secrets).toEqual([{ hash: record.client_secret_hash, expiresAt: 1_700_000_000 }]);
    expect(resolveClient({ ...record, client_secret_expires_at: 0 }).secrets[0]?.expiresAt).toBeUndefined();
    expect(() => resolveClient({ ...record, dpop_bound_access_tokens: true })).toThrow(/sender-constrained tokens, which this issuer does not issue yet/);
    expect(() => resolveClient({ ...record, grant_types: 'client_credentials' })).toThrow(/`grant_types` must be a list/);
    const keyed = { client_id: 'keyed', token_endpoint_auth_method: 'private_key_jwt', jwks_uri: 'https://keyed.example/jwks.json' };
    expect(() => resolveClient({ ...keyed, client_secret_hash: record.client_secret_hash })).toThrow(/has no secret: remove `client_secret_hash`/);
  });

  it('takes a language tag only on the human-readable fields (RFC 7591 §2.2), and suggests nothing for a name far too long', async () => {
    const { record } = await aClient();
    expect(() => resolveClient({ ...record, 'tos_uri#de': 'https://example.com/agb' })).not.toThrow();
    expect(() => resolveClient({ ...record, 'redirect_uris#de': [] })).toThrow(/unknown field `redirect_uris#de`/);
    const long = 'x'.repeat(100_000);
    expect(() => resolveClient({ ...record, [long]: 1 })).toThrow(/; fields of your own go in `metadata`$/);
  });

  it('refuses a field of its own outside metadata, saying where it goes', async () => {
    const { record } = await aClient();
    expect(() => resolveClient({ ...record, tenant_id: 'acme' })).toThrow(/unknown field `tenant_id`; fields of your own go in `metadata`/);
    expect(() => resolveClient({ ...record, metadata: 'acme' })).toThrow(/`metadata` must be an object/);
  });

  it('refuses a plaintext client_secret, naming the field and hash-secret, never echoing the secret', async () => {
    const { record } = await aClient();
    const refusal = (() => {
      try {
        resolveClient({ ...record, client_secret: 'hunter2-the-secret' });
      } catch (error) {
        return error as Error;
      }
      return undefined;
    })();
    expect(refusal).toBeInstanceOf(ConfigurationError);
    expect(refusal?.message).toMatch(/`client_secret` holds a plaintext secret.*`client_secret_hash`.*hash-secret/);
    expect(refusal?.message).not.toContain('hunter2');
  });

  it.each([
    ['no client_id', { client_id: '' }, /client_id/],
    ['a plaintext secret in client_secret_hash', { client_secret_hash: 's3cret' }, /bcrypt hash/],
    ['an empty list of hashes', { client_secret_hash: [] }, /bcrypt hash/],
    ['a malformed scope', { scope: 'read  write' }, /`scope`/],
    ['a default scope beyond the allowed ones', { scope: 'read', default_scope: 'write' }, /subset/],
    ['a negative lifetime', { access_token_ttl: -1 }, /access_token_ttl/],
    ['an unknown auth method', { token_endpoint_auth_method: 'none' }, /token_endpoint_auth_method/],
    ['a disabled flag that is no boolean', { disabled: 'yes' }, /disabled/],
    ['a can_introspect flag that is no boolean', { can_introspect: 1 }, /can_introspect/],
    ['an audience that is no string', { audience: 42 }, /audience/],
  ])('refuses a record with %s, saying which field to fix', async (_name, override, message) => {
    const { record } = await aClient();
    expect(() => resolveClient({ ...record, ...override })).toThrow(ConfigurationError);
    expect(() => resolveClient({ ...record, ...override })).toThrow(message);
  });
});

describe('MemoryClientStore', () => {
  it('finds clients by id and answers undefined for unknown ones', async () => {
    const client = await aClient();
    const store = new MemoryClientStore([client.record]);
    await expect(store.findClient(client.id)).resolves.toEqual(client.record);
    await expect(store.findClient('nobody')).resolves.toBeUndefined();
    await expect(store.findClient('__proto__')).resolves.toBeUndefined();
  });

  it('reads a JSON file of records', async () => {
    const client = await aClient();
    const dir = mkdtempSync(join(tmpdir(), 'ecc-'));
    writeFileSync(join(dir, 'clients.json'), JSON.stringify([client.record]));
    writeFileSync(join(dir, 'wrapped.json'), JSON.stringify({ clients: [client.record] }));
    writeFileSync(join(dir, 'broken.json'), '[{');
    await expect(MemoryClientStore.fromFile(join(dir, 'clients.json')).findClient(client.id)).resolves.toEqual(client.record);
    await expect(MemoryClientStore.fromFile(join(dir, 'wrapped.json')).findClient(client.id)).resolves.toEqual(client.record);
    expect(() => MemoryClientStore.fromFile(join(dir, 'broken.json'))).toThrow(/broken\.json is not valid JSON/);
    expect(() => MemoryClientStore.fromFile(join(dir, 'missing.json'))).toThrow(/missing\.json does not exist: create it with npx express-client-credentials create-client/);
  });

  it('refuses a client registered twice', async () => {
    const client = await aClient();
    expect(() => new MemoryClientStore([client.record, client.record])).toThrow(/registered twice/);
  });

  it('refuses a record with a plaintext client_secret, without printing it', async () => {
    const client = await aClient();
    expect(() => new MemoryClientStore([{ ...client.record, client_secret: 'plain-text-secret' }])).toThrow(/`client_secret` holds a plaintext secret/);
    expect(() => new MemoryClientStore([{ ...client.record, client_secret: 'plain-text-secret' }])).not.toThrow(/plain-text-secret/);
  });

  it('lists every scope of its clients', async () => {
    const store = new MemoryClientStore([(await aClient({ scope: 'read write' })).record, (await aClient({ scope: 'write admin' })).record]);
    expect(store.scopes()).toEqual(['read', 'write', 'admin']);
  });
});

describe('secrets', () => {
  it('hashes secrets with bcrypt, cost 10 by default', async () => {
    const hash = await hashSecret('s3cret');
    expect(bcrypt.getRounds(hash)).toBe(10);
    await expect(bcrypt.compare('s3cret', hash)).resolves.toBe(true);
  });

  it('refuses secrets bcrypt would truncate (over 72 bytes)', async () => {
    await expect(hashSecret('x'.repeat(73), 4)).rejects.toThrow(/72 bytes/);
  });

  it('generates URL-safe secrets of 256 bits, different each time', () => {
    const secrets = new Set(Array.from({ length: 100 }, generateClientSecret));
    expect(secrets.size).toBe(100);
    for (const secret of secrets) {
      expect(secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(Buffer.from(secret, 'base64url')).toHaveLength(32);
    }
  });
});

describe('bcrypt comparisons', () => {
  it('use the native bcrypt package when installed, on hashes bcryptjs made', async () => {
    expect(bcryptImplementation()).toBe('bcrypt'); // installed as an optional dependency with prebuilt binaries
    const hash = await hashSecret('s3cret', 4);
    await expect(compareSecret('s3cret', hash)).resolves.toBe(true);
    await expect(compareSecret('wrong', hash)).resolves.toBe(false);
  });

  it('run off the event loop: timers keep firing while a comparison runs', async () => {
    const hash = await hashSecret('s3cret', 12); // about a quarter of a second of work
    let ticks = 0;
    const timer = setInterval(() => (ticks += 1), 5);
    try {
      await expect(compareSecret('s3cret', hash)).resolves.toBe(true);
    } finally {
      clearInterval(timer);
    }
    expect(ticks).toBeGreaterThan(3); // a comparison on the event loop's thread would allow none
  });

  it('answer many concurrent comparisons, each for its own secret, and a malformed hash matches nothing', async () => {
    const hashes = await Promise.all(['a', 'b', 'c', 'd', 'e', 'f'].map((secret) => hashSecret(`secret-${secret}`, 4)));
    const results = await Promise.all(hashes.flatMap((hash, i) => [compareSecret(`secret-${'abcdef'[i]}`, hash), compareSecret('secret-x', hash)]));
    expect(results).toEqual(hashes.flatMap(() => [true, false]));
    await expect(compareSecret('s3cret', 'not a bcrypt hash')).resolves.toBe(false);
  });

  it('run in a worker thread of the lowest priority (nice 19) where threads can be told apart (Linux)', async () => {
    const hash = await hashSecret('s3cret', 12);
    const comparing = compareSecret('s3cret', hash);
    if (!existsSync('/proc/thread-self')) return void (await expect(comparing).resolves.toBe(true));
    await new Promise((resolve) => setTimeout(resolve, 100));
    const niceOf = (task: string): number => Number(readFileSync(`/proc/self/task/${task}/stat`, 'utf8').split(') ')[1]!.split(' ')[16]);
    const niceness = readdirSync('/proc/self/task').map(niceOf);
    const main = niceOf(String(process.pid));
    await comparing;
    expect(niceness).toContain(19);
    expect(main).toBeLessThan(19); // the event loop's thread keeps its priority
  });
});
