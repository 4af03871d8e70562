// The split example, part 1: an authorization server alone. Clients come from OAUTH_CLIENTS_FILE,
// the key from OAUTH_SIGNING_KEY_FILE (or an ephemeral one); resource servers find its keys
// through /.well-known/oauth-authorization-server and /.well-known/jwks.json.

import express, { type Express } from 'express';
import { issuer } from 'express-client-credentials';

/** A JSON-lines logger: one object per line, as log shippers take them. */
const log = (record: object): void => console.log(JSON.stringify({ time: new Date().toISOString(), ...record }));

export function createAuthorizationServer(): Express {
  // Everything else from the OAUTH_* environment; audit events go to the JSON log.
  const tokens = issuer({ onAuditEvent: (event) => log({ level: event.type.endsWith('failed') || event.type === 'rate_limited' ? 'warn' : 'info', ...event }) });
  const app = express();
  app.disable('x-powered-by');
  app.use(tokens); // token, revocation, introspection, JWKS and metadata, each at its path
  return app;
}

if (require.main === module) {
  const port = Number(process.env.PORT || 4000);
  createAuthorizationServer().listen(port, '127.0.0.1', () => console.log(`authorization server on http://127.0.0.1:${port}`));
}
