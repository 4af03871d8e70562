// Under hostile volume and faults: the failure lock cannot be raced, the comparison queue is
// bounded, what unauthenticated requests create is bounded, and a slow store gets a deadline.
// Real Express apps, real bcrypt in its worker threads.

import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import { connect } from 'node:net';
import { gzipSync } from 'node:zlib';
import express from 'express';
// eslint-disable-next-line @typescript-eslint/no-require-imports
const expressVersion: string = require('express/package.json').version;
import type { Store } from 'express-rate-limit';
import request from 'supertest';
import { hashSecret, type ClientRecord, type ClientStore, type IssuerOptions } from 'express-client-credentials';
import { failureLockRules, MAX_COUNTERS } from '../../lib/express/rate-limits.js';
import { ClientKeys } from '../../lib/core/client-assertion.js';
import { clientAuthenticator } from '../../lib/core/client-authentication.js';
import { MemoryClientStore } from '../../lib/stores/memory-client-store.js';
import { MemoryCounterStore } from '../../lib/stores/memory-counter-store.js';
import { MemoryReplayCache } from '../../lib/stores/memory-replay-cache.js';
import { aClient, tokenServer, type TestClient } from '../support/fixtures.js';

const CC = { grant_type: 'client_credentials' };

/** Behind a proxy, as production apps are: X-Forwarded-For is the client address. */
function proxied(clients: readonly TestClient[], options: IssuerOptions = {}) {
  const server = tokenServer(clients, options);
  const app = express().set('trust proxy', 'loopback').use(server.app);
  const post = (address: string) => request(app).post('/token').set('X-Forwarded-For', address).type('form');
  return { ...server, app, post };
}

const lockKey = (address: string, clientId: string) => `${address}|${clientId}`;

describe('a failure lock that cannot be raced: RFC 6749 §2.3.1 "MUST protect against brute force attacks"', () => {
  let client: TestClient;
  beforeAll(async () => {
    client = await aClient();
  });

  it('judges at most 10 concurrent wrong guesses from one address, refuses the rest unjudged, and then the right secret too', async () => {
    const { post } = proxied([client], { secretCache: false, comparisonQueue: { maxQueued: 100, perAddress: 100 } });
    const answers = await Promise.all(Array.from({ length: 30 }, (_, i) => post('203.0.113.1').auth(client.id, `guess-${i}`).send(CC)));
    const statuses = answers.map((res) => res.status).sort();
    expect(statuses.filter((status) => status === 401)).toHaveLength(10);
    expect(statuses.filter((status) => status === 429)).toHaveLength(20);
    const right = await post('203.0.113.1').auth(client.id, client.secret).send(CC);
    expect(right.status).toBe(429);
    expect(right.body.error).toBe('temporarily_unavailable');
  });

  it('with the default comparison queue too, judges at most 10 of 30 concurrent guesses; the others are refused, uncounted when the queue refused them', async () => {
    const lines: string[] = [];
    const { post } = proxied([client], { secretCache: false, onInternalError: (line) => lines.push(line) });
    const answers = await Promise.all(Array.from({ length: 30 }, (_, i) => post('203.0.113.11').auth(client.id, `guess-${i}`).send(CC)));
    const statuses = answers.map((res) => res.status);
    // Judged: 401. Past the count: 429. Past the per-address bound of the comparison queue: 503, not counted.
    expect(statuses.filter((status) => status === 401).length).toBeLessThanOrEqual(10);
    expect(statuses.every((status) => [401, 429, 503].includes(status))).toBe(true);
    // The 503s, if any, are reported in one line.
    expect(lines).toEqual(statuses.includes(503) ? [expect.stringMatching(/^express-client-credentials: The server is busy; try again later/)] : []);
  });

  it('refuses the right secret sent as the 41st of 200 concurrent attempts', async () => {
    const { post } = proxied([client], { secretCache: false, comparisonQueue: { maxQueued: 400, perAddress: 400 } });
    const attempts = Array.from({ length: 200 }, (_, i) => post('203.0.113.2').auth(client.id, i === 40 ? client.secret : `guess-${i}`).send(CC));
    const answers = await Promise.all(attempts);
    expect(answers.filter((res) => res.status === 401).length + answers.filter((res) => res.status === 200).length).toBeLessThanOrEqual(10);
    expect(answers[40]!.status).toBe(429);
  });

  it('never locks out a fleet sharing a client id and an address, all with the right secret, concurrent or not', async () => {
    const counters = new MemoryCounterStore(100);
    const { post } = proxied([client], { secretCache: false, rateLimit: { failedAuthentication: { store: counters, limit: 3 } } });
    const burst = await Promise.all(Array.from({ length: 30 }, () => post('203.0.113.3').auth(client.id, client.secret).send(CC)));
    expect(burst.map((res) => res.status)).toEqual(Array(30).fill(200));
    for (let i = 0; i < 20; i++) await post('203.0.113.3').auth(client.id, client.secret).send(CC).expect(200);
    // Every success gave its count back: the pair has its whole allowance left.
    expect(counters.get(lockKey('203.0.113.3', client.id))).toBeUndefined();
    const wrong = await post('203.0.113.3').auth(client.id, 'wrong').send(CC).expect(401);
    expect(wrong.headers.ratelimit).toContain('"failed-authentication"; r=2;');
  });

  it('does not count a secret the verified-secret cache accepts, nor one joining a comparison in flight', async () => {
    const counters = new MemoryCounterStore(100);
    const { post } = proxied([client], { rateLimit: { failedAuthentication: { store: counters, limit: 2 } } });
    await Promise.all(Array.from({ length: 10 }, () => post('203.0.113.4').auth(client.id, client.secret).send(CC).expect(200)));
    await post('203.0.113.4').auth(client.id, 'wrong').send(CC).expect(401);
    for (let i = 0; i < 10; i++) await post('203.0.113.4').auth(client.id, client.secret).send(CC).expect(200);
    expect(counters.get(lockKey('203.0.113.4', client.id))?.totalHits).toBe(1);
  });
});

