// The zero-configuration defaults: the only module that reads process.env.

import { readFileSync } from 'node:fs';
import { ConfigurationError } from './core/errors.js';
import { absoluteUrl } from './core/options.js';
import { warnOnce } from './core/warnings.js';
import { privateKeyFromFile, type SigningKeyInput } from './core/signing-keys.js';

/** What the documented `OAUTH_*` variables (and `HOST`, `PORT`) say. */
export interface EnvironmentDefaults {
  /** `OAUTH_ISSUER`, if set; see {@link issuerIdentifier}. */
  readonly issuer: string | undefined;
  /** `OAUTH_AUDIENCE`, if set; see {@link defaultAudience}. */
  readonly audience: string | undefined;
  /** `OAUTH_SIGNING_KEY_FILE` (a PEM private key) or `OAUTH_TOKEN_SECRET` (HS256), if either is set. */
  readonly signingKey: SigningKeyInput | undefined;
  /** `OAUTH_CLIENTS_FILE`, if set. */
  readonly clientsFile: string | undefined;
  /** `NODE_ENV=production`: nothing may be guessed, and credentials travel over https only. */
  readonly production: boolean;
}

/**
 * Reads the environment.
 * @example const { issuer, audience } = environmentDefaults();
 */
export function environmentDefaults(env: NodeJS.ProcessEnv = process.env): EnvironmentDefaults {
  const value = (name: string): string | undefined => (env[name] === undefined || env[name] === '' ? undefined : env[name]);
  const keyFile = value('OAUTH_SIGNING_KEY_FILE');
  const secret = value('OAUTH_TOKEN_SECRET');
  if (keyFile !== undefined && secret !== undefined) {
    throw new ConfigurationError('set OAUTH_SIGNING_KEY_FILE or OAUTH_TOKEN_SECRET, not both');
  }
  return {
    issuer: value('OAUTH_ISSUER'),
    audience: value('OAUTH_AUDIENCE'),
    signingKey: keyFile !== undefined ? { privateKey: privateKeyFromFile(readKeyFile(keyFile), { source: 'OAUTH_SIGNING_KEY_FILE', path: keyFile }) } : secret !== undefined ? { secret } : undefined,
    clientsFile: value('OAUTH_CLIENTS_FILE'),
    production: env.NODE_ENV === 'production',
  };
}

function readKeyFile(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (cause) {
    throw new ConfigurationError(`cannot read OAUTH_SIGNING_KEY_FILE ${path}`, { cause });
  }
}

/** What the issuer identifier would be guessed as, from `HOST` and `PORT` (127.0.0.1:3000). */
export function guessedIssuer(env: NodeJS.ProcessEnv = process.env): string {
  return `http://${env.HOST || '127.0.0.1'}:${env.PORT || '3000'}`;
}

/**
 * The issuer identifier: the option given, else `OAUTH_ISSUER`. It names the server in every token
 * (`iss`) and in its metadata, so it is never guessed silently: outside production the guess of
 * {@link guessedIssuer} comes with a warning, once; under `NODE_ENV=production` it is an error.
 */
export function issuerIdentifier(given: unknown, where: string, env: NodeJS.ProcessEnv = process.env): string {
  if (given !== undefined) return absoluteUrl(given, 'issuer');
  // Not environmentDefaults(): that reads the key file, which is not this function's business.
  const configured = env.OAUTH_ISSUER || undefined;
  if (configured !== undefined) return absoluteUrl(configured, 'OAUTH_ISSUER');
  if (env.NODE_ENV === 'production') {
    throw new ConfigurationError(`${where} needs the \`issuer\` option or OAUTH_ISSUER under NODE_ENV=production: the https URL clients reach this server at (RFC 8414 §2), which cannot be guessed`);
  }
  const guess = guessedIssuer(env);
  warnOnce('ECC_ISSUER_GUESSED', `${where}: no \`issuer\` option or OAUTH_ISSUER, so the issuer identifier is guessed as ${guess}; tokens carry it as \`iss\`. Set OAUTH_ISSUER to the URL clients reach this server at.`);
  return guess;
}

/** The audience when none is configured: the issuer followed by `/api`. */
export function defaultAudience(issuer: string): string {
  return `${issuer.replace(/\/$/, '')}/api`;
}
