// The token client against a real issuer on loopback: RFC 6749 §4.4 from the calling service's side, RFC 6750 §2.1 and §3.

import { inspect } from 'node:util';
import express, { type RequestHandler } from 'express';
import { authenticate, ConfigurationError, issuer, MemoryClientStore, requireScope, type Issuer } from 'express-client-credentials';
import { TokenRequestError, tokenClient, type TokenClientOptions } from '../../lib/client/token-client.js';
import { formatBasic } from '../../lib/core/basic-auth.js';
import { aClient, decodePayload, SECRET, type TestClient } from '../support/fixtures.js';
import { close, serve, type Listening } from '../support/servers.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const pass: RequestHandler = (_req, _res, next) => next();

interface AuthorizationServer extends Listening {
  /** The issuer identifier: the server's URL plus `path`. */
  readonly issuerId: string;
  readonly tokenUrl: string;
  /** Headers of every request that reached /token, in order. */
  readonly tokenRequests: { authorization: string | undefined; contentType: string | undefined; accept: string | undefined }[];
  readonly metadataRequests: string[];
  /** The Authorization header of every call to /api/data. */
  readonly apiCalls: (string | undefined)[];
}

interface ServerOptions {
  readonly clients: readonly TestClient[];
  /** Mounted in front of the token endpoint, after the counter. */
  readonly tokenFront?: RequestHandler;
  /** Mounted in front of the metadata, after the counter. */
  readonly metadataFront?: RequestHandler;
  /** Mounted in front of the API's guard, after the counter. */
  readonly apiFront?: RequestHandler;
  /** A hand-written token endpoint at /fake-token, for answers a real issuer never gives. */
  readonly fakeToken?: RequestHandler;
  /** The issuer identifier's path, e.g. `/tenant`. Default: none. */
  readonly path?: string;
}

const open: Listening[] = [];
afterEach(async () => {
  jest.useRealTimers();
  await Promise.all(open.splice(0).map(close));
});

/** Clients as the issuer takes them: none on purpose is an empty store, which does not warn `ECC_NO_CLIENTS` as an empty list does. */
const registered = (clients: readonly TestClient[]) => (clients.length === 0 ? new MemoryClientStore([]) : clients.map((c) => c.record));

async function authorizationServer(options: ServerOptions): Promise<AuthorizationServer> {
  const path = options.path ?? '';
  const tokenRequests: AuthorizationServer['tokenRequests'] = [];
  const metadataRequests: string[] = [];
  const apiCalls: (string | undefined)[] = [];
  let tokens: Issuer | undefined;
  const listening = await serve((url) => {
    tokens = issuer({ issuer: `${url}${path}`, signingKey: { secret: SECRET }, secretHashCost: 4, clients: registered(options.clients), rateLimit: false });
    const app = express();
    const countToken: RequestHandler = (req, _res, next) => {
      tokenRequests.push({ authorization: req.get('authorization'), contentType: req.get('content-type'), accept: req.get('accept') });
      next();
    };
    app.use(`${path}/token`, countToken, options.tokenFront ?? pass, tokens);
    app.use(`${path}/revoke`, tokens.revocation);
    app.get(tokens.metadataPath, (req, _res, next) => (metadataRequests.push(req.path), next()), options.metadataFront ?? pass, tokens.metadata);
    app.post('/fake-token', countToken, options.fakeToken ?? pass);
    app.all(
      '/api/data',
      (req, _res, next) => (apiCalls.push(req.get('authorization')), next()),
      options.apiFront ?? pass,
      authenticate({ issuer: tokens }),
      requireScope('read'),
      express.raw({ type: '*/*' }),
      (req, res) => {
        res.json({ client_id: req.auth?.clientId, body: Buffer.isBuffer(req.body) ? req.body.toString('utf8') : null });
      },
    );
    return app;
  });
  open.push(listening);
  return { ...listening, issuerId: `${listening.url}${path}`, tokenUrl: `${listening.url}${path}/token`, tokenRequests, metadataRequests, apiCalls };
}

let reader: TestClient;
let poster: TestClient;
let shortLived: TestClient;
beforeAll(async () => {
  reader = await aClient({ scope: 'read write' });
  poster = await aClient({ scope: 'read', token_endpoint_auth_method: 'client_secret_post' });
  shortLived = await aClient({ scope: 'read', access_token_ttl: 2 });
});

