// A client store held in memory, from a list of records or a JSON file of them.

import { readFileSync } from 'node:fs';
import { resolveClient, type ClientRecord } from '../core/client.js';
import { ConfigurationError } from '../core/errors.js';
import type { ClientStore } from './client-store.js';

/**
 * Client registrations in memory, validated when the store is made.
 * @example
 * const clients = new MemoryClientStore([{ client_id: 'reports', client_secret_hash: hash, scope: 'read' }]);
 * const fromFile = MemoryClientStore.fromFile('clients.json');
 */
export class MemoryClientStore implements ClientStore {
  readonly #records = new Map<string, ClientRecord>();

  constructor(records: readonly ClientRecord[]) {
    if (!Array.isArray(records)) throw new ConfigurationError('MemoryClientStore takes a list of client records');
    for (const record of records) {
      const client = resolveClient(record);
      if (this.#records.has(client.id)) throw new ConfigurationError(`client ${JSON.stringify(client.id)} is registered twice`);
      if ('client_secret' in record) {
        process.emitWarning(
          `client ${JSON.stringify(client.id)} has a plaintext client_secret field; it is ignored: store only client_secret_hash`,
          { code: 'ECC_PLAINTEXT_SECRET' },
        );
      }
      this.#records.set(client.id, structuredClone(record));
    }
  }

  /** Reads a JSON file holding a list of client records (or `{ "clients": [...] }`). */
  static fromFile(path: string): MemoryClientStore {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(path, 'utf8'));
    } catch (cause) {
      throw new ConfigurationError(`cannot read the clients file ${path}: it must be a JSON list of client records`, { cause });
    }
    const records = Array.isArray(parsed) ? parsed : (parsed as { clients?: unknown } | null)?.clients;
    if (!Array.isArray(records)) throw new ConfigurationError(`the clients file ${path} must hold a JSON list of client records`);
    return new MemoryClientStore(records as ClientRecord[]);
  }

  /** Every scope some client may request, for `scopes_supported`. */
  scopes(): string[] {
    return [...new Set([...this.#records.values()].flatMap((record) => resolveClient(record).scopes))];
  }

  async findClient(clientId: string): Promise<ClientRecord | undefined> {
    return this.#records.get(clientId);
  }
}
