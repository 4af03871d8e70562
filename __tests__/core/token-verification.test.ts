import { constants, createPublicKey, sign as cryptoSign, verify as cryptoVerify } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { signJws, type JsonObject } from '../../lib/core/jws.js';
import { resolveSigningKey, resolveVerificationKey, type SigningKey, type VerificationKey } from '../../lib/core/signing-keys.js';
import { verifyAccessToken, type VerifierConfig } from '../../lib/core/token-verification.js';
import { AUDIENCE, b64, hs256, ISSUER, keyPairs, SECRET } from '../support/fixtures.js';

const NOW = 1_800_000_000;
const claims = (overrides: JsonObject = {}): JsonObject => ({
  iss: ISSUER,
  sub: 'reports',
  client_id: 'reports',
  aud: AUDIENCE,
  iat: NOW,
  exp: NOW + 600,
  jti: 'jti-1',
  scope: 'read write',
  ...overrides,
});

const rsa = resolveSigningKey({ privateKey: keyPairs.rsa() });
const ec = resolveSigningKey({ privateKey: keyPairs.ec() });
const ed = resolveSigningKey({ privateKey: keyPairs.ed25519() });
const hs = resolveSigningKey({ secret: SECRET });

function config(keys: readonly VerificationKey[], overrides: Partial<VerifierConfig> = {}): VerifierConfig {
  return { issuer: ISSUER, audiences: [AUDIENCE], keys: () => keys, clockTolerance: 5, strict: true, ...overrides };
}
const verify = (token: string, keys: readonly VerificationKey[] = [hs], overrides: Partial<VerifierConfig> = {}) =>
  verifyAccessToken(token, config(keys, overrides), NOW);
const sign = (payload: JsonObject = claims(), key: SigningKey = hs, typ = 'at+jwt') =>
  key === hs ? hs256(payload, { alg: 'HS256', typ }) : signJws(payload, key, typ);
const rejection = (description: string) => expect.objectContaining({ error: 'invalid_token', status: 401, message: description });

