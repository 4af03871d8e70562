#!/usr/bin/env node
// The express-client-credentials command: registers clients (RFC 7591 names) in a file or in
// PostgreSQL, by secret or by public key (RFC 7523), rotates their secrets, hashes secrets, makes
// signing keys (RFC 7517, RFC 7638) and fetches tokens (RFC 6749 §4.4).

import { createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { closeSync, fchmodSync, fsyncSync, openSync, readFileSync, realpathSync, renameSync, statSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { BCRYPT, CLIENT_AUTH_METHODS, DEFAULT_HASH_COST, generateClientSecret, hashCost, hashSecret, resolveClient, type Client, type ClientRecord } from './core/client.js';
import { tokenClient, TokenRequestError } from './client/token-client.js';
import { ConfigurationError } from './core/errors.js';
import { parseScope } from './core/scope.js';
import { publicJwkKey } from './core/remote-key-set.js';
import { isLoopbackHost } from './core/loopback.js';
import { httpUrl, isWebUrl } from './core/options.js';
import { jwkThumbprint, resolveSigningKey, type Jwk } from './core/signing-keys.js';
import { PostgresClientStore, postgresClientTableSql, type PostgresQueryable } from './stores/postgres-client-store.js';

const PROGRAM = 'express-client-credentials';
const KEY_ALGORITHMS = ['ES256', 'RS256', 'EdDSA'] as const;
type KeyAlgorithm = (typeof KEY_ALGORITHMS)[number];
/** keygen's algorithm without --alg: ES256, the issuer's own default, with short keys and signatures. */
const DEFAULT_KEY_ALGORITHM: KeyAlgorithm = 'ES256';
/** 3072 bits: about 128-bit security (NIST SP 800-57), like P-256 and Ed25519; RFC 7518 §3.3 asks 2048 at least. */
const RSA_BITS = 3072;
const TOKEN_TIMEOUT_MS = 10_000;
const DATABASE_TIMEOUT_MS = 10_000;
/** How long rotate-secret keeps the old secrets working, by default: a day to redeploy the client. */
const DEFAULT_OLD_EXPIRES_IN = 86_400;
/** Ten years: a longer roll-over is no roll-over, and expires_at stays far below 1e11 (milliseconds). */
const MAX_OLD_EXPIRES_IN = 315_360_000;

/** Where the command reads and writes; the entry point passes the process's own. */
export interface CliIo {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly stdinIsTty: boolean;
  readStdin(): Promise<Buffer>;
  out(text: string): void;
  err(text: string): void;
}

/** A mistake on the command line: one line on stderr, exit code 2. */
class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** A failure while doing what was asked: one line on stderr, exit code 1. */
class Failure extends Error {
  override readonly name = 'Failure';
}

type Flags = Readonly<Record<string, string | boolean | undefined>>;

interface FlagSpec {
  readonly type: 'string' | 'boolean';
  /** The placeholder shown in help, for string flags. */
  readonly value?: string | undefined;
  readonly help: string;
}

interface Command {
  readonly summary: string;
  readonly usage: string;
  readonly description: string;
  readonly flags: Readonly<Record<string, FlagSpec>>;
  readonly examples: readonly string[];
  readonly run: (flags: Flags, io: CliIo) => Promise<void>;
}

const AUTH_METHOD_FLAG: FlagSpec = {
  type: 'string',
  value: 'METHOD',
  help: 'client_secret_basic (HTTP Basic, the default) or client_secret_post (in the body)',
};

const DATABASE_FLAGS: Readonly<Record<string, FlagSpec>> = {
  schema: { type: 'string', value: 'NAME', help: 'schema of the clients table (default: public)' },
  table: { type: 'string', value: 'NAME', help: 'the clients table (default: oauth_clients)' },
};

const COMMANDS: Readonly<Record<string, Command>> = {
  'create-client': {
    summary: 'register a client: a new secret, or its public key, and its record for a clients file or PostgreSQL',
    usage: 'create-client --id ID --scope SCOPES [--public-key FILE | --jwks-uri URL] [flags]',
    description: [
      'Generates a 256-bit client secret and prints it once, on stderr. Prints the client record',
      '(RFC 7591 names, the secret as a bcrypt hash of cost 10) as JSON on stdout, or adds it to',
      'the JSON list in --file, which is written atomically (a new file gets mode 0600), or inserts',
      'it into the PostgreSQL table at --database-url (made by the migrate command).',
      'With --public-key or --jwks-uri the client authenticates with a JWT signed by its own key',
      '(private_key_jwt, RFC 7523) instead: no secret is made, and the record holds its public keys',
      '(jwks: each with a kid, the RFC 7638 thumbprint unless given, and use "sig") or their URL.',
    ].join('\n'),
    flags: {
      id: { type: 'string', value: 'ID', help: 'the client_id (required)' },
      scope: { type: 'string', value: 'SCOPES', help: 'space-delimited scopes the client may request (required)' },
      'default-scope': { type: 'string', value: 'SCOPES', help: 'scopes granted when a request names none (default: all of --scope)' },
      ttl: { type: 'string', value: 'SECONDS', help: "access token lifetime (default: the issuer's accessTokenTtl)" },
      'auth-method': {
        type: 'string',
        value: 'METHOD',
        help: 'pins the client to one method: client_secret_basic (HTTP Basic), client_secret_post (in the body), or private_key_jwt (needs --public-key or --jwks-uri, which imply it); without it, either secret method',
      },
      'public-key': { type: 'string', value: 'FILE', help: "the client's public key, no secret: a PEM public key, a JWK or a JWK Set (keygen prints one)" },
      'jwks-uri': { type: 'string', value: 'URL', help: 'where the client publishes its JWK Set, no secret: an https URL (http only for localhost)' },
      file: { type: 'string', value: 'FILE', help: 'add the record to this clients file; refuses an id it already holds' },
      'database-url': { type: 'string', value: 'URL', help: 'add the record to PostgreSQL instead (postgres://…); refuses an id it already holds' },
      ...DATABASE_FLAGS,
    },
    examples: [
      `${PROGRAM} create-client --id reports --scope "read write" --default-scope read --file clients.json`,
      `${PROGRAM} create-client --id reports --scope read --database-url "$DATABASE_URL"`,
      `${PROGRAM} keygen --alg ES256 --out svc.pem > svc.jwk.json && ${PROGRAM} create-client --id svc --scope read --public-key svc.jwk.json --file clients.json`,
    ],
    run: createClient,
  },
  'rotate-secret': {
    summary: "roll a client's secret over: a new secret, the old ones kept for a while",
    usage: 'rotate-secret --id ID (--file FILE | --database-url URL [--schema NAME] [--table NAME]) [--old-expires-in SECONDS]',
    description: [
      'Generates a new 256-bit secret and prints it once, on stderr; adds its bcrypt hash to the',
      "client's client_secret_hash, and gives each old hash an expires_at --old-expires-in seconds",
      'from now (one that expires sooner keeps its own), so the client can be redeployed with the new',
      'secret while the old one still works. Old hashes already expired are removed. Writes the record',
      'back to --file (atomically, keeping its mode) or to the table at --database-url, then prints it',
      'on stdout. Refuses an unknown id and a private_key_jwt client, changing nothing.',
    ].join('\n'),
    flags: {
      id: { type: 'string', value: 'ID', help: 'the client_id (required)' },
      file: { type: 'string', value: 'FILE', help: 'the clients file that holds the client' },
      'database-url': { type: 'string', value: 'URL', help: 'the PostgreSQL database that holds the client instead (postgres://…)' },
      ...DATABASE_FLAGS,
      'old-expires-in': {
        type: 'string',
        value: 'SECONDS',
        help: `how long the old secrets keep working (default: ${DEFAULT_OLD_EXPIRES_IN}, a day; 0 ends them at once)`,
      },
    },
    examples: [
      `${PROGRAM} rotate-secret --id reports --file clients.json`,
      `${PROGRAM} rotate-secret --id reports --database-url "$DATABASE_URL" --old-expires-in 3600`,
    ],
    run: rotateSecret,
  },
  migrate: {
    summary: 'create the PostgreSQL table of client registrations, if missing',
    usage: 'migrate [--database-url URL] [--schema NAME] [--table NAME] [--print]',
    description: [
      'Creates the table that PostgresClientStore reads (and its schema, unless public) if it does',
      'not exist; running it again changes nothing. The URL comes from --database-url or the',
      'DATABASE_URL environment variable. With --print, prints the SQL instead, for your own',
      'migration tool.',
    ].join('\n'),
    flags: {
      'database-url': { type: 'string', value: 'URL', help: 'the database, postgres://user@host:5432/db (default: DATABASE_URL)' },
      ...DATABASE_FLAGS,
      print: { type: 'boolean', help: 'print the SQL and connect to nothing' },
    },
    examples: [`DATABASE_URL=postgres://app@db:5432/app ${PROGRAM} migrate`, `${PROGRAM} migrate --schema auth --print > migrations/001_oauth_clients.sql`],
    run: migrate,
  },
  'hash-secret': {
    summary: 'hash a secret read from stdin with bcrypt, for client_secret_hash',
    usage: 'hash-secret [--cost N] < secret.txt',
    description: [
      'Reads the secret from stdin (never from the command line, where shells keep it), drops one',
      'trailing newline, and prints its bcrypt hash. bcrypt reads at most 72 bytes, so longer secrets',
      'are refused.',
    ].join('\n'),
    flags: {
      cost: { type: 'string', value: 'N', help: `bcrypt cost, 4 to 31 (default: ${DEFAULT_HASH_COST}, as the issuer's secretHashCost)` },
    },
    examples: [`printf %s "$CLIENT_SECRET" | ${PROGRAM} hash-secret`],
    run: hashSecretCommand,
  },
  keygen: {
    summary: 'make a signing key pair: a PKCS#8 PEM private key and its public JWK',
    usage: 'keygen [--alg ES256|RS256|EdDSA] [--kid KID] [--out FILE]',
    description: [
      `Makes a key pair (ES256: P-256; RS256: RSA ${RSA_BITS} bits; EdDSA: Ed25519). With --out, writes the`,
      'private key to FILE (mode 0600, never over an existing file) and prints the public JWK on',
      'stdout; without it, prints the private key on stdout and the public JWK on stderr.',
      'The kid defaults to the RFC 7638 thumbprint of the public key.',
    ].join('\n'),
    flags: {
      alg: { type: 'string', value: 'ALG', help: `ES256, RS256 or EdDSA (default: ${DEFAULT_KEY_ALGORITHM})` },
      kid: { type: 'string', value: 'KID', help: 'key id (default: the RFC 7638 thumbprint)' },
      out: { type: 'string', value: 'FILE', help: 'write the private key here instead of stdout' },
    },
    examples: [`${PROGRAM} keygen --out signing-key.pem > signing-key.jwk.json`, `${PROGRAM} keygen --alg EdDSA > signing-key.pem`],
    run: keygen,
  },
  token: {
    summary: 'get an access token from a token endpoint (client credentials grant)',
    usage: 'token --url TOKEN_URL --id CLIENT_ID [--scope SCOPES] [--auth-method METHOD]',
    description: [
      'POSTs grant_type=client_credentials and prints only the access_token on stdout. The secret',
      'comes from the OAUTH_CLIENT_SECRET environment variable or, if unset, from stdin; never from',
      `the command line. An OAuth error is printed as "${PROGRAM}: <error>: <description>" with exit code 1.`,
    ].join('\n'),
    flags: {
      url: { type: 'string', value: 'TOKEN_URL', help: 'the token endpoint (required)' },
      id: { type: 'string', value: 'CLIENT_ID', help: 'the client_id (required)' },
      scope: { type: 'string', value: 'SCOPES', help: 'space-delimited scopes to request (default: the client\'s default scopes)' },
      'auth-method': AUTH_METHOD_FLAG,
    },
    examples: [`TOKEN=$(OAUTH_CLIENT_SECRET=... ${PROGRAM} token --url https://auth.example.com/token --id reports --scope read)`],
    run: token,
  },
};

/**
 * Runs the command line and resolves to the exit code: 0, 1 for a failure, 2 for a usage error.
 * Never throws and never prints a stack trace.
 * @example process.exitCode = await main(['keygen', '--alg', 'ES256']);
 */
export async function main(argv: readonly string[], io: CliIo = processIo()): Promise<number> {
  try {
    await dispatch(argv, io);
    return 0;
  } catch (error: unknown) {
    if (error instanceof UsageError) {
      io.err(`${PROGRAM}: ${oneLine(error.message)}; see --help\n`);
      return 2;
    }
    io.err(`${PROGRAM}: ${oneLine(messageOf(error) ?? String(error))}\n`);
    return 1;
  }
}

async function dispatch(argv: readonly string[], io: CliIo): Promise<void> {
  const [name, ...rest] = argv;
  if (name === undefined) throw new UsageError('missing command');
  if (name === '--help' || name === '-h') return io.out(programHelp());
  if (name === '--version') return io.out(`${version()}\n`);
  if (name === 'help') {
    if (rest.length > 1) throw new UsageError('help takes one command at most');
    const topic = rest[0];
    return io.out(topic === undefined ? programHelp() : commandHelp(topic, lookup(topic)));
  }
  const command = lookup(name);
  const beforeEnd = rest.includes('--') ? rest.slice(0, rest.indexOf('--')) : rest;
  if (beforeEnd.includes('--help') || beforeEnd.includes('-h')) return io.out(commandHelp(name, command));
  await command.run(parseFlags(command, rest), io);
}

function lookup(name: string): Command {
  const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (command === undefined) {
    throw new UsageError(name.startsWith('-') ? `unknown option '${name}' (options follow the command)` : `unknown command '${name}'`);
  }
  return command;
}

function parseFlags(command: Command, args: readonly string[]): Flags {
  const options = Object.fromEntries(Object.entries(command.flags).map(([name, spec]) => [name, { type: spec.type }]));
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: [...args], options, strict: true, allowPositionals: false, tokens: true });
  } catch (error: unknown) {
    // parseArgs explains over several lines; the first one says it all.
    const message = (messageOf(error) ?? String(error)).split('\n')[0] ?? '';
    throw new UsageError(message.replace(/^\w/, (c) => c.toLowerCase()).replace(/\.$/, ''));
  }
  // parseArgs keeps the last of repeated flags; a repeated --scope is more likely a mistake.
  const seen = new Set<string>();
  for (const token of parsed.tokens ?? []) {
    if (token.kind !== 'option') continue;
    if (seen.has(token.name)) throw new UsageError(`--${token.name} is given more than once`);
    seen.add(token.name);
  }
  return parsed.values as Flags; // no flag is `multiple`, so no value is a list
}

