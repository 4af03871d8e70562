// Checks shared by the factories' option resolvers: thrown at construction, naming the option and the fix.

import { ConfigurationError } from './errors.js';

/** Rejects anything but a plain options object with known keys, to catch typos. */
export function checkOptions(options: unknown, known: readonly string[], where: string): void {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new ConfigurationError(`${where} takes an options object`);
  }
  for (const name of Object.keys(options)) {
    if (!known.includes(name)) throw new ConfigurationError(`${where}: unknown option \`${name}\`; known options are ${known.join(', ')}`);
  }
}

export function positiveInteger(value: unknown, option: string, unit: string): number {
  if (!(Number.isSafeInteger(value) && (value as number) > 0)) {
    throw new ConfigurationError(`\`${option}\` must be a positive whole number of ${unit}`);
  }
  return value as number;
}

export function nonNegativeNumber(value: unknown, option: string, unit: string): number {
  if (!(typeof value === 'number' && Number.isFinite(value) && value >= 0)) {
    throw new ConfigurationError(`\`${option}\` must be a number of ${unit}, 0 or more`);
  }
  return value;
}

/** An http(s) URL without query or fragment (RFC 8414 §2 asks this of the issuer identifier). */
export function absoluteUrl(value: unknown, option: string): string {
  let url: URL | undefined;
  try {
    url = typeof value === 'string' ? new URL(value) : undefined;
  } catch {
    url = undefined;
  }
  if (url === undefined || !/^https?:$/.test(url.protocol) || url.search !== '' || url.hash !== '' || /[?#]/.test(String(value))) {
    throw new ConfigurationError(`\`${option}\` must be an absolute http(s) URL without query or fragment`);
  }
  return value as string;
}

export function boolean(value: unknown, option: string): boolean {
  if (typeof value !== 'boolean') throw new ConfigurationError(`\`${option}\` must be true or false`);
  return value;
}

export function oneOf<T extends string>(value: unknown, allowed: readonly T[], option: string): T {
  if (!allowed.includes(value as T)) throw new ConfigurationError(`\`${option}\` must be one of ${allowed.join(', ')}`);
  return value as T;
}
