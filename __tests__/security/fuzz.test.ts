// Property-based fuzzing with fast-check (fixed seed FUZZ_SEED, FUZZ_RUNS runs): the token endpoint
// (RFC 6749 §2.3, §3.2, §5.2), the Bearer guard (RFC 6750 §2, §3.1), and the Basic and scope codecs
// (RFC 6749 §2.3.1, §3.3). Each app runs on one loopback server for the whole file.

import { createPublicKey, randomUUID, type KeyObject } from 'node:crypto';
import http from 'node:http';
import express, { type Request, type Response } from 'express';
import fc from 'fast-check';
import { authenticate, issuer, requireAnyScope, requireScope } from 'express-client-credentials';
import { formatBasic, parseBasic } from '../../lib/core/basic-auth.js';
import { formatScope, parseScope } from '../../lib/core/scope.js';
import { jwkThumbprint } from '../../lib/core/signing-keys.js';
import { aClient, AUDIENCE, b64, ISSUER, keyPairs, SECRET, type TestClient } from '../support/fixtures.js';
import {
  applyEdit,
  base64urlSegment,
  fuzzParameters,
  fuzzRuns,
  fuzzTimeout,
  headerValue,
  rawRequest,
  scopeToken,
  Tally,
  tokenEdit,
  unicodeString,
  type RawResponse,
} from '../support/fuzz.js';
import { close, serve, type Listening } from '../support/servers.js';
import { forge, signatureVerifies, type Material } from './forge.js';

/** Default runs: about 15 s for the whole file on 2 cores (FUZZ_RUNS overrides every one). */
const RUNS = { tokenEndpoint: 2500, guard: 4000, codecs: 3000 } as const;

const FORM = 'application/x-www-form-urlencoded';
const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const CREDENTIAL_PARAMETERS = ['client_id', 'client_secret', 'client_assertion', 'client_assertion_type'];
const BODY_LIMIT = 8192;
/** Every fixed text a test sends that must never come back: secrets are made of it. */
const CANARY = 'CANARY';

/** Two real clients, one per secret method; the post client's secret is bcrypt's 72-byte maximum. */
const BASIC = { id: 'fuzz-basic', secret: `${CANARY}-basic-${randomUUID()}`, scopes: ['read', 'write'] };
const POST = { id: 'fuzz-post', secret: `${CANARY}-post-${randomUUID()}`.padEnd(72, 'p'), scopes: ['read'] };

let agent: http.Agent;
beforeAll(() => {
  agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
});
afterAll(() => agent.destroy());

/** RFC 6749 Appendix B: form-urlencoding, as §2.3.1 asks of clients for the Basic credentials. */
const formEncode = (value: string) => new URLSearchParams([['', value]]).toString().slice(1);
const basic = (id: string, secret: string, encode = true) =>
  `Basic ${Buffer.from(encode ? `${formEncode(id)}:${formEncode(secret)}` : `${id}:${secret}`).toString('base64')}`;