// create-client ---------------------------------------------------------------------------------

/** A well-formed bcrypt hash, so a record is checked before a real hash is spent on it. */
const PLACEHOLDER_HASH = `$2b$${DEFAULT_HASH_COST}$${'.'.repeat(53)}`;
/** The flag behind each record field, to turn resolveClient's messages into the user's terms. */
const FLAG_OF_FIELD: Readonly<Record<string, string>> = {
  client_id: '--id',
  scope: '--scope',
  default_scope: '--default-scope',
  access_token_ttl: '--ttl',
  token_endpoint_auth_method: '--auth-method',
};

async function createClient(flags: Flags, io: CliIo): Promise<void> {
  const id = requiredString(flags, 'id');
  const scope = requiredString(flags, 'scope');
  const defaultScope = optionalString(flags, 'default-scope');
  const ttl = flags.ttl === undefined ? undefined : integerFlag(flags, 'ttl', 1, Number.MAX_SAFE_INTEGER, 'a positive whole number of seconds');
  const publicKeyFile = optionalString(flags, 'public-key');
  const jwksUri = optionalString(flags, 'jwks-uri');
  if (publicKeyFile !== undefined && jwksUri !== undefined) throw new UsageError('give --public-key or --jwks-uri, not both');
  if (publicKeyFile === '') throw new UsageError('--public-key must not be empty');
  const keyFlag = publicKeyFile !== undefined ? '--public-key' : jwksUri !== undefined ? '--jwks-uri' : undefined;
  const authMethod = oneOf(flags, 'auth-method', CLIENT_AUTH_METHODS);
  if (keyFlag !== undefined && authMethod !== undefined && authMethod !== 'private_key_jwt') {
    throw new UsageError(`${keyFlag} registers a private_key_jwt client, which has no secret; drop --auth-method ${authMethod}`);
  }
  if (keyFlag === undefined && authMethod === 'private_key_jwt') throw new UsageError('--auth-method private_key_jwt needs --public-key FILE or --jwks-uri URL');
  const uri = jwksUri === undefined ? undefined : jwksUriFlag(jwksUri);
  if (parseScope(scope)?.length === 0) throw new UsageError('--scope must name at least one scope');
  const fields = {
    scope,
    ...(defaultScope === undefined ? {} : { default_scope: defaultScope }),
    ...(ttl === undefined ? {} : { access_token_ttl: ttl }),
  };
  try {
    // The fields the flags set, checked before anything is read, hashed or stored; the keys are checked as they are read.
    resolveClient({ client_id: id, client_secret_hash: PLACEHOLDER_HASH, ...fields });
  } catch (error: unknown) {
    if (!(error instanceof ConfigurationError)) throw error;
    throw new UsageError(error.message.replace(/`(\w+)`/g, (quoted, field: string) => FLAG_OF_FIELD[field] ?? quoted));
  }
  const file = optionalString(flags, 'file');
  const databaseUrl = optionalString(flags, 'database-url');
  if (file !== undefined && databaseUrl !== undefined) throw new UsageError('give --file or --database-url, not both');
  if (databaseUrl === undefined && (flags.schema !== undefined || flags.table !== undefined)) throw new UsageError('--schema and --table go with --database-url');
  const table = databaseUrl === undefined ? undefined : tableOptions(flags);

  const keys = publicKeyFile === undefined ? undefined : { jwks: { keys: readPublicKeys(publicKeyFile) } };
  const make = async (): Promise<{ record: ClientRecord; secret?: string }> => {
    const publicKeys = keys ?? (uri === undefined ? undefined : { jwks_uri: uri });
    if (publicKeys !== undefined) return { record: { client_id: id, ...fields, token_endpoint_auth_method: 'private_key_jwt', ...publicKeys } };
    const secret = generateClientSecret();
    const record: ClientRecord = {
      client_id: id,
      client_secret_hash: await hashSecret(secret, DEFAULT_HASH_COST),
      ...fields,
      // Without --auth-method, either secret method: pinning is the operator's choice.
      ...(authMethod === undefined ? {} : { token_endpoint_auth_method: authMethod }),
    };
    return { record, secret };
  };

  if (databaseUrl !== undefined && table !== undefined) {
    await withDatabase(databaseUrl, async (db) => {
      const store = new PostgresClientStore(db, { ...table, cacheTtl: 0 });
      // Checked before a secret is made, as for a file; the insert refuses a race all the same.
      if ((await store.findClient(id)) !== undefined) throw new Failure(`client '${id}' is already in the database; nothing was changed`);
      await register(io, make, (created) => store.addClient(created));
    });
    io.err(`Added client '${id}' to the table ${tableName(table)}.\n`);
    return;
  }
  const clients = file === undefined ? undefined : readClientsFile(file);
  if (clients?.list.some((entry) => isRecord(entry) && entry.client_id === id)) {
    throw new Failure(`client '${id}' is already in ${file}; the file was left unchanged`);
  }
  await register(io, make, async (created) => {
    if (clients === undefined) return;
    clients.list.push(created);
    writeAtomically(clients.path, `${JSON.stringify(clients.document, null, 2)}\n`, clients.mode);
  });
  if (file !== undefined) io.err(`Added client '${id}' to ${file}.\n`);
}

