// The JWT attack catalogue (RFC 8725 §2 and §3, RFC 9068 §4): each token is forged with real key
// material and refused with the exact answer by the guard (RFC 6750 §3.1) and by introspection (RFC 7662 §2.2).

import { createPublicKey, randomUUID, type KeyObject } from 'node:crypto';
import http from 'node:http';
import express, { type Request, type Response } from 'express';
import request from 'supertest';
import { authenticate, issuer, requireScope, type Issuer } from 'express-client-credentials';
import { jwkThumbprint } from '../../lib/core/signing-keys.js';
import { aClient, b64, keyPairs, type TestClient } from '../support/fixtures.js';
import { close, listenOnLoopback, serve, type Listening } from '../support/servers.js';
import { forge, signatureOf } from './forge.js';

const ISSUER = 'https://auth.example.com';
const AUDIENCE = 'https://api.example.com';
const REALM = `realm="${AUDIENCE}"`;
/** Every way a resource server can trust the issuer: in process, through its JWKS, and with its public keys as PEM or JWK. */
const GUARDS = ['local', 'remote', 'pem', 'jwk'] as const;
type Guard = (typeof GUARDS)[number];

interface Keys {
  readonly rsa: KeyObject;
  readonly ec: KeyObject;
  readonly attackerRsa: KeyObject;
  readonly attackerEc: KeyObject;
  readonly attackerEd: KeyObject;
}
let keys: Keys;
let kids: { rsa: string; ec: string; attackerRsa: string; attackerEc: string };
let owner: TestClient;
let resourceServer: TestClient;
let tokens: Issuer;
let server: Listening;
/** Stands where an attacker's `jku` and `x5u` point; counts every request that reaches it. */
let attackerHost: Listening;
let attackerHits: string[] = [];
/** Guards whose route handler ran, per test. */
let reached: string[] = [];

const now = () => Math.floor(Date.now() / 1000);
const claims = (overrides: Record<string, unknown> = {}): Record<string, unknown> => ({
  iss: ISSUER,
  sub: owner.id,
  client_id: owner.id,
  aud: AUDIENCE,
  iat: now(),
  exp: now() + 600,
  jti: randomUUID(),
  scope: 'read',
  ...overrides,
});
/** Signed by the issuer's own RSA key, with its kid. */
const rs256 = (payload: unknown = claims(), header: Record<string, unknown> = {}) =>
  forge({ alg: 'RS256', typ: 'at+jwt', kid: kids.rsa, ...header }, payload, keys.rsa);
/** Signed by the issuer's own EC key, with its kid. */
const es256 = (payload: unknown = claims(), header: Record<string, unknown> = {}) =>
  forge({ alg: 'ES256', typ: 'at+jwt', kid: kids.ec, ...header }, payload, keys.ec);
const publicPem = (key: KeyObject, type: 'spki' | 'pkcs1' = 'spki') => createPublicKey(key).export({ format: 'pem', type }).toString();
const publicJwk = (key: KeyObject) => createPublicKey(key).export({ format: 'jwk' });