describe('the token endpoint under arbitrary requests: RFC 6749 §2.3, §3.2, §5.2', () => {
  let server: Listening;
  let clients: TestClient[];

  beforeAll(async () => {
    clients = [
      await aClient({ client_id: BASIC.id, secret: BASIC.secret, scope: BASIC.scopes.join(' ') }),
      await aClient({ client_id: POST.id, secret: POST.secret, scope: POST.scopes.join(' '), token_endpoint_auth_method: 'client_secret_post' }),
    ];
    server = await serve(() => {
      const app = express();
      const options = { issuer: ISSUER, signingKey: { secret: SECRET }, secretHashCost: 4, clients: clients.map((c) => c.record), rateLimit: false } as const;
      app.use('/token', issuer(options));
      // The README lets an app parse the body first; qs (extended) turns a[b]=c into objects and repeats into arrays.
      const parsed = express();
      parsed.use(express.urlencoded({ extended: true, limit: '64kb' }));
      parsed.use('/token', issuer({ ...options, endpoints: { token: `${ISSUER}/parsed/token` } }));
      app.use('/parsed', parsed);
      return app;
    });
  });
  afterAll(() => close(server));

  interface Attempt {
    /** The endpoint reads the raw body itself, or after the app's own urlencoded parser. */
    readonly mount: '/token' | '/parsed/token';
    readonly method: string;
    readonly query: string;
    readonly contentType: string | undefined;
    readonly authorization: string | undefined;
    readonly body: Buffer;
    readonly chunked: boolean;
  }

  const names = fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom('grant_type', 'scope', 'resource', 'audience', 'token', ...CREDENTIAL_PARAMETERS) },
    // Names qs reads as nested objects, arrays or prototype members when the app parsed the body.
    { weight: 1, arbitrary: fc.constantFrom('client_id[]', 'client_secret[0]', 'grant_type[x]', 'scope[]', '__proto__', 'constructor', 'toString', 'client_id[__proto__]') },
    { weight: 1, arbitrary: unicodeString({ maxLength: 10 }) },
  );
  const smallValues = fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom('client_credentials', 'CLIENT_CREDENTIALS', 'password', 'authorization_code', '', 'read', 'write', 'read write', 'admin', 'read  write', ' read', '"read"', JWT_BEARER, AUDIENCE, 'https://other.example/', 'not a uri') },
    { weight: 4, arbitrary: fc.constantFrom(BASIC.id, BASIC.secret, POST.id, POST.secret, `${POST.secret}x`, BASIC.secret.toLowerCase(), `${BASIC.secret} `) },
    { weight: 2, arbitrary: unicodeString({ maxLength: 30 }) },
    { weight: 1, arbitrary: unicodeString({ maxLength: 20 }).map((s) => `${CANARY}${s}`) },
    {
      weight: 1,
      arbitrary: fc.constantFrom(BASIC.id, POST.id, 'nobody').map((id) => `${b64({ alg: 'RS256' })}.${b64({ iss: id, sub: id, aud: ISSUER, exp: 4e9, jti: 'j' })}.c2ln`),
    },
  );
  const values = fc.oneof(
    { weight: 12, arbitrary: smallValues },
    // Up to the body limit and beyond.
    { weight: 1, arbitrary: fc.integer({ min: 1, max: BODY_LIMIT + 2000 }).map((n) => 'v'.repeat(n)) },
  );
  const pairs = fc.array(fc.tuple(names, values), { maxLength: 6 });
  const form = (entries: readonly (readonly [string, string])[]) => Buffer.from(new URLSearchParams(entries.map(([n, v]): [string, string] => [n, v])).toString());

  const bodies = fc.oneof(
    // Half the forms carry the right grant_type first, so that most get as far as client authentication.
    { weight: 8, arbitrary: fc.tuple(fc.boolean(), pairs).map(([granted, entries]) => form(granted ? [['grant_type', 'client_credentials'], ...entries] : entries)) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 400 }).map((bytes) => Buffer.from(bytes)) },
    {
      weight: 1,
      arbitrary: fc
        .array(fc.oneof(fc.constantFrom('%', '%zz', '%C3%28', '%FF', '%00', '&', '=', '==', '+', 'grant_type=client_credentials', 'grant_type', '&&'), unicodeString({ maxLength: 8 })), { maxLength: 8 })
        .map((parts) => Buffer.from(parts.join(''))),
    },
    { weight: 1, arbitrary: fc.integer({ min: BODY_LIMIT - 200, max: BODY_LIMIT + 200 }).map((n) => Buffer.from(`grant_type=client_credentials&scope=${'r'.repeat(n)}`)) },
    { weight: 1, arbitrary: fc.constantFrom(Buffer.alloc(0), Buffer.from(JSON.stringify({ grant_type: 'client_credentials' }))) },
  );
  const credentials = fc.tuple(
    fc.oneof(fc.constantFrom(BASIC.id, POST.id), unicodeString({ maxLength: 20 }), fc.constantFrom(':', 'a:b', '%3A', '+', ' ')),
    fc.oneof(
      fc.constantFrom(BASIC.secret, POST.secret, `${BASIC.secret}x`, BASIC.secret.slice(0, -1), `${POST.secret}extra`, POST.secret.slice(0, -1), `${BASIC.secret}:${BASIC.secret}`),
      unicodeString({ maxLength: 30 }),
      unicodeString({ maxLength: 10 }).map((s) => `${CANARY}${s}`),
    ),
  );
  const authorizations = fc.oneof(
    { weight: 4, arbitrary: fc.constant(undefined) },
    { weight: 4, arbitrary: fc.constant(basic(BASIC.id, BASIC.secret)) },
    { weight: 4, arbitrary: fc.tuple(credentials, fc.boolean()).map(([[id, secret], encode]) => basic(id, secret, encode)) },
    {
      weight: 1,
      arbitrary: fc
        .tuple(fc.constantFrom('Basic ', 'basic ', 'BASIC ', 'Basic  ', 'Basic', 'Bearer ', 'Digest ', ''), fc.string({ unit: fc.constantFrom(...'ABCabc+/=:0'.split('')), maxLength: 40 }), fc.constantFrom('', ' ', '  ', '='))
        .map(([scheme, data, tail]) => `${scheme}${data}${tail}`),
    },
    { weight: 1, arbitrary: fc.constant(basic(BASIC.id, BASIC.secret).replace('Basic ', 'Basic  ') + ' ') },
    { weight: 1, arbitrary: headerValue(300) },
  );
  const methods = fc.oneof({ weight: 8, arbitrary: fc.constant('POST') }, { weight: 2, arbitrary: fc.constantFrom(...http.METHODS.filter((m) => m !== 'CONNECT')) });
  const contentTypes = fc.oneof(
    { weight: 8, arbitrary: fc.constantFrom(FORM, `${FORM}; charset=utf-8`, `${FORM};charset="UTF-8"`, FORM.toUpperCase()) },
    { weight: 2, arbitrary: fc.constantFrom(`${FORM}; charset=iso-8859-1`, `${FORM}; charset=utf-16`, 'application/json', 'text/plain', 'multipart/form-data; boundary=x', `${FORM}, text/plain`, `${FORM}; charset`, ';', '', undefined) },
    { weight: 1, arbitrary: headerValue(60) },
  );
  const queries = fc.oneof(
    { weight: 8, arbitrary: fc.constant('') },
    { weight: 2, arbitrary: fc.array(fc.tuple(names, smallValues), { minLength: 1, maxLength: 3 }).map((entries) => `?${new URLSearchParams(entries)}`) },
    { weight: 1, arbitrary: fc.constantFrom('?', '?client_id', '?%zz', '?client_secret=', '?a=1&a=2', '?grant_type=client_credentials') },
  );
  const mounts = fc.constantFrom('/token' as const, '/parsed/token' as const);
  const anyAttempt: fc.Arbitrary<Attempt> = fc.record({
    mount: mounts,
    method: methods,
    query: queries,
    contentType: contentTypes,
    authorization: authorizations,
    body: bodies,
    chunked: fc.boolean(),
  });
  /** Requests right but for their extras, so that the success path is explored as well as the refusals. */
  const wellFormed: fc.Arbitrary<Attempt> = fc
    .record({
      mount: mounts,
      client: fc.constantFrom('basic', 'post'),
      // The right secret, or one that differs only past bcrypt's 72 bytes, by one character, or by case.
      secret: fc.constantFrom('right', 'right', 'right', 'longer', 'shorter', 'case'),
      scope: fc.option(fc.constantFrom('read', 'write', 'read write', 'admin', 'write read read')),
      extra: fc.array(fc.tuple(fc.oneof(fc.constantFrom('resource', 'audience', 'foo', 'client_id'), unicodeString({ maxLength: 8 })), smallValues), { maxLength: 3 }),
      contentType: fc.constantFrom(FORM, `${FORM}; charset=UTF-8`),
    })
    .map(({ mount, client, secret, scope, extra, contentType }) => {
      const right = client === 'basic' ? BASIC.secret : POST.secret;
      const presented = { right, longer: `${right}x`, shorter: right.slice(0, -1), case: right.toLowerCase() }[secret];
      const entries: [string, string][] = [['grant_type', 'client_credentials'], ...(scope === null ? [] : [['scope', scope] as [string, string]]), ...extra];
      if (client === 'post') entries.push(['client_id', POST.id], ['client_secret', presented]);
      return { mount, method: 'POST', query: '', contentType, authorization: client === 'basic' ? basic(BASIC.id, presented) : undefined, body: form(entries), chunked: false };
    });
  const attempts = fc.oneof({ weight: 3, arbitrary: anyAttempt }, { weight: 1, arbitrary: wellFormed });

  /**
   * The client a request may get a token for, decided from the request alone (RFC 6749 §2.3):
   * its registered method carries its exact secret, and no other method is used alongside.
   * Empty parameters count as omitted (§3.2). A necessary condition: the endpoint may refuse more.
   */
  function entitledClient(attempt: Attempt): string | undefined {
    if (attempt.method !== 'POST') return undefined;
    const query = new URLSearchParams(attempt.query.slice(1));
    if ([...query.keys()].some((name) => CREDENTIAL_PARAMETERS.includes(name))) return undefined;
    let text: string;
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(attempt.body);
    } catch {
      return undefined;
    }
    const params = new URLSearchParams(text);
    const given = (name: string) => params.getAll(name).filter((value) => value !== '');
    if (given('client_assertion').length > 0 || given('client_assertion_type').length > 0) return undefined;
    const ids = given('client_id');
    const secrets = given('client_secret');
    if (attempt.authorization !== undefined) {
      const presented = decodeBasic(attempt.authorization);
      if (presented === undefined || secrets.length > 0 || !ids.every((id) => id === presented.id)) return undefined;
      return presented.id === BASIC.id && presented.secret === BASIC.secret ? BASIC.id : undefined;
    }
    return ids.length > 0 && secrets.length > 0 && ids.every((id) => id === POST.id) && secrets.every((s) => s === POST.secret) ? POST.id : undefined;
  }

  /** A lenient Basic decoder (any base64, any whitespace): it may accept more than the endpoint, never less. */
  function decodeBasic(header: string): { id: string; secret: string } | undefined {
    const match = /^basic[ \t]+(.*?)[ \t]*$/i.exec(header.trim());
    if (match === null) return undefined;
    const pair = Buffer.from(match[1] as string, 'base64').toString('utf8');
    const colon = pair.indexOf(':');
    if (colon < 0) return undefined;
    try {
      const decode = (s: string) => decodeURIComponent(s.replace(/\+/g, ' '));
      return { id: decode(pair.slice(0, colon)), secret: decode(pair.slice(colon + 1)) };
    } catch {
      return undefined;
    }
  }

  /** RFC 6749 §5.2 codes and the statuses they come with (README, Errors). */
  const STATUSES: Readonly<Record<string, readonly number[]>> = {
    invalid_request: [400, 405, 413],
    invalid_client: [401],
    unsupported_grant_type: [400],
    invalid_scope: [400],
    invalid_target: [400],
    unauthorized_client: [400],
    temporarily_unavailable: [429, 503],
  };

  function checkAnswer(attempt: Attempt, res: RawResponse, tally: Tally): void {
    expect(res.status).toBeLessThan(500);
    const wire = `${JSON.stringify(res.headers)}\n${res.body.toString('latin1')}`;
    // Never a secret, a hash, or any text we sent as a secret.
    for (const leak of [CANARY, '$2', ...clients.map((c) => String(c.record.client_secret_hash))]) expect(wire).not.toContain(leak);
    if (res.status === 405) expect(res.headers.allow).toBe('POST');
    if (attempt.mount === '/parsed/token' && !/^application\/json\b/.test(res.headers['content-type'] ?? '')) {
      // The app's own parser refused the body (415, 400, 413) before the endpoint saw it: Express's answer, not ours.
      expect([400, 413, 415]).toContain(res.status);
      tally.add(`${res.status} app parser`);
      return;
    }
    expect(res.headers['cache-control']).toBe('no-store');
    if (attempt.method === 'HEAD') {
      expect([res.status, res.body.length]).toEqual([405, 0]);
      tally.add('405 HEAD');
      return;
    }
    expect(res.headers['content-type']).toMatch(/^application\/json\b/);
    const body = JSON.parse(res.body.toString('utf8')) as Record<string, unknown>;
    if (res.status === 200) {
      checkIssued(attempt, body);
      tally.add('200');
      return;
    }
    expect(Object.keys(body).sort()).toEqual(['error', 'error_description']);
    expect(body.error_description).toMatch(/^[\x20\x21\x23-\x5B\x5D-\x7E]+$/);
    expect(STATUSES[String(body.error)] ?? []).toContain(res.status);
    if (body.error === 'invalid_client') expect(res.headers['www-authenticate']).toBe(`Basic realm="${ISSUER}"`);
    if (res.status === 413 && attempt.mount === '/token') expect(attempt.body.length).toBeGreaterThan(BODY_LIMIT);
    tally.add(`${res.status} ${String(body.error)}`);
  }

  /** A 200 holds a token for the one client the request was entitled to, within its scopes, signed by the issuer. */
  function checkIssued(attempt: Attempt, body: Record<string, unknown>): void {
    const entitled = entitledClient(attempt);
    expect(entitled).toBeDefined();
    expect(Object.keys(body).sort()).toEqual(expect.arrayContaining(['access_token', 'expires_in', 'token_type']));
    expect(body.token_type).toBe('Bearer');
    const token = String(body.access_token);
    expect(signatureVerifies('HS256', token, SECRET)).toBe(true);
    const claims = JSON.parse(Buffer.from(token.split('.')[1] as string, 'base64url').toString()) as Record<string, unknown>;
    expect([claims.client_id, claims.sub, claims.iss]).toEqual([entitled, entitled, ISSUER]);
    const allowed = entitled === BASIC.id ? BASIC.scopes : POST.scopes;
    for (const scope of String(claims.scope ?? '').split(' ').filter(Boolean)) expect(allowed).toContain(scope);
  }

  it(
    'never answers 5xx, never issues a token without the right secret sent one way, never leaks a secret, and always answers a JSON OAuth error with its status',
    async () => {
      const tally = new Tally();
      await fc.assert(
        fc.asyncProperty(attempts, async (attempt) => {
          const headers: Record<string, string> = {};
          if (attempt.contentType !== undefined) headers['Content-Type'] = attempt.contentType;
          if (attempt.authorization !== undefined) headers.Authorization = attempt.authorization;
          const res = await rawRequest(server.url, agent, { method: attempt.method, path: `${attempt.mount}${attempt.query}`, headers, body: attempt.body, chunked: attempt.chunked });
          checkAnswer(attempt, res, tally);
        }),
        fuzzParameters(RUNS.tokenEndpoint),
      );
      // The run reached the success path and each kind of refusal: the properties above were not vacuous.
      if (fuzzRuns(RUNS.tokenEndpoint) >= 500) {
        for (const outcome of ['200', '401 invalid_client', '400 invalid_request', '405 invalid_request', '413 invalid_request', '400 unsupported_grant_type', '400 invalid_scope']) {
          expect({ outcome, seen: tally.count(outcome) > 0, tally: tally.toJSON() }).toMatchObject({ outcome, seen: true });
        }
      }
    },
    fuzzTimeout(RUNS.tokenEndpoint, 10),
  );
});

