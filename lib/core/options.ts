// Checks shared by the factories' option resolvers: thrown at construction, naming the option and the fix.

import { ConfigurationError, isQuotable } from './errors.js';

/** Rejects anything but a plain options object with known keys, to catch typos. */
export function checkOptions(options: unknown, known: readonly string[], where: string): void {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new ConfigurationError(`${where} takes an options object`);
  }
  for (const name of Object.keys(options)) {
    if (!known.includes(name)) throw new ConfigurationError(`${where}: unknown option \`${name}\`${didYouMean(name, known)}; known options are ${known.join(', ')}`);
  }
}

/** ` (did you mean \`scope\`?)` for the known name nearest to a misspelt one, if one is near enough to be meant. */
export function didYouMean(name: string, known: readonly string[]): string {
  // A name far longer than any known one was meant as none of them, and its table would cost.
  if (name.length > 64) return '';
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of known) {
    const distance = editDistance(name.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) [best, bestDistance] = [candidate, distance];
  }
  // Near: a slip or two, or a plural, in names of some length; a wholly other word is not suggested.
  return best !== undefined && bestDistance <= Math.max(1, Math.floor(best.length / 4)) ? ` (did you mean \`${best}\`?)` : '';
}

/** Edit distance counting insertions, deletions, substitutions and swaps of neighbours (`scpoe`) as one each. */
function editDistance(a: string, b: string): number {
  const rows = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const row = rows[i]!;
      row[j] = Math.min(rows[i - 1]![j]! + 1, row[j - 1]! + 1, rows[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) row[j] = Math.min(row[j]!, rows[i - 2]![j - 2]! + 1);
    }
  }
  return rows[a.length]![b.length]!;
}

/** The options without the names whose value is `undefined`: an option set to `undefined` is absent. */
export function definedOptions<T extends object>(options: T): { [K in keyof T]?: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined)) as { [K in keyof T]?: Exclude<T[K], undefined> };
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

/** The URL, when `value` is an absolute http(s) URL: the one parse behind every URL check. */
export function httpUrl(value: unknown): URL | undefined {
  if (typeof value !== 'string' || !URL.canParse(value)) return undefined;
  const url = new URL(value);
  return /^https?:$/.test(url.protocol) ? url : undefined;
}

/** An http(s) URL requests can go to: a query is fine, a fragment (even an empty one) or credentials are not. */
export function isWebUrl(value: unknown): value is string {
  const url = httpUrl(value);
  return url !== undefined && !(value as string).includes('#') && url.username === '' && url.password === '';
}

/** An http(s) URL without query or fragment (RFC 8414 §2 asks this of the issuer identifier). */
export function absoluteUrl(value: unknown, option: string): string {
  const url = httpUrl(value);
  if (url === undefined || url.search !== '' || url.hash !== '' || /[?#]/.test(String(value))) {
    throw new ConfigurationError(`\`${option}\` must be an absolute http(s) URL without query or fragment`);
  }
  return value as string;
}

/** A `realm` for a challenge (RFC 9110 §11.6.1): it must stand in a quoted-string as it is. */
export function realmOption(value: unknown): string {
  if (typeof value !== 'string' || !isQuotable(value)) throw new ConfigurationError('`realm` must be printable ASCII without " or \\');
  return value;
}

export function boolean(value: unknown, option: string): boolean {
  if (typeof value !== 'boolean') throw new ConfigurationError(`\`${option}\` must be true or false`);
  return value;
}

export function oneOf<T extends string>(value: unknown, allowed: readonly T[], option: string): T {
  if (!allowed.includes(value as T)) throw new ConfigurationError(`\`${option}\` must be one of ${allowed.join(', ')}`);
  return value as T;
}