describe('validating JWT access tokens: RFC 9068 §4', () => {
  it.each([
    ['HS256', hs],
    ['RS256', rsa],
    ['ES256', ec],
    ['EdDSA', ed],
  ])('accepts a valid %s token and reports client, scopes and claims', (_alg, key) => {
    const token = sign(claims(), key);
    expect(verify(token, [key])).toEqual({ clientId: 'reports', scopes: ['read', 'write'], claims: claims(), token });
  });

  it('accepts PS256 when the key is pinned to it', () => {
    const ps = resolveSigningKey({ privateKey: keyPairs.rsa(), alg: 'PS256' });
    expect(verify(sign(claims(), ps), [ps]).clientId).toBe('reports');
  });

  it.each([
    ['typ JWT in strict mode', sign(claims(), hs, 'JWT'), 'The token type is not accepted'],
    ['the wrong issuer', sign(claims({ iss: `${ISSUER}/` })), 'The token issuer is not trusted'],
    ['an issuer lookalike', sign(claims({ iss: ISSUER.replace('127.0.0.1', '127.0.0.1.evil') })), 'The token issuer is not trusted'],
    ['another audience', sign(claims({ aud: 'https://other.example' })), 'The token audience is not this resource'],
    ['an audience list without ours', sign(claims({ aud: [`${AUDIENCE}x`, 'https://other.example'] })), 'The token audience is not this resource'],
    ['no audience', sign(claims({ aud: undefined })), 'The token audience is not this resource'],
    ['an expired exp', sign(claims({ exp: NOW - 6 })), 'The token has expired'],
    ['no exp', sign(claims({ exp: undefined })), 'The token has no valid exp claim'],
    ['a string exp', sign(claims({ exp: String(NOW + 60) })), 'The token has no valid exp claim'],
    ['nbf in the future beyond the tolerance', sign(claims({ nbf: NOW + 6 })), 'The token is not valid yet'],
    ['iat in the future beyond the tolerance', sign(claims({ iat: NOW + 6 })), 'The token was issued in the future'],
    ['no iat in strict mode', sign(claims({ iat: undefined })), 'The token has no valid iat claim'],
    ['no client_id in strict mode', sign(claims({ client_id: undefined })), 'The token has no client_id claim'],
    ['no jti in strict mode', sign(claims({ jti: undefined })), 'The token has no jti claim'],
    ['no sub in strict mode', sign(claims({ sub: undefined })), 'The token has no sub claim'],
    ['a scope of the wrong shape', sign(claims({ scope: { read: true } })), 'The token scope claim is malformed'],
    ['a scope string with bad characters', sign(claims({ scope: 'read  write' })), 'The token scope claim is malformed'],
    ['a scp of the wrong shape', sign(claims({ scope: undefined, scp: [1, 2] })), 'The token scope claim is malformed'],
    ['three parts that are not base64url', 'a.b!.c', 'The token is not a JWS'],
    ['two parts', 'a.b', 'The token is not a JWS'],
    ['a payload that is not JSON', `${b64({ alg: 'HS256', typ: 'at+jwt' })}.${b64('not json')}.c2ln`, 'The token is not a JWS'],
    ['a payload that is a JSON array', `${b64({ alg: 'HS256', typ: 'at+jwt' })}.${b64([1])}.c2ln`, 'The token is not a JWS'],
  ])('answers invalid_token for %s', (_name, token, description) => {
    expect(() => verify(token)).toThrow(rejection(description));
  });

  it('tolerates clock skew within clockTolerance', () => {
    expect(verify(sign(claims({ exp: NOW - 4, nbf: NOW + 4, iat: NOW + 4 }))).clientId).toBe('reports');
    expect(() => verify(sign(claims({ exp: NOW - 4 })), [hs], { clockTolerance: 0 })).toThrow(rejection('The token has expired'));
  });

  it('accepts an audience list that contains ours', () => {
    expect(verify(sign(claims({ aud: ['https://other.example', AUDIENCE] }))).clientId).toBe('reports');
  });

  it('reads scp as an array, as Hydra issues it, or a string, as Azure does', () => {
    expect(verify(sign(claims({ scope: undefined, scp: ['read', 'admin'] }))).scopes).toEqual(['read', 'admin']);
    expect(verify(sign(claims({ scope: undefined, scp: 'read admin' }))).scopes).toEqual(['read', 'admin']);
    expect(verify(sign(claims({ scope: ['a', 'b'] }))).scopes).toEqual(['a', 'b']);
    expect(verify(sign(claims({ scope: undefined }))).scopes).toEqual([]);
  });

  it('accepts typ JWT and legacy claims when strict is off, taking the client from azp', () => {
    const legacy = sign(claims({ client_id: undefined, jti: undefined, iat: undefined, azp: 'legacy-client' }), hs, 'JWT');
    expect(verify(legacy, [hs], { strict: false }).clientId).toBe('legacy-client');
    expect(verify(sign(claims(), hs, 'application/AT+JWT')).clientId).toBe('reports');
  });
});

