// Client registrations in RFC 7591 names, their validation, and their secrets (RFC 6749 §2.3.1).

import { randomBytes } from 'node:crypto';
import { ConfigurationError } from './errors.js';
import { didYouMean, httpUrl } from './options.js';
import { parseScope } from './scope.js';
import { MAX_TOKEN_LIFETIME } from './token-lifetime.js';

/** How a client authenticates at the token endpoint (RFC 7591 §2, RFC 7523 §2.2). */
export type ClientAuthMethod = 'client_secret_basic' | 'client_secret_post' | 'private_key_jwt';
export const CLIENT_AUTH_METHODS: readonly ClientAuthMethod[] = ['client_secret_basic', 'client_secret_post', 'private_key_jwt'];

/** A bcrypt hash of a client secret, with the time (seconds since the epoch) it stops being accepted. */
export interface SecretHash {
  hash: string;
  expires_at?: number | undefined;
}

/**
 * A client registration as stored, with RFC 7591 names. Checked strictly: a field of another name
 * is refused with a "did you mean", except the registered metadata other software may keep in the
 * same record ({@link TOLERATED_FIELDS}, ignored here); fields of your own go in `metadata`. A
 * plaintext `client_secret` is refused.
 */
export interface ClientRecord {
  client_id: string;
  /** bcrypt hash of the secret, or several during a secret roll-over, each optionally expiring. Not for private_key_jwt. */
  client_secret_hash?: string | readonly (string | SecretHash)[] | undefined;
  /** Scopes the client may request, space-delimited. Default: none. */
  scope?: string | undefined;
  /** Scopes granted when a request names none, space-delimited. Default: all of `scope`. */
  default_scope?: string | undefined;
  /** Audiences its tokens may have (RFC 8707 `resource` picks among them); the first is the default. Default: the issuer's `audience`. */
  audience?: string | readonly string[] | undefined;
  /** Access token lifetime in seconds. Default: the issuer's `accessTokenTtl`. */
  access_token_ttl?: number | undefined;
  /** Pins the client to one method. Default: either secret method, `client_secret_basic` or `client_secret_post`, one per request. */
  token_endpoint_auth_method?: ClientAuthMethod | undefined;
  /** private_key_jwt: the client's public keys (RFC 7517 JWK Set). */
  jwks?: { keys: readonly object[] } | undefined;
  /** private_key_jwt: where the client publishes its public keys, instead of `jwks`. */
  jwks_uri?: string | undefined;
  /** A disabled client authenticates but is refused tokens (`unauthorized_client`). */
  disabled?: boolean | undefined;
  /** May introspect any token, not only its own (RFC 7662 §2.1): for resource servers. Default: false. */
  can_introspect?: boolean | undefined;
  /** Fields of your own (a tenant id), for hooks to read as `client.record.metadata`. */
  metadata?: Record<string, unknown> | undefined;
  /** Registered client metadata of RFC 7591 and its kin, kept for other software and ignored here. */
  [registered: string]: unknown;
}

/** The fields this library reads. */
const RECORD_FIELDS = [
  'client_id', 'client_secret_hash', 'scope', 'default_scope', 'audience', 'access_token_ttl', 'token_endpoint_auth_method',
  'jwks', 'jwks_uri', 'disabled', 'can_introspect', 'metadata',
];

/**
 * Registered client metadata a record may carry for other software, ignored here: RFC 7591 §2 and
 * §3.2.1, RFC 7592 §3, OpenID Connect Registration's `token_endpoint_auth_signing_alg`, RFC 8705
 * §2.1.2, RFC 9449 §5.2 and RFC 9396 §10. Human-readable ones may carry a language tag (`client_name#fr`).
 */
export const TOLERATED_FIELDS: readonly string[] = [
  'redirect_uris', 'grant_types', 'response_types', 'client_name', 'client_uri', 'logo_uri', 'contacts', 'tos_uri', 'policy_uri',
  'software_id', 'software_version', 'software_statement', 'client_id_issued_at', 'client_secret_expires_at',
  'registration_access_token', 'registration_client_uri', 'token_endpoint_auth_signing_alg',
  'tls_client_auth_subject_dn', 'tls_client_auth_san_dns', 'tls_client_auth_san_uri', 'tls_client_auth_san_ip', 'tls_client_auth_san_email',
  'tls_client_certificate_bound_access_tokens', 'dpop_bound_access_tokens', 'authorization_details_types',
];

