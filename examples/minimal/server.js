// The smallest complete app, in CommonJS: a token endpoint (RFC 6749 §4.4) and an API guarded by scope.
const { readFileSync } = require('node:fs');
const express = require('express');
const { hashSecret, issuer, requireScope } = require('express-client-credentials');

async function main() {
  // hashSecret() is async, hence main(); or paste a hash made beforehand with `hash-secret`.
  const secret = process.env.REPORTS_SECRET;
  if (!secret) throw new Error('set REPORTS_SECRET to the secret of the client "reports"');
  const clients = [{ client_id: 'reports', client_secret_hash: await hashSecret(secret), scope: 'read' }];

  const app = express();
  app.use('/token', issuer({
    clients,
    signingKey: { privateKey: readFileSync('signing-key.pem', 'utf8') }, // made by `keygen`
    issuer: process.env.OAUTH_ISSUER ?? 'http://127.0.0.1:3000',         // your public URL
  }));
  app.get('/reports', requireScope('read'), (req, res) => res.json({ client: req.auth.clientId, reports: [] }));

  const port = Number(process.env.PORT ?? 3000);
  app.listen(port, '127.0.0.1', () => console.log(`listening on http://127.0.0.1:${port}`));
}

main().catch((error) => { console.error(error.message); process.exit(1); });