describe('the guard under arbitrary Authorization headers and tokens: RFC 6750 §2, §3.1', () => {
  let server: Listening;
  /** Handler runs the oracle disowned: each is a token that reached a route without being valid there. */
  let violations: string[] = [];
  let reached = 0;

  type Route = '/hs' | '/pk' | '/multi' | '/implicit' | '/remote';
  const ROUTES: readonly Route[] = ['/hs', '/pk', '/multi', '/implicit', '/remote'];
  interface Valid {
    readonly token: string;
    readonly alg: string;
    readonly key: KeyObject | string;
    /** Routes where it must get through, given its key, expiry and scope. */
    readonly routes: readonly Route[];
  }
  let valid: Valid[] = [];
  let forgeMaterials: [string, Material][] = [];
  let realKids: string[] = [];

  const now = () => Math.floor(Date.now() / 1000);
  const claims = (overrides: Record<string, unknown> = {}) => ({
    iss: ISSUER, sub: 'svc', client_id: 'svc', aud: AUDIENCE, iat: now(), exp: now() + 3600, jti: randomUUID(), scope: 'read', ...overrides,
  });

  beforeAll(async () => {
    const rsa = keyPairs.rsa();
    const ec = keyPairs.ec();
    const ed = keyPairs.ed25519();
    const kid = (key: KeyObject) => jwkThumbprint(createPublicKey(key));
    realKids = [kid(rsa), kid(ec), kid(ed)];
    const asymmetric: Route[] = ['/pk', '/implicit', '/remote'];
    const sign = (alg: string, key: KeyObject | string, overrides: Record<string, unknown>, routes: readonly Route[]): Valid => {
      const header = typeof key === 'string' ? { alg, typ: 'at+jwt' } : { alg, typ: 'at+jwt', kid: kid(key) };
      return { token: forge(header, claims(overrides), key), alg, key: typeof key === 'string' ? key : createPublicKey(key), routes };
    };
    valid = [
      sign('HS256', SECRET, {}, ['/hs', '/multi']),
      sign('HS256', SECRET, { scope: 'write' }, []),
      sign('HS256', SECRET, { exp: now() - 60 }, []),
      sign('RS256', rsa, {}, asymmetric),
      sign('ES256', ec, {}, asymmetric),
      sign('EdDSA', ed, {}, asymmetric),
      sign('EdDSA', ed, { scope: 'admin' }, ['/pk']),
      sign('ES256', ec, { aud: 'https://other.example' }, []),
    ];
    const pem = (key: KeyObject) => createPublicKey(key).export({ format: 'pem', type: 'spki' }).toString();
    forgeMaterials = [
      ['RS256', keyPairs.rsa()],
      ['PS256', rsa],
      ['ES256', keyPairs.ec()],
      ['EdDSA', keyPairs.ed25519()],
      ['HS256', 'an-attacker-secret-of-more-than-32-bytes'],
      ['HS256', pem(rsa)],
      ['HS256', pem(ec)],
      ['HS256', pem(ed)],
      ['HS256', JSON.stringify(createPublicKey(rsa).export({ format: 'jwk' }))],
      ['HS256', ''],
    ];
    const client = await aClient();
    server = await serve((url) => {
      const app = express();
      const tokens = issuer({ issuer: ISSUER, signingKey: { privateKey: ec }, additionalKeys: [{ privateKey: rsa }, { privateKey: ed }], secretHashCost: 4, clients: [client.record], rateLimit: false });
      app.use(tokens);
      const handler = (route: Route) => (req: Request, res: Response) => {
        reached += 1;
        const token = req.auth?.token ?? '';
        if (!isValidAt(route, token)) violations.push(`${route} ran for ${token}`);
        res.json({ ok: true });
      };
      const publicKeys = [rsa, ec, ed].map((key) => createPublicKey(key));
      app.all('/hs', authenticate({ secret: SECRET, issuer: ISSUER }), requireScope('read'), handler('/hs'));
      app.all('/pk', authenticate({ publicKey: publicKeys, issuer: ISSUER }), requireAnyScope('read', 'admin'), handler('/pk'));
      app.all('/multi', express.urlencoded({ extended: false }), authenticate({ secret: SECRET, issuer: ISSUER, tokenLocations: ['header', 'body', 'query'] }), requireScope('read'), handler('/multi'));
      app.all('/implicit', requireScope('read'), handler('/implicit'));
      app.all('/remote', authenticate({ issuer: ISSUER, jwksUri: `${url}/.well-known/jwks.json` }), requireScope('read'), handler('/remote'));
      return app;
    });
  });
  afterAll(() => close(server));

  /** The oracle: the exact header and payload of a token valid at this route, under a signature node:crypto verifies. */
  function isValidAt(route: Route, token: string): boolean {
    const signed = token.split('.').slice(0, 2).join('.');
    return valid.some((v) => v.routes.includes(route) && v.token.startsWith(`${signed}.`) && token.split('.').length === 3 && signatureVerifies(v.alg, token, v.key));
  }

  const forgedHeaders = fc.record(
    {
      alg: fc.oneof(fc.constantFrom('none', 'None', 'NONE', 'HS256', 'RS256', 'ES256', 'EdDSA', 'PS256', 'HS512', 'ES512', ''), unicodeString({ maxLength: 8 })),
      typ: fc.oneof(fc.constantFrom('at+jwt', 'JWT', 'application/at+jwt', 'AT+JWT'), unicodeString({ maxLength: 8 })),
      kid: fc.oneof(fc.constant(undefined), fc.integer(), unicodeString({ maxLength: 10 }), fc.constant('real')),
      jku: fc.constantFrom('http://127.0.0.1:9/jwks', 'https://evil.example/jwks'),
      crit: fc.constantFrom(['exp'], []),
    },
    { requiredKeys: ['alg'] },
  );
  const forgedPayloads = fc.oneof(
    fc.record(
      {
        iss: fc.constantFrom(ISSUER, `${ISSUER}/`, 'https://evil.example'),
        aud: fc.constantFrom(AUDIENCE, [AUDIENCE], `${AUDIENCE}.evil`, undefined),
        exp: fc.oneof(fc.integer({ min: 0, max: 4e9 }), fc.constantFrom('9999999999', null, 1e308)),
        scope: fc.oneof(fc.constantFrom('read', 'read admin', ['read'], 42), scopeToken),
        client_id: fc.constantFrom('svc', '', 7),
      },
      { requiredKeys: [] },
    ).map((overrides) => claims(overrides)),
    fc.jsonValue({ maxDepth: 3 }),
    fc.constantFrom('not json', '['.repeat(500), '{"a":'.repeat(200), ''),
  );
  /** Tokens signed by anything but a key the guards trust; none may ever reach a route. */
  const forged = fc
    .tuple(forgedHeaders, forgedPayloads, fc.nat())
    .map(([header, payload, pick]) => {
      const [alg, material] = forgeMaterials[pick % forgeMaterials.length] as [string, Material];
      const named = header.kid === 'real' ? { ...header, kid: realKids[pick % realKids.length] } : header;
      return forge(named, payload, material, alg);
    });
  const tokens = fc.oneof(
    { weight: 3, arbitrary: fc.nat().map((i) => (valid[i % valid.length] as Valid).token) },
    { weight: 6, arbitrary: fc.tuple(fc.nat(), fc.array(tokenEdit, { minLength: 1, maxLength: 3 })).map(([i, edits]) => edits.reduce(applyEdit, (valid[i % valid.length] as Valid).token)) },
    { weight: 4, arbitrary: forged },
    { weight: 2, arbitrary: fc.tuple(base64urlSegment(), base64urlSegment(), base64urlSegment()).map((parts) => parts.join('.')) },
    { weight: 1, arbitrary: headerValue(100) },
  );
  const authorizations = fc.oneof(
    {
      weight: 8,
      arbitrary: fc
        .tuple(fc.constantFrom('Bearer ', 'bearer ', 'BEARER ', 'Bearer  ', 'Bearer\t', 'Bearer', 'Basic ', 'Token ', 'DPoP ', ''), tokens, fc.constantFrom('', '', '', ' ', ',', ' x', ' Bearer x'))
        .map(([scheme, token, tail]) => `${scheme}${token}${tail}`),
    },
    { weight: 1, arbitrary: headerValue(300) },
    { weight: 2, arbitrary: fc.constant(undefined) },
  );
  const requests = fc.record({
    route: fc.constantFrom(...ROUTES),
    method: fc.constantFrom('GET', 'POST', 'DELETE'),
    authorization: authorizations,
    query: fc.oneof(
      { weight: 8, arbitrary: fc.constant(undefined) },
      { weight: 2, arbitrary: tokens.map((token) => `access_token=${encodeURIComponent(token)}`) },
      // Express 5's simple query parser makes a repeated parameter an array.
      { weight: 1, arbitrary: fc.tuple(tokens, tokens).map(([a, b]) => `access_token=${encodeURIComponent(a)}&access_token=${encodeURIComponent(b)}`) },
      { weight: 1, arbitrary: fc.constantFrom('access_token', 'access_token=', 'access_token[x]=y', 'access_token[]=a', 'ACCESS_TOKEN=a', '%zz') },
    ),
    body: fc.oneof({ weight: 4, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: tokens }),
  });

  it(
    'never answers 5xx and never runs the route without a token valid there',
    async () => {
      const tally = new Tally();
      await fc.assert(
        fc.asyncProperty(requests, async ({ route, method, authorization, query, body }) => {
          violations = [];
          const headers: Record<string, string> = {};
          if (authorization !== undefined) headers.Authorization = authorization;
          if (body !== undefined) headers['Content-Type'] = FORM;
          const path = query === undefined ? route : `${route}?${query}`;
          const res = await rawRequest(server.url, agent, { method, path, headers, body: body === undefined ? undefined : Buffer.from(new URLSearchParams({ access_token: body }).toString()) });
          expect(violations).toEqual([]);
          expect([200, 400, 401, 403]).toContain(res.status);
          if (res.status !== 200) {
            const answer = JSON.parse(res.body.toString('utf8')) as Record<string, unknown>;
            expect(Object.keys(answer).sort()).toEqual(['error', 'error_description']);
            expect(answer.error).toBe({ 400: 'invalid_request', 401: 'invalid_token', 403: 'insufficient_scope' }[res.status]);
            expect(res.headers['www-authenticate']).toMatch(/^Bearer realm="[^"]+"/);
          }
          tally.add(String(res.status));
        }),
        fuzzParameters(RUNS.guard),
      );
      expect(reached).toBeGreaterThan(0);
      if (fuzzRuns(RUNS.guard) >= 500) {
        for (const status of ['200', '400', '401', '403']) expect({ status, seen: tally.count(status) > 0, tally: tally.toJSON() }).toMatchObject({ status, seen: true });
      }
    },
    fuzzTimeout(RUNS.guard, 5),
  );
});