const clientOf = (as: AuthorizationServer, client: TestClient, options: Partial<TokenClientOptions> = {}) =>
  tokenClient({ tokenUrl: as.tokenUrl, clientId: client.id, clientSecret: client.secret, scope: 'read', ...options });

/** A front middleware that answers the first `count` requests with `answer` and lets the rest through. */
function failFirst(count: number, answer: RequestHandler): RequestHandler {
  let seen = 0;
  return (req, res, next) => (++seen <= count ? answer(req, res, next) : next());
}

describe('tokenClient(): the client credentials grant from the client side, RFC 6749 §4.4.2 and §5.1', () => {
  it('requests a token with HTTP Basic, a form body and Accept: application/json, then reuses it', async () => {
    const as = await authorizationServer({ clients: [reader] });
    const client = clientOf(as, reader);
    const first = await client.getToken();
    const second = await client.getToken();
    expect(second).toBe(first);
    expect(as.tokenRequests).toEqual([
      { authorization: formatBasic(reader.id, reader.secret), contentType: 'application/x-www-form-urlencoded', accept: 'application/json' },
    ]);
    // The scope was sent: the client may have `read write`, and got only what it asked for.
    expect(decodePayload(first)).toMatchObject({ client_id: reader.id, scope: 'read' });
  });

  it('requests a new token once expires_in minus refreshSkew has passed', async () => {
    const as = await authorizationServer({ clients: [shortLived] });
    const client = clientOf(as, shortLived, { refreshSkew: 1 });
    const first = await client.getToken();
    await sleep(500);
    expect(await client.getToken()).toBe(first);
    await sleep(700);
    const renewed = await client.getToken();
    expect(renewed).not.toBe(first);
    expect(as.tokenRequests).toHaveLength(2);
  });

  it('shares one token request among 20 concurrent callers (no stampede)', async () => {
    const as = await authorizationServer({ clients: [reader] });
    const client = clientOf(as, reader);
    const tokens = await Promise.all(Array.from({ length: 20 }, () => client.getToken()));
    expect(new Set(tokens).size).toBe(1);
    expect(as.tokenRequests).toHaveLength(1);
  });

  it('requests a new token after invalidate()', async () => {
    const as = await authorizationServer({ clients: [reader] });
    const client = clientOf(as, reader);
    const first = await client.getToken();
    client.invalidate();
    expect(await client.getToken()).not.toBe(first);
    expect(as.tokenRequests).toHaveLength(2);
  });

  it('authenticates with client_secret_post: credentials in the body, no Authorization header (RFC 6749 §2.3.1)', async () => {
    const as = await authorizationServer({ clients: [poster] });
    const token = await clientOf(as, poster, { authMethod: 'client_secret_post' }).getToken();
    // The issuer refuses a client registered for client_secret_post that uses Basic, so this proves the method.
    expect(decodePayload(token)).toMatchObject({ client_id: poster.id });
    expect(as.tokenRequests).toEqual([{ authorization: undefined, contentType: 'application/x-www-form-urlencoded', accept: 'application/json' }]);
  });

  it('fails with invalid_client under the wrong secret, and no error shows the secret', async () => {
    const as = await authorizationServer({ clients: [reader] });
    const wrong = `wrong-${reader.secret}`;
    const client = clientOf(as, reader, { clientSecret: wrong });
    const error = await client.getToken().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TokenRequestError);
    expect(error).toMatchObject({ error: 'invalid_client', status: 401 });
    expect(as.tokenRequests).toHaveLength(1); // a 401 from the token endpoint is final
    for (const text of [String(error), JSON.stringify(error), inspect(error, { depth: 5 }), inspect(client, { depth: 5 }), JSON.stringify(client)]) {
      expect(text).not.toContain(wrong);
    }
  });

  it.each([
    ['client_secret_basic', (req: express.Request) => req.get('authorization')],
    ['client_secret_post', (req: express.Request) => new URLSearchParams(String(req.body)).get('client_secret')],
  ] as const)('drops an error_description that echoes the secret (%s)', async (authMethod, echoed) => {
    const secret = 'a secret/with+form&chars';
    const as = await authorizationServer({
      clients: [],
      fakeToken: (req, res) => {
        express.text({ type: '*/*' })(req, res, () => {
          res.status(400).json({ error: 'invalid_request', error_description: `unexpected credentials ${echoed(req) ?? ''}` });
        });
      },
    });
    const error = await tokenClient({ tokenUrl: `${as.url}/fake-token`, clientId: 'echo', clientSecret: secret, authMethod })
      .getToken()
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ error: 'invalid_request', status: 400 });
    const text = `${String(error)} ${JSON.stringify(error)}`;
    for (const form of [secret, encodeURIComponent(secret), formatBasic('echo', secret).slice(6)]) expect(text).not.toContain(form);
  });

  it('fails with invalid_scope for a scope beyond the client, without retrying (RFC 6749 §5.2)', async () => {
    const as = await authorizationServer({ clients: [poster] });
    const error = await clientOf(as, poster, { authMethod: 'client_secret_post', scope: ['read', 'admin'] }).getToken().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TokenRequestError);
    expect(error).toMatchObject({ error: 'invalid_scope', status: 400, message: 'The requested scope exceeds the scope granted to the client' });
    expect(as.tokenRequests).toHaveLength(1);
  });

  it('rejects every caller waiting on a failed request, caches nothing, and the next call tries again', async () => {
    const as = await authorizationServer({
      clients: [reader],
      tokenFront: failFirst(1, (_req, res) => void res.status(400).json({ error: 'invalid_request', error_description: 'Try again' })),
    });
    const client = clientOf(as, reader);
    const outcomes = await Promise.allSettled(Array.from({ length: 10 }, () => client.getToken()));
    expect(outcomes.every((o) => o.status === 'rejected' && o.reason instanceof TokenRequestError && o.reason.message === 'Try again')).toBe(true);
    expect(as.tokenRequests).toHaveLength(1);
    expect(decodePayload(await client.getToken())).toMatchObject({ client_id: reader.id });
    expect(as.tokenRequests).toHaveLength(2);
  });
});

