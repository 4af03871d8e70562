// The memory stores, the single-process defaults, against the shared store contracts; and the clients file.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigurationError, MemoryClientStore, MemoryReplayCache, MemoryRevocationStore } from 'express-client-credentials';
import { aClient } from '../support/fixtures.js';
import { clientStoreContract, replayCacheContract, revocationStoreContract } from './contract.js';

revocationStoreContract('MemoryRevocationStore', () => new MemoryRevocationStore());
replayCacheContract('MemoryReplayCache', () => new MemoryReplayCache());
clientStoreContract('MemoryClientStore', (records) => new MemoryClientStore(records));

describe('MemoryClientStore.fromFile: a JSON list of client records (RFC 7591 names)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ecc-clients-file-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** The ConfigurationError fromFile throws for a file holding `text` (or for no file, when `text` is undefined). */
  function refusal(name: string, text?: string): { path: string; message: string; cause: unknown } {
    const path = join(dir, name);
    if (text !== undefined) writeFileSync(path, text);
    try {
      MemoryClientStore.fromFile(path);
    } catch (error: unknown) {
      expect(error).toBeInstanceOf(ConfigurationError);
      return { path, message: (error as Error).message, cause: (error as Error).cause };
    }
    throw new Error(`fromFile accepted ${name}`);
  }

  it('loads a list of records, and a { "clients": [...] } document', async () => {
    const client = await aClient({ client_id: 'reports', scope: 'read' });
    writeFileSync(join(dir, 'list.json'), JSON.stringify([client.record]));
    writeFileSync(join(dir, 'wrapped.json'), JSON.stringify({ clients: [client.record] }));
    expect(await MemoryClientStore.fromFile(join(dir, 'list.json')).findClient('reports')).toEqual(client.record);
    expect(await MemoryClientStore.fromFile(join(dir, 'wrapped.json')).findClient('reports')).toEqual(client.record);
  });

  it('says a missing file does not exist, naming the path and the create-client command that makes it', () => {
    const { path, message } = refusal('missing.json');
    expect(message).toBe(`the clients file ${path} does not exist: create it with npx express-client-credentials create-client --id ID --scope SCOPES --file ${path}`);
  });

  it.each([
    ['records without a comma between them', '[\n  {"client_id": "a"}\n  {"client_id": "b"}\n]', "line 3, column 3 (position 25): '{' where ',' or ']' should be"],
    ['an object with a trailing comma', '[{"client_id": "a",}]', "line 1, column 20 (position 19): '}' where a double-quoted property name should be"],
    ['a file cut off inside a record', '[{"client_id": "a",', 'line 1, column 20 (position 19): the end of the file where a double-quoted property name should be'],
    ['a property with no value', '{"clients": }', "line 1, column 13 (position 12): '}' where a value should be"],
    ['single-quoted property names', "[{'client_id': 'a'}]", "line 1, column 3 (position 2): ''' where a double-quoted property name should be"],
    ['a string broken across lines', '[{"client_id": "a\nb"}]', 'line 1, column 18 (position 17): U+000A where a closing " should be'],
    ['an empty file', '', 'line 1, column 1 (position 0): the end of the file where a value should be'],
    ['a second list after the first', '[]\n[]', "line 2, column 1 (position 3): '[' where the end of the file should be"],
  ])('refuses %s as invalid JSON, naming the path and the line, column and position where it breaks', (name, text, where) => {
    const { path, message, cause } = refusal(`broken-${name.replace(/\W+/g, '-')}.json`, text);
    expect(message).toBe(`the clients file ${path} is not valid JSON, at ${where}`);
    // JSON.parse's own message quotes the text around the error, which holds hashes: not kept.
    expect(cause).toBeUndefined();
    expect(message).not.toContain('does not exist');
  });

  it('says valid JSON that is no list of records must hold one', () => {
    const { path, message } = refusal('object.json', '{"client_id": "a"}');
    expect(message).toBe(`the clients file ${path} must hold a JSON list of client records`);
  });
});
