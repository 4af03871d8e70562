// The example: one Express app that is both the authorization server and the protected API.
// Configured by environment (see README): PORT, HOST, OAUTH_ISSUER, OAUTH_AUDIENCE,
// OAUTH_CLIENTS_FILE, OAUTH_SIGNING_KEY_FILE or OAUTH_TOKEN_SECRET; and, to run several copies as
// one server, REDIS_URL (with OAUTH_REDIS_PREFIX) and DATABASE_URL (with OAUTH_CLIENTS_TABLE).
// On SIGTERM or SIGINT it lets requests in flight finish (SHUTDOWN_TIMEOUT_MS, default 10000) and exits 0.

import { readFileSync } from 'node:fs';
import express, { type Express } from 'express';
import helmet from 'helmet';
import { Pool } from 'pg';
import { createClient } from 'redis';
import {
  authenticate,
  generateClientSecret,
  hashSecret,
  issuer,
  MemoryClientStore,
  protectedResource,
  requireScope,
  type ClientRecord,
  type IssuerOptions,
} from 'express-client-credentials';
import { PostgresClientStore } from 'express-client-credentials/postgres';
import { RedisReplayCache, RedisRevocationStore, redisRateLimitStores } from 'express-client-credentials/redis';

export interface ExampleServer {
  readonly app: Express;
  /** The demo client, made when neither OAUTH_CLIENTS_FILE nor DATABASE_URL is set. */
  readonly demoClient?: { readonly id: string; readonly secret: string } | undefined;
  /** What the server keeps where, one line each, for the start-up log. */
  readonly notes: readonly string[];
  /** Closes the issuer (its comparisons and workers), then the Redis and PostgreSQL connections, if any. */
  close(): Promise<void>;
}

export async function createExampleServer(): Promise<ExampleServer> {
  // The URL this server is reached at, which every token names as its issuer: OAUTH_ISSUER behind
  // a proxy or in production, else where it listens.
  const options: IssuerOptions = { issuer: process.env.OAUTH_ISSUER || `http://${process.env.HOST || '127.0.0.1'}:${process.env.PORT || 3000}` };
  const notes: string[] = [];
  const closers: (() => Promise<unknown>)[] = [];
  let closeIssuer = async (): Promise<void> => undefined;
  // The issuer first (it may still be asking the stores), then the stores.
  const close = async (): Promise<void> => {
    await closeIssuer();
    await Promise.allSettled(closers.map((closer) => closer()));
  };
  let demoClient: ExampleServer['demoClient'];
  try {
    const clientsFile = process.env.OAUTH_CLIENTS_FILE || undefined;
    if (process.env.DATABASE_URL) {
      const pool = new Pool({ connectionString: process.env.DATABASE_URL, connectionTimeoutMillis: 5000, query_timeout: 5000 });
      pool.on('error', (error) => console.error(`postgres: ${error.message}`));
      closers.push(() => pool.end());
      const table = process.env.OAUTH_CLIENTS_TABLE || 'oauth_clients';
      const clients = new PostgresClientStore(pool, { table });
      await clients.migrate(); // creates the table if missing; safe when copies start together
      const imported = clientsFile === undefined ? undefined : await importClients(clients, clientsFile);
      options.clients = clients;
      notes.push(`clients: PostgreSQL table ${table}${imported === undefined ? '' : `, ${imported} imported from ${clientsFile}`}`);
    } else if (clientsFile === undefined) {
      demoClient = { id: 'demo', secret: generateClientSecret() };
      options.clients = [{ client_id: demoClient.id, client_secret_hash: await hashSecret(demoClient.secret), scope: 'read write', default_scope: 'read' }];
    }
    // Without `clients`, issuer() reads OAUTH_CLIENTS_FILE; it always reads OAUTH_AUDIENCE and the key.

    if (process.env.REDIS_URL) {
      const redis = await connectRedis(process.env.REDIS_URL);
      closers.push(async () => redis.destroy());
      const prefix = process.env.OAUTH_REDIS_PREFIX || 'ecc:';
      const limits = redisRateLimitStores(redis, { prefix });
      options.revocations = new RedisRevocationStore(redis, { prefix });
      options.replayCache = new RedisReplayCache(redis, { prefix });
      options.rateLimit = {
        // A Redis that is down locks nobody out and lets nobody guess: the endpoints answer 503.
        failedAuthentication: { store: limits.failedAuthentication },
        // The volume cap fails open instead: the failure lock still guards secrets.
        perAddress: { store: limits.perAddress, passOnStoreError: true },
      };
      notes.push(`revocations, used assertion ids and rate limits: Redis, keys ${prefix}*`);
    }

    const tokens = issuer(options);
    closeIssuer = () => tokens.close();
    const app = express();
    app.disable('x-powered-by');
    // The headers the issuer's endpoints send (nosniff, a CSP, HSTS...), on every response here too:
    // the API's answers, its 401 and 403 challenges, and the metadata documents.
    app.use(helmet());
    // Every endpoint at the path of its URL: /token, /revoke, /introspect, /.well-known/jwks.json,
    // and the RFC 8414 metadata at /.well-known/oauth-authorization-server.
    app.use(tokens);

    // The API's RFC 9728 metadata: its identifier is the audience of its tokens, and every 401/403
    // challenge points to the document, so a client holding only a 401 finds the token endpoint.
    const api = protectedResource({ resource: tokens.trust.audience, authorizationServers: [tokens], scopesSupported: ['read', 'write'] });
    app.get([api.metadataPath, '/.well-known/oauth-protected-resource'], api.metadata);
    app.use('/api', authenticate({ issuer: tokens, resourceMetadata: api }));

    const answer = (req: express.Request, res: express.Response): void => {
      res.json({ client_id: req.auth?.clientId, scope: req.auth?.scopes.join(' ') });
    };
    app.get('/api/data', requireScope('read'), answer);
    app.post('/api/data', requireScope('write'), answer);
    return { app, demoClient, notes, close };
  } catch (error) {
    await close();
    throw error;
  }
}