describe('bounded memory for what unauthenticated requests create', () => {
  it('counts an unknown client id as it counts a registered one, so the lock cannot tell them apart', async () => {
    const client = await aClient();
    const { post } = proxied([client], { secretCache: false, rateLimit: { perAddress: { limit: 1000 } } });
    const answers = (id: string) => post('203.0.113.5').auth(id, 'wrong').send(CC);
    for (let i = 0; i < 10; i++) {
      const [known, unknown] = [await answers(client.id), await answers('nobody-has-this-id')];
      expect([unknown.status, unknown.headers.ratelimit?.replace(/t=\d+/, '')]).toEqual([known.status, known.headers.ratelimit?.replace(/t=\d+/, '')]);
    }
    const [known, unknown, other] = [await answers(client.id), await answers('nobody-has-this-id'), await answers('nor-this-one')];
    expect([known.status, unknown.status, other.status]).toEqual([429, 429, 401]);
    expect(other.headers.ratelimit).toContain('r=9;');
  });

  it('holds one fixed-size counter per made-up id, however long the id', async () => {
    const counters = new MemoryCounterStore(100);
    const { post } = proxied([], { rateLimit: { failedAuthentication: { store: counters }, perAddress: { limit: 1000 } } });
    for (let i = 0; i < 5; i++) await post('203.0.113.5').auth(`${'x'.repeat(2700)}${i}`, 'wrong').send(CC).expect(401);
    expect(counters.size).toBe(5);
    // The key is the address and 22 characters of the id's digest, whatever the id's length.
    expect(counters.get(`203.0.113.5|?${createHash('sha256').update(`${'x'.repeat(2700)}0`).digest('base64url').slice(0, 22)}`)?.totalHits).toBe(1);
  });

  it('counts made-up ids in the unknown ids\' store and registered clients in theirs, so made-up ids cannot fill the one that fails closed', async () => {
    const client = await aClient();
    const [registered, unknown] = [new MemoryCounterStore(2), new MemoryCounterStore(2, { forgetOldest: true })];
    const authenticate = clientAuthenticator({
      store: new MemoryClientStore([client.record]), storeTimeout: 1000, hashCost: 4,
      assertions: { audiences: () => ['https://issuer.example/token'], replayCache: new MemoryReplayCache(), maxLifetime: 300, clockTolerance: 5, storeTimeout: 1000 },
      clientKeys: new ClientKeys(),
      failureLock: { counter: registered, unknownCounter: unknown, limit: 10, windowSeconds: 900 },
    });
    for (let i = 0; i < 20; i++) await expect(authenticate({ method: 'client_secret_basic', clientId: `made-up-${i}`, secret: 'wrong' }, { address: '203.0.113.50' })).rejects.toMatchObject({ status: 401 });
    expect([registered.size, unknown.size]).toEqual([0, 2]);
    await expect(authenticate({ method: 'client_secret_basic', clientId: client.id, secret: 'wrong' }, { address: '203.0.113.50' })).rejects.toMatchObject({ status: 401 });
    expect(registered.get(lockKey('203.0.113.50', client.id))?.totalHits).toBe(1);
  });

  it('keeps made-up ids out of the store that guards registered clients: in memory they fill their own, which forgets its oldest', async () => {
    const { counter, unknownCounter } = failureLockRules({}, 1000, () => undefined);
    expect(unknownCounter).not.toBe(counter);
    for (let i = 0; i < MAX_COUNTERS + 10; i++) await unknownCounter!.increment(`203.0.113.5|?id-${i}`);
    expect(await unknownCounter!.get(`203.0.113.5|?id-${MAX_COUNTERS + 9}`)).toMatchObject({ totalHits: 1 });
    expect(await unknownCounter!.get('203.0.113.5|?id-0')).toBeUndefined();
    // The registered clients' store still takes new pairs.
    expect(await counter.increment('203.0.113.5|a-client')).toMatchObject({ totalHits: 1 });
  });

  it('fails closed (503) when the lock counters are full of live keys, rather than forgetting one', async () => {
    const client = await aClient();
    const counters = new MemoryCounterStore(2);
    const lines: string[] = [];
    const { post } = proxied([client], { rateLimit: { failedAuthentication: { store: counters } }, onInternalError: (line) => lines.push(line) });
    await post('203.0.113.6').auth(client.id, 'wrong').send(CC).expect(401);
    await post('203.0.113.7').auth(client.id, 'wrong').send(CC).expect(401);
    const full = await post('203.0.113.8').auth(client.id, 'wrong').send(CC);
    expect([full.status, full.body.error, full.headers['retry-after']]).toEqual([503, 'temporarily_unavailable', '5']);
    expect(lines).toEqual([
      'the failed-authentication rate-limit store failed, requests get 503: the rate-limit counters are full (2 keys)',
      expect.stringMatching(/^express-client-credentials: The rate limit store is unavailable; try again later/),
    ]);
  });

  it('lets requests pass the per-address cap when its counters are full: a volume cap fails open', async () => {
    const client = await aClient();
    const { post } = proxied([client], { rateLimit: { perAddress: { store: new MemoryCounterStore(1) } }, onInternalError: () => undefined });
    await post('203.0.113.9').auth(client.id, client.secret).send(CC).expect(200);
    await post('203.0.113.10').auth(client.id, client.secret).send(CC).expect(200);
  });
});

