import bcrypt from 'bcryptjs';
import { formatBasic, parseBasic } from '../../lib/core/basic-auth.js';
import { clientAuthenticator, extractCredentials, type ClientCredentials } from '../../lib/core/client-authentication.js';
import { OAuthError } from '../../lib/core/errors.js';
import { MemoryClientStore } from '../../lib/stores/memory-client-store.js';
import { MemoryReplayCache } from '../../lib/stores/memory-replay-cache.js';
import { ClientKeys } from '../../lib/core/client-assertion.js';
import type { ClientRecord, ClientStore } from 'express-client-credentials';
import { aClient } from '../support/fixtures.js';

/** The parts of the authenticator not under test here: private_key_jwt has its own suite. */
const assertionParts = {
  assertions: { audiences: () => ['http://127.0.0.1:3000'], replayCache: new MemoryReplayCache(), maxLifetime: 300, clockTolerance: 5, storeTimeout: 1000 },
  clientKeys: new ClientKeys(),
};

const basic = (id: string, secret: string): string => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;
const sources = (overrides: Partial<Parameters<typeof extractCredentials>[0]> = {}) => ({
  authorization: undefined,
  body: {},
  queryNames: [],
  ...overrides,
});

describe('client_secret_basic decoding: RFC 6749 §2.3.1', () => {
  it.each([
    ['plain ASCII', 'reports', 's3cret'],
    ['a colon in the id and the secret', 'urn:client:1', 'a:b:c'],
    ['spaces, plus signs and percent signs', 'my client', 'p+w %20 x'],
    ['non-ASCII unicode', 'clïent-名前', 'sécret-🔑'],
  ])('round-trips ids and secrets with %s, form-urlencoded before base64', (_name, id, secret) => {
    expect(parseBasic(formatBasic(id, secret))).toEqual({ clientId: id, secret });
  });

  it('decodes "+" as a space, as application/x-www-form-urlencoded says (Appendix B)', () => {
    expect(parseBasic(basic('my+client', 'a%2Bb'))).toEqual({ clientId: 'my client', secret: 'a+b' });
  });

  it('treats the scheme name case-insensitively', () => {
    expect(parseBasic(basic('a', 'b').replace('Basic', 'bAsIc'))).toEqual({ clientId: 'a', secret: 'b' });
  });

  it.each([
    ['no colon', `Basic ${Buffer.from('nocolon').toString('base64')}`],
    ['an empty secret', basic('id', '')],
    ['an empty id', basic('', 'secret')],
    ['bad percent-encoding', basic('%zz', 'secret')],
    ['not base64', 'Basic !!!'],
    ['invalid UTF-8', `Basic ${Buffer.from([0x69, 0x3a, 0xff]).toString('base64')}`],
    ['another scheme', 'Bearer abc'],
  ])('refuses a header with %s', (_name, header) => {
    expect(parseBasic(header)).toBeUndefined();
  });
});

describe('choosing the authentication method: RFC 6749 §2.3 and §3.2.1', () => {
  it('reads client_secret_basic from the Authorization header', () => {
    expect(extractCredentials(sources({ authorization: basic('a', 'b') }))).toEqual({ method: 'client_secret_basic', clientId: 'a', secret: 'b' });
  });

  it('reads client_secret_post from the body', () => {
    expect(extractCredentials(sources({ body: { client_id: 'a', client_secret: 'b' } }))).toEqual({ method: 'client_secret_post', clientId: 'a', secret: 'b' });
  });

  it('accepts Basic with the same client_id repeated in the body, without a secret', () => {
    expect(extractCredentials(sources({ authorization: basic('a', 'b'), body: { client_id: 'a' } })).method).toBe('client_secret_basic');
  });

  it.each([
    ['Basic and a body secret: more than one method', { authorization: basic('a', 'b'), body: { client_id: 'a', client_secret: 'b' } }],
    ['a body client_id that differs from the Basic one', { authorization: basic('a', 'b'), body: { client_id: 'c' } }],
    ['client_secret in the URL', { body: { client_id: 'a' }, queryNames: ['client_secret'] }],
    ['client_id in the URL', { authorization: basic('a', 'b'), queryNames: ['client_id'] }],
  ])('answers invalid_request for %s', (_name, overrides) => {
    expect(() => extractCredentials(sources(overrides))).toThrow(expect.objectContaining({ error: 'invalid_request', status: 400 }));
  });

  it.each([
    ['no credentials at all', {}],
    ['a client_id alone (a public client, which §4.4 does not serve)', { body: { client_id: 'a' } }],
    ['a malformed Basic header', { authorization: 'Basic !!!' }],
    ['an unsupported scheme', { authorization: 'Bearer abc' }],
    ['a client assertion (not supported yet)', { body: { client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: 'x' } }],
  ])('answers invalid_client 401 for %s', (_name, overrides) => {
    expect(() => extractCredentials(sources(overrides))).toThrow(expect.objectContaining({ error: 'invalid_client', status: 401 }));
  });
});