/** Makes the record (and its secret, if any), has `store` keep it, prints it, and only then shows the secret. */
async function register(io: CliIo, make: () => Promise<{ record: ClientRecord; secret?: string }>, store: (created: ClientRecord) => Promise<void>): Promise<void> {
  const { record: created, secret } = await make();
  resolveClient(created);
  await store(created);
  io.out(`${JSON.stringify(created, null, 2)}\n`);
  // Only now, once the record is safely stored: a secret whose hash was lost would be useless.
  if (secret !== undefined) showSecret(io, secret);
}

function showSecret(io: CliIo, secret: string): void {
  io.err(`client_secret: ${secret}\n`);
  io.err('This secret will not be shown again: give it to the client now; only its hash is kept.\n');
}

/** RFC 7591 §2 `jwks_uri`: https, so that no one on the path can swap the keys; http only on this machine. */
function jwksUriFlag(value: string): string {
  const url = isWebUrl(value) ? new URL(value) : undefined;
  if (url === undefined || !(url.protocol === 'https:' || isLoopbackHost(url.hostname))) {
    throw new UsageError('--jwks-uri must be an absolute https URL without credentials or a fragment (http only for localhost, 127.0.0.1 or [::1])');
  }
  return url.href;
}

/** The members that make a JWK private (RFC 7518 §6.2.2, §6.3.2) or symmetric (§6.4.1). */
const PRIVATE_JWK_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'] as const;
const NOT_A_KEY = 'is not a PEM public key, a JWK or a JWK Set';

