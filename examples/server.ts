// The example: one Express app that is both the authorization server and the protected API.
// Configured by environment (see README): PORT, HOST, OAUTH_ISSUER, OAUTH_AUDIENCE,
// OAUTH_CLIENTS_FILE, OAUTH_SIGNING_KEY_FILE or OAUTH_TOKEN_SECRET.

import express, { type Express } from 'express';
import { generateClientSecret, hashSecret, issuer, requireScope, type ClientRecord } from 'express-client-credentials';

export interface ExampleServer {
  readonly app: Express;
  /** The demo client, made when OAUTH_CLIENTS_FILE is not set. */
  readonly demoClient?: { readonly id: string; readonly secret: string };
}

export async function createExampleServer(): Promise<ExampleServer> {
  let clients: ClientRecord[] | undefined;
  let demoClient: ExampleServer['demoClient'];
  if (!process.env.OAUTH_CLIENTS_FILE) {
    demoClient = { id: 'demo', secret: generateClientSecret() };
    clients = [{ client_id: demoClient.id, client_secret_hash: await hashSecret(demoClient.secret), scope: 'read write', default_scope: 'read' }];
  }

  // issuer() reads OAUTH_ISSUER, OAUTH_AUDIENCE, the key and (without `clients`) OAUTH_CLIENTS_FILE.
  const tokens = issuer(clients === undefined ? {} : { clients });
  const app = express();
  app.disable('x-powered-by');
  app.use('/token', tokens);
  app.use('/revoke', tokens.revocation);
  app.use('/introspect', tokens.introspection);
  app.use('/.well-known/jwks.json', tokens.jwks);
  app.get(tokens.metadataPath, tokens.metadata); // /.well-known/oauth-authorization-server

  // requireScope() alone verifies with the keys of the issuer mounted in this app.
  const answer = (req: express.Request, res: express.Response): void => {
    res.json({ client_id: req.auth?.clientId, scope: req.auth?.scopes.join(' ') });
  };
  app.get('/api/data', requireScope('read'), answer);
  app.post('/api/data', requireScope('write'), answer);
  return { app, demoClient };
}

if (require.main === module) {
  const host = process.env.HOST || '127.0.0.1';
  const port = Number(process.env.PORT || 3000);
  createExampleServer().then(
    ({ app, demoClient }) => {
      app.listen(port, host, () => {
        console.log(`express-client-credentials example on http://${host}:${port}`);
        if (demoClient !== undefined) {
          console.log(`demo client (no OAUTH_CLIENTS_FILE): client_id=${demoClient.id} client_secret=${demoClient.secret}`);
        }
      });
    },
    (error: unknown) => {
      console.error(error instanceof Error ? error.message : error);
      process.exit(1);
    },
  );
}