describe('checking credentials against the store: RFC 6749 §2.3.1, §5.2', () => {
  /** A real bcrypt comparison that also counts itself and the cost of the hash it was given. */
  function countingCompare() {
    const costs: number[] = [];
    const compare = async (secret: string, hash: string) => {
      costs.push(bcrypt.getRounds(hash));
      return bcrypt.compare(secret, hash);
    };
    return { costs, compare };
  }

  async function setUp(records: ClientRecord[]) {
    const counter = countingCompare();
    const authenticate = clientAuthenticator({ store: new MemoryClientStore(records), storeTimeout: 1000, hashCost: 4, compare: counter.compare, ...assertionParts });
    return { ...counter, authenticate };
  }

  const attempt = (clientId: string, secret: string, method: 'client_secret_basic' | 'client_secret_post' = 'client_secret_basic'): ClientCredentials => ({
    method,
    clientId,
    secret,
  });

  it('authenticates a registered client with its secret', async () => {
    const client = await aClient({ scope: 'read' });
    const { authenticate } = await setUp([client.record]);
    await expect(authenticate(attempt(client.id, client.secret))).resolves.toMatchObject({ client: { id: client.id, scopes: ['read'] } });
  });

  it('makes an unknown client cost one full bcrypt comparison, of the same cost, like a wrong secret', async () => {
    const client = await aClient();
    const { authenticate, costs } = await setUp([client.record]);
    await expect(authenticate(attempt(client.id, 'wrong'))).rejects.toMatchObject({ error: 'invalid_client', status: 401 });
    const wrongSecret = [...costs];
    costs.length = 0;
    const unknown = await authenticate(attempt('nobody', 'wrong')).catch((error: unknown) => error);
    expect(costs).toEqual(wrongSecret);
    expect(costs).toEqual([4]);
    // Same error, same text: nothing tells an unknown client from a wrong secret.
    expect(unknown).toEqual(new OAuthError('invalid_client', 401, 'Client authentication failed'));
  });

  it('compares unknown clients at the configured cost, whatever clients were seen before', async () => {
    const cheap = await aClient();
    const counter = countingCompare();
    const mismatches: [string, number][] = [];
    const authenticate = clientAuthenticator({
      ...assertionParts,
      store: new MemoryClientStore([cheap.record]),
      storeTimeout: 1000,
      hashCost: 5,
      compare: counter.compare,
      onCostMismatch: (id, cost) => mismatches.push([id, cost]),
    });
    await expect(authenticate(attempt(cheap.id, 'wrong'))).rejects.toMatchObject({ error: 'invalid_client' });
    await expect(authenticate(attempt(cheap.id, 'wrong'))).rejects.toMatchObject({ error: 'invalid_client' });
    await expect(authenticate(attempt('nobody', 'wrong'))).rejects.toMatchObject({ error: 'invalid_client' });
    expect(counter.costs).toEqual([4, 4, 5]);
    // The operator hears once that this client's cost differs from the dummy's.
    expect(mismatches).toEqual([[cheap.id, 4]]);
  });

  it('answers invalid_client when the client uses a method it is not registered for, after the same comparison', async () => {
    const client = await aClient({ token_endpoint_auth_method: 'client_secret_post' });
    const { authenticate, costs } = await setUp([client.record]);
    await expect(authenticate(attempt(client.id, client.secret, 'client_secret_basic'))).rejects.toMatchObject({ error: 'invalid_client' });
    expect(costs).toHaveLength(1);
    await expect(authenticate(attempt(client.id, client.secret, 'client_secret_post'))).resolves.toMatchObject({ client: { id: client.id } });
  });

  it('refuses a secret that matches only on the 72 bytes bcrypt reads', async () => {
    const client = await aClient({ secret: 'k'.repeat(72) });
    const { authenticate } = await setUp([client.record]);
    await expect(authenticate(attempt(client.id, client.secret))).resolves.toMatchObject({ client: { id: client.id } });
    await expect(authenticate(attempt(client.id, `${client.secret}-and-more`))).rejects.toMatchObject({ error: 'invalid_client' });
  });

  it('accepts any of several secret hashes, for a secret roll-over', async () => {
    const client = await aClient();
    const next = await aClient({ client_id: client.id });
    const { authenticate } = await setUp([{ ...client.record, client_secret_hash: [client.record.client_secret_hash as string, next.record.client_secret_hash as string] }]);
    await expect(authenticate(attempt(client.id, client.secret))).resolves.toMatchObject({ client: { id: client.id } });
    await expect(authenticate(attempt(client.id, next.secret))).resolves.toMatchObject({ client: { id: client.id } });
  });

  it('authenticates a disabled client that knows its secret (the grant, not authentication, refuses it), and not one that does not', async () => {
    const client = await aClient({ disabled: true });
    const { authenticate } = await setUp([client.record]);
    await expect(authenticate(attempt(client.id, client.secret))).resolves.toMatchObject({ client: { id: client.id, disabled: true } });
    await expect(authenticate(attempt(client.id, 'wrong'))).rejects.toMatchObject({ error: 'invalid_client', status: 401 });
  });

  it.each([
    ['throws', (): Promise<ClientRecord | undefined> => { throw new Error('db down'); }],
    ['rejects', (): Promise<ClientRecord | undefined> => Promise.reject(new Error('db down'))],
    ['hangs', (): Promise<ClientRecord | undefined> => new Promise(() => undefined)],
  ])('answers 503 temporarily_unavailable when the store %s, keeping the cause', async (_name, findClient) => {
    const store: ClientStore = { findClient };
    const authenticate = clientAuthenticator({ store, storeTimeout: 50, hashCost: 4, ...assertionParts });
    const error = await authenticate(attempt('a', 'b')).catch((e: unknown) => e);
    expect(error).toMatchObject({ error: 'temporarily_unavailable', status: 503, headers: { 'Retry-After': '5' } });
    expect((error as OAuthError).cause).toBeInstanceOf(Error);
  });

  it('answers server_error when a store returns a malformed record', async () => {
    const store: ClientStore = { findClient: async () => ({ client_id: 'a', client_secret_hash: 'plaintext' }) };
    const authenticate = clientAuthenticator({ store, storeTimeout: 50, hashCost: 4, ...assertionParts });
    await expect(authenticate(attempt('a', 'plaintext'))).rejects.toMatchObject({ error: 'server_error', status: 500 });
  });
});