/**
 * The public keys in a PEM file, a JWK or a JWK Set, as registered in `jwks`: each checked as the
 * issuer will use it, its public members only, with a kid (kept, or the RFC 7638 thumbprint),
 * `use: "sig"`, and its `alg` if it named one. Anything private, or unusable, is refused.
 */
function readPublicKeys(file: string): Jwk[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8').trim();
  } catch (error: unknown) {
    throw new Failure(`cannot read ${file}: ${errorCode(error) ?? 'unknown error'}`);
  }
  let jwks: unknown[];
  if (text.startsWith('-----BEGIN ')) {
    jwks = [pemJwk(text, file)];
  } else {
    let document: unknown;
    try {
      document = JSON.parse(text);
    } catch {
      throw new Failure(`${file} ${NOT_A_KEY}`);
    }
    if (isRecord(document) && Array.isArray(document.keys)) jwks = document.keys as unknown[];
    else if (isRecord(document) && typeof document.kty === 'string') jwks = [document];
    else throw new Failure(`${file} ${NOT_A_KEY}`);
    if (jwks.length === 0) throw new Failure(`the JWK Set in ${file} has no keys`);
  }
  const kids = new Set<string>();
  return jwks.map((jwk, index) => {
    const which = jwks.length === 1 ? `the key in ${file}` : `key ${index + 1} of ${file}`;
    if (!isRecord(jwk)) throw new Failure(`${which} is not a JWK (a JSON object)`);
    const secret = PRIVATE_JWK_MEMBERS.filter((name) => name in jwk);
    if (secret.length > 0) {
      // Its values are never printed.
      throw new Failure(`${which} is private (it has ${secret.map((name) => `"${name}"`).join(', ')}): register only the public key, as keygen prints it`);
    }
    const key = publicJwkKey(jwk);
    if (key === undefined) {
      throw new Failure(`${which} is not a public signing key the issuer can use: RSA of 2048 bits or more, EC P-256 or Ed25519, with an alg that fits it, and "use" (if any) "sig"`);
    }
    // The kid as the issuer reads it: the JWK's own, or the RFC 7638 thumbprint of the key.
    const kid = typeof jwk.kid === 'string' ? jwk.kid : jwkThumbprint(key.key);
    if (kids.has(kid)) throw new Failure(`${file} holds two keys with kid '${kid}'`);
    kids.add(kid);
    // Exported again from the key: its public members only, whatever else the JWK carried.
    return { ...key.key.export({ format: 'jwk' }), kid, ...(typeof jwk.alg === 'string' ? { alg: jwk.alg } : {}), use: 'sig' };
  });
}

