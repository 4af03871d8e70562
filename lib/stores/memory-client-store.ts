// A client store held in memory, from a list of records or a JSON file of them.

import { readFileSync } from 'node:fs';
import { resolveClient, type ClientRecord } from '../core/client.js';
import { ConfigurationError } from '../core/errors.js';
import type { ClientStore } from '../core/stores.js';

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
      this.#records.set(client.id, structuredClone(record));
    }
  }

  /**
   * Reads a JSON file holding a list of client records (or `{ "clients": [...] }`). A missing file,
   * one that is not JSON (with where it breaks) and one that holds no list each get their own message.
   */
  static fromFile(path: string): MemoryClientStore {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (cause) {
      const code = (cause as { code?: unknown } | null)?.code;
      if (code === 'ENOENT') {
        throw new ConfigurationError(`the clients file ${path} does not exist: create it with npx express-client-credentials create-client --id ID --scope SCOPES --file ${path}`, { cause });
      }
      throw new ConfigurationError(`cannot read the clients file ${path}${typeof code === 'string' ? ` (${code})` : ''}`, { cause });
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      // No cause: JSON.parse quotes the text around the error, and the file holds secret hashes.
      throw new ConfigurationError(`the clients file ${path} is not valid JSON, at ${jsonSyntaxError(text)}`);
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

/**
 * Where JSON that JSON.parse refused breaks, and why (RFC 8259 §2 grammar), as "line L, column C
 * (position P): what is there instead of what should be". Found again here because Node 20's messages do not always say where, and
 * quote the text around it, which holds secret hashes.
 */
function jsonSyntaxError(text: string): string {
  let i = 0;
  const stop = (expected: string): never => {
    const found = text[i];
    const what = found === undefined ? 'the end of the file' : /^[\x21-\x7E]$/.test(found) ? `'${found}'` : `U+${found.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}`;
    throw new SyntaxError(`${what} where ${expected} should be`);
  };
  const space = (): void => {
    while (text[i] === ' ' || text[i] === '\t' || text[i] === '\n' || text[i] === '\r') i += 1;
  };
  const literal = /true|false|null|-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
  const string = (): void => {
    i += 1;
    for (;;) {
      const c = text[i];
      if (c === '"') return void (i += 1);
      if (c === undefined || c < ' ') stop('a closing "');
      if (c === '\\') {
        i += 1;
        if (text[i] === 'u' && /^[0-9a-fA-F]{4}$/.test(text.slice(i + 1, i + 5))) i += 4;
        else if (!'"\\/bfnrt'.includes(text[i] ?? 'x')) stop('an escape (\\n, \\", \\uXXXX...)');
      }
      i += 1;
    }
  };
  const list = (close: string, item: () => void): void => {
    i += 1;
    space();
    if (text[i] === close) return void (i += 1);
    for (;;) {
      item();
      space();
      if (text[i] === close) return void (i += 1);
      if (text[i] !== ',') stop(`',' or '${close}'`);
      i += 1;
    }
  };
  const value = (): void => {
    space();
    const c = text[i];
    if (c === '{') {
      return list('}', () => {
        space();
        if (text[i] !== '"') stop('a double-quoted property name');
        string();
        space();
        if (text[i] !== ':') stop("':'");
        i += 1;
        value();
      });
    }
    if (c === '[') return list(']', value);
    if (c === '"') return string();
    literal.lastIndex = i;
    const match = literal.exec(text);
    if (match === null) stop('a value');
    i += (match as RegExpExecArray)[0].length;
  };
  try {
    value();
    space();
    if (i < text.length) stop('the end of the file');
  } catch (error: unknown) {
    if (!(error instanceof SyntaxError)) return 'a depth of nesting too great to follow';
    const before = text.slice(0, i);
    const line = before.split('\n').length;
    const column = i - before.lastIndexOf('\n');
    return `line ${line}, column ${column} (position ${i}): ${error.message}`;
  }
  return 'a place JSON.parse alone knows';
}