beforeAll(async () => {
  keys = { rsa: keyPairs.rsa(), ec: keyPairs.ec(), attackerRsa: keyPairs.rsa(), attackerEc: keyPairs.ec(), attackerEd: keyPairs.ed25519() };
  kids = {
    rsa: jwkThumbprint(createPublicKey(keys.rsa)),
    ec: jwkThumbprint(createPublicKey(keys.ec)),
    attackerRsa: jwkThumbprint(createPublicKey(keys.attackerRsa)),
    attackerEc: jwkThumbprint(createPublicKey(keys.attackerEc)),
  };
  owner = await aClient({ scope: 'read write' });
  resourceServer = await aClient({ scope: undefined, can_introspect: true });

  attackerHost = await listenOnLoopback();
  attackerHost.server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    attackerHits.push(req.url ?? '');
    res.setHeader('Content-Type', 'application/json');
    res.end(JSON.stringify({ keys: [{ ...publicJwk(keys.attackerRsa), kid: kids.rsa, alg: 'RS256', use: 'sig' }] }));
  });

  const common = { issuer: ISSUER, audience: AUDIENCE, secretHashCost: 4, clients: [owner.record, resourceServer.record], rateLimit: false } as const;
  tokens = issuer({ ...common, signingKey: { privateKey: keys.rsa }, additionalKeys: [{ privateKey: keys.ec }], bodyLimit: 512 * 1024 });
  // The same issuer with the default bodyLimit, for the 413 an oversized introspection request gets.
  const tokensDefaultLimit = issuer({ ...common, signingKey: { privateKey: keys.rsa }, additionalKeys: [{ privateKey: keys.ec }] });

  server = await serve((url) => {
    const app = express();
    app.use('/token', tokens);
    app.use('/introspect', tokens.introspection);
    app.use('/introspect-default-limit', tokensDefaultLimit.introspection);
    app.use('/.well-known/jwks.json', tokens.jwks);
    const handler = (guard: string) => (req: Request, res: Response) => {
      reached.push(guard);
      res.json({ client_id: req.auth?.clientId });
    };
    const guards: Record<Guard, ReturnType<typeof authenticate>> = {
      local: authenticate({ issuer: tokens }),
      remote: authenticate({ issuer: ISSUER, audience: AUDIENCE, jwksUri: `${url}/.well-known/jwks.json` }),
      pem: authenticate({ issuer: ISSUER, audience: AUDIENCE, publicKey: [publicPem(keys.rsa), publicPem(keys.ec)] }),
      jwk: authenticate({ issuer: ISSUER, audience: AUDIENCE, publicKey: [publicJwk(keys.rsa), publicJwk(keys.ec)] }),
    };
    for (const guard of GUARDS) app.get(`/${guard}/data`, guards[guard], requireScope('read'), handler(guard));
    // The form body as a token location, for tokens too large for a header.
    app.post('/body/data', express.urlencoded({ extended: false, limit: '1mb' }), authenticate({ issuer: tokens, tokenLocations: ['header', 'body'] }), requireScope('read'), handler('body'));
    return app;
  });
});

afterAll(async () => {
  await close(server);
  await close(attackerHost);
});

beforeEach(() => {
  reached = [];
  attackerHits = [];
});

afterEach(() => {
  // jku and x5u are never followed, whatever the test sent.
  expect(attackerHits).toEqual([]);
});

const guardAnswer = async (guard: Guard | 'body', token: string) => {
  const res = await request(server.url).get(`/${guard}/data`).set('Authorization', `Bearer ${token}`);
  return { guard, status: res.status, challenge: res.headers['www-authenticate'], body: res.body as unknown, cacheControl: res.headers['cache-control'] };
};
const refusal = (guard: Guard | 'body', description: string) => ({
  guard,
  status: 401,
  challenge: `Bearer ${REALM}, error="invalid_token", error_description="${description}"`,
  body: { error: 'invalid_token', error_description: description },
  cacheControl: 'no-store',
});
const introspect = async (token: string, path = '/introspect') => {
  const res = await request(server.url).post(path).auth(resourceServer.id, resourceServer.secret).type('form').send({ token });
  return { status: res.status, text: res.text };
};
const INACTIVE = { status: 200, text: '{"active":false}' };

const NOT_JWS = 'The token is not a JWS';
const NO_KEY = 'The token is not signed with an accepted key and algorithm';
const BAD_SIGNATURE = 'The token signature is invalid';
/**
 * A token whose kid is missing or unknown finds no key at the remote guard: keys from a JWKS carry
 * the kid their issuer gave them, and only keys whose kid we derived are tried for another kid.
 */
const REMOTE_NO_KEY = { remote: NO_KEY } as const;

/**
 * Every guard answers 401 invalid_token with this description (or the guard's own, where its key
 * lookup differs) and never runs the route; introspection says exactly inactive.
 */
async function expectRefused(token: string, description: string, byGuard: Partial<Record<Guard, string>> = {}): Promise<void> {
  for (const guard of GUARDS) expect(await guardAnswer(guard, token)).toEqual(refusal(guard, byGuard[guard] ?? description));
  expect(reached).toEqual([]);
  expect(await introspect(token)).toEqual(INACTIVE);
}

async function expectAccepted(token: string): Promise<void> {
  for (const guard of GUARDS) expect(await guardAnswer(guard, token)).toMatchObject({ guard, status: 200, body: { client_id: owner.id } });
  expect(reached).toEqual([...GUARDS]);
  const res = await request(server.url).post('/introspect').auth(resourceServer.id, resourceServer.secret).type('form').send({ token }).expect(200);
  expect(res.body).toMatchObject({ active: true, client_id: owner.id });
}