describe('admission control for bcrypt: a bounded queue, answered 503 when full', () => {
  let slow: TestClient;
  beforeAll(async () => {
    slow = await aClient();
    slow = { ...slow, record: { ...slow.record, client_secret_hash: await hashSecret(slow.secret, 12) } };
  });

  it('answers comparisons the queue cannot hold at once with 503 and Retry-After, while a repeat client is served from its cached secret', async () => {
    const lines: string[] = [];
    const { post } = proxied([slow], { secretHashCost: 12, comparisonQueue: { maxQueued: 2, maxWait: 20_000 }, onInternalError: (line) => lines.push(line) });
    await post('198.51.100.1').auth(slow.id, slow.secret).send(CC).expect(200); // its secret is now cached
    const finished: string[] = [];
    const flood = Array.from({ length: 10 }, (_, i) =>
      post(`198.51.100.${10 + i}`).auth(`unknown-${i}`, 'wrong').send(CC).then((res) => (finished.push(`flood ${res.status}`), res)),
    );
    await new Promise((resolve) => setTimeout(resolve, 20));
    const repeat = await post('198.51.100.2').auth(slow.id, slow.secret).send(CC);
    finished.push(`repeat ${repeat.status}`);
    const answers = await Promise.all(flood);
    const refused = answers.filter((res) => res.status === 503);
    // Two comparisons run (one per worker on this machine's cores, up to 4) and unknown ids may fill half the queue.
    expect(refused.length).toBeGreaterThanOrEqual(10 - 4 - 1);
    for (const res of refused) {
      expect(res.body).toEqual({ error: 'temporarily_unavailable', error_description: 'The server is busy; try again later' });
      expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
    }
    expect(answers.filter((res) => res.status === 401).length).toBe(10 - refused.length);
    expect(lines).toEqual([expect.stringMatching(/^express-client-credentials: The server is busy; try again later/)]);
    // The repeat client's answer came before the comparisons it would otherwise have queued behind.
    expect(repeat.status).toBe(200);
    expect(finished.indexOf('repeat 200')).toBeLessThan(finished.indexOf('flood 401'));
  });

  it('issuer.close(): queued comparisons and new ones get 503, the ones running finish; a second close() settles with the first', async () => {
    const lines: string[] = [];
    const { post, issuer } = proxied([slow], { secretHashCost: 12, secretCache: false, onInternalError: (line) => lines.push(line) });
    const first = post('198.51.100.3').auth(slow.id, slow.secret).send(CC).then((res) => res);
    const queued = Array.from({ length: 6 }, (_, i) => post(`198.51.100.${30 + i}`).auth(slow.id, slow.secret).send(CC).then((res) => res));
    await new Promise((resolve) => setTimeout(resolve, 50));
    // Closing twice, as a SIGTERM after a SIGINT does: both calls settle, with the same promise.
    const [closing, again] = [issuer.close(), issuer.close()];
    expect(again).toBe(closing);
    await Promise.all([closing, again]);
    const after = await post('198.51.100.4').auth(slow.id, slow.secret).send(CC);
    expect(after.status).toBe(503);
    expect(after.body.error_description).toMatch(/shutting down/);
    const answers = await Promise.all([first, ...queued]);
    expect(answers.every((res) => res.status === 200 || res.status === 503)).toBe(true);
    expect(answers.some((res) => res.status === 503)).toBe(true);
    expect(lines).toEqual([expect.stringMatching(/^express-client-credentials: The server is shutting down; try again later/)]);
  });
});

