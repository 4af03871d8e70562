// The issuer's keys, with one owner: the key that signs, every key tokens are accepted with, the
// published key set (RFC 7517), and rotation, which swaps all of them at once.

import { ConfigurationError } from './errors.js';
import { jsonWebKeySet } from './metadata.js';
import { checkOptions } from './options.js';
import { resolveSigningKey, type SigningKey, type SigningKeyInput } from './signing-keys.js';

/** The keys of an issuer at one moment: one signs, all are published and accepted. */
export interface SigningKeys {
  signingKey: SigningKeyInput;
  additionalKeys?: readonly SigningKeyInput[] | undefined;
}

interface Ring {
  readonly active: SigningKey;
  readonly all: readonly SigningKey[];
  readonly jwks: string;
}

export class KeyRing {
  #ring: Ring;

  constructor(keys: SigningKeys) {
    this.#ring = resolveRing(keys);
  }

  /** The key new tokens are signed with. */
  get active(): SigningKey {
    return this.#ring.active;
  }

  /** Every key a token of this issuer may be signed with: the active one first. */
  get all(): readonly SigningKey[] {
    return this.#ring.all;
  }

  /** The public key set as JSON text, serialized once per rotation. */
  get jwks(): string {
    return this.#ring.jwks;
  }

  /** Replaces every key at once; on a bad key, throws and keeps the keys it had. */
  rotate(keys: SigningKeys): void {
    checkOptions(keys, ['signingKey', 'additionalKeys'], 'rotateKeys()');
    this.#ring = resolveRing(keys);
  }
}

function resolveRing({ signingKey, additionalKeys = [] }: SigningKeys): Ring {
  if (!Array.isArray(additionalKeys)) throw new ConfigurationError('`additionalKeys` must be a list of keys');
  const active = resolveSigningKey(signingKey);
  const all = [active, ...additionalKeys.map((key, i) => resolveSigningKey(key, `additionalKeys[${i}]`))];
  const kids = all.map((key) => key.kid);
  if (new Set(kids).size !== kids.length) throw new ConfigurationError('every signing key needs its own `kid`');
  return { active, all, jwks: JSON.stringify(jsonWebKeySet(all)) };
}