describe('the controls: tokens of the real keys pass every guard and introspect as active', () => {
  it('accepts an RS256 and an ES256 token signed by the issuer keys', async () => {
    await expectAccepted(rs256());
    reached = [];
    await expectAccepted(es256());
  });

  it('accepts a token the issuer itself issued', async () => {
    const issued = await request(server.url).post('/token').auth(owner.id, owner.secret).type('form').send({ grant_type: 'client_credentials', scope: 'read' }).expect(200);
    await expectAccepted(issued.body.access_token as string);
  });
});

describe('alg none: RFC 8725 §2.1, §3.1', () => {
  const unsigned = (alg: string, header: Record<string, unknown> = {}) => `${b64({ alg, typ: 'at+jwt', ...header })}.${b64(claims())}.`;

  it.each(['none', 'None', 'NONE'])('refuses alg %s with an empty signature', async (alg) => {
    await expectRefused(unsigned(alg), NOT_JWS);
  });

  it.each(['none', 'None', 'NONE'])('refuses alg %s with a signature copied from a real token, and with the real kid', async (alg) => {
    const realSignature = rs256().split('.')[2] as string;
    await expectRefused(`${unsigned(alg)}${realSignature}`, NO_KEY);
    await expectRefused(`${unsigned(alg, { kid: kids.rsa })}${realSignature}`, NO_KEY);
  });

  it.each([
    ['no alg', { alg: undefined }, 'The token algorithm is not allowed'],
    ['alg as a list', { alg: ['RS256'] }, 'The token algorithm is not allowed'],
    ['alg in lower case', { alg: 'rs256' }, NO_KEY],
    ['alg RS512 for an RS256 key', { alg: 'RS512' }, NO_KEY],
  ])('refuses %s over a signature of the real RSA key', async (_name, header, description) => {
    const input = `${b64({ typ: 'at+jwt', kid: kids.rsa, ...header })}.${b64(claims())}`;
    await expectRefused(`${input}.${signatureOf('RS256', input, keys.rsa)}`, description);
  });
});

describe('algorithm confusion: HS256 keyed with a public key (RFC 8725 §2.1)', () => {
  const secrets: [string, () => string | Buffer][] = [
    ['the RSA public key as SPKI PEM', () => publicPem(keys.rsa)],
    ['the RSA public key as PKCS#1 PEM', () => publicPem(keys.rsa, 'pkcs1')],
    ['the RSA public key as SPKI DER', () => createPublicKey(keys.rsa).export({ format: 'der', type: 'spki' })],
    ['the RSA public key as its published JWK', () => JSON.stringify({ ...publicJwk(keys.rsa), kid: kids.rsa, alg: 'RS256', use: 'sig' })],
    ['the RSA modulus n', () => Buffer.from(String(publicJwk(keys.rsa).n), 'base64url')],
    ['the EC public key as SPKI PEM', () => publicPem(keys.ec)],
    ['the EC public key as its JWK', () => JSON.stringify(publicJwk(keys.ec))],
  ];

  it.each(secrets)('refuses HS256 keyed with %s, with and without the kid of that key', async (_name, secret) => {
    await expectRefused(forge({ alg: 'HS256', typ: 'at+jwt' }, claims(), secret()), NO_KEY);
    await expectRefused(forge({ alg: 'HS256', typ: 'at+jwt', kid: kids.rsa }, claims(), secret()), NO_KEY);
    await expectRefused(forge({ alg: 'HS256', typ: 'at+jwt', kid: kids.ec }, claims(), secret()), NO_KEY);
  });
});

describe('kid: a key is used with its own algorithm only (RFC 8725 §3.1)', () => {
  it('refuses RS256 signed by the real RSA key whose kid names the EC key', async () => {
    await expectRefused(rs256(claims(), { kid: kids.ec }), NO_KEY);
  });

  it('refuses ES256 signed by the real EC key whose kid names the RSA key', async () => {
    await expectRefused(es256(claims(), { kid: kids.rsa }), NO_KEY);
  });

  it('refuses PS256 (the RSA key is pinned to RS256) signed by the real RSA key', async () => {
    await expectRefused(forge({ alg: 'PS256', typ: 'at+jwt', kid: kids.rsa }, claims(), keys.rsa), NO_KEY);
  });
});

