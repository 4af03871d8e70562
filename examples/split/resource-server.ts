// The split example, part 2: a resource server in its own process. It shares no secret with the
// authorization server: it discovers its JWKS from OAUTH_ISSUER and verifies tokens with it.

import express, { type Express } from 'express';
import { authenticate, requireScope } from 'express-client-credentials';

export function createResourceServer(issuer: string, audience: string): Express {
  const app = express();
  app.disable('x-powered-by');
  app.use('/api', authenticate({ issuer, audience, discover: true }));
  app.get('/api/reports', requireScope('read'), (req, res) => {
    res.json({ reports: ['q1', 'q2'], client_id: req.auth?.clientId });
  });
  return app;
}

if (require.main === module) {
  const port = Number(process.env.PORT || 4001);
  const issuer = process.env.OAUTH_ISSUER || 'http://127.0.0.1:4000';
  const audience = process.env.OAUTH_AUDIENCE || `http://127.0.0.1:${port}/api`;
  createResourceServer(issuer, audience).listen(port, '127.0.0.1', () => console.log(`resource server on http://127.0.0.1:${port}`));
}