describe('rotation without lock-out', () => {
  it('checks a secret that fails against a cached record once more against a fresh read, before it counts as a failure', async () => {
    const old = await aClient();
    const rotated: ClientRecord = { ...old.record, client_secret_hash: await hashSecret('the-new-secret', 4) };
    let freshReads = 0;
    // A store with a cache of its own, as PostgresClientStore has: it serves the old record until asked for a fresh one.
    const store: ClientStore = {
      async findClient(clientId, options) {
        if (clientId !== old.id) return undefined;
        if (options?.fresh !== true) return old.record;
        freshReads += 1;
        return rotated;
      },
    };
    const counters = new MemoryCounterStore(100);
    const { post } = proxied([], { clients: store, rateLimit: { failedAuthentication: { store: counters } } });
    for (let i = 0; i < 12; i++) await post('203.0.113.20').auth(old.id, 'the-new-secret').send(CC).expect(200);
    expect(counters.get(lockKey('203.0.113.20', old.id))).toBeUndefined();
    // Wrong secrets read afresh at most once per 5 s per client.
    for (let i = 0; i < 5; i++) await post('203.0.113.21').auth(old.id, 'wrong').send(CC).expect(401);
    expect(freshReads).toBe(1);
  });

  it('reads a record afresh once for concurrent wrong secrets of one client, however many', async () => {
    const client = await aClient();
    let freshReads = 0;
    const store: ClientStore = {
      async findClient(clientId, options) {
        if (clientId !== client.id) return undefined;
        if (options?.fresh === true) {
          freshReads += 1;
          await new Promise((resolve) => setTimeout(resolve, 200));
        }
        return client.record;
      },
    };
    const { post } = proxied([], { clients: store, secretCache: false });
    const answers = await Promise.all(Array.from({ length: 8 }, (_, i) => post(`203.0.113.${40 + i}`).auth(client.id, `wrong-${i}`).send(CC)));
    expect(answers.map((res) => res.status)).toEqual(Array(8).fill(401));
    expect(freshReads).toBe(1);
  });
});