/** The human-readable fields, which RFC 7591 §2.2 lets carry a language tag: `client_name#fr`. */
const LANGUAGE_TAGGED = ['client_name', 'client_uri', 'logo_uri', 'tos_uri', 'policy_uri'];

/** Refuses a field the record may not have, naming the one probably meant. */
function checkFields(r: Record<string, unknown>, where: string): void {
  if ('client_secret' in r) {
    throw new ConfigurationError(
      `${where}: \`client_secret\` holds a plaintext secret, which a record must never hold: replace it with \`client_secret_hash\`, made with \`npx express-client-credentials hash-secret\` or hashSecret()`,
    );
  }
  for (const name of Object.keys(r)) {
    if (RECORD_FIELDS.includes(name) || TOLERATED_FIELDS.includes(name) || (LANGUAGE_TAGGED.includes(name.split('#')[0]!) && name.includes('#'))) continue;
    throw new ConfigurationError(
      `${where}: unknown field \`${name}\`${didYouMean(name, [...RECORD_FIELDS, ...TOLERATED_FIELDS])}; fields of your own go in \`metadata\``,
    );
  }
  if (r.metadata !== undefined && (typeof r.metadata !== 'object' || r.metadata === null || Array.isArray(r.metadata))) {
    throw new ConfigurationError(`${where}: \`metadata\` must be an object`);
  }
}

/** A validated registration, in the library's own terms. */
export interface Client {
  readonly id: string;
  /** Secret hashes in order, each with its expiry (seconds), for the secret methods. */
  readonly secrets: readonly { readonly hash: string; readonly expiresAt: number | undefined }[];
  readonly scopes: readonly string[];
  readonly defaultScopes: readonly string[];
  /** Allowed audiences; the first is the default. */
  readonly audiences: readonly string[];
  readonly accessTokenTtl: number | undefined;
  /** The methods it may authenticate with: the one its record names, or both secret methods. */
  readonly authMethods: readonly ClientAuthMethod[];
  readonly jwks: readonly object[] | undefined;
  readonly jwksUri: string | undefined;
  readonly disabled: boolean;
  /** False when the record's `grant_types` leave out client_credentials: authenticated, but refused tokens. */
  readonly mayUseGrant: boolean;
  readonly canIntrospect: boolean;
  /** The record as stored, for hooks that read fields of their own in `metadata` (a tenant id). */
  readonly record: Readonly<ClientRecord>;
}

const SECRET_METHODS: readonly ClientAuthMethod[] = ['client_secret_basic', 'client_secret_post'];

const BCRYPT_HASH = /^\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}$/;