/** One public key in PEM (SPKI, PKCS#1 or an X.509 certificate), as a JWK. */
function pemJwk(pem: string, file: string): Jwk {
  // createPublicKey would take a private key too, and quietly derive its public half.
  if (/-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/.test(pem)) {
    throw new Failure(`${file} holds a private key: register only the public key (keygen --out prints it as a JWK)`);
  }
  if ((pem.match(/-----BEGIN /g) ?? []).length > 1) throw new Failure(`${file} holds more than one PEM block: give one public key, or a JWK Set`);
  try {
    return createPublicKey(pem).export({ format: 'jwk' });
  } catch {
    throw new Failure(`${file} ${NOT_A_KEY}`);
  }
}

// rotate-secret ---------------------------------------------------------------------------------

async function rotateSecret(flags: Flags, io: CliIo): Promise<void> {
  const id = requiredString(flags, 'id');
  const oldExpiresIn =
    flags['old-expires-in'] === undefined
      ? DEFAULT_OLD_EXPIRES_IN
      : integerFlag(flags, 'old-expires-in', 0, MAX_OLD_EXPIRES_IN, `a whole number of seconds from 0 to ${MAX_OLD_EXPIRES_IN} (ten years)`);
  const file = optionalString(flags, 'file');
  const databaseUrl = optionalString(flags, 'database-url');
  if (file !== undefined && databaseUrl !== undefined) throw new UsageError('give --file or --database-url, not both');
  if (file === undefined && databaseUrl === undefined) throw new UsageError('give --file or --database-url: where the client is');
  if (databaseUrl === undefined && (flags.schema !== undefined || flags.table !== undefined)) throw new UsageError('--schema and --table go with --database-url');

  if (databaseUrl !== undefined) {
    const table = tableOptions(flags);
    const nothing = 'nothing was changed';
    await withDatabase(databaseUrl, async (db) => {
      const store = new PostgresClientStore(db, { ...table, cacheTtl: 0 });
      // One transaction, and one rotation of a client at a time: two at once would each drop the other's new hash.
      await db.query('begin');
      await db.query("select pg_advisory_xact_lock(hashtext('express-client-credentials rotate-secret'), hashtext($1))", [id]);
      const current = await store.findClient(id);
      if (current === undefined) throw new Failure(`client '${id}' is not in the database; ${nothing}`);
      const rotation = await rotate(current, id, nothing, oldExpiresIn);
      await store.updateClient(rotation.record);
      await db.query('commit');
      reportRotation(io, rotation, `the table ${tableName(table)}`);
    });
    return;
  }
  const path = file as string;
  const nothing = 'the file was left unchanged';
  const clients = readClientsFile(path);
  const indexes = clients.list.flatMap((entry, index) => (isRecord(entry) && entry.client_id === id ? [index] : []));
  if (indexes.length === 0) throw new Failure(`client '${id}' is not in ${path}; ${nothing}`);
  if (indexes.length > 1) throw new Failure(`${path} holds client '${id}' more than once; ${nothing}`);
  const index = indexes[0] as number;
  const rotation = await rotate(clients.list[index], id, nothing, oldExpiresIn);
  clients.list[index] = rotation.record;
  writeAtomically(clients.path, `${JSON.stringify(clients.document, null, 2)}\n`, clients.mode);
  reportRotation(io, rotation, path);
}

interface Rotation {
  readonly record: ClientRecord;
  readonly secret: string;
  /** Old hashes left, each expiring. */
  readonly kept: readonly { readonly expires_at: number }[];
}

/**
 * The record with a new secret's hash last, each live old hash expiring `oldExpiresIn` seconds from
 * now at the latest, and the expired ones gone. The new hash has the cost of the newest old one,
 * which is what the issuer's secretHashCost was set to.
 */
