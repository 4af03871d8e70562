// Compact JWS signing and verification (RFC 7515), the only importer of jsonwebtoken.
// Tokens are signed with jsonwebtoken, except Ed25519 (RFC 8037), which jsonwebtoken 9 lacks.
// Signatures are verified with node:crypto's one-shot functions against pre-built key objects:
// the header and payload are decoded once, here, and each key is used with its own pinned
// algorithm only. Claims are checked by the callers (token-verification.ts).

import { constants, createHmac, sign as cryptoSign, timingSafeEqual, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import jwt from 'jsonwebtoken';
import type { JwsAlgorithm, SigningKey, VerificationKey } from './signing-keys.js';

export type JsonObject = { [name: string]: unknown };

export interface VerifiedJws {
  readonly header: JsonObject;
  readonly payload: JsonObject;
  /** The key whose signature matched. */
  readonly key: VerificationKey;
}

/** Why a JWS was refused; the message is a constant fit for an `error_description`. */
export class JwsError extends Error {
  override readonly name = 'JwsError';
}

/** Signs `payload` with the key's pinned algorithm and puts `typ` and `kid` in the header. */
export function signJws(payload: JsonObject, key: SigningKey, typ: string): string {
  if (key.alg !== 'EdDSA') {
    // A string payload: jsonwebtoken signs it as it is, without looking up claim names on an object.
    return jwt.sign(JSON.stringify(payload), key.signingKey, { algorithm: key.alg, keyid: key.kid, header: { alg: key.alg, typ } });
  }
  const input = `${encodeJson({ alg: 'EdDSA', typ, kid: key.kid })}.${encodeJson(payload)}`;
  return `${input}.${cryptoSign(null, Buffer.from(input), key.signingKey).toString('base64url')}`;
}

/**
 * Verifies the signature of a compact JWS against the candidate keys: a key is used only with its
 * own algorithm, so `none` and HS/RS confusion cannot pass (RFC 8725 §2.1, §3.1).
 * `acceptType` decides on the header's `typ` (RFC 8725 §3.11).
 */
export function verifyJws(
  token: string,
  keysFor: (header: JsonObject) => readonly VerificationKey[],
  acceptType: (typ: unknown) => boolean,
): VerifiedJws {
  const parts = token.split('.');
  if (parts.length !== 3 || !parts.every((part) => BASE64URL.test(part))) throw new JwsError('The token is not a JWS');
  const [encodedHeader, encodedPayload, signature] = parts as [string, string, string];
  const header = decodeJson(encodedHeader);
  const payload = decodeJson(encodedPayload);
  if (header === undefined || payload === undefined) throw new JwsError('The token is not a JWS');
  if (!acceptType(header.typ)) throw new JwsError('The token type is not accepted');
  if (typeof header.alg !== 'string') throw new JwsError('The token algorithm is not allowed');
  if (header.crit !== undefined) throw new JwsError('The token uses unsupported critical header parameters');
  const candidates = keysFor(header).filter((key) => key.alg === header.alg);
  if (candidates.length === 0) throw new JwsError('The token is not signed with an accepted key and algorithm');
  const input = Buffer.from(`${encodedHeader}.${encodedPayload}`);
  const signatureBytes = Buffer.from(signature, 'base64url');
  const key = candidates.find((candidate) => signatureMatches(input, signatureBytes, candidate));
  if (key === undefined) throw new JwsError('The token signature is invalid');
  return { header, payload, key };
}

/** The decoded header of a compact JWS, unverified: only to choose keys before verifying. */
export function peekHeader(token: string): JsonObject | undefined {
  return decodeJson(token.split('.', 1)[0] ?? '');
}

/** The decoded payload of a compact JWS, unverified: only to find whose keys verify it. */
export function peekPayload(token: string): JsonObject | undefined {
  return decodeJson(token.split('.', 3)[1] ?? '');
}

function signatureMatches(input: Buffer, signature: Buffer, key: VerificationKey): boolean {
  try {
    return VERIFIERS[key.alg](input, signature, key.key);
  } catch {
    return false; // a signature of the wrong shape for the key
  }
}

/** RFC 7518 §3: one verifier per algorithm; the key's type was checked against it when it was loaded. */
const VERIFIERS: Record<JwsAlgorithm, (input: Buffer, signature: Buffer, key: KeyObject) => boolean> = {
  HS256: (input, signature, key) => signature.length === 32 && timingSafeEqual(createHmac('sha256', key).update(input).digest(), signature),
  RS256: (input, signature, key) => cryptoVerify('sha256', input, key, signature),
  // §3.5: the salt is as long as the hash output.
  PS256: (input, signature, key) => cryptoVerify('sha256', input, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST }, signature),
  // §3.4: R and S side by side, 32 bytes each, not DER.
  ES256: (input, signature, key) => signature.length === 64 && cryptoVerify('sha256', input, { key, dsaEncoding: 'ieee-p1363' }, signature),
  EdDSA: (input, signature, key) => cryptoVerify(null, input, key, signature),
};

const BASE64URL = /^[A-Za-z0-9_-]+$/;

function encodeJson(value: JsonObject): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

function decodeJson(part: string): JsonObject | undefined {
  try {
    const value: unknown = JSON.parse(UTF8.decode(Buffer.from(part, 'base64url')));
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as JsonObject) : undefined;
  } catch {
    return undefined;
  }
}