describe('the Basic credentials codec: RFC 6749 §2.3.1 (form-urlencoded, then base64)', () => {
  const ids = fc.oneof(
    { weight: 4, arbitrary: unicodeString({ minLength: 1, maxLength: 40 }) },
    { weight: 1, arbitrary: fc.string({ unit: fc.constantFrom(':', '%', '+', ' ', '&', '=', '%3A', 'é', '😀', '\u0000', '\uFEFF', 'a'), minLength: 1, maxLength: 12 }) },
  );

  it('parseBasic(formatBasic(id, secret)) gives back any non-empty Unicode id and secret', () => {
    fc.assert(
      fc.property(ids, ids, fc.constantFrom('Basic', 'basic', 'BASIC'), fc.constantFrom(' ', '  '), fc.constantFrom('', ' '), (id, secret, scheme, gap, tail) => {
        const header = formatBasic(id, secret);
        expect(header).toMatch(/^Basic [A-Za-z0-9+/]+={0,2}$/);
        expect(parseBasic(header)).toEqual({ clientId: id, secret });
        expect(parseBasic(`${scheme}${gap}${header.slice('Basic '.length)}${tail}`)).toEqual({ clientId: id, secret });
      }),
      fuzzParameters(RUNS.codecs),
    );
  });

  it('anything parseBasic accepts, formatBasic writes back to the same credentials', () => {
    const headers = fc.oneof(
      headerValue(60),
      fc.string({ unit: fc.constantFrom(...'ABCDEFabcdef0123+/=:'.split('')), maxLength: 40 }).map((data) => `Basic ${data}`),
      fc.tuple(unicodeString({ maxLength: 12 }), unicodeString({ maxLength: 12 })).map(([id, secret]) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`),
    );
    fc.assert(
      fc.property(headers, (header) => {
        const parsed = parseBasic(header);
        if (parsed === undefined) return;
        expect(parsed.clientId).not.toBe('');
        expect(parsed.secret).not.toBe('');
        expect(parseBasic(formatBasic(parsed.clientId, parsed.secret))).toEqual(parsed);
      }),
      fuzzParameters(RUNS.codecs),
    );
  });
});

describe('the scope codec: RFC 6749 §3.3 scope = scope-token *( SP scope-token )', () => {
  const GRAMMAR = /^[\x21\x23-\x5B\x5D-\x7E]+( [\x21\x23-\x5B\x5D-\x7E]+)*$/;

  it('parseScope(formatScope(tokens)) gives back any list of scope tokens, each once, in order', () => {
    fc.assert(
      fc.property(fc.array(scopeToken, { maxLength: 8 }), (tokens) => {
        expect(parseScope(formatScope(tokens))).toEqual([...new Set(tokens)]);
      }),
      fuzzParameters(RUNS.codecs),
    );
  });

  it('formatScope(parseScope(s)) gives back any valid scope string without repeats', () => {
    fc.assert(
      fc.property(fc.uniqueArray(scopeToken, { minLength: 1, maxLength: 8 }), (tokens) => {
        const scope = tokens.join(' ');
        expect(formatScope(parseScope(scope) ?? [])).toBe(scope);
      }),
      fuzzParameters(RUNS.codecs),
    );
  });

  it('accepts exactly the strings of the grammar (and the empty string, as no scope)', () => {
    const strings = fc.oneof(
      fc.array(scopeToken, { maxLength: 4 }).map((tokens) => tokens.join(' ')),
      fc
        .tuple(fc.array(fc.oneof(scopeToken, fc.constantFrom('', ' ', '"', '\\', '\t', 'é', '\u0000', '\u007f')), { maxLength: 6 }), fc.constantFrom(' ', '  ', ''))
        .map(([parts, separator]) => parts.join(separator)),
      fc.string({ unit: 'binary-ascii', maxLength: 20 }),
      unicodeString({ maxLength: 20 }),
    );
    fc.assert(
      fc.property(strings, (scope) => {
        const parsed = parseScope(scope);
        expect(parsed !== undefined).toBe(scope === '' || GRAMMAR.test(scope));
        if (parsed !== undefined) expect(parsed).toEqual([...new Set(scope === '' ? [] : scope.split(' '))]);
      }),
      fuzzParameters(RUNS.codecs),
    );
  });
});