describe('tokenClient(): retries at the token endpoint, RFC 6585 §4 and RFC 9110 §10.2.3', () => {
  it('waits as Retry-After says (delay-seconds or HTTP-date) after a 429 and a 503, then succeeds', async () => {
    let failures = 0;
    const as = await authorizationServer({
      clients: [reader],
      tokenFront: failFirst(2, (_req, res) => {
        failures++;
        if (failures === 1) res.set('Retry-After', '1').status(429).json({ error: 'temporarily_unavailable' });
        else res.set('Retry-After', new Date(Date.now() + 2000).toUTCString()).status(503).json({ error: 'temporarily_unavailable' });
      }),
    });
    const started = performance.now();
    const token = await clientOf(as, reader).getToken();
    // 1 s, then between 1 and 2 s: the HTTP-date has whole seconds.
    expect(performance.now() - started).toBeGreaterThanOrEqual(1900);
    expect(decodePayload(token)).toMatchObject({ client_id: reader.id });
    expect(as.tokenRequests).toHaveLength(3);
  });

  it('backs off exponentially without Retry-After, and gives up after `retries` extra attempts', async () => {
    const as = await authorizationServer({
      clients: [reader],
      tokenFront: (_req, res) => void res.status(503).json({ error: 'temporarily_unavailable', error_description: 'Down for maintenance' }),
    });
    const started = performance.now();
    const error = await clientOf(as, reader, { retries: 2 }).getToken().catch((e: unknown) => e);
    // 250 ms and 500 ms, each at least halved by the jitter.
    expect(performance.now() - started).toBeGreaterThanOrEqual(370);
    expect(error).toBeInstanceOf(TokenRequestError);
    expect(error).toMatchObject({ status: 503, error: 'temporarily_unavailable', message: 'Down for maintenance' });
    expect(as.tokenRequests).toHaveLength(3);
  });

  it('retries a dropped connection', async () => {
    const as = await authorizationServer({ clients: [reader], tokenFront: failFirst(1, (req) => void req.socket.destroy()) });
    const token = await clientOf(as, reader).getToken();
    expect(decodePayload(token)).toMatchObject({ client_id: reader.id });
    expect(as.tokenRequests).toHaveLength(2);
  });

  it('abandons a request slower than `timeout` and retries it', async () => {
    const as = await authorizationServer({ clients: [reader], tokenFront: failFirst(1, () => undefined) });
    const started = performance.now();
    const token = await clientOf(as, reader, { timeout: 300 }).getToken();
    expect(performance.now() - started).toBeGreaterThanOrEqual(290);
    expect(decodePayload(token)).toMatchObject({ client_id: reader.id });
    expect(as.tokenRequests).toHaveLength(2);
  });

  it('reports an endpoint that never answers in time as status 0 once retries run out', async () => {
    const as = await authorizationServer({ clients: [reader], tokenFront: () => undefined });
    const error = await clientOf(as, reader, { timeout: 100, retries: 1 }).getToken().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TokenRequestError);
    expect(error).toMatchObject({ status: 0, message: 'The token endpoint did not answer in time' });
    expect(as.tokenRequests).toHaveLength(2);
  });
});

