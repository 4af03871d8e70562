// Client authentication at the token endpoint: RFC 6749 §2.3 and §3.2.1.

import bcrypt from 'bcryptjs';
import { hashCost, resolveClient, type Client, type ClientAuthMethod } from './client.js';
import { OAuthError } from './errors.js';
import { storeCall } from './store-call.js';
import type { ClientStore } from '../stores/client-store.js';

/** Credentials as presented, before they are checked. */
export interface ClientCredentials {
  readonly method: ClientAuthMethod;
  readonly clientId: string;
  readonly secret: string;
}

/** The parts of a token request that may carry credentials. */
export interface CredentialSources {
  /** The `Authorization` header, if any. */
  readonly authorization: string | undefined;
  /** Form parameters of the body (already checked for repeats). */
  readonly body: Readonly<Record<string, string>>;
  /** Names of the query string's parameters. */
  readonly queryNames: readonly string[];
}

const CREDENTIAL_PARAMS = ['client_id', 'client_secret', 'client_assertion', 'client_assertion_type'];

/** One `invalid_client` for every failure, so a caller learns nothing about which part was wrong. */
export function invalidClient(cause?: unknown): OAuthError {
  return new OAuthError('invalid_client', 401, 'Client authentication failed', {}, cause === undefined ? undefined : { cause });
}

/**
 * Finds the one authentication method a request uses (RFC 6749 §2.3: never more than one).
 * Throws `invalid_request` for mixed methods or URL credentials, `invalid_client` when none fits.
 */
export function extractCredentials({ authorization, body, queryNames }: CredentialSources): ClientCredentials {
  if (queryNames.some((name) => CREDENTIAL_PARAMS.includes(name))) {
    // RFC 6749 §2.3.1: the parameters "MUST NOT be included in the request URI".
    throw new OAuthError('invalid_request', 400, 'Client credentials must not be sent in the URL');
  }
  if (body.client_assertion !== undefined || body.client_assertion_type !== undefined) {
    throw invalidClient();
  }
  if (authorization !== undefined) {
    const basic = parseBasic(authorization);
    if (body.client_secret !== undefined) {
      throw new OAuthError('invalid_request', 400, 'The request uses more than one client authentication method');
    }
    if (basic === undefined) throw invalidClient();
    // RFC 6749 §3.2.1 lets a client repeat its id in the body; it must be the same id.
    if (body.client_id !== undefined && body.client_id !== basic.clientId) {
      throw new OAuthError('invalid_request', 400, 'The client_id parameter does not match the Authorization header');
    }
    return { method: 'client_secret_basic', ...basic };
  }
  if (body.client_id !== undefined && body.client_secret !== undefined) {
    return { method: 'client_secret_post', clientId: body.client_id, secret: body.client_secret };
  }
  // No credentials, or a client_id alone: a public client, which §4.4 does not serve.
  throw invalidClient();
}

/**
 * Decodes `Authorization: Basic` credentials. RFC 6749 §2.3.1 has clients form-urlencode the id
 * and the secret before base64 (Appendix B), so both are form-decoded here.
 */
export function parseBasic(header: string): { clientId: string; secret: string } | undefined {
  const match = /^basic +([A-Za-z0-9+/]+={0,2}) *$/i.exec(header);
  if (match === null) return undefined;
  const decoded = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  let pair: string;
  try {
    pair = decoded.decode(Buffer.from(match[1] as string, 'base64'));
  } catch {
    return undefined;
  }
  const colon = pair.indexOf(':');
  if (colon < 0) return undefined;
  const clientId = formDecode(pair.slice(0, colon));
  const secret = formDecode(pair.slice(colon + 1));
  if (clientId === undefined || secret === undefined || clientId === '' || secret === '') return undefined;
  return { clientId, secret };
}

/** The encoding RFC 6749 §2.3.1 asks of clients, for tests and our own token client. */
export function formatBasic(clientId: string, secret: string): string {
  return `Basic ${Buffer.from(`${formEncode(clientId)}:${formEncode(secret)}`).toString('base64')}`;
}

function formEncode(value: string): string {
  return new URLSearchParams([['', value]]).toString().slice(1);
}

function formDecode(value: string): string | undefined {
  try {
    return decodeURIComponent(value.replace(/\+/g, ' '));
  } catch {
    return undefined;
  }
}

export interface ClientAuthenticatorOptions {
  readonly store: ClientStore;
  /** Milliseconds a store lookup may take before the request fails with a 503. */
  readonly storeTimeout: number;
  /** bcrypt cost of the stored hashes: unknown clients are compared against a dummy hash of this cost. */
  readonly hashCost: number;
  /** Compares a secret with a bcrypt hash; a seam for tests that count comparisons. */
  readonly compare?: (secret: string, hash: string) => Promise<boolean>;
  /** Told once per client whose hash cost differs from `hashCost`, which would let timing tell it apart. */
  readonly onCostMismatch?: (clientId: string, cost: number) => void;
}

/**
 * Makes the function that checks credentials against the store. Every failure costs one bcrypt
 * comparison or more: an unknown client is compared against a dummy hash of the configured cost,
 * made once, here, so timing does not tell unknown clients from wrong secrets.
 */
export function clientAuthenticator(options: ClientAuthenticatorOptions): (credentials: ClientCredentials) => Promise<Client> {
  const compare = options.compare ?? bcrypt.compare;
  const dummyHash = bcrypt.hash('no client has this secret', options.hashCost);
  const mismatched = new Set<string>();

  return async function authenticateClient(credentials: ClientCredentials): Promise<Client> {
    const record = await storeCall(() => options.store.findClient(credentials.clientId), options.storeTimeout, 'The client registry is unavailable; try again later');
    if (record === undefined) {
      await compare(credentials.secret, await dummyHash);
      throw invalidClient();
    }
    let client: Client;
    try {
      client = resolveClient(record);
    } catch (cause) {
      throw new OAuthError('server_error', 500, 'The client registration is invalid', {}, { cause });
    }
    let matched = false;
    for (const hash of client.secretHashes) {
      if (hashCost(hash) !== options.hashCost && !mismatched.has(client.id)) {
        mismatched.add(client.id);
        options.onCostMismatch?.(client.id, hashCost(hash));
      }
      if ((matched = await compare(credentials.secret, hash))) break;
    }
    // bcrypt reads 72 bytes at most: a longer secret would match on its prefix alone.
    const whole = Buffer.byteLength(credentials.secret) <= 72;
    // Checked after the comparison, so a wrong method costs as much as a wrong secret.
    if (!matched || !whole || client.id !== credentials.clientId || client.authMethod !== credentials.method) throw invalidClient();
    return client;
  };
}
