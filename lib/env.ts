// The zero-configuration defaults: the only module that reads process.env.

import { readFileSync } from 'node:fs';
import { ConfigurationError } from './core/errors.js';
import type { SigningKeyInput } from './core/signing-keys.js';

/** What the documented `OAUTH_*` variables (and `HOST`, `PORT`) say. */
export interface EnvironmentDefaults {
  /** `OAUTH_ISSUER`, else `http://$HOST:$PORT` (127.0.0.1:3000). */
  readonly issuer: string;
  /** `OAUTH_AUDIENCE`, if set; see {@link defaultAudience}. */
  readonly audience: string | undefined;
  /** `OAUTH_SIGNING_KEY_FILE` (a PEM private key) or `OAUTH_TOKEN_SECRET` (HS256), if either is set. */
  readonly signingKey: SigningKeyInput | undefined;
  /** `OAUTH_CLIENTS_FILE`, if set. */
  readonly clientsFile: string | undefined;
}

/**
 * Reads the environment.
 * @example const { issuer, audience } = environmentDefaults();
 */
export function environmentDefaults(env: NodeJS.ProcessEnv = process.env): EnvironmentDefaults {
  const value = (name: string): string | undefined => (env[name] === undefined || env[name] === '' ? undefined : env[name]);
  const issuer = value('OAUTH_ISSUER') ?? `http://${value('HOST') ?? '127.0.0.1'}:${value('PORT') ?? '3000'}`;
  const keyFile = value('OAUTH_SIGNING_KEY_FILE');
  const secret = value('OAUTH_TOKEN_SECRET');
  if (keyFile !== undefined && secret !== undefined) {
    throw new ConfigurationError('set OAUTH_SIGNING_KEY_FILE or OAUTH_TOKEN_SECRET, not both');
  }
  return {
    issuer,
    audience: value('OAUTH_AUDIENCE'),
    signingKey: keyFile !== undefined ? { privateKey: readKeyFile(keyFile) } : secret !== undefined ? { secret } : undefined,
    clientsFile: value('OAUTH_CLIENTS_FILE'),
  };
}

function readKeyFile(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (cause) {
    throw new ConfigurationError(`cannot read OAUTH_SIGNING_KEY_FILE ${path}`, { cause });
  }
}

/** The audience when none is configured: the issuer followed by `/api`. */
export function defaultAudience(issuer: string): string {
  return `${issuer.replace(/\/$/, '')}/api`;
}
