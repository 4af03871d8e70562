// private_key_jwt client authentication: RFC 7523 §2.2 and §3, with assertions made by jose.

import { createPublicKey, generateKeyPairSync, randomUUID, type KeyObject } from 'node:crypto';
import express from 'express';
import request from 'supertest';
import { MemoryReplayCache, type ClientRecord } from 'express-client-credentials';
import { signJws, type JsonObject } from '../../lib/core/jws.js';
import { resolveSigningKey, type AsymmetricAlgorithm } from '../../lib/core/signing-keys.js';
import { b64, decodePayload, hs256, ISSUER, SECRET, tokenServer } from '../support/fixtures.js';
import { runNodeScript } from '../support/node-script.js';
import { close, serve, type Listening } from '../support/servers.js';

const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const TOKEN_URL = `${ISSUER}/token`;
const now = () => Math.floor(Date.now() / 1000);

interface KeyClient {
  readonly id: string;
  readonly privateKey: KeyObject;
  readonly kid: string;
  readonly alg: AsymmetricAlgorithm;
  readonly record: ClientRecord;
}

function keyClient(alg: 'ES256' | 'RS256' = 'ES256', overrides: Partial<ClientRecord> = {}): KeyClient {
  const { privateKey } = alg === 'ES256' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : generateKeyPairSync('rsa', { modulusLength: 2048 });
  const id = `svc-${randomUUID().slice(0, 8)}`;
  const kid = `${id}-key`;
  const jwk = { ...createPublicKey(privateKey).export({ format: 'jwk' }), kid, alg, use: 'sig' };
  return { id, privateKey, kid, alg, record: { client_id: id, token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [jwk] }, scope: 'read', ...overrides } };
}

const claimsFor = (client: KeyClient, overrides: JsonObject = {}): JsonObject =>
  JSON.parse(JSON.stringify({ iss: client.id, sub: client.id, aud: TOKEN_URL, iat: now(), exp: now() + 60, jti: randomUUID(), ...overrides })) as JsonObject;

/** An assertion signed by our own JWS code, for the many negative cases. */
function assertion(client: KeyClient, overrides: JsonObject = {}, typ = 'JWT'): string {
  return signJws(claimsFor(client, overrides), resolveSigningKey({ privateKey: client.privateKey, alg: client.alg, kid: client.kid }), typ);
}

/** An assertion made by jose, as a client would make it. */
async function joseAssertion(client: KeyClient, overrides: JsonObject = {}): Promise<string> {
  const jwk = { ...client.privateKey.export({ format: 'jwk' }) };
  const input = { jwk, alg: client.alg, header: { kid: client.kid, typ: 'JWT' }, payload: claimsFor(client, overrides) };
  return runNodeScript('jose-sign.mjs', [], { INTEROP_SIGN: JSON.stringify(input) });
}

const tokenRequest = (app: express.Express, jwt: string, extra: Record<string, string> = {}) =>
  request(app).post('/token').type('form').send({ grant_type: 'client_credentials', client_assertion_type: JWT_BEARER, client_assertion: jwt, ...extra });

function expectInvalidClient(res: request.Response): void {
  expect([res.status, res.body.error]).toEqual([401, 'invalid_client']);
}

