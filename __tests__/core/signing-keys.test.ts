import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { ConfigurationError } from '../../lib/core/errors.js';
import { jwkThumbprint, resolveSigningKey, resolveVerificationKey } from '../../lib/core/signing-keys.js';
import { keyPairs, SECRET } from '../support/fixtures.js';

describe('JWK thumbprints: RFC 7638', () => {
  it('computes the thumbprint of the RSA key in RFC 7638 §3.1', () => {
    const key = createPublicKey({
      format: 'jwk',
      key: {
        kty: 'RSA',
        e: 'AQAB',
        n:
          '0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMs' +
          'tn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5' +
          'hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw',
      },
    });
    expect(jwkThumbprint(key)).toBe('NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs');
  });

  it('names a key by its thumbprint when no kid is given', () => {
    const key = resolveSigningKey({ privateKey: keyPairs.ec() });
    expect(key.kid).toBe(jwkThumbprint(key.key));
    expect(key.kidGiven).toBe(false);
    expect(resolveSigningKey({ privateKey: keyPairs.ec(), kid: 'k1' }).kid).toBe('k1');
  });
});

describe('algorithm pinning: RFC 8725 §3.1, one algorithm per key', () => {
  it.each([
    ['RSA', keyPairs.rsa, 'RS256'],
    ['EC P-256', keyPairs.ec, 'ES256'],
    ['Ed25519', keyPairs.ed25519, 'EdDSA'],
  ])('infers the algorithm of a %s key', (_name, make, alg) => {
    expect(resolveSigningKey({ privateKey: make() }).alg).toBe(alg);
  });

  it('accepts PS256 for an RSA key when asked', () => {
    expect(resolveSigningKey({ privateKey: keyPairs.rsa(), alg: 'PS256' }).alg).toBe('PS256');
  });

  it('reads PEM and JWK private keys', () => {
    const key = keyPairs.ec();
    expect(resolveSigningKey({ privateKey: key.export({ format: 'pem', type: 'pkcs8' }).toString() }).alg).toBe('ES256');
    expect(resolveSigningKey({ privateKey: key.export({ format: 'jwk' }) }).alg).toBe('ES256');
  });

  it('pins HS256 to a shared secret', () => {
    expect(resolveSigningKey({ secret: SECRET }).alg).toBe('HS256');
  });

  it.each([
    ['a secret shorter than 32 bytes (RFC 7518 §3.2)', { secret: 'too-short' }, /at least 32 bytes/],
    ['an RSA key under 2048 bits (RFC 7518 §3.3)', { privateKey: generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey }, /at least 2048 bits/],
    ['an EC key on another curve', { privateKey: generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey }, /RSA, EC P-256 or Ed25519/],
    ['an algorithm that does not fit the key', { privateKey: keyPairs.ec(), alg: 'RS256' as const }, /does not fit/],
    ['a public key where a private one is needed', { privateKey: createPublicKey(keyPairs.ec()) }, /must be a private key/],
    ['text that is no key', { privateKey: 'not a pem' }, /not a PEM or JWK/],
  ])('refuses %s at construction', (_name, input, message) => {
    expect(() => resolveSigningKey(input)).toThrow(ConfigurationError);
    expect(() => resolveSigningKey(input)).toThrow(message);
  });

  it('never publishes a shared secret, and publishes only public members of a private key', () => {
    expect(resolveSigningKey({ secret: SECRET }).publicJwk).toBeUndefined();
    const jwk = resolveSigningKey({ privateKey: keyPairs.rsa() }).publicJwk;
    expect(Object.keys(jwk ?? {}).sort()).toEqual(['alg', 'e', 'kid', 'kty', 'n', 'use']);
  });

  it('verifies with the public half of a private key, and refuses a secret as a public key', () => {
    const privateKey = keyPairs.ed25519();
    expect(resolveVerificationKey(privateKey).key.type).toBe('public');
    expect(resolveVerificationKey({ publicKey: createPublicKey(privateKey), kid: 'x' }).kid).toBe('x');
    expect(() => resolveVerificationKey(Buffer.from(SECRET) as never)).toThrow(ConfigurationError);
  });

  it('takes alg and kid from a public JWK', () => {
    const jwk = { ...createPublicKey(keyPairs.rsa()).export({ format: 'jwk' }), alg: 'PS256', kid: 'rsa-1' };
    const key = resolveVerificationKey(jwk);
    expect([key.alg, key.kid, key.kidGiven]).toEqual(['PS256', 'rsa-1', true]);
  });
});