/** Validates a record; throws a `ConfigurationError` naming the field and the fix. */
export function resolveClient(record: unknown): Client {
  if (typeof record !== 'object' || record === null || Array.isArray(record)) {
    throw new ConfigurationError('a client record must be an object');
  }
  const r = record as Record<string, unknown>;
  const id = r.client_id;
  if (typeof id !== 'string' || id === '') throw new ConfigurationError('`client_id` must be a non-empty string');
  const where = `client ${JSON.stringify(id)}`;
  checkFields(r, where);
  const authMethod = r.token_endpoint_auth_method;
  if (authMethod !== undefined && !CLIENT_AUTH_METHODS.includes(authMethod as ClientAuthMethod)) {
    throw new ConfigurationError(`${where}: \`token_endpoint_auth_method\` must be one of ${CLIENT_AUTH_METHODS.join(', ')}`);
  }
  const usesKeys = authMethod === 'private_key_jwt';
  if (usesKeys && r.client_secret_hash !== undefined) {
    throw new ConfigurationError(`${where}: a private_key_jwt client authenticates with its keys and has no secret: remove \`client_secret_hash\``);
  }
  const secrets = usesKeys ? [] : secretsUntil(secretHashes(r.client_secret_hash, where), r.client_secret_expires_at, where);
  if (usesKeys) checkClientKeys(r, where);
  checkTolerated(r, where);
  const scopes = scopeField(r.scope, 'scope', where) ?? [];
  const defaultScopes = scopeField(r.default_scope, 'default_scope', where) ?? scopes;
  if (!defaultScopes.every((scope) => scopes.includes(scope))) {
    throw new ConfigurationError(`${where}: \`default_scope\` must be a subset of \`scope\``);
  }
  const audiences = r.audience === undefined ? [] : typeof r.audience === 'string' ? [r.audience] : r.audience;
  if (!Array.isArray(audiences) || !audiences.every((aud) => typeof aud === 'string' && aud !== '')) {
    throw new ConfigurationError(`${where}: \`audience\` must be a string or a list of strings`);
  }
  const ttl = r.access_token_ttl;
  if (ttl !== undefined && !(Number.isSafeInteger(ttl) && (ttl as number) > 0 && (ttl as number) <= MAX_TOKEN_LIFETIME)) {
    throw new ConfigurationError(`${where}: \`access_token_ttl\` must be a whole number of seconds from 1 to ${MAX_TOKEN_LIFETIME} (a day)`);
  }
  for (const flag of ['disabled', 'can_introspect']) {
    if (r[flag] !== undefined && typeof r[flag] !== 'boolean') throw new ConfigurationError(`${where}: \`${flag}\` must be true or false`);
  }
  return {
    id,
    secrets,
    scopes,
    defaultScopes,
    audiences: audiences as string[],
    accessTokenTtl: ttl as number | undefined,
    // RFC 7591 §2 defaults to client_secret_basic; the many clients that send their secret in the
    // body (RFC 6749 §2.3.1 allows it) would get a 401 they cannot explain. A named method pins.
    authMethods: authMethod === undefined ? SECRET_METHODS : [authMethod as ClientAuthMethod],
    jwks: usesKeys && r.jwks !== undefined ? ((r.jwks as { keys: object[] }).keys) : undefined,
    jwksUri: usesKeys ? (r.jwks_uri as string | undefined) : undefined,
    disabled: r.disabled === true,
    mayUseGrant: r.grant_types === undefined || (r.grant_types as string[]).includes('client_credentials'),
    canIntrospect: r.can_introspect === true,
    record: r as ClientRecord,
  };
}

/**
 * The tolerated fields that would restrict the client if honoured are honoured, or refused when
 * this library cannot honour them: a record must never grant more than it says.
 */
function checkTolerated(r: Record<string, unknown>, where: string): void {
  if (r.grant_types !== undefined && !(Array.isArray(r.grant_types) && r.grant_types.every((grant) => typeof grant === 'string'))) {
    throw new ConfigurationError(`${where}: \`grant_types\` must be a list of grant type strings (RFC 7591 §2)`);
  }
  for (const bound of ['dpop_bound_access_tokens', 'tls_client_certificate_bound_access_tokens']) {
    if (r[bound] === true) throw new ConfigurationError(`${where}: \`${bound}\` asks for sender-constrained tokens, which this issuer does not issue yet; it would issue Bearer tokens`);
  }
}

/** RFC 7591 §3.2.1 `client_secret_expires_at` (seconds; 0 for never) ends every secret hash at the latest then. */
function secretsUntil(secrets: Client['secrets'], expiresAt: unknown, where: string): Client['secrets'] {
  if (expiresAt === undefined || expiresAt === 0) return secrets;
  if (!(typeof expiresAt === 'number' && Number.isFinite(expiresAt) && expiresAt > 0 && expiresAt <= 1e11)) {
    throw new ConfigurationError(`${where}: \`client_secret_expires_at\` must be seconds since the epoch, or 0 for never (RFC 7591 §3.2.1)`);
  }
  return secrets.map((secret) => ({ hash: secret.hash, expiresAt: Math.min(secret.expiresAt ?? Infinity, expiresAt) }));
}

