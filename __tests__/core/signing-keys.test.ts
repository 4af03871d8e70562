import { createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { ConfigurationError } from '../../lib/core/errors.js';
import { jwkThumbprint, privateKeyFromFile, resolveSigningKey, resolveVerificationKey } from '../../lib/core/signing-keys.js';
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

describe('key files: a PEM private key named by OAUTH_SIGNING_KEY_FILE or a flag', () => {
  const origin = { source: 'OAUTH_SIGNING_KEY_FILE', path: '/etc/oauth/signing.pem' };
  const pem = (key: KeyObject, type: 'pkcs8' | 'sec1' | 'pkcs1' | 'spki'): string => key.export({ format: 'pem', type }).toString();
  const fix = 'set OAUTH_SIGNING_KEY_FILE to a PKCS#8 PEM private key (RSA of 2048 bits or more, EC P-256 or Ed25519); make one with: npx express-client-credentials keygen --out signing-key.pem';

  it.each([
    ['a PKCS#8 EC P-256 private key', () => pem(keyPairs.ec(), 'pkcs8'), 'ES256'],
    ['a SEC1 EC P-256 private key', () => pem(keyPairs.ec(), 'sec1'), 'ES256'],
    ['a PKCS#1 RSA private key', () => pem(keyPairs.rsa(), 'pkcs1'), 'RS256'],
    ['a PKCS#8 Ed25519 private key followed by a blank line', () => `${pem(keyPairs.ed25519(), 'pkcs8')}\n`, 'EdDSA'],
  ])('reads %s, which the issuer then signs with', (_name, text, alg) => {
    const key = privateKeyFromFile(text(), origin);
    expect(key.type).toBe('private');
    expect(resolveSigningKey({ privateKey: key }).alg).toBe(alg);
  });

  it.each([
    ['an empty file', () => '\n', 'is empty'],
    ['a public key', () => pem(createPublicKey(keyPairs.ec()), 'spki'), 'holds a public key or a certificate, not the private key'],
    ['a JWK', () => JSON.stringify(keyPairs.ec().export({ format: 'jwk' })), 'is not a PEM private key (no -----BEGIN PRIVATE KEY----- line)'],
    ['a PEM private key whose body is damaged', () => '-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n', 'is not a valid PEM private key'],
    ['an EC key on P-384', () => pem(generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey, 'pkcs8'), 'holds an EC key on the curve secp384r1, which the issuer cannot sign with'],
    ['an RSA key of 1024 bits', () => pem(generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey, 'pkcs8'), 'holds an RSA key of 1024 bits, which the issuer cannot sign with'],
    ['an X25519 key, made for key agreement', () => pem(generateKeyPairSync('x25519').privateKey, 'pkcs8'), 'holds a key of type x25519, which the issuer cannot sign with'],
  ])('refuses %s, naming the variable, the file and the fix', (_name, text, problem) => {
    expect(() => privateKeyFromFile(text(), origin)).toThrow(ConfigurationError);
    expect(() => privateKeyFromFile(text(), origin)).toThrow(`OAUTH_SIGNING_KEY_FILE points to /etc/oauth/signing.pem, which ${problem}: ${fix}`);
  });

  it('refuses an encrypted private key, saying how to decrypt it', () => {
    const encrypted = keyPairs.ec().export({ format: 'pem', type: 'pkcs8', cipher: 'aes-256-cbc', passphrase: 'pass' }).toString();
    expect(() => privateKeyFromFile(encrypted, origin)).toThrow(
      'OAUTH_SIGNING_KEY_FILE points to /etc/oauth/signing.pem, which holds an encrypted private key, and there is no passphrase option: decrypt it (openssl pkey -in /etc/oauth/signing.pem -out signing-key.pem) and set OAUTH_SIGNING_KEY_FILE to the result',
    );
  });

  it('names the flag a key path came from, for a command line', () => {
    expect(() => privateKeyFromFile('', { source: '--key', path: 'k.pem' })).toThrow(/^--key points to k\.pem, which is empty: set --key to a PKCS#8 PEM private key/);
  });
});