describe('tokenClient(): token responses, RFC 6749 §5.1 and RFC 6750 §2.1', () => {
  const padding = 'x'.repeat(70 * 1024);
  it.each<[string, RequestHandler, RegExp]>([
    ['a token_type other than Bearer', (_req, res) => void res.json({ access_token: 'abc', token_type: 'mac', expires_in: 60 }), /token_type Bearer/],
    ['no access_token', (_req, res) => void res.json({ token_type: 'Bearer', expires_in: 60 }), /access_token/],
    ['an access_token that cannot stand in a header', (_req, res) => void res.json({ access_token: 'a b', token_type: 'Bearer' }), /access_token/],
    ['a negative expires_in', (_req, res) => void res.json({ access_token: 'abc', token_type: 'Bearer', expires_in: -5 }), /expires_in/],
    ['a body that is not JSON', (_req, res) => void res.type('html').send('<h1>OK</h1>'), /not a JSON object/],
    ['a body over 64 KiB', (_req, res) => void res.json({ access_token: 'abc', token_type: 'Bearer', padding }), /larger than 64 KiB/],
    [
      'a body over 64 KiB without Content-Length',
      (_req, res) => {
        res.status(200).type('json');
        res.write(`{"access_token":"abc","token_type":"Bearer","padding":"`);
        for (let i = 0; i < 5; i++) res.write(padding.slice(0, 20 * 1024));
        res.end('"}');
      },
      /larger than 64 KiB/,
    ],
  ])('refuses a 200 with %s, without retrying', async (_name, answer, message) => {
    const as = await authorizationServer({ clients: [], fakeToken: answer });
    const error = await tokenClient({ tokenUrl: `${as.url}/fake-token`, clientId: 'c', clientSecret: 's' }).getToken().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TokenRequestError);
    expect((error as Error).message).toMatch(message);
    expect(as.tokenRequests).toHaveLength(1);
  });

  it('accepts token_type in any case (RFC 6749 §5.1), and uses a token with expires_in 0 once, without caching it', async () => {
    let n = 0;
    const as = await authorizationServer({ clients: [], fakeToken: (_req, res) => void res.json({ access_token: `t${++n}`, token_type: 'bEaReR', expires_in: 0 }) });
    const client = tokenClient({ tokenUrl: `${as.url}/fake-token`, clientId: 'c', clientSecret: 's' });
    expect([await client.getToken(), await client.getToken()]).toEqual(['t1', 't2']);
  });

  it('treats a token without expires_in as living 60 s: reused before, renewed after', async () => {
    let n = 0;
    const as = await authorizationServer({ clients: [], fakeToken: (_req, res) => void res.json({ access_token: `t${++n}`, token_type: 'Bearer' }) });
    const client = tokenClient({ tokenUrl: `${as.url}/fake-token`, clientId: 'c', clientSecret: 's', refreshSkew: 0 });
    // Only the monotonic clock is fake; sockets and timers stay real.
    jest.useFakeTimers({ doNotFake: ['Date', 'hrtime', 'nextTick', 'queueMicrotask', 'setImmediate', 'clearImmediate', 'setTimeout', 'clearTimeout', 'setInterval', 'clearInterval'] });
    expect(await client.getToken()).toBe('t1');
    jest.advanceTimersByTime(59_000);
    expect(await client.getToken()).toBe('t1');
    jest.advanceTimersByTime(1_500);
    expect(await client.getToken()).toBe('t2');
  });
});

