// How `requireScope()` alone finds the issuer to trust: the issuer a request passed through on its
// way (its middleware marks the request), else the process's only live issuer.

import type { Request } from 'express';
import type { RevocationStore } from '../core/stores.js';
import type { VerificationKey } from '../core/signing-keys.js';

/** What a guard needs to trust an issuer: its identifier, audience, keys and revocations. */
export interface TrustedIssuer {
  readonly issuer: string;
  readonly audience: string;
  readonly keys: () => readonly VerificationKey[];
  readonly revocations?: RevocationStore | undefined;
  /** Milliseconds a revocation lookup may take. */
  readonly storeTimeout?: number | undefined;
  /** Where guards verifying for this issuer report their 503s (the issuer's `onInternalError`, throttled). */
  readonly report?: ((kind: string, message: string) => void) | undefined;
}

/** A symbol on the request rather than a WeakMap entry, which would cost the garbage collector on every request. */
const PASSED = Symbol('express-client-credentials.issuer');
/** A request that passed through two issuers: which one a route trusts is not for mount order to decide. */
export const SEVERAL = Symbol('several issuers');
type MarkedRequest = Request & { [PASSED]?: TrustedIssuer | typeof SEVERAL };

export function markRequest(req: Request, trusted: TrustedIssuer): void {
  const marked = req as MarkedRequest;
  marked[PASSED] = marked[PASSED] === undefined || marked[PASSED] === trusted ? trusted : SEVERAL;
}

/** The issuer whose middleware this request passed through, if any, or SEVERAL. */
export function issuerOfRequest(req: Request): TrustedIssuer | typeof SEVERAL | undefined {
  return (req as MarkedRequest)[PASSED];
}

/** The issuers of this process that are not closed; weak, so that an issuer the app dropped is not kept alive. */
const live = new Set<WeakRef<TrustedIssuer>>();
let version = 0;

/** Registers a live issuer; the function returned unregisters it (at close). */
export function registerIssuer(trusted: TrustedIssuer): () => void {
  const ref = new WeakRef(trusted);
  live.add(ref);
  version += 1;
  return () => {
    if (live.delete(ref)) version += 1;
  };
}

/** A number that changes whenever an issuer is made or closed, so that what trusted the only one is made again. */
export const issuersVersion = (): number => version;

/** The one live issuer of this process, if there is exactly one. */
export function onlyIssuer(): TrustedIssuer | undefined {
  const found = [...live].map((ref) => ref.deref()).filter((trusted) => trusted !== undefined);
  return found.length === 1 ? found[0] : undefined;
}
