// Test helpers, imported from 'express-client-credentials/testing': tokens that a guard accepts,
// minted without running an authorization server (RFC 9068 §2 claims).

import { generateKeyPairSync, randomUUID } from 'node:crypto';
import type { JsonObject } from './core/jws.js';
import { signJws } from './core/jws.js';
import { ConfigurationError } from './core/errors.js';
import { isScopeToken } from './core/scope.js';
import { resolveSigningKey, type AsymmetricAlgorithm, type SigningKey, type SigningKeyInput } from './core/signing-keys.js';
import { absoluteUrl } from './core/options.js';
import { defaultAudience, environmentDefaults, guessedIssuer } from './env.js';
import type { GuardPublicKeyOptions } from './express/guard.js';

/** What the token says. */
export interface TestTokenOptions {
  /** `client_id` and `sub`. Default: `test-client`. */
  clientId?: string | undefined;
  /** Granted scopes, a space-delimited string or a list. Default: none. */
  scope?: string | readonly string[] | undefined;
  /** Seconds until `exp`; negative for an expired token. Default: 600. */
  expiresIn?: number | undefined;
  /** Extra or replacing claims, e.g. `{ aud: 'elsewhere' }` to test a refusal. */
  claims?: JsonObject | undefined;
}

/** How tokens are signed and who they claim to come from. */
export type TestSigner = SigningKeyInput & {
  /** `iss`. Default: `OAUTH_ISSUER`, else `http://$HOST:$PORT`, as the guard's own default. */
  issuer?: string | undefined;
  /** `aud`. Default: `OAUTH_AUDIENCE`, else issuer + `/api`, as the guard's own default. */
  audience?: string | readonly string[] | undefined;
};

/**
 * Mints an access token that a guard with the same key, issuer and audience accepts. Without a
 * signer, it signs with the environment's key (`OAUTH_TOKEN_SECRET` or `OAUTH_SIGNING_KEY_FILE`),
 * which is what `requireScope()` alone verifies with.
 * @example
 * const token = mintToken({ clientId: 'reports', scope: 'read' }, { secret: process.env.TOKEN_SECRET!, issuer, audience });
 * await request(app).get('/reports').set('Authorization', `Bearer ${token}`).expect(200);
 */
export function mintToken(options: TestTokenOptions = {}, signer?: TestSigner): string {
  const env = environmentDefaults();
  // The issuer a server of this environment would have, its guess included (said by the server, not here).
  const { issuer: iss = env.issuer ?? guessedIssuer(), audience, ...keyInput } = signer ?? ({ ...env.signingKey } as TestSigner);
  if (signer === undefined && env.signingKey === undefined) {
    throw new ConfigurationError('mintToken() needs a signer, or OAUTH_TOKEN_SECRET / OAUTH_SIGNING_KEY_FILE in the environment');
  }
  return sign(options, resolveSigningKey(keyInput as SigningKeyInput, 'signer'), absoluteUrl(iss, 'issuer'), audience ?? env.audience ?? defaultAudience(iss));
}

/** A throwaway authorization server: a fresh key pair, and guard options that trust it. */
export interface TestIssuer {
  readonly issuer: string;
  readonly audience: string;
  /** Pass to `authenticate()`: the public key, issuer and audience. */
  readonly guardOptions: GuardPublicKeyOptions;
  /** Mints a token signed with the throwaway key. */
  token(options?: TestTokenOptions): string;
}

/**
 * Makes a throwaway key pair (ES256 unless told otherwise) for a test suite.
 * @example
 * const test = testIssuer();
 * app.get('/reports', authenticate(test.guardOptions), requireScope('read'), handler);
 * await request(app).get('/reports').set('Authorization', `Bearer ${test.token({ scope: 'read' })}`).expect(200);
 */
export function testIssuer(options: { issuer?: string; audience?: string; alg?: AsymmetricAlgorithm } = {}): TestIssuer {
  const issuer = absoluteUrl(options.issuer ?? 'https://issuer.test', 'issuer');
  const audience = options.audience ?? defaultAudience(issuer);
  const alg = options.alg ?? 'ES256';
  const pair =
    alg === 'EdDSA' ? generateKeyPairSync('ed25519')
    : alg === 'ES256' ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
    : generateKeyPairSync('rsa', { modulusLength: 2048 });
  const key = resolveSigningKey({ privateKey: pair.privateKey, alg });
  return {
    issuer,
    audience,
    guardOptions: { publicKey: { publicKey: pair.publicKey, alg, kid: key.kid }, issuer, audience },
    token: (tokenOptions = {}) => sign(tokenOptions, key, issuer, audience),
  };
}

function sign(options: TestTokenOptions, key: SigningKey, iss: string, aud: string | readonly string[]): string {
  const { clientId = 'test-client', scope, expiresIn = 600, claims = {} } = options;
  const scopes = typeof scope === 'string' ? scope.split(' ').filter(Boolean) : (scope ?? []);
  if (!scopes.every(isScopeToken)) throw new ConfigurationError('`scope` must be scope tokens (printable ASCII, no spaces, quotes or backslashes)');
  const iat = Math.floor(Date.now() / 1000);
  const payload: JsonObject = {
    iss,
    sub: clientId,
    client_id: clientId,
    aud: typeof aud === 'string' ? aud : [...aud],
    iat,
    exp: iat + expiresIn,
    jti: randomUUID(),
    ...(scopes.length > 0 ? { scope: scopes.join(' ') } : {}),
    ...claims,
  };
  // Drop claims a test set to undefined, e.g. `{ jti: undefined }` to test a refusal.
  return signJws(JSON.parse(JSON.stringify(payload)) as JsonObject, key, 'at+jwt');
}