describe('jku, x5u, jwk: keys come from configuration only, never from the token (RFC 8725 §3.10)', () => {
  const pointers = () => ({ jku: `${attackerHost.url}/jwks.json`, x5u: `${attackerHost.url}/cert.pem` });
  const attackerJwk = () => ({ ...publicJwk(keys.attackerRsa), alg: 'RS256', use: 'sig' });

  it('counts what reaches the attacker host (the control for every "fetching nothing" below)', async () => {
    await request(attackerHost.url).get('/jwks.json').expect(200);
    expect(attackerHits).toEqual(['/jwks.json']);
    attackerHits = [];
  });

  it.each([
    ['jku to a JWKS that lists the attacker key under the real kid', () => ({ jku: pointers().jku, kid: kids.rsa }), {}],
    ['jku with the attacker kid', () => ({ jku: pointers().jku, kid: kids.attackerRsa }), REMOTE_NO_KEY],
    ['x5u to a certificate', () => ({ x5u: pointers().x5u, kid: undefined }), REMOTE_NO_KEY],
    ['an embedded jwk of the attacker key', () => ({ jwk: attackerJwk(), kid: undefined }), REMOTE_NO_KEY],
    ['jku, x5u and jwk at once', () => ({ ...pointers(), jwk: attackerJwk(), kid: kids.attackerRsa }), REMOTE_NO_KEY],
  ])('refuses a token signed by the attacker key with %s, fetching nothing', async (_name, header, byGuard) => {
    const token = forge({ alg: 'RS256', typ: 'at+jwt', ...header() }, claims(), keys.attackerRsa);
    await expectRefused(token, BAD_SIGNATURE, byGuard);
    expect(attackerHits).toEqual([]);
  });

  it('ignores them on a token signed by the real key: accepted, and nothing fetched', async () => {
    await expectAccepted(rs256(claims(), { ...pointers(), jwk: attackerJwk() }));
    expect(attackerHits).toEqual([]);
  });
});

describe('crit: RFC 7515 §4.1.11 "MUST be rejected" when not understood', () => {
  it.each([[['exp']], [[]], [['b64']], ['exp']])('refuses crit %j on a token signed by the real key', async (crit) => {
    await expectRefused(rs256(claims(), { crit, b64: false }), 'The token uses unsupported critical header parameters');
  });
});

describe('keys the resource server does not hold', () => {
  it.each([
    ['an unknown EC key without kid', () => forge({ alg: 'ES256', typ: 'at+jwt' }, claims(), keys.attackerEc), BAD_SIGNATURE, REMOTE_NO_KEY],
    ['an unknown EC key with its own kid', () => forge({ alg: 'ES256', typ: 'at+jwt', kid: kids.attackerEc }, claims(), keys.attackerEc), BAD_SIGNATURE, REMOTE_NO_KEY],
    ['an unknown RSA key claiming the real kid', () => forge({ alg: 'RS256', typ: 'at+jwt', kid: kids.rsa }, claims(), keys.attackerRsa), BAD_SIGNATURE, {}],
    ['an unknown Ed25519 key', () => forge({ alg: 'EdDSA', typ: 'at+jwt' }, claims(), keys.attackerEd), NO_KEY, {}],
    ['an HS256 secret the server never had', () => forge({ alg: 'HS256', typ: 'at+jwt' }, claims(), 'an-attacker-secret-of-more-than-32-bytes'), NO_KEY, {}],
  ])('refuses a token signed by %s', async (_name, token, description, byGuard) => {
    await expectRefused(token(), description, byGuard);
  });
});