function secretHashes(value: unknown, where: string): Client['secrets'] {
  const entries = typeof value === 'string' ? [value] : value;
  const invalid = () =>
    new ConfigurationError(`${where}: \`client_secret_hash\` must be a bcrypt hash, or a list of hashes or { hash, expires_at } (expires_at in seconds); make one with hashSecret()`);
  if (!Array.isArray(entries) || entries.length === 0) throw invalid();
  return entries.map((entry: unknown) => {
    const { hash, expires_at: expiresAt } = typeof entry === 'string' ? { hash: entry, expires_at: undefined } : ((entry ?? {}) as Partial<SecretHash>);
    if (typeof hash !== 'string' || !BCRYPT_HASH.test(hash)) throw invalid();
    if (expiresAt !== undefined && !(typeof expiresAt === 'number' && Number.isFinite(expiresAt))) throw invalid();
    // Seconds since the epoch; a value this large is milliseconds, and would never expire.
    if (expiresAt !== undefined && expiresAt > 1e11) throw new ConfigurationError(`${where}: \`expires_at\` is in seconds since the epoch; this looks like milliseconds`);
    return { hash, expiresAt };
  });
}

/** RFC 7591 §2: `jwks` and `jwks_uri` MUST NOT both be present; private_key_jwt needs one. */
function checkClientKeys(r: Record<string, unknown>, where: string): void {
  const jwks = r.jwks as { keys?: unknown } | undefined;
  if ((jwks === undefined) === (r.jwks_uri === undefined)) {
    throw new ConfigurationError(`${where}: private_key_jwt needs exactly one of \`jwks\` (a JWK Set) and \`jwks_uri\``);
  }
  if (jwks !== undefined && (typeof jwks !== 'object' || jwks === null || !Array.isArray(jwks.keys) || jwks.keys.length === 0)) {
    throw new ConfigurationError(`${where}: \`jwks\` must be a JWK Set: { "keys": [ ... ] }`);
  }
  if (r.jwks_uri !== undefined && httpUrl(r.jwks_uri) === undefined) {
    throw new ConfigurationError(`${where}: \`jwks_uri\` must be an absolute http(s) URL`);
  }
}

function scopeField(value: unknown, name: string, where: string): string[] | undefined {
  if (value === undefined) return undefined;
  const scopes = typeof value === 'string' ? parseScope(value) : undefined;
  if (scopes === undefined) throw new ConfigurationError(`${where}: \`${name}\` must be a space-delimited string of scope tokens`);
  return scopes;
}

/** The bcrypt cost of a hash, e.g. 10 for `$2b$10$…`. */
export function hashCost(hash: string): number {
  return Number(BCRYPT_HASH.exec(hash)?.[1] ?? 10);
}

export const DEFAULT_HASH_COST = 10;

/** bcrypt's costs (log2 of its rounds), and the most of a secret it reads: a longer one is checked by its prefix only. */
export const BCRYPT = { minCost: 4, maxCost: 31, maxBytes: 72 } as const;

/**
 * Hashes a client secret with bcrypt for `client_secret_hash`.
 * @example const record = { client_id: 'reports', client_secret_hash: await hashSecret(secret), scope: 'read' };
 */
export async function hashSecret(secret: string, cost = DEFAULT_HASH_COST): Promise<string> {
  if (typeof secret !== 'string' || secret === '') throw new TypeError('hashSecret() needs a non-empty string');
  if (Buffer.byteLength(secret) > BCRYPT.maxBytes) throw new TypeError(`hashSecret(): bcrypt takes secrets of at most ${BCRYPT.maxBytes} bytes`);
  // Loaded on first use: what only reads records (the token client, option checks) needs no bcrypt.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { hash } = require('bcryptjs') as typeof import('bcryptjs');
  return hash(secret, cost);
}

/**
 * A new client secret: 256 random bits, base64url (43 characters, URL- and form-safe).
 * @example const secret = generateClientSecret();
 */
export function generateClientSecret(): string {
  return randomBytes(32).toString('base64url');
}