async function rotate(current: unknown, id: string, nothing: string, oldExpiresIn: number): Promise<Rotation> {
  let client: Client;
  try {
    client = resolveClient(current);
  } catch (error: unknown) {
    if (!(error instanceof ConfigurationError)) throw error;
    throw new Failure(`the record of client '${id}' is not valid: ${error.message.replace(/"/g, "'")}; ${nothing}`);
  }
  if (client.authMethods.includes('private_key_jwt')) {
    throw new Failure(`client '${id}' authenticates with private_key_jwt and has no secret to rotate; ${nothing}`);
  }
  const record = current as ClientRecord;
  const secret = generateClientSecret();
  const newest = client.secrets.at(-1);
  const hash = await hashSecret(secret, newest === undefined ? DEFAULT_HASH_COST : hashCost(newest.hash));
  // Read the clock after hashing, so the old secrets get all of their time.
  const now = Date.now() / 1000;
  const until = Math.ceil(now) + oldExpiresIn;
  const entries = typeof record.client_secret_hash === 'string' ? [record.client_secret_hash] : [...(record.client_secret_hash ?? [])];
  // resolveClient made one secret of each entry, in order.
  const kept = oldExpiresIn === 0
    ? []
    : client.secrets.flatMap((entry, i) => {
        if (entry.expiresAt !== undefined && entry.expiresAt <= now) return [];
        const original: unknown = entries[i];
        const expires_at = Math.min(entry.expiresAt ?? until, until);
        return [isRecord(original) ? { ...original, hash: entry.hash, expires_at } : { hash: entry.hash, expires_at }];
      });
  const rotated: ClientRecord = { ...record, client_secret_hash: [...kept, hash] };
  resolveClient(rotated);
  return { record: rotated, secret, kept };
}

function reportRotation(io: CliIo, rotation: Rotation, where: string): void {
  io.out(`${JSON.stringify(rotation.record, null, 2)}\n`);
  showSecret(io, rotation.secret);
  const id = rotation.record.client_id;
  if (rotation.kept.length === 0) {
    io.err(`Rotated the secret of client '${id}' in ${where}; no old secret works any more.\n`);
    return;
  }
  const last = new Date(Math.max(...rotation.kept.map((entry) => entry.expires_at)) * 1000).toISOString();
  const old = rotation.kept.length === 1 ? 'the old secret works' : `its ${rotation.kept.length} old secrets work`;
  io.err(`Rotated the secret of client '${id}' in ${where}; ${old} until ${last}: give the client the new one before then.\n`);
}

interface ClientsFile {
  /** The file itself, symlinks resolved, so the rename replaces the file and not the link. */
  readonly path: string;
  /** The whole JSON document, a list or `{ "clients": [...] }`, written back with the new record. */
  readonly document: unknown;
  readonly list: unknown[];
  /** The mode to keep: the file's own, or 0600 for a new file (it holds secret hashes). */
  readonly mode: number;
}

function readClientsFile(file: string): ClientsFile {
  let text: string;
  let path: string;
  let mode: number;
  try {
    path = realpathSync(file);
    mode = statSync(path).mode & 0o777;
    text = readFileSync(path, 'utf8');
  } catch (error: unknown) {
    if (errorCode(error) !== 'ENOENT') throw new Failure(`cannot read ${file}: ${errorCode(error) ?? 'unknown error'}`);
    const list: unknown[] = [];
    return { path: file, document: list, list, mode: 0o600 };
  }
  // An empty file (`touch clients.json`) holds no clients yet.
  if (text.trim() === '') {
    const list: unknown[] = [];
    return { path, document: list, list, mode };
  }
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch {
    throw new Failure(`${file} is not valid JSON; the file was left unchanged`);
  }
  const list = Array.isArray(document) ? document : isRecord(document) && Array.isArray(document.clients) ? (document.clients as unknown[]) : undefined;
  if (list === undefined) {
    throw new Failure(`${file} must hold a JSON list of client records, or { "clients": [...] }; the file was left unchanged`);
  }
  return { path, document, list, mode };
}

/** Writes a temporary file next to the target, flushes it, and renames it over the target. */
function writeAtomically(path: string, text: string, mode: number): void {
  const temporary = join(dirname(path), `.${basename(path)}.${process.pid}.${Date.now()}.tmp`);
  let fd: number | undefined;
  try {
    fd = openSync(temporary, 'wx', mode);
    fchmodSync(fd, mode); // the umask may have narrowed an existing file's mode
    writeSync(fd, text);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(temporary, path);
  } catch (error: unknown) {
    if (fd !== undefined) closeSync(fd);
    try {
      unlinkSync(temporary);
    } catch {
      // It was never made, or was already renamed.
    }
    throw new Failure(`cannot write ${path}: ${errorCode(error) ?? 'unknown error'}`);
  }
}

// migrate and the database -----------------------------------------------------------------------

async function migrate(flags: Flags, io: CliIo): Promise<void> {
  const table = tableOptions(flags);
  if (flags.print === true) {
    if (flags['database-url'] !== undefined) throw new UsageError('--print connects to nothing; drop --database-url');
    return io.out(postgresClientTableSql(table));
  }
  const url = optionalString(flags, 'database-url') ?? (io.env.DATABASE_URL || undefined);
  if (url === undefined) throw new UsageError('missing --database-url, and DATABASE_URL is unset');
  await withDatabase(url, (db) => new PostgresClientStore(db, table).migrate());
  io.err(`The table ${tableName(table)} is ready.\n`);
}

function tableOptions(flags: Flags): { schema?: string; table?: string } {
  const options: { schema?: string; table?: string } = {};
  for (const name of ['schema', 'table'] as const) {
    const value = optionalString(flags, name);
    if (value === undefined) continue;
    if (value === '' || Buffer.byteLength(value) > 63) throw new UsageError(`--${name} must be a PostgreSQL name of 1 to 63 bytes`);
    options[name] = value;
  }
  return options;
}

function tableName(table: { schema?: string; table?: string }): string {
  return `${table.schema ?? 'public'}.${table.table ?? 'oauth_clients'}`;
}