describe('integrity: a valid signature over other bytes (RFC 7515 §5.2)', () => {
  const splice = (token: string, part: 0 | 1, value: string) => token.split('.').map((segment, i) => (i === part ? value : segment)).join('.');

  it.each([
    ['a wider scope', () => splice(rs256(), 1, b64(claims({ scope: 'read write admin' })))],
    ['another client', () => splice(rs256(), 1, b64(claims({ client_id: resourceServer.id, sub: resourceServer.id })))],
    ['a later exp', () => splice(es256(), 1, b64(claims({ exp: now() + 86_400 })))],
    ['the same claims with a space added', () => {
      const token = rs256();
      return splice(token, 1, b64(`${Buffer.from(token.split('.')[1] as string, 'base64url').toString()} `));
    }],
    ['the payload of an ES256 token under an RS256 signature', () => `${rs256().split('.')[0]}.${es256().split('.')[1]}.${rs256().split('.')[2]}`],
  ])('refuses %s', async (_name, token) => {
    await expectRefused(token(), BAD_SIGNATURE);
  });

  it('refuses a header re-encoded without its kid (at the remote guard: no key, as its keys are named)', async () => {
    await expectRefused(splice(rs256(), 0, b64({ alg: 'RS256', typ: 'at+jwt' })), BAD_SIGNATURE, REMOTE_NO_KEY);
  });
});

describe('times: exp, nbf and iat (RFC 7519 §4.1.4–§4.1.6, RFC 9068 §4)', () => {
  const withExp = (exp: string) => JSON.stringify(claims()).replace(/"exp":\d+/, `"exp":${exp}`);

  it.each([
    ['no exp', () => rs256(claims({ exp: undefined })), 'The token has no valid exp claim'],
    ['exp as a string', () => rs256(claims({ exp: String(now() + 600) })), 'The token has no valid exp claim'],
    ['exp 1e400, which JSON reads as Infinity', () => rs256(withExp('1e400')), 'The token has no valid exp claim'],
    ['exp a minute ago, beyond the 5 s tolerance', () => rs256(claims({ exp: now() - 60 })), 'The token has expired'],
    ['nbf a minute ahead', () => rs256(claims({ nbf: now() + 60 })), 'The token is not valid yet'],
    ['nbf as a string', () => rs256(claims({ nbf: String(now()) })), 'The token is not valid yet'],
    ['iat a minute ahead', () => rs256(claims({ iat: now() + 60 })), 'The token was issued in the future'],
    ['iat a year ahead with exp after it', () => rs256(claims({ iat: now() + 31_536_000, exp: now() + 31_536_600 })), 'The token was issued in the future'],
    ['no iat (strict)', () => rs256(claims({ iat: undefined })), 'The token has no valid iat claim'],
  ])('refuses %s', async (_name, token, description) => {
    await expectRefused(token(), description);
  });

  it.each([
    ['exp in the year 9999', 253_402_300_799],
    ['exp in milliseconds', Date.now() + 600_000],
    ['exp a day and an hour ahead', 0],
  ])('refuses a token that lives longer than policy allows: %s', async (_name, exp) => {
    await expectRefused(rs256(claims({ exp: exp === 0 ? now() + 90_000 : exp })), 'The token lifetime exceeds the policy');
  });
});

describe('audience: RFC 9068 §4 "MUST validate that the aud claim contains a resource indicator value"', () => {
  const audiences: [string, unknown][] = [
    ['no aud', undefined],
    ['another audience', 'https://other.example.com'],
    ['a suffix lookalike', 'https://api.example.com.evil'],
    ['a trailing slash', 'https://api.example.com/'],
    ['another case', 'https://API.example.com'],
    ['an explicit default port', 'https://api.example.com:443'],
    ['a trailing space', 'https://api.example.com '],
    ['a list of lookalikes only', ['https://api.example.com.evil', 'https://api.example.com/', 'https://api.example.com/x', 'http://api.example.com']],
    ['ours nested in a list', [[AUDIENCE]]],
    ['ours as an object member', { aud: AUDIENCE }],
    ['an empty list', []],
  ];

  it.each(audiences)('refuses %s at every guard', async (_name, aud) => {
    const token = rs256(claims({ aud }));
    for (const guard of GUARDS) expect(await guardAnswer(guard, token)).toEqual(refusal(guard, 'The token audience is not this resource'));
    expect(reached).toEqual([]);
  });

  // README: the issuer checks its own tokens "whatever their audience"; the resource server that
  // introspects compares aud itself, so introspection reports it exactly as signed.
  it.each(audiences.filter(([, aud]) => typeof aud === 'string' || (Array.isArray(aud) && aud.length > 0 && aud.every((v) => typeof v === 'string'))))(
    'reports %s verbatim at introspection, for the resource server to compare',
    async (_name, aud) => {
      const token = rs256(claims({ aud }));
      const res = await request(server.url).post('/introspect').auth(resourceServer.id, resourceServer.secret).type('form').send({ token }).expect(200);
      expect(res.body).toMatchObject({ active: true, client_id: owner.id });
      expect(res.body.aud).toEqual(aud);
    },
  );

  it.each([
    ['no aud', undefined],
    ['an empty list', []],
    ['an object', { aud: AUDIENCE }],
    ['a nested list (deep ones overflowed the stack when echoed)', [[[AUDIENCE]]]],
  ])('answers { active: false } at introspection for %s: RFC 9068 §2.2 requires aud', async (_name, aud) => {
    expect(await introspect(rs256(claims({ aud })))).toEqual(INACTIVE);
  });
});

