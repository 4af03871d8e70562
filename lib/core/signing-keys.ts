// Signing and verification keys: algorithm pinning (RFC 8725 §3.1), JWK export (RFC 7517), thumbprint kids (RFC 7638).

import { createHash, createPrivateKey, createPublicKey, createSecretKey, KeyObject } from 'node:crypto';
import { ConfigurationError } from './errors.js';

/** The JWS algorithms we sign and verify with (RFC 7518, RFC 8037). */
export type JwsAlgorithm = 'HS256' | 'RS256' | 'PS256' | 'ES256' | 'EdDSA';
export type AsymmetricAlgorithm = Exclude<JwsAlgorithm, 'HS256'>;

/**
 * A JSON Web Key (RFC 7517 §4), with the key members of RFC 7518 §6 and RFC 8037 §2. Our own type,
 * not the one `node:crypto` exported until @types/node 25, so no declaration depends on the version
 * of @types/node; what `KeyObject.export({ format: 'jwk' })` returns fits it under each of them.
 * @example const jwk: Jwk = { kty: 'OKP', crv: 'Ed25519', x: '11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo' };
 */
export interface Jwk {
  kty?: string;
  use?: string;
  key_ops?: string[];
  alg?: string;
  kid?: string;
  x5u?: string;
  x5c?: string[];
  x5t?: string;
  'x5t#S256'?: string;
  crv?: string;
  x?: string;
  y?: string;
  n?: string;
  e?: string;
  d?: string;
  p?: string;
  q?: string;
  dp?: string;
  dq?: string;
  qi?: string;
  oth?: { r?: string; d?: string; t?: string }[];
  k?: string;
}

/** Key material as users hold it: a PEM string, a JWK object, or a `KeyObject`. */
export type KeyMaterial = string | Jwk | KeyObject;

/**
 * A signing key for the issuer: an HS256 shared secret of at least 32 bytes, or a private key
 * (RSA of 2048 bits or more, EC P-256, or Ed25519). `alg` defaults from the key type (RSA: RS256);
 * `kid` defaults to the key's RFC 7638 thumbprint.
 */
export type SigningKeyInput =
  | { secret: string | Buffer; kid?: string }
  | { privateKey: KeyMaterial; alg?: AsymmetricAlgorithm; kid?: string };

/** A key a guard verifies with: a public key (or its private half), or the `secret` form above. */
export type VerificationKeyInput =
  | KeyMaterial
  | { publicKey: KeyMaterial; alg?: AsymmetricAlgorithm; kid?: string }
  | { secret: string | Buffer; kid?: string };

/** A resolved key: the one algorithm it may be used with, and its `kid`. */
export interface VerificationKey {
  readonly alg: JwsAlgorithm;
  readonly kid: string;
  /** False when `kid` is our thumbprint: an issuer may have named the key otherwise. */
  readonly kidGiven: boolean;
  readonly key: KeyObject;
}

export interface SigningKey extends VerificationKey {
  /** The private (or secret) key; `key` is what verifies. */
  readonly signingKey: KeyObject;
  /** The public JWK as published, or `undefined` for a shared secret, which is never published. */
  readonly publicJwk: PublicJwk | undefined;
}

export interface PublicJwk {
  kty: string;
  kid: string;
  alg: JwsAlgorithm;
  use: 'sig';
  [member: string]: string;
}

const MIN_SECRET_BYTES = 32; // RFC 7518 §3.2: an HS256 key at least as long as the hash output.
const MIN_RSA_BITS = 2048; // RFC 7518 §3.3.

export function resolveSigningKey(input: SigningKeyInput, option = 'signingKey'): SigningKey {
  if (!isObject(input)) throw new ConfigurationError(`\`${option}\` must be { secret } or { privateKey }`);
  if ('secret' in input) {
    const key = secretKey(input.secret, option);
    return { ...named(key, 'HS256', input.kid, option), signingKey: key, publicJwk: undefined };
  }
  if (!('privateKey' in input)) throw new ConfigurationError(`\`${option}\` must be { secret } or { privateKey }`);
  const signingKey = privateKeyObject(input.privateKey, option);
  const alg = algorithmFor(signingKey, input.alg, option);
  const key = createPublicKey(signingKey);
  const resolved = named(key, alg, input.kid, option);
  const jwk = key.export({ format: 'jwk' }) as Record<string, string>;
  return { ...resolved, signingKey, publicJwk: { ...jwk, kty: String(jwk.kty), kid: resolved.kid, alg, use: 'sig' } };
}

