// The smallest complete app, in ESM TypeScript: clients from `create-client`, a key from `keygen`.
import { readFileSync } from 'node:fs';
import express from 'express';
import { issuer, MemoryClientStore, requireScope } from 'express-client-credentials';

const app = express();
app.use('/token', issuer({
  clients: MemoryClientStore.fromFile('clients.json'),                // made by `create-client --file`
  signingKey: { privateKey: readFileSync('signing-key.pem', 'utf8') }, // made by `keygen`
  issuer: process.env.OAUTH_ISSUER ?? 'http://127.0.0.1:3000',         // your public URL
}));
app.get('/reports', requireScope('read'), (req, res) => {
  res.json({ client: req.auth?.clientId, reports: [] });
});

const port = Number(process.env.PORT ?? 3000);
app.listen(port, '127.0.0.1', () => console.log(`listening on http://127.0.0.1:${port}`));