/** Connects with `pg` (loaded only here: an optional dependency), runs `use`, and disconnects. */
async function withDatabase(url: string, use: (db: PostgresQueryable) => Promise<void>): Promise<void> {
  if (!/^postgres(ql)?:\/\//.test(url)) throw new UsageError('the database URL must start with postgres:// or postgresql://');
  let pg: typeof import('pg');
  try {
    pg = require('pg') as typeof import('pg');
  } catch {
    throw new Failure('writing to PostgreSQL needs the pg package: npm install pg');
  }
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: DATABASE_TIMEOUT_MS, query_timeout: DATABASE_TIMEOUT_MS });
  client.on('error', () => undefined); // a connection lost after the work is done
  try {
    await client.connect();
  } catch (error: unknown) {
    // The message never holds the URL, whose password it would print.
    throw new Failure(`cannot connect to the database: ${databaseReason(error)}`);
  }
  try {
    await use(client);
  } catch (error: unknown) {
    if (error instanceof Failure) throw error;
    if (error instanceof ConfigurationError) throw new Failure(error.message.replace(/"/g, "'") + '; nothing was changed');
    const hint = errorCode(error) === '42P01' ? '; run the migrate command first' : '';
    throw new Failure(`the database refused: ${databaseReason(error)}${hint}`);
  } finally {
    await client.end().catch(() => undefined);
  }
}

function databaseReason(error: unknown): string {
  const message = messageOf(error) ?? '';
  return printable(message === '' ? (errorCode(error) ?? 'unknown error') : message);
}

// hash-secret -----------------------------------------------------------------------------------

async function hashSecretCommand(flags: Flags, io: CliIo): Promise<void> {
  const cost = flags.cost === undefined ? DEFAULT_HASH_COST : integerFlag(flags, 'cost', BCRYPT.minCost, BCRYPT.maxCost, `a whole number from ${BCRYPT.minCost} to ${BCRYPT.maxCost}`);
  const secret = await readSecret(io, 'secret');
  if (Buffer.byteLength(secret) > BCRYPT.maxBytes) {
    throw new Failure(`the secret is longer than ${BCRYPT.maxBytes} bytes, and bcrypt reads only the first ${BCRYPT.maxBytes}; use a shorter one`);
  }
  io.out(`${await hashSecret(secret, cost)}\n`);
}

// keygen ----------------------------------------------------------------------------------------

async function keygen(flags: Flags, io: CliIo): Promise<void> {
  const alg = oneOf(flags, 'alg', KEY_ALGORITHMS) ?? DEFAULT_KEY_ALGORITHM;
  const kid = optionalString(flags, 'kid');
  const out = optionalString(flags, 'out');
  if (kid === '') throw new UsageError('--kid must not be empty');
  if (out === '') throw new UsageError('--out must not be empty');
  const privateKey = generatePrivateKey(alg);
  const { publicJwk } = resolveSigningKey({ privateKey, alg, ...(kid === undefined ? {} : { kid }) }, 'key');
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const jwk = `${JSON.stringify(publicJwk, null, 2)}\n`;
  if (out === undefined) {
    io.out(pem);
    io.err(jwk);
    return;
  }
  try {
    // 'wx': never over an existing file, even one made since we looked.
    writeFileSync(out, pem, { mode: 0o600, flag: 'wx' });
  } catch (error: unknown) {
    throw new Failure(errorCode(error) === 'EEXIST' ? `${out} already exists; it was left unchanged` : `cannot write ${out}: ${errorCode(error) ?? 'unknown error'}`);
  }
  io.out(jwk);
  io.err(`Wrote the ${alg} private key to ${out} (mode 0600).\n`);
}

function generatePrivateKey(alg: KeyAlgorithm): KeyObject {
  switch (alg) {
    case 'ES256':
      return generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    case 'RS256':
      return generateKeyPairSync('rsa', { modulusLength: RSA_BITS }).privateKey;
    case 'EdDSA':
      return generateKeyPairSync('ed25519').privateKey;
  }
}

// token -----------------------------------------------------------------------------------------

async function token(flags: Flags, io: CliIo): Promise<void> {
  const url = endpointUrl(requiredString(flags, 'url'));
  const clientId = requiredString(flags, 'id');
  const scope = optionalString(flags, 'scope');
  const method = authMethodFlag(flags);
  if (scope !== undefined && !parseScope(scope)?.length) throw new UsageError('--scope must be space-delimited scope tokens (RFC 6749 §3.3)');
  if (url.protocol === 'http:' && !isLoopbackHost(url.hostname)) {
    io.err(`${PROGRAM}: warning: sending the client secret over plain http; RFC 6749 §2.3.1 requires TLS\n`);
  }
  const fromEnv = io.env.OAUTH_CLIENT_SECRET;
  const secret = fromEnv !== undefined && fromEnv !== '' ? fromEnv : await readSecret(io, 'client secret', ' and OAUTH_CLIENT_SECRET is unset');

  try {
    // The library's own client, with no retries: a person is waiting at the prompt.
    const client = tokenClient({ tokenUrl: url.href, clientId, clientSecret: secret, authMethod: method, retries: 0, timeout: TOKEN_TIMEOUT_MS, ...(scope === undefined ? {} : { scope }) });
    io.out(`${await client.getToken()}\n`);
  } catch (error: unknown) {
    if (!(error instanceof TokenRequestError)) throw error;
    // tokenClient keeps the secret out of its messages, should a server echo it.
    if (error.error !== undefined) throw new Failure(`${error.error}: ${error.message}`);
    // fetch says only "fetch failed"; its cause says why (ECONNREFUSED, a bad certificate).
    const cause = isRecord(error.cause) && isRecord(error.cause.cause) ? error.cause.cause : error.cause;
    const code = errorCode(cause);
    throw new Failure(`POST ${url.href} failed: ${printable(error.message)}${code === undefined ? '' : ` (${code})`}`);
  }
}

function endpointUrl(value: string): URL {
  const url = httpUrl(value);
  if (url === undefined || value.includes('#')) throw new UsageError('--url must be an absolute http(s) URL without a fragment');
  if (url.username !== '' || url.password !== '') throw new UsageError('--url must not hold credentials; use --id and OAUTH_CLIENT_SECRET');
  return url;
}

// Shared helpers --------------------------------------------------------------------------------

/** Reads a secret from stdin and drops one trailing newline (from `echo` or an editor), no more. */
async function readSecret(io: CliIo, what: string, hint = ''): Promise<string> {
  if (io.stdinIsTty) io.err(`Type the ${what}, then Enter and Ctrl-D (it shows as you type; a pipe is safer):\n`);
  const bytes = await io.readStdin();
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new Failure('stdin is not valid UTF-8');
  }
  const secret = text.endsWith('\r\n') ? text.slice(0, -2) : text.endsWith('\n') ? text.slice(0, -1) : text;
  if (secret === '') throw new Failure(`no ${what} on stdin${hint}`);
  return secret;
}

