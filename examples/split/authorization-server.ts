// The split example, part 1: an authorization server alone. Clients come from OAUTH_CLIENTS_FILE,
// the key from OAUTH_SIGNING_KEY_FILE (or an ephemeral one); resource servers find its keys
// through /.well-known/oauth-authorization-server and /.well-known/jwks.json.

import express, { type Express } from 'express';
import { issuer } from 'express-client-credentials';

export function createAuthorizationServer(): Express {
  const tokens = issuer(); // everything from the OAUTH_* environment
  const app = express();
  app.disable('x-powered-by');
  app.use('/token', tokens);
  app.use('/revoke', tokens.revocation);
  app.use('/introspect', tokens.introspection);
  app.use('/.well-known/jwks.json', tokens.jwks);
  app.get(tokens.metadataPath, tokens.metadata);
  return app;
}

if (require.main === module) {
  const port = Number(process.env.PORT || 4000);
  createAuthorizationServer().listen(port, '127.0.0.1', () => console.log(`authorization server on http://127.0.0.1:${port}`));
}