/**
 * A node-redis client as the stores want it: commands fail at once while Redis is unreachable
 * (so requests get a 503 instead of waiting), reconnection goes on in the background, and start-up
 * fails if Redis cannot be reached at all.
 */
async function connectRedis(url: string) {
  let connected = false;
  let lastError = '';
  const redis = createClient({
    url,
    disableOfflineQueue: true,
    // During a stall, abandoned commands wait here, one per request: bound them.
    commandsQueueMaxLength: 10_000,
    socket: {
      connectTimeout: 5000,
      // Once connected, retry for ever; at start-up, give up after three tries.
      reconnectStrategy: (retries, cause) => (connected ? Math.min(100 * 2 ** retries, 2000) : retries < 3 ? 200 : new Error(`cannot reach Redis: ${cause.message}`)),
    },
  });
  // node-redis throws an 'error' event nobody listens to; say each new problem once.
  redis.on('error', (error: Error) => {
    if (error.message !== lastError) console.error(`redis: ${error.message || error.name}`);
    lastError = error.message;
  });
  redis.on('ready', () => {
    connected = true;
    lastError = '';
  });
  await redis.connect();
  return redis;
}

/** Adds the file's clients that the table does not have yet; several copies may do it at once. */
async function importClients(clients: PostgresClientStore, file: string): Promise<number> {
  MemoryClientStore.fromFile(file); // validates the whole file first, with its error messages
  const parsed: unknown = JSON.parse(readFileSync(file, 'utf8'));
  const records = (Array.isArray(parsed) ? parsed : (parsed as { clients: unknown[] }).clients) as ClientRecord[];
  let added = 0;
  for (const record of records) {
    if ((await clients.findClient(record.client_id)) !== undefined) continue;
    try {
      await clients.addClient(record);
      added += 1;
    } catch (error) {
      // Another copy added it since we looked.
      clients.invalidate(record.client_id);
      if ((await clients.findClient(record.client_id)) === undefined) throw error;
    }
  }
  return added;
}

/** Milliseconds in-flight requests get to finish after SIGTERM or SIGINT, before their connections are cut. */
const SHUTDOWN_GRACE = Number(process.env.SHUTDOWN_TIMEOUT_MS || 10_000);

if (require.main === module) {
  const host = process.env.HOST || '127.0.0.1';
  const port = Number(process.env.PORT || 3000);
  if (!(SHUTDOWN_GRACE >= 0)) throw new Error('SHUTDOWN_TIMEOUT_MS must be a number of milliseconds');
  createExampleServer().then(
    (example) => {
      const server = example.app.listen(port, host, () => {
        for (const note of example.notes) console.log(note);
        console.log(`express-client-credentials example on http://${host}:${port}`);
        if (example.demoClient !== undefined) {
          console.log(`demo client (no OAUTH_CLIENTS_FILE): client_id=${example.demoClient.id} client_secret=${example.demoClient.secret}`);
        }
      });
      let stopping = false;
      // Node 20 keeps a keep-alive connection open after its answer, even once the server is closed,
      // until keepAliveTimeout (5 s): while stopping, each answer closes its connection once sent.
      server.on('request', (_req, res) => {
        res.on('finish', () => {
          if (stopping) server.closeIdleConnections();
        });
      });
      let signalledAt = 0;
      const shutdown = (signal: NodeJS.Signals): void => {
        if (stopping) {
          // A second signal means now. But one Ctrl-C under npm start arrives twice, a few ms apart:
          // from the terminal, and forwarded by npm.
          if (Date.now() - signalledAt > 500) process.exit(1);
          return;
        }
        stopping = true;
        signalledAt = Date.now();
        console.log(`${signal}: shutting down`);
        // No new connections, and the idle ones close now. The callback runs once the requests in
        // flight are answered: only then close the issuer, then the stores.
        server.close(() => {
          void example.close().then(
            () => (console.log('closed'), process.exit(0)),
            (error: unknown) => (console.error(`shutdown: ${error instanceof Error ? error.message : String(error)}`), process.exit(1)),
          );
        });
        server.closeIdleConnections();
        // Requests still running after the grace period are cut; if closing then hangs, exit anyway.
        setTimeout(() => server.closeAllConnections(), SHUTDOWN_GRACE).unref();
        setTimeout(() => (console.error('shutdown: still closing, exiting anyway'), process.exit(1)), SHUTDOWN_GRACE + 5000).unref();
      };
      process.on('SIGTERM', shutdown).on('SIGINT', shutdown);
    },
    (error: unknown) => {
      console.error(error instanceof Error ? error.message : error);
      process.exit(1);
    },
  );
}