describe('a deadline on every rate-limit store call', () => {
  /** A store that never answers: a stalled Redis behind rate-limit-redis. */
  const hanging = (): Store => ({
    increment: () => new Promise(() => undefined),
    decrement: () => new Promise(() => undefined),
    get: () => new Promise(() => undefined),
    resetKey: () => undefined,
  });

  it('a stalled failure-lock store: 503 with Retry-After within storeTimeout, and one report line, not one per request', async () => {
    const client = await aClient();
    const lines: string[] = [];
    const { post } = proxied([client], { storeTimeout: 200, rateLimit: { failedAuthentication: { store: hanging() } }, onInternalError: (line) => lines.push(line) });
    const started = Date.now();
    const answers = await Promise.all(Array.from({ length: 5 }, () => post('203.0.113.30').auth(client.id, client.secret).send(CC)));
    expect(Date.now() - started).toBeLessThan(3000);
    expect(answers.map((res) => [res.status, res.headers['retry-after']])).toEqual(Array(5).fill([503, '5']));
    expect(lines.filter((line) => /failed-authentication rate-limit store failed/.test(line))).toHaveLength(1);
  });

  it('a stalled per-address store: requests pass within storeTimeout (a volume cap fails open), and nothing is printed per request', async () => {
    const client = await aClient();
    const lines: string[] = [];
    const printed = jest.spyOn(console, 'error').mockImplementation(() => undefined);
    try {
      const { post } = proxied([client], { storeTimeout: 200, rateLimit: { perAddress: { store: hanging() } }, onInternalError: (line) => lines.push(line) });
      const answers = await Promise.all(Array.from({ length: 5 }, () => post('203.0.113.31').auth(client.id, client.secret).send(CC)));
      expect(answers.map((res) => res.status)).toEqual(Array(5).fill(200));
      expect(printed).not.toHaveBeenCalled();
      expect(lines).toEqual([expect.stringMatching(/per-address rate-limit store failed, requests pass unlimited/)]);
    } finally {
      printed.mockRestore();
    }
  });
});

/** Sends a Buffer as it is: superagent would form-encode it. */
const asIs = (body: unknown): string => body as string;

describe('every body-parser failure is a 4xx with an OAuth JSON error, never a 500', () => {
  const client = { id: 'body-client', secret: 'body-secret' };
  let app: express.Express;
  beforeAll(async () => {
    app = tokenServer([{ ...client, record: { client_id: client.id, client_secret_hash: await hashSecret(client.secret, 4), scope: 'read' } }]).app;
  });

  it.each([
    ['gzip', 400],
    ['deflate', 400],
    // Express 4's body-parser knows no brotli: an encoding it cannot read is 415, as for compress.
    ['br', Number(expressVersion.split('.')[0]) >= 5 ? 400 : 415],
    ['compress', 415],
    ['x-unknown', 415],
  ])('Content-Encoding: %s on a body that is not validly compressed: %i', async (encoding, status) => {
    const res = await request(app).post('/token').auth(client.id, client.secret).type('form').set('Content-Encoding', encoding).send('grant_type=client_credentials');
    expect(res.status).toBe(status);
    expect(res.body.error).toBe('invalid_request');
    expect(res.headers['cache-control']).toBe('no-store');
  });

  it('a body larger than bodyLimit once inflated: 413', async () => {
    const res = await request(app).post('/token').auth(client.id, client.secret).type('form').set('Content-Encoding', 'gzip').serialize(asIs).send(gzipSync(`grant_type=client_credentials&x=${'a'.repeat(20_000)}`));
    expect([res.status, res.body.error]).toEqual([413, 'invalid_request']);
  });

  it('a validly compressed body is read as the form it holds', async () => {
    await request(app).post('/token').auth(client.id, client.secret).type('form').set('Content-Encoding', 'gzip').serialize(asIs).send(gzipSync('grant_type=client_credentials')).expect(200);
  });

  it('a Content-Length longer than the body sent, then the end of the request: 400', async () => {
    const server = createServer(app).listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    const { port } = server.address() as { port: number };
    const reply = await new Promise<string>((resolve) => {
      const socket = connect(port, '127.0.0.1', () => {
        socket.write('POST /token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ngrant_type=client_credentials');
        socket.end();
      });
      let data = '';
      socket.on('data', (chunk) => (data += chunk));
      socket.on('close', () => resolve(data));
    });
    server.close();
    // The client half-closed its side: either the 400 reached it or nothing did; never a 500.
    expect(reply).not.toMatch(/^HTTP\/1\.1 5/);
  });
});