describe('issuer: RFC 9068 §4 "MUST exactly match the issuer identifier"', () => {
  it.each([
    ['no iss', undefined],
    ['a trailing slash', `${ISSUER}/`],
    ['a suffix lookalike', 'https://auth.example.com.evil'],
    ['a subdomain of ours', 'https://evil.auth.example.com'],
    ['another case', 'https://AUTH.example.com'],
    ['an explicit default port', 'https://auth.example.com:443'],
    ['http for https', 'http://auth.example.com'],
    ['a leading space', ` ${ISSUER}`],
    ['a trailing NUL', `${ISSUER}\u0000`],
    ['a Cyrillic a (homograph)', 'https://auth.ex\u0430mple.com'],
    ['a list holding it', [ISSUER]],
  ])('refuses %s', async (_name, iss) => {
    await expectRefused(rs256(claims({ iss })), 'The token issuer is not trusted');
  });
});

describe('typ: RFC 9068 §4 and RFC 8725 §3.11, strict by default', () => {
  it.each([['JWT'], ['jwt'], [undefined], ['application/jwt'], ['at+jwt '], ['at+jwt;x'], ['xat+jwt'], ['dpop+jwt'], ['client-authentication+jwt'], [['at+jwt']], ['']])(
    'refuses typ %j',
    async (typ) => {
      await expectRefused(rs256(claims(), { typ }), 'The token type is not accepted');
    },
  );
});