describe('tokenClient(): discovery of the token endpoint, RFC 8414 §3', () => {
  it('finds token_endpoint in the metadata of an issuer with a path, and fetches the metadata once', async () => {
    const as = await authorizationServer({ clients: [reader], path: '/tenant' });
    const client = tokenClient({ issuer: as.issuerId, clientId: reader.id, clientSecret: reader.secret, scope: 'read' });
    await client.getToken();
    client.invalidate();
    await client.getToken();
    expect(as.metadataRequests).toEqual(['/.well-known/oauth-authorization-server/tenant']);
    expect(as.tokenRequests).toHaveLength(2);
  });

  it('refuses metadata of another issuer, and discovers again on the next call', async () => {
    const as = await authorizationServer({
      clients: [reader],
      metadataFront: failFirst(1, (_req, res) => void res.json({ issuer: 'https://attacker.example', token_endpoint: 'https://attacker.example/token' })),
    });
    const client = tokenClient({ issuer: as.issuerId, clientId: reader.id, clientSecret: reader.secret });
    await expect(client.getToken()).rejects.toThrow(new TokenRequestError('The authorization server metadata is of another issuer', { status: 200 }));
    expect(as.tokenRequests).toHaveLength(0);
    expect(decodePayload(await client.getToken())).toMatchObject({ client_id: reader.id });
    expect(as.metadataRequests).toHaveLength(2);
  });

  it('rejects getToken() when the metadata is unreachable, and retries discovery next time', async () => {
    const as = await authorizationServer({ clients: [reader], metadataFront: failFirst(1, (_req, res) => void res.sendStatus(404)) });
    const client = tokenClient({ issuer: as.issuerId, clientId: reader.id, clientSecret: reader.secret });
    await expect(client.getToken()).rejects.toMatchObject({ status: 404 });
    await client.getToken();
    expect(as.metadataRequests).toHaveLength(2);
  });
});

describe('tokenClient().fetch(): calling the API with the token, RFC 6750 §2.1 and §3.1', () => {
  /** Refuses the first token it sees, and only that one, as an API does with a token it has stopped accepting. */
  function refuseFirstToken(): RequestHandler {
    let refused: string | undefined;
    return (req, res, next) => {
      refused ??= req.get('authorization');
      if (req.get('authorization') !== refused) return next();
      res.set('WWW-Authenticate', 'Bearer error="invalid_token"').status(401).json({ error: 'invalid_token' });
    };
  }

  it('sends the token as Authorization: Bearer, and the API answers 200', async () => {
    const as = await authorizationServer({ clients: [reader] });
    const client = clientOf(as, reader);
    const res = await client.fetch(`${as.url}/api/data`, { headers: { Authorization: 'Basic stale' } });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ client_id: reader.id });
    expect(as.apiCalls).toEqual([`Bearer ${await client.getToken()}`]);
  });

  it('on a 401 for a revoked token, drops it and retries once with a fresh token', async () => {
    const as = await authorizationServer({ clients: [reader] });
    const client = clientOf(as, reader);
    const revoked = await client.getToken();
    const revocation = await fetch(`${as.url}/revoke`, {
      method: 'POST',
      headers: { authorization: formatBasic(reader.id, reader.secret) },
      body: new URLSearchParams({ token: revoked }),
    });
    expect(revocation.status).toBe(200);
    const res = await client.fetch(new URL('/api/data', as.url));
    expect(res.status).toBe(200);
    const fresh = await client.getToken();
    expect(fresh).not.toBe(revoked);
    expect(as.apiCalls).toEqual([`Bearer ${revoked}`, `Bearer ${fresh}`]);
    expect(as.tokenRequests).toHaveLength(2);
  });

  it.each<[string, () => NonNullable<RequestInit['body']>]>([
    ['a string', () => 'payload'],
    ['URLSearchParams', () => new URLSearchParams({ p: 'payload' })],
    ['a Uint8Array', () => new TextEncoder().encode('payload')],
    ['a Blob', () => new Blob(['payload'])],
  ])('replays %s body on the retry', async (_name, body) => {
    const as = await authorizationServer({ clients: [reader], apiFront: refuseFirstToken() });
    const res = await clientOf(as, reader).fetch(`${as.url}/api/data`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream' },
      body: body(),
    });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { body: string }).body).toContain('payload');
    expect(as.apiCalls).toHaveLength(2);
  });

  it('returns the second 401 as it is: one retry, no loop', async () => {
    const as = await authorizationServer({ clients: [reader], apiFront: (_req, res) => void res.status(401).json({ error: 'invalid_token' }) });
    const res = await clientOf(as, reader).fetch(`${as.url}/api/data`);
    expect(res.status).toBe(401);
    expect(as.apiCalls).toHaveLength(2);
    expect(as.tokenRequests).toHaveLength(2);
  });

  it('returns the 401 for a stream body, which cannot be sent twice, and drops the token', async () => {
    const as = await authorizationServer({ clients: [reader], apiFront: refuseFirstToken() });
    const client = clientOf(as, reader);
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode('payload'));
        controller.close();
      },
    });
    const res = await client.fetch(`${as.url}/api/data`, { method: 'POST', body: stream, duplex: 'half' } as RequestInit);
    expect(res.status).toBe(401);
    expect(as.apiCalls).toHaveLength(1);
    await client.getToken();
    expect(as.tokenRequests).toHaveLength(2);
  });
});