describe('private_key_jwt: RFC 7523 §2.2 client authentication', () => {
  const es = keyClient('ES256');
  const rs = keyClient('RS256');
  // Many refusals for one client follow: the failure lock (tested elsewhere) would step in.
  const { app } = tokenServer([], { clients: [es.record, rs.record], rateLimit: false });

  it.each([
    ['ES256', es],
    ['RS256', rs],
  ])('issues a token to a client authenticating with an %s assertion made by jose', async (_alg, client) => {
    const res = await tokenRequest(app, await joseAssertion(client)).expect(200);
    expect(decodePayload(res.body.access_token)).toMatchObject({ client_id: client.id, sub: client.id, scope: 'read' });
  });

  it('accepts the issuer identifier as aud, alone or in a list (§3 item 3)', async () => {
    await tokenRequest(app, assertion(es, { aud: ISSUER })).expect(200);
    await tokenRequest(app, assertion(es, { aud: ['https://other.example', TOKEN_URL] })).expect(200);
  });

  it('accepts a client_id parameter that names the same client', async () => {
    await tokenRequest(app, assertion(es), { client_id: es.id }).expect(200);
  });

  it('refuses a replayed jti (§3 item 7)', async () => {
    const once = assertion(es);
    await tokenRequest(app, once).expect(200);
    expectInvalidClient(await tokenRequest(app, once));
  });

  it.each([
    ['aud naming another server', { aud: 'https://elsewhere.example/token' }],
    ['no aud', { aud: undefined }],
    ['an expired exp', { exp: now() - 60 }],
    ['no exp', { exp: undefined }],
    ['an exp too far ahead (over assertionMaxLifetime)', { exp: now() + 3600 }],
    ['nbf in the future', { nbf: now() + 120 }],
    ['iat in the future', { iat: now() + 120 }],
    ['no jti', { jti: undefined }],
    ['iss other than sub', { iss: 'someone-else' }],
  ])('answers invalid_client to an assertion with %s', async (_name, overrides) => {
    expectInvalidClient(await tokenRequest(app, assertion(es, overrides as JsonObject)));
  });

  it('answers invalid_client to an assertion signed by a key the client did not register', async () => {
    const impostor = { ...keyClient('ES256'), id: es.id, kid: es.kid };
    expectInvalidClient(await tokenRequest(app, assertion(impostor)));
  });

  it('answers invalid_client to an HS256 assertion made with a guessable secret, and to alg none', async () => {
    expectInvalidClient(await tokenRequest(app, hs256(claimsFor(es), { alg: 'HS256', typ: 'JWT', kid: es.kid }, SECRET)));
    expectInvalidClient(await tokenRequest(app, `${b64({ alg: 'none' })}.${b64(claimsFor(es))}.`));
  });

  it('answers invalid_client to an access token passed off as an assertion (typ at+jwt)', async () => {
    expectInvalidClient(await tokenRequest(app, assertion(es, {}, 'at+jwt')));
  });

  it('answers invalid_client to another assertion type, or a client_id that does not match', async () => {
    expectInvalidClient(await tokenRequest(app, assertion(es), { client_assertion_type: 'urn:example:saml' }));
    expectInvalidClient(await tokenRequest(app, assertion(es), { client_id: rs.id }));
  });

  it('answers invalid_request to an assertion sent with Basic credentials too (two methods)', async () => {
    const res = await tokenRequest(app, assertion(es)).auth(es.id, 'x');
    expect([res.status, res.body.error]).toEqual([400, 'invalid_request']);
  });

  it('answers invalid_client to a secret client presenting an assertion, and to a key client presenting a secret', async () => {
    const { app: mixed } = tokenServer([], { clients: [{ ...es.record, token_endpoint_auth_method: 'client_secret_basic', jwks: undefined, client_secret_hash: '$2b$04$' + 'a'.repeat(53) }] });
    expectInvalidClient(await tokenRequest(mixed, assertion(es)));
    expectInvalidClient(await request(app).post('/token').auth(es.id, 'anything').type('form').send({ grant_type: 'client_credentials' }));
  });

  it('answers 503, not invalid_client, when the replay cache is full', async () => {
    const { app: small } = tokenServer([], { clients: [es.record], replayCache: new MemoryReplayCache(1), onInternalError: () => undefined });
    await tokenRequest(small, assertion(es)).expect(200);
    const res = await tokenRequest(small, assertion(es));
    expect([res.status, res.body.error]).toEqual([503, 'temporarily_unavailable']);
  });

  it("fetches the client's keys from its jwks_uri", async () => {
    const remote = keyClient('ES256');
    let keySet: Listening | undefined;
    try {
      keySet = await serve(() => express().get('/jwks', (_req, res) => { res.json(remote.record.jwks); }));
      const { app: withUri } = tokenServer([], { clients: [{ ...remote.record, jwks: undefined, jwks_uri: `${keySet.url}/jwks` }] });
      await tokenRequest(withUri, assertion(remote)).expect(200);
    } finally {
      await close(keySet);
    }
  });

  it('lists private_key_jwt and its algorithms in the metadata', async () => {
    const { body } = await request(app).get('/.well-known/oauth-authorization-server');
    expect(body.token_endpoint_auth_methods_supported).toContain('private_key_jwt');
    expect(body.token_endpoint_auth_signing_alg_values_supported).toEqual(['RS256', 'PS256', 'ES256', 'EdDSA']);
  });

  it('refuses records that mix up the methods, at construction', () => {
    expect(() => tokenServer([], { clients: [{ ...es.record, jwks: undefined }] })).toThrow(/exactly one of `jwks`/);
    expect(() => tokenServer([], { clients: [{ ...es.record, jwks_uri: 'https://x.example/jwks' }] })).toThrow(/exactly one of `jwks`/);
  });
});