describe('size and shape', () => {
  const nested = (depth: number, open: string, close: string) => `${open.repeat(depth)}${close.repeat(depth)}`;

  it('answers a 64 KB token in the Authorization header with 431 from Node, never running a guard', async () => {
    const token = forge({ alg: 'RS256', typ: 'at+jwt' }, claims({ pad: 'x'.repeat(64 * 1024) }), keys.attackerRsa);
    for (const guard of GUARDS) expect((await guardAnswer(guard, token)).status).toBe(431);
    expect(reached).toEqual([]);
  });

  it('refuses a 64 KB token sent in the form body, and says inactive at introspection', async () => {
    const token = forge({ alg: 'RS256', typ: 'at+jwt', kid: kids.rsa }, claims({ pad: 'x'.repeat(64 * 1024) }), keys.attackerRsa);
    const res = await request(server.url).post('/body/data').type('form').send({ access_token: token });
    expect({ status: res.status, challenge: res.headers['www-authenticate'], body: res.body }).toEqual({
      status: 401,
      challenge: `Bearer ${REALM}, error="invalid_token", error_description="The token signature is invalid"`,
      body: { error: 'invalid_token', error_description: 'The token signature is invalid' },
    });
    expect(reached).toEqual([]);
    expect(await introspect(token)).toEqual(INACTIVE);
  });

  it('answers 413 to a 64 KB token at introspection with the default bodyLimit', async () => {
    const token = forge({ alg: 'RS256', typ: 'at+jwt' }, claims({ pad: 'x'.repeat(64 * 1024) }), keys.attackerRsa);
    expect(await introspect(token, '/introspect-default-limit')).toEqual({
      status: 413,
      text: '{"error":"invalid_request","error_description":"The request body is too large"}',
    });
  });

  it.each([
    ['one 17 KB header', { 'X-Padding': 'x'.repeat(17 * 1024) }],
    ['twenty 1 KB headers', Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`X-Padding-${i}`, 'x'.repeat(1024)]))],
  ])('answers %s beside a valid token with 431 from Node, at the guard and at introspection', async (_name, headers) => {
    const token = rs256();
    for (const guard of GUARDS) {
      expect((await request(server.url).get(`/${guard}/data`).set('Authorization', `Bearer ${token}`).set(headers)).status).toBe(431);
    }
    expect(reached).toEqual([]);
    const res = await request(server.url).post('/introspect').auth(resourceServer.id, resourceServer.secret).set(headers).type('form').send({ token });
    expect(res.status).toBe(431);
  });

  it.each([
    ['a payload that is not JSON', () => rs256('not json')],
    ['a payload that is JSON null', () => rs256('null')],
    ['a payload that is a JSON string', () => rs256('"a string"')],
    ['a payload that is a JSON array of the claims', () => rs256([claims()])],
    ['a payload that is not UTF-8', () => `${b64({ alg: 'RS256', typ: 'at+jwt' })}.${Buffer.from([0x7b, 0xff, 0xfe, 0x7d]).toString('base64url')}.c2ln`],
    ['a header that is not JSON', () => `${b64('{"alg":"RS256",')}.${b64(claims())}.c2ln`],
    ['10,000 unclosed [ as the payload', () => rs256('['.repeat(10_000))],
    ['10,000 unclosed { as the header', () => `${b64('{"a":'.repeat(2_000))}.${b64(claims())}.c2ln`],
    ['two parts', () => rs256().split('.').slice(0, 2).join('.')],
    ['four parts', () => `${rs256()}.c2ln`],
    ['an empty payload', () => { const [h, , s] = rs256().split('.'); return `${h}..${s}`; }],
  ])('refuses %s as not a JWS', async (_name, token) => {
    await expectRefused(token(), NOT_JWS);
  });

  it('refuses 10,000 closed levels of [ as the payload, sent in the body (too large for a header)', async () => {
    const token = rs256(nested(10_000, '[', ']'));
    const res = await request(server.url).post('/body/data').type('form').send({ access_token: token });
    expect([res.status, res.body]).toEqual([401, { error: 'invalid_token', error_description: NOT_JWS }]);
    expect(reached).toEqual([]);
    expect(await introspect(token)).toEqual(INACTIVE);
  });

  it('refuses a scope claim nested 10,000 levels deep under the real key', async () => {
    const token = rs256(`${JSON.stringify(claims({ scope: undefined })).slice(0, -1)},"scope":${nested(10_000, '[', ']')}}`);
    const res = await request(server.url).post('/body/data').type('form').send({ access_token: token });
    expect([res.status, res.body]).toEqual([401, { error: 'invalid_token', error_description: 'The token scope claim is malformed' }]);
    expect(reached).toEqual([]);
  });
});

describe('a token sent more than one way: RFC 6750 §2, §3.1 invalid_request', () => {
  const twice = {
    status: 400,
    challenge: `Bearer ${REALM}, error="invalid_request", error_description="The access token was sent in more than one way"`,
    body: { error: 'invalid_request', error_description: 'The access token was sent in more than one way' },
  };

  it.each([
    ['the same valid token', () => [rs256(), undefined] as const],
    ['a valid token in the header and a forged one in the query', () => [rs256(), forge({ alg: 'HS256', typ: 'at+jwt' }, claims(), publicPem(keys.rsa))] as const],
  ])('refuses %s in the header and the query (the query is not even enabled)', async (_name, make) => {
    const [header, query = header] = make();
    for (const guard of GUARDS) {
      const res = await request(server.url).get(`/${guard}/data`).query({ access_token: query }).set('Authorization', `Bearer ${header}`);
      expect({ status: res.status, challenge: res.headers['www-authenticate'], body: res.body }).toEqual(twice);
    }
    expect(reached).toEqual([]);
  });

  it('refuses a token in the header and the form body', async () => {
    const token = rs256();
    const res = await request(server.url).post('/body/data').set('Authorization', `Bearer ${token}`).type('form').send({ access_token: token });
    expect({ status: res.status, challenge: res.headers['www-authenticate'], body: res.body }).toEqual(twice);
    expect(reached).toEqual([]);
  });

  it('does not read a token from the query where only the header is enabled', async () => {
    const res = await request(server.url).get('/local/data').query({ access_token: rs256() });
    expect([res.status, res.headers['www-authenticate'], res.body]).toEqual([401, `Bearer ${REALM}`, { error: 'invalid_token', error_description: 'An access token is required' }]);
    expect(reached).toEqual([]);
  });
});