export function resolveVerificationKey(input: VerificationKeyInput, option = 'publicKey'): VerificationKey {
  if (has<{ secret: string | Buffer; kid?: string }>(input, 'secret')) {
    return named(secretKey(input.secret, option), 'HS256', input.kid, option);
  }
  const { material, alg, kid } = has<{ publicKey: KeyMaterial; alg?: AsymmetricAlgorithm; kid?: string }>(input, 'publicKey')
    ? { material: input.publicKey, alg: input.alg, kid: input.kid }
    : { material: input as KeyMaterial, alg: jwkField(input, 'alg'), kid: jwkField(input, 'kid') };
  const key = publicKeyObject(material, option);
  return named(key, algorithmFor(key, alg as AsymmetricAlgorithm | undefined, option), kid, option);
}

/** Where a key file's path came from, for messages: the environment variable or flag, and the path. */
export interface KeyFileOrigin {
  /** `OAUTH_SIGNING_KEY_FILE`, or a flag such as `--key`. */
  readonly source: string;
  readonly path: string;
}

const KEYGEN = 'npx express-client-credentials keygen --out signing-key.pem';

/**
 * The private key a key file holds, checked as the issuer will sign with it. A file that holds no
 * usable private key is refused with a message naming `origin.source`, the path, and the fix.
 * @example
 * const privateKey = privateKeyFromFile(readFileSync(path, 'utf8'), { source: 'OAUTH_SIGNING_KEY_FILE', path });
 */
