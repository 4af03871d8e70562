// The behaviour every implementation of a store interface owes the library, written once and run
// against each: the memory stores, Redis and PostgreSQL (RFC 7009 §2.1, RFC 7523 §3, RFC 7591 §2).

import { randomUUID } from 'node:crypto';
import type { ClientRecord, ClientStore, ReplayCache, RevocationStore } from 'express-client-credentials';
import { resolveClient } from '../../lib/core/client.js';
import { aClient } from '../support/fixtures.js';

const now = (): number => Date.now() / 1000;
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const id = (): string => randomUUID();

/** Makes a fresh, empty store. */
export type Make<T> = () => Promise<T> | T;

/** The RevocationStore contract: revoked until `expiresAt`, then forgotten; never shortened. */
export function revocationStoreContract(name: string, make: Make<RevocationStore>): void {
  describe(`${name}: the RevocationStore contract (RFC 7009 §2.1)`, () => {
    it('knows no token before it is revoked', async () => {
      const store = await make();
      expect(await store.isRevoked(id())).toBe(false);
    });

    it('remembers a revoked token, and only that one', async () => {
      const store = await make();
      const [revoked, other] = [id(), id()];
      await store.revoke(revoked, now() + 60);
      expect(await store.isRevoked(revoked)).toBe(true);
      expect(await store.isRevoked(other)).toBe(false);
    });

    it('forgets a revocation once the token has expired', async () => {
      const store = await make();
      const jti = id();
      await store.revoke(jti, now() + 0.4);
      expect(await store.isRevoked(jti)).toBe(true);
      await sleep(600);
      expect(await store.isRevoked(jti)).toBe(false);
    });

    it('ignores a revocation that expires before it is made', async () => {
      const store = await make();
      const jti = id();
      await store.revoke(jti, now() - 1);
      expect(await store.isRevoked(jti)).toBe(false);
    });

    it.each([
      ['the later expiry comes second', [0.4, 60]],
      ['the later expiry comes first', [60, 0.4]],
    ])('keeps the later expiry when one token is revoked twice (%s)', async (_, [first, second]) => {
      const store = await make();
      const jti = id();
      await store.revoke(jti, now() + (first as number));
      await store.revoke(jti, now() + (second as number));
      await sleep(600);
      expect(await store.isRevoked(jti)).toBe(true);
    });

    it('takes many revocations at once', async () => {
      const store = await make();
      const jtis = Array.from({ length: 50 }, id);
      await Promise.all(jtis.map((jti) => store.revoke(jti, now() + 60)));
      expect(await Promise.all(jtis.map((jti) => store.isRevoked(jti)))).toEqual(jtis.map(() => true));
    });

    it('treats ids as opaque strings: no patterns, no case folding', async () => {
      const store = await make();
      const base = id();
      await store.revoke(`${base}*`, now() + 60);
      await store.revoke(`${base}:é "x"`, now() + 60);
      expect(await store.isRevoked(`${base}*`)).toBe(true);
      expect(await store.isRevoked(`${base}:é "x"`)).toBe(true);
      expect(await store.isRevoked(base)).toBe(false);
      expect(await store.isRevoked(`${base}?`)).toBe(false);
      expect(await store.isRevoked(`${base}*`.toUpperCase())).toBe(false);
    });
  });
}

