// The adapter for the cache options that are being added alongside this benchmark: the guard's
// `tokenCache: false | { maxEntries }` and the issuer's `secretCache: false | { ttl, maxEntries }`
// (both on by default). Each is passed only when this version of the library knows it: the factories
// refuse unknown options with a ConfigurationError naming them, which is how support is detected, at
// run time, so that nothing needs flipping once the options land. BENCH_FORCE_OPTIONS=1 passes them
// unconditionally (an unknown option then fails the variant instead of running it without).
//
// "on" means the library's default (the option left out), unless BENCH_TOKEN_CACHE / BENCH_SECRET_CACHE
// hold a JSON object to pass instead, e.g. BENCH_TOKEN_CACHE='{"maxEntries":1000}'.

import type { RequestHandler } from 'express';
import { authenticate, ConfigurationError, issuer, type AuthenticateOptions, type Issuer, type IssuerOptions } from '../lib/index.js';
import { AUDIENCE, ISSUER } from './common.js';

export type CacheSetting = 'on' | 'off';

export interface Built<T> {
  readonly value: T;
  /** What was passed, or why nothing was: shown in RESULTS.md. */
  readonly note: string;
  /** False when the option was wanted but this version of the library does not have it. */
  readonly applied: boolean;
}

const force = process.env.BENCH_FORCE_OPTIONS === '1';

function explicit(variable: string): object | undefined {
  const text = process.env[variable];
  if (text === undefined || text === '') return undefined;
  const value: unknown = JSON.parse(text);
  if (typeof value !== 'object' || value === null) throw new Error(`${variable} must hold a JSON object`);
  return value;
}

function isUnknownOption(error: unknown, name: string): boolean {
  return error instanceof ConfigurationError && error.message.includes(`unknown option \`${name}\``);
}

function withOption<O, T>(build: (options: O) => T, options: O, name: string, setting: CacheSetting, envVariable: string): Built<T> {
  const value = setting === 'off' ? false : explicit(envVariable);
  if (value === undefined) return { value: build(options), note: `${name}: the default`, applied: true };
  const shown = `${name}: ${JSON.stringify(value)}`;
  try {
    return { value: build({ ...options, [name]: value } as O), note: shown, applied: true };
  } catch (error) {
    if (force || !isUnknownOption(error, name)) throw error;
    return { value: build(options), note: `${shown} wanted, but this version has no \`${name}\` option: ran without it`, applied: false };
  }
}

export function guardWithTokenCache(options: AuthenticateOptions, setting: CacheSetting): Built<RequestHandler> {
  return withOption(authenticate, options, 'tokenCache', setting, 'BENCH_TOKEN_CACHE');
}

export function issuerWithSecretCache(options: IssuerOptions, setting: CacheSetting): Built<Issuer> {
  return withOption(issuer, options, 'secretCache', setting, 'BENCH_SECRET_CACHE');
}

/** Whether this version of the library has the two options (for the report). */
export function optionSupport(): { tokenCache: boolean; secretCache: boolean } {
  const secret = 'bench-option-probe-secret-of-32-bytes-or-more';
  const probe = (build: () => unknown, name: string): boolean => {
    try {
      build();
      return true;
    } catch (error) {
      if (isUnknownOption(error, name)) return false;
      throw error;
    }
  };
  return {
    tokenCache: probe(() => authenticate({ secret, issuer: ISSUER, audience: AUDIENCE, tokenCache: false } as AuthenticateOptions), 'tokenCache'),
    secretCache: probe(
      () => issuer({ issuer: ISSUER, clients: [], signingKey: { secret }, rateLimit: false, secretHashCost: 4, secretCache: false } as IssuerOptions),
      'secretCache',
    ),
  };
}