describe('JWS algorithm rules: RFC 8725 §2.1 and §3.1', () => {
  const unsigned = (alg: string) => `${b64({ alg, typ: 'at+jwt' })}.${b64(claims())}.`;

  it.each(['none', 'None', 'NONE'])('refuses alg %s', (alg) => {
    expect(() => verify(unsigned(alg), [hs, rsa])).toThrow(rejection('The token is not a JWS'));
    expect(() => verify(`${unsigned(alg)}c2ln`, [hs, rsa])).toThrow(rejection('The token is not signed with an accepted key and algorithm'));
  });

  it('refuses an HS256 token signed with the RSA public key (algorithm confusion)', () => {
    const publicPem = rsa.key.export({ format: 'pem', type: 'spki' }).toString();
    const forged = hs256(claims(), { alg: 'HS256', typ: 'at+jwt', kid: rsa.kid }, publicPem);
    expect(() => verify(forged, [rsa])).toThrow(rejection('The token is not signed with an accepted key and algorithm'));
  });

  it('refuses a token whose kid names a key of another type', () => {
    const forged = hs256(claims(), { alg: 'HS256', typ: 'at+jwt', kid: rsa.kid });
    expect(() => verify(forged, [rsa])).toThrow(rejection('The token is not signed with an accepted key and algorithm'));
  });

  it('refuses a token signed by an unknown key', () => {
    const stranger = resolveSigningKey({ privateKey: keyPairs.ec() });
    expect(() => verify(sign(claims(), stranger), [ec])).toThrow(rejection('The token signature is invalid'));
  });

  it('refuses a valid signature over a modified payload', () => {
    const [header, , signature] = sign(claims(), ec).split('.');
    const tampered = `${header}.${b64(claims({ scope: 'read write admin' }))}.${signature}`;
    expect(() => verify(tampered, [ec])).toThrow(rejection('The token signature is invalid'));
  });

  it('refuses crit header members it does not understand', () => {
    const token = hs256(claims(), { alg: 'HS256', typ: 'at+jwt', crit: ['exp'] });
    expect(() => verify(token)).toThrow(rejection('The token uses unsupported critical header parameters'));
  });

  it('ignores jku, x5u and jwk header members: keys come only from configuration', () => {
    const attacker = resolveSigningKey({ privateKey: keyPairs.rsa() });
    const header = { alg: 'RS256', typ: 'at+jwt', kid: rsa.kid, jku: 'http://127.0.0.1:9/jwks', x5u: 'http://127.0.0.1:9/x', jwk: attacker.publicJwk };
    const token = jwt.sign(claims(), attacker.signingKey, { algorithm: 'RS256', header: header as jwt.JwtHeader });
    expect(() => verify(token, [rsa])).toThrow(rejection('The token signature is invalid'));
  });

  it('RFC 7518 §3.4: refuses an ES256 signature in DER form, as R and S must be 32 bytes each side by side', () => {
    const token = sign(claims(), ec);
    const input = token.slice(0, token.lastIndexOf('.'));
    const der = cryptoSign('sha256', Buffer.from(input), ec.signingKey); // DER is node's default encoding
    expect(cryptoVerify('sha256', Buffer.from(input), ec.key, der)).toBe(true);
    expect(() => verify(`${input}.${der.toString('base64url')}`, [ec])).toThrow(rejection('The token signature is invalid'));
  });

  it.each([
    ['HS256', hs],
    ['RS256', rsa],
    ['ES256', ec],
    ['EdDSA', ed],
  ])('refuses a %s signature that is truncated, extended or empty', (_alg, key) => {
    const token = sign(claims(), key);
    const input = token.slice(0, token.lastIndexOf('.'));
    const signature = Buffer.from(token.slice(token.lastIndexOf('.') + 1), 'base64url');
    for (const altered of [signature.subarray(1), Buffer.concat([signature, Buffer.from([0])])]) {
      expect(() => verify(`${input}.${altered.toString('base64url')}`, [key])).toThrow(rejection('The token signature is invalid'));
    }
    expect(() => verify(`${input}.`, [key])).toThrow(rejection('The token is not a JWS'));
  });

  it('RFC 7518 §3.5: refuses a PS256 signature made with a salt shorter than the hash', () => {
    const ps = resolveSigningKey({ privateKey: keyPairs.rsa(), alg: 'PS256' });
    const token = sign(claims(), ps);
    const input = token.slice(0, token.lastIndexOf('.'));
    const unsalted = cryptoSign('sha256', Buffer.from(input), { key: ps.signingKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 0 });
    expect(() => verify(`${input}.${unsalted.toString('base64url')}`, [ps])).toThrow(rejection('The token signature is invalid'));
  });

  it('tries keys whose kid we derived when the token names another kid', () => {
    const named = resolveSigningKey({ privateKey: ec.signingKey, kid: 'issuer-chose-this' });
    const configured = resolveVerificationKey(createPublicKey(ec.signingKey));
    expect(verify(sign(claims(), named), [configured]).clientId).toBe('reports');
    const explicit = resolveVerificationKey({ publicKey: createPublicKey(ec.signingKey), kid: 'other' });
    expect(() => verify(sign(claims(), named), [explicit])).toThrow(rejection('The token is not signed with an accepted key and algorithm'));
  });
});