/** The ReplayCache contract: a key is accepted once until it expires, atomically. */
export function replayCacheContract(name: string, make: Make<ReplayCache>): void {
  describe(`${name}: the ReplayCache contract (RFC 7523 §3 item 7)`, () => {
    it('accepts a key the first time and refuses it after', async () => {
      const cache = await make();
      const key = id();
      expect(await cache.markUsed(key, now() + 60)).toBe(true);
      expect(await cache.markUsed(key, now() + 60)).toBe(false);
      expect(await cache.markUsed(key, now() + 120)).toBe(false);
    });

    it('keeps keys apart', async () => {
      const cache = await make();
      const [one, two] = [id(), id()];
      expect(await cache.markUsed(one, now() + 60)).toBe(true);
      expect(await cache.markUsed(two, now() + 60)).toBe(true);
      expect(await cache.markUsed(`${one}*`, now() + 60)).toBe(true);
    });

    it('gives true to exactly one of many concurrent calls with one key', async () => {
      const cache = await make();
      const key = id();
      const results = await Promise.all(Array.from({ length: 25 }, () => cache.markUsed(key, now() + 60)));
      expect(results.filter(Boolean)).toHaveLength(1);
    });

    it('accepts a key again once it has expired', async () => {
      const cache = await make();
      const key = id();
      expect(await cache.markUsed(key, now() + 0.4)).toBe(true);
      expect(await cache.markUsed(key, now() + 60)).toBe(false);
      await sleep(600);
      expect(await cache.markUsed(key, now() + 60)).toBe(true);
      expect(await cache.markUsed(key, now() + 60)).toBe(false);
    });

    it('does not remember a key that has already expired', async () => {
      const cache = await make();
      const key = id();
      expect(await cache.markUsed(key, now() - 1)).toBe(true);
      expect(await cache.markUsed(key, now() + 60)).toBe(true);
    });
  });
}

/** Makes a store holding exactly these records. */
export type MakeClientStore = (records: readonly ClientRecord[]) => Promise<ClientStore> | ClientStore;

/** The ClientStore contract: the record as registered by its exact id, or `undefined`. */
export function clientStoreContract(name: string, make: MakeClientStore): void {
  describe(`${name}: the ClientStore contract (RFC 7591 §2 names)`, () => {
    it('finds a client by its id, with the record as registered', async () => {
      const { record } = await aClient({ client_id: `reports-${id()}`, scope: 'read write', default_scope: 'read', access_token_ttl: 300 });
      const store = await make([record]);
      expect(await store.findClient(record.client_id)).toEqual(record);
    });

    it('resolves undefined for an unknown id', async () => {
      const store = await make([(await aClient()).record]);
      expect(await store.findClient(`unknown-${id()}`)).toBeUndefined();
    });

    it('matches ids exactly: no patterns, prefixes or case folding', async () => {
      const base = `svc_${id()}`;
      const { record } = await aClient({ client_id: `${base}%` });
      const store = await make([record]);
      expect(await store.findClient(`${base}%`)).toEqual(record);
      for (const near of [base, `${base}_`, `${base}%x`, `${base}%`.toUpperCase(), ` ${base}%`]) {
        expect(await store.findClient(near)).toBeUndefined();
      }
    });

    it('keeps every client apart, ids with spaces, colons and non-ASCII letters included', async () => {
      const clients = await Promise.all([`svc: reports+1 ${id()}`, `büro-${id()}`, `plain-${id()}`].map((clientId) => aClient({ client_id: clientId })));
      const store = await make(clients.map((client) => client.record));
      for (const { record } of clients) expect(await store.findClient(record.client_id)).toEqual(record);
    });

    it('keeps lists of secret hashes and metadata of its own (RFC 7591 §2 allows more fields)', async () => {
      const [first, second] = [await aClient(), await aClient()];
      const record: ClientRecord = {
        ...first.record,
        client_secret_hash: [first.record.client_secret_hash as string, second.record.client_secret_hash as string],
        audience: ['https://api.example.test', 'https://other.example.test'],
        can_introspect: true,
        client_name: 'Reports (nightly)',
        contacts: ['ops@example.test'],
      };
      const store = await make([record]);
      expect(await store.findClient(record.client_id)).toEqual(record);
    });

    it('returns records the issuer accepts', async () => {
      const { record } = await aClient({ scope: 'read', token_endpoint_auth_method: 'client_secret_post', disabled: true });
      const store = await make([record]);
      const client = resolveClient(await store.findClient(record.client_id));
      expect(client).toMatchObject({ id: record.client_id, scopes: ['read'], authMethods: ['client_secret_post'], disabled: true });
    });

    it('answers concurrent lookups alike', async () => {
      const clients = await Promise.all([1, 2, 3].map(() => aClient()));
      const store = await make(clients.map((client) => client.record));
      const lookups = clients.flatMap((client) => Array.from({ length: 10 }, () => client.record.client_id));
      const found = await Promise.all(lookups.map((clientId) => store.findClient(clientId)));
      expect(found.map((record) => record?.client_id)).toEqual(lookups);
    });
  });
}
