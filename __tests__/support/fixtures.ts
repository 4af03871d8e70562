// Fixtures with defaults plus overrides: real bcrypt hashes (cost 4), real keys, real Express apps.

import { createHmac, generateKeyPairSync, type KeyObject } from 'node:crypto';
import express, { type Express } from 'express';
import {
  issuer,
  hashSecret,
  MemoryClientStore,
  requireScope,
  type ClientRecord,
  type Issuer,
  type IssuerOptions,
} from 'express-client-credentials';

export const ISSUER = 'http://127.0.0.1:3000';
export const AUDIENCE = `${ISSUER}/api`;
export const SECRET = 'a-32-byte-secret-for-hs256-tests!';

export interface TestClient {
  readonly id: string;
  readonly secret: string;
  readonly record: ClientRecord;
}

let serial = 0;

/**
 * A client record with a real bcrypt hash of a fresh secret, of cost 4 unless `cost` says otherwise:
 * 10 for an issuer that keeps the default secretHashCost (the example server, zero configuration),
 * which warns `ECC_HASH_COST` about a hash of another cost.
 */
export async function aClient(overrides: Partial<ClientRecord> & { secret?: string; cost?: number } = {}): Promise<TestClient> {
  const { secret = `secret-${++serial}-${Math.random().toString(36).slice(2)}`, cost = 4, ...record } = overrides;
  const id = record.client_id ?? `client-${++serial}`;
  return {
    id,
    secret,
    record: { client_id: id, client_secret_hash: await hashSecret(secret, cost), scope: 'read write', ...record },
  };
}

export interface TokenServer {
  readonly app: Express;
  readonly issuer: Issuer;
}

/**
 * An app with every endpoint mounted as the README shows, and /api/data guarded by requireScope('read').
 * No clients on purpose is an empty store: an empty list would warn `ECC_NO_CLIENTS`, meant for a list read as empty by mistake.
 */
export function tokenServer(clients: readonly TestClient[], options: IssuerOptions = {}): TokenServer {
  const app = express();
  const registered = clients.length === 0 ? new MemoryClientStore([]) : clients.map((c) => c.record);
  const tokens = issuer({ issuer: ISSUER, signingKey: { secret: SECRET }, secretHashCost: 4, clients: registered, ...options });
  // Every endpoint at its default path, and the mark requireScope() alone finds the issuer by.
  app.use(tokens);
  app.get('/api/data', requireScope('read'), (req, res) => {
    res.json({ client_id: req.auth?.clientId, scope: req.auth?.scopes.join(' ') });
  });
  return { app, issuer: tokens };
}

export const keyPairs = {
  rsa: (): KeyObject => generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey,
  ec: (): KeyObject => generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey,
  ed25519: (): KeyObject => generateKeyPairSync('ed25519').privateKey,
};

/** Base64url of a JSON value, for forging tokens. */
export function b64(value: unknown): string {
  return Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');
}

export function decodePayload(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
}

export function decodeHeader(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[0] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
}

/** An HS256 token signed with `secret`, byte for byte as given: for forging tokens a library would refuse to sign. */
export function hs256(payload: unknown, header: Record<string, unknown> = { alg: 'HS256', typ: 'at+jwt' }, secret = SECRET): string {
  const input = `${b64(header)}.${b64(payload)}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}