describe('tokenClient(): options are checked at construction', () => {
  const base = { tokenUrl: 'https://as.example/token', clientId: 'reports', clientSecret: 'the-secret-value' };
  it.each<[string, Record<string, unknown>, RegExp]>([
    ['an unknown option', { ...base, clientSecrett: 'x' }, /unknown option `clientSecrett`/],
    ['both tokenUrl and issuer', { ...base, issuer: 'https://as.example' }, /exactly one of `tokenUrl` and `issuer`/],
    ['neither tokenUrl nor issuer', { clientId: 'reports', clientSecret: 's' }, /exactly one of `tokenUrl` and `issuer`/],
    ['a tokenUrl with a fragment', { ...base, tokenUrl: 'https://as.example/token#x' }, /`tokenUrl`/],
    ['a tokenUrl that is not http(s)', { ...base, tokenUrl: 'ftp://as.example/token' }, /`tokenUrl`/],
    ['an issuer with a query', { clientId: 'reports', clientSecret: 's', issuer: 'https://as.example?x=1' }, /`issuer`/],
    ['an empty clientId', { ...base, clientId: '' }, /`clientId`/],
    ['a missing clientSecret', { ...base, clientSecret: undefined }, /`clientSecret`/],
    ['a scope with a quote', { ...base, scope: 'read "write"' }, /`scope`/],
    ['a scope list with a space in a token', { ...base, scope: ['read write'] }, /`scope`/],
    ['an empty scope', { ...base, scope: '' }, /`scope`/],
    ['an unknown authMethod', { ...base, authMethod: 'private_key_jwt' }, /`authMethod`/],
    ['a negative refreshSkew', { ...base, refreshSkew: -1 }, /`refreshSkew`/],
    ['a zero timeout', { ...base, timeout: 0 }, /`timeout`/],
    ['a fractional retries', { ...base, retries: 1.5 }, /`retries`/],
    ['a fetch that is not a function', { ...base, fetch: 'fetch' }, /`fetch`/],
  ])('refuses %s with a ConfigurationError naming the option', (_name, options, message) => {
    const attempt = () => tokenClient(options as unknown as TokenClientOptions);
    expect(attempt).toThrow(ConfigurationError);
    expect(attempt).toThrow(message);
  });

  it('uses the fetch it is given for token requests and API calls', async () => {
    const as = await authorizationServer({ clients: [reader] });
    const seen: string[] = [];
    const client = clientOf(as, reader, { fetch: (input, init) => (seen.push(String(input)), fetch(input, init)) });
    await client.fetch(`${as.url}/api/data`);
    expect(seen).toEqual([as.tokenUrl, `${as.url}/api/data`]);
  });

  it('does not retry, nor blame the server, when the fetch it is given has already read the body', async () => {
    const as = await authorizationServer({ clients: [reader] });
    let calls = 0;
    const client = clientOf(as, reader, {
      retries: 2,
      fetch: async (input, init) => {
        calls += 1;
        const res = await fetch(input, init);
        await res.text(); // a logging wrapper that reads the body and hands the response on
        return res;
      },
    });
    const failure = await client.getToken().catch((error: unknown) => error);
    expect(calls).toBe(1);
    expect(failure).not.toBeInstanceOf(TokenRequestError);
    expect(String(failure)).toMatch(/locked|disturbed|read/i);
  });
});
