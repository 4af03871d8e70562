// The two caches that keep repeat work cheap: their correctness and security, not their speed.

import bcrypt from 'bcryptjs';
import { ClientKeys } from '../../lib/core/client-assertion.js';
import { clientAuthenticator, type ClientCredentials } from '../../lib/core/client-authentication.js';
import { resolveSigningKey } from '../../lib/core/signing-keys.js';
import { VerifiedTokenCache } from '../../lib/core/token-cache.js';
import type { AuthInfo } from '../../lib/core/token-verification.js';
import { MemoryClientStore } from '../../lib/stores/memory-client-store.js';
import { MemoryReplayCache } from '../../lib/stores/memory-replay-cache.js';
import type { ClientRecord } from 'express-client-credentials';
import { aClient, SECRET } from '../support/fixtures.js';

describe('the verified-token cache', () => {
  const key = resolveSigningKey({ secret: SECRET });
  const auth = (exp: number): AuthInfo => ({ clientId: 'a', scopes: [], claims: { exp }, token: 't' });

  it('serves a token until its exp, within the clock tolerance, and not after', () => {
    const cache = new VerifiedTokenCache(10);
    cache.set('t', auth(1000), key);
    expect(cache.get('t', [key], 999, 0)).toBeDefined();
    expect(cache.get('t', [key], 1003, 5)).toBeDefined();
    expect(cache.get('t', [key], 1000, 0)).toBeUndefined();
    expect(cache.size).toBe(0);
  });

  it('forgets a token whose key is no longer trusted (a retired key)', () => {
    const cache = new VerifiedTokenCache(10);
    cache.set('t', auth(1000), key);
    expect(cache.get('t', [resolveSigningKey({ secret: SECRET })], 0, 0)).toBeUndefined();
  });

  it('holds at most maxEntries, dropping the least recently used', () => {
    const cache = new VerifiedTokenCache(3);
    for (const token of ['a', 'b', 'c']) cache.set(token, auth(1000), key);
    cache.get('a', [key], 0, 0);
    cache.set('d', auth(1000), key);
    expect(cache.size).toBe(3);
    expect(['a', 'b', 'c', 'd'].map((token) => cache.get(token, [key], 0, 0) !== undefined)).toEqual([true, false, true, true]);
  });
});

describe('the verified-secret cache', () => {
  async function setUp(records: ClientRecord[], ttl = 60_000, maxEntries = 100) {
    const compared: string[] = [];
    let store = new MemoryClientStore(records);
    const authenticate = clientAuthenticator({
      store: { findClient: (id) => store.findClient(id) },
      storeTimeout: 1000,
      hashCost: 4,
      compare: async (secret, hash) => (compared.push(secret), bcrypt.compare(secret, hash)),
      assertions: { audiences: () => [], replayCache: new MemoryReplayCache(), maxLifetime: 300, clockTolerance: 5, storeTimeout: 1000 },
      clientKeys: new ClientKeys(),
      secretCache: { ttl, maxAge: 3_600_000, maxEntries },
    });
    return { authenticate, compared, replace: (next: ClientRecord[]) => (store = new MemoryClientStore(next)) };
  }
  const basic = (clientId: string, secret: string): ClientCredentials => ({ method: 'client_secret_basic', clientId, secret });

  it('spares bcrypt for a repeated right secret, and never for a wrong one', async () => {
    const client = await aClient();
    const { authenticate, compared } = await setUp([client.record]);
    await authenticate(basic(client.id, client.secret));
    await authenticate(basic(client.id, client.secret));
    expect(compared).toEqual([client.secret]);
    await expect(authenticate(basic(client.id, 'wrong'))).rejects.toMatchObject({ error: 'invalid_client' });
    await expect(authenticate(basic(client.id, `${client.secret}x`))).rejects.toMatchObject({ error: 'invalid_client' });
    expect(compared).toEqual([client.secret, 'wrong', `${client.secret}x`]);
  });

  it('still refuses the right secret sent by the wrong method', async () => {
    const client = await aClient({ token_endpoint_auth_method: 'client_secret_basic' });
    const { authenticate } = await setUp([client.record]);
    await authenticate(basic(client.id, client.secret));
    await expect(authenticate({ method: 'client_secret_post', clientId: client.id, secret: client.secret })).rejects.toMatchObject({ error: 'invalid_client' });
  });

  it('forgets a secret when the stored hash changes (a rotation), or its entry expires', async () => {
    const client = await aClient();
    const { authenticate, compared, replace } = await setUp([client.record]);
    await authenticate(basic(client.id, client.secret));
    const rotated = await aClient({ client_id: client.id });
    replace([rotated.record]);
    await expect(authenticate(basic(client.id, client.secret))).rejects.toMatchObject({ error: 'invalid_client' });
    expect(compared).toEqual([client.secret, client.secret]);
    replace([{ ...client.record, client_secret_hash: [{ hash: client.record.client_secret_hash as string, expires_at: Date.now() / 1000 - 1 }] }]);
    await expect(authenticate(basic(client.id, client.secret))).rejects.toMatchObject({ error: 'invalid_client' });
  });

  it('lasts ttl milliseconds', async () => {
    const client = await aClient();
    const { authenticate, compared } = await setUp([client.record], 100);
    await authenticate(basic(client.id, client.secret));
    await new Promise((resolve) => setTimeout(resolve, 150));
    await authenticate(basic(client.id, client.secret));
    expect(compared).toEqual([client.secret, client.secret]);
  });

  it('lets concurrent requests of one client with the same secret share one comparison (no stampede)', async () => {
    const client = await aClient();
    const { authenticate, compared } = await setUp([client.record]);
    const results = await Promise.all(Array.from({ length: 50 }, () => authenticate(basic(client.id, client.secret))));
    expect(results.every((result) => result.client.id === client.id)).toBe(true);
    expect(compared).toEqual([client.secret]);
  });

  it('extends an entry by ttl on each use, up to about maxAge (±10 %) after bcrypt accepted the secret', async () => {
    const client = await aClient();
    const compared: string[] = [];
    const authenticate = clientAuthenticator({
      store: new MemoryClientStore([client.record]),
      storeTimeout: 1000,
      hashCost: 4,
      compare: async (secret, hash) => (compared.push(secret), bcrypt.compare(secret, hash)),
      assertions: { audiences: () => [], replayCache: new MemoryReplayCache(), maxLifetime: 300, clockTolerance: 5, storeTimeout: 1000 },
      clientKeys: new ClientKeys(),
      secretCache: { ttl: 60_000, maxAge: 600_000, maxEntries: 10 },
    });
    const at = (seconds: number) => authenticate(basic(client.id, client.secret), undefined, 1_000_000 + seconds);
    // Used every 50 s, it outlives its 60 s ttl ...
    for (let t = 0; t <= 500; t += 50) await at(t);
    expect(compared).toHaveLength(1);
    // ... but not 660 s (maxAge + 10 %) after bcrypt accepted it.
    for (let t = 550; t <= 660; t += 50) await at(t);
    await at(661);
    expect(compared).toHaveLength(2);
  });

  it('holds at most maxEntries clients', async () => {
    const clients = await Promise.all([aClient(), aClient(), aClient()]);
    const { authenticate, compared } = await setUp(clients.map((c) => c.record), 60_000, 2);
    for (const c of clients) await authenticate(basic(c.id, c.secret));
    compared.length = 0;
    await authenticate(basic(clients[0]!.id, clients[0]!.secret)); // dropped: the oldest
    await authenticate(basic(clients[2]!.id, clients[2]!.secret)); // kept
    expect(compared).toEqual([clients[0]!.secret]);
  });
});