function optionalString(flags: Flags, name: string): string | undefined {
  const value = flags[name];
  return typeof value === 'string' ? value : undefined;
}

function requiredString(flags: Flags, name: string): string {
  const value = optionalString(flags, name) ?? missing(name);
  if (value === '') throw new UsageError(`--${name} must not be empty`);
  return value;
}

function missing(name: string): never {
  throw new UsageError(`missing --${name}`);
}

function integerFlag(flags: Flags, name: string, min: number, max: number, expected: string): number {
  const value = optionalString(flags, name) ?? '';
  const number = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!(Number.isSafeInteger(number) && number >= min && number <= max)) throw new UsageError(`--${name} must be ${expected}`);
  return number;
}

function oneOf<T extends string>(flags: Flags, name: string, allowed: readonly T[]): T | undefined {
  const value = optionalString(flags, name);
  if (value === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(value)) throw new UsageError(`--${name} must be one of ${allowed.join(', ')}`);
  return value as T;
}

/** The methods with a client secret: the only ones this command line makes clients for, or sends. */
const SECRET_METHODS = ['client_secret_basic', 'client_secret_post'] as const;

function authMethodFlag(flags: Flags): (typeof SECRET_METHODS)[number] {
  return oneOf(flags, 'auth-method', SECRET_METHODS) ?? 'client_secret_basic';
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

// By shape, not instanceof: main() may run in another realm than the errors it meets (a vm, jest).
function errorCode(error: unknown): string | undefined {
  const code = isRecord(error) ? error.code : undefined;
  return typeof code === 'string' ? code : undefined;
}

function messageOf(error: unknown): string | undefined {
  const message = isRecord(error) ? error.message : undefined;
  return typeof message === 'string' ? message : undefined;
}

/** Control characters (a newline, a terminal escape) become spaces. */
function printable(text: string): string {
  return text.replace(/[\x00-\x1F\x7F-\x9F]+/g, ' ');
}

function oneLine(text: string): string {
  return printable(text).trim();
}

// Help ------------------------------------------------------------------------------------------

function programHelp(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((name) => name.length), 'help [COMMAND]'.length) + 2;
  return [
    `Usage: ${PROGRAM} <command> [flags]`,
    '',
    'OAuth 2.0 client credentials (RFC 6749 §4.4) for express-client-credentials.',
    '',
    'Commands:',
    ...Object.entries(COMMANDS).map(([name, command]) => `  ${name.padEnd(width)}${command.summary}`),
    `  ${'help [COMMAND]'.padEnd(width)}show this help, or a command's`,
    '',
    'Flags:',
    `  ${'-h, --help'.padEnd(width)}show help (also after a command)`,
    `  ${'--version'.padEnd(width)}print the version`,
    '',
    'Example:',
    `  ${PROGRAM} create-client --id reports --scope "read write" --file clients.json`,
    '',
    `Run '${PROGRAM} <command> --help' for a command's flags.`,
    '',
  ].join('\n');
}

function commandHelp(name: string, command: Command): string {
  const flagLines = [
    ...Object.entries(command.flags).map(([flag, spec]) => [`--${flag}${spec.value === undefined ? '' : ` ${spec.value}`}`, spec.help] as const),
    ['-h, --help', 'show this help'] as const,
  ];
  const width = Math.max(...flagLines.map(([left]) => left.length)) + 2;
  return [
    `Usage: ${PROGRAM} ${command.usage}`,
    '',
    `${name}: ${command.summary}.`,
    command.description,
    '',
    'Flags:',
    ...flagLines.map(([left, help]) => `  ${left.padEnd(width)}${help}`),
    '',
    command.examples.length === 1 ? 'Example:' : 'Examples:',
    ...command.examples.map((example) => `  ${example}`),
    '',
  ].join('\n');
}

function version(): string {
  try {
    // lib/cli.ts and dist/cli.js both sit one level below package.json.
    const manifest: unknown = JSON.parse(readFileSync(join(__dirname, '..', 'package.json'), 'utf8'));
    return isRecord(manifest) && typeof manifest.version === 'string' ? manifest.version : 'unknown';
  } catch {
    return 'unknown';
  }
}

// Entry point -----------------------------------------------------------------------------------

function processIo(): CliIo {
  return {
    // The secret of `token` comes from here; library code reads the environment only in env.ts.
    env: process.env,
    stdinIsTty: process.stdin.isTTY === true,
    readStdin: async () => {
      const chunks: Buffer[] = [];
      for await (const chunk of process.stdin) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk)));
      return Buffer.concat(chunks);
    },
    out: (text) => void process.stdout.write(text),
    err: (text) => void process.stderr.write(text),
  };
}

if (require.main === module) {
  // A reader that stops early (`| head`) closes the pipe: nothing is left to say, and no stack trace.
  for (const stream of [process.stdout, process.stderr]) stream.on('error', () => undefined);
  // exitCode, not exit(): lets piped stdout drain before the process ends.
  void main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
