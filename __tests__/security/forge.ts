// Forging compact JWS byte for byte with node:crypto (RFC 7515 §7.1): any header, any payload, any
// key material, so that an attack needs nothing from the code under test.

import { constants, createHmac, sign, verify, type KeyObject } from 'node:crypto';
import { b64 } from '../support/fixtures.js';

/** A private key for the asymmetric algorithms, or any bytes as an HMAC secret (as a confused verifier would take them). */
export type Material = KeyObject | string | Buffer;

const PSS = { padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 } as const;

/** The base64url signature of `input` under `alg`; HS256 takes any material as its secret. */
export function signatureOf(alg: string, input: string, key: Material): string {
  const data = Buffer.from(input);
  if (alg === 'HS256') return createHmac('sha256', key).update(data).digest('base64url');
  const privateKey = asKeyObject(key, alg);
  switch (alg) {
    case 'RS256':
      return sign('sha256', data, privateKey).toString('base64url');
    case 'PS256':
      return sign('sha256', data, { key: privateKey, ...PSS }).toString('base64url');
    case 'ES256':
      return sign('sha256', data, { key: privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url');
    case 'EdDSA':
      return sign(null, data, privateKey).toString('base64url');
    default:
      throw new TypeError(`forge cannot sign ${alg}`);
  }
}

/**
 * A compact JWS over exactly these header and payload values (a string payload is taken as raw
 * bytes, not JSON), signed with `key` under `alg` (default: the header's `alg`).
 */
export function forge(header: Record<string, unknown>, payload: unknown, key: Material, alg = String(header.alg)): string {
  const input = `${b64(header)}.${b64(payload)}`;
  return `${input}.${signatureOf(alg, input, key)}`;
}

/** Independent check of a JWS signature with node:crypto, for oracles that must not trust the code under test. */
export function signatureVerifies(alg: string, token: string, key: KeyObject | string | Buffer): boolean {
  const parts = token.split('.');
  if (parts.length !== 3) return false;
  const input = Buffer.from(`${parts[0]}.${parts[1]}`);
  const signature = Buffer.from(parts[2] as string, 'base64url');
  try {
    switch (alg) {
      case 'HS256':
        return createHmac('sha256', key).update(input).digest().equals(signature);
      case 'RS256':
        return verify('sha256', input, asKeyObject(key, alg), signature);
      case 'PS256':
        return verify('sha256', input, { key: asKeyObject(key, alg), ...PSS }, signature);
      case 'ES256':
        return verify('sha256', input, { key: asKeyObject(key, alg), dsaEncoding: 'ieee-p1363' }, signature);
      case 'EdDSA':
        return verify(null, input, asKeyObject(key, alg), signature);
      default:
        return false;
    }
  } catch {
    return false;
  }
}

function asKeyObject(key: Material, alg: string): KeyObject {
  if (typeof key === 'string' || Buffer.isBuffer(key)) throw new TypeError(`${alg} needs a KeyObject`);
  return key;
}