export function privateKeyFromFile(text: string, origin: KeyFileOrigin): KeyObject {
  const where = `${origin.source} points to ${origin.path}, which`;
  const fix = `set ${origin.source} to a PKCS#8 PEM private key (RSA of ${MIN_RSA_BITS} bits or more, EC P-256 or Ed25519); make one with: ${KEYGEN}`;
  const refuse = (what: string, cause?: unknown): never => {
    throw new ConfigurationError(`${where} ${what}: ${fix}`, cause === undefined ? undefined : { cause });
  };
  const pem = text.trim();
  if (pem === '') refuse('is empty');
  if (/-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: 4,ENCRYPTED/.test(pem)) {
    throw new ConfigurationError(
      `${where} holds an encrypted private key, and there is no passphrase option: decrypt it (openssl pkey -in ${origin.path} -out signing-key.pem) and set ${origin.source} to the result`,
    );
  }
  if (!/-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/.test(pem)) {
    refuse(/-----BEGIN (?:[A-Z0-9]+ )?PUBLIC KEY-----|-----BEGIN CERTIFICATE-----/.test(pem)
      ? 'holds a public key or a certificate, not the private key'
      : 'is not a PEM private key (no -----BEGIN PRIVATE KEY----- line)');
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch (cause) {
    return refuse('is not a valid PEM private key', cause);
  }
  try {
    algorithmFor(key, undefined, origin.source);
  } catch (cause) {
    refuse(`holds ${describeKey(key)}, which the issuer cannot sign with`, cause);
  }
  return key;
}

function describeKey(key: KeyObject): string {
  const details = key.asymmetricKeyDetails ?? {};
  const type = key.asymmetricKeyType ?? 'unknown';
  if (type === 'rsa' || type === 'rsa-pss') return `an ${type === 'rsa' ? 'RSA' : 'RSA-PSS'} key of ${details.modulusLength ?? 0} bits`;
  if (type === 'ec') return `an EC key on the curve ${details.namedCurve ?? 'unknown'}`;
  return `a key of type ${type}`;
}

/** RFC 7638 thumbprint: SHA-256 over the required members, in lexicographic order, base64url. */
export function jwkThumbprint(key: KeyObject): string {
  const jwk = key.export({ format: 'jwk' }) as Record<string, string>;
  const required: Record<string, string[]> = { RSA: ['e', 'kty', 'n'], EC: ['crv', 'kty', 'x', 'y'], OKP: ['crv', 'kty', 'x'], oct: ['k', 'kty'] };
  const members = required[jwk.kty ?? ''] ?? [];
  const canonical = JSON.stringify(Object.fromEntries(members.map((name) => [name, jwk[name]])));
  return createHash('sha256').update(canonical).digest('base64url');
}

function named(key: KeyObject, alg: JwsAlgorithm, kid: string | undefined, option: string): VerificationKey {
  if (kid !== undefined && (typeof kid !== 'string' || kid === '')) {
    throw new ConfigurationError(`\`${option}.kid\` must be a non-empty string`);
  }
  return { alg, key, kid: kid ?? jwkThumbprint(key), kidGiven: kid !== undefined };
}

function secretKey(secret: unknown, option: string): KeyObject {
  const bytes = typeof secret === 'string' ? Buffer.from(secret, 'utf8') : secret;
  if (!Buffer.isBuffer(bytes) || bytes.length < MIN_SECRET_BYTES) {
    throw new ConfigurationError(
      `\`${option}.secret\` must be at least ${MIN_SECRET_BYTES} bytes (RFC 7518 §3.2); generate one with: openssl rand -base64 32`,
    );
  }
  return createSecretKey(bytes);
}

function privateKeyObject(material: KeyMaterial, option: string): KeyObject {
  if (material instanceof KeyObject) {
    if (material.type !== 'private') throw new ConfigurationError(`\`${option}.privateKey\` must be a private key`);
    return material;
  }
  try {
    // The spread: older @types/node want an index signature, which an interface lacks.
    return typeof material === 'string' ? createPrivateKey(material) : createPrivateKey({ key: { ...material }, format: 'jwk' });
  } catch (cause) {
    throw new ConfigurationError(`\`${option}.privateKey\` is not a PEM or JWK private key`, { cause });
  }
}

function publicKeyObject(material: KeyMaterial, option: string): KeyObject {
  if (material instanceof KeyObject) {
    if (material.type === 'secret') throw new ConfigurationError(`\`${option}\` must be a public key; pass { secret } for HS256`);
    return material.type === 'private' ? createPublicKey(material) : material;
  }
  try {
    return typeof material === 'string' ? createPublicKey(material) : createPublicKey({ key: { ...material }, format: 'jwk' });
  } catch (cause) {
    throw new ConfigurationError(`\`${option}\` is not a PEM or JWK public key`, { cause });
  }
}

/** Pins one algorithm per key (RFC 8725 §3.1), inferred from the key type unless given. */
function algorithmFor(key: KeyObject, requested: AsymmetricAlgorithm | undefined, option: string): AsymmetricAlgorithm {
  const type = key.asymmetricKeyType;
  const details = key.asymmetricKeyDetails ?? {};
  const allowed: AsymmetricAlgorithm[] =
    type === 'rsa' ? ['RS256', 'PS256']
    : type === 'rsa-pss' ? ['PS256']
    : type === 'ec' && details.namedCurve === 'prime256v1' ? ['ES256']
    : type === 'ed25519' ? ['EdDSA']
    : [];
  const alg = requested ?? allowed[0];
  if (alg === undefined) {
    throw new ConfigurationError(`\`${option}\` must be an RSA, EC P-256 or Ed25519 key (got ${type ?? 'unknown'})`);
  }
  if (!allowed.includes(alg)) {
    throw new ConfigurationError(`\`${option}.alg\` ${String(alg)} does not fit a ${type} key; use ${allowed.join(' or ')}`);
  }
  if ((type === 'rsa' || type === 'rsa-pss') && (details.modulusLength ?? 0) < MIN_RSA_BITS) {
    throw new ConfigurationError(`\`${option}\` must be an RSA key of at least ${MIN_RSA_BITS} bits`);
  }
  return alg;
}

function jwkField(input: unknown, name: 'alg' | 'kid'): string | undefined {
  if (!isObject(input) || input instanceof KeyObject) return undefined;
  const value = (input as Record<string, unknown>)[name];
  return typeof value === 'string' ? value : undefined;
}

/** Narrows one of the key input forms by its distinguishing member (a KeyObject has none of them). */
function has<T>(value: unknown, member: string): value is T {
  return isObject(value) && !(value instanceof KeyObject) && member in value;
}

function isObject(value: unknown): value is object {
  return typeof value === 'object' && value !== null;
}
