// requireScope() alone: what it trusts when no guard ran before it. Its own file, so that this
// module registry holds only the issuers made here, each closed when its test is done.

import express from 'express';
import request from 'supertest';
import { hashSecret, issuer, requireScope, type Issuer } from 'express-client-credentials';
import { mintToken } from 'express-client-credentials/testing';
import { forgetWarnings } from '../../lib/core/warnings.js';

const SECRET_A = 'a'.repeat(32);
const SECRET_B = 'b'.repeat(32);
const NAMES = ['NODE_ENV', 'OAUTH_ISSUER', 'OAUTH_TOKEN_SECRET', 'OAUTH_SIGNING_KEY_FILE', 'OAUTH_AUDIENCE'];
const saved = Object.fromEntries(NAMES.map((name) => [name, process.env[name]]));
afterEach(() => Object.entries(saved).forEach(([name, value]) => (value === undefined ? delete process.env[name] : (process.env[name] = value))));

let record: { client_id: string; client_secret_hash: string; scope: string };
beforeAll(async () => {
  record = { client_id: 'svc', client_secret_hash: await hashSecret('a-secret-of-sixteen', 4), scope: 'read' };
});

/** On a Router its URL cannot be seen, so it is given (ECC_MOUNT otherwise). */
const anIssuer = (secret: string, url: string): Issuer =>
  issuer({ issuer: url, signingKey: { secret }, secretHashCost: 4, clients: [record], endpoints: { token: `${url}/oauth/token` } });

/** An app with the issuer on a Router (which tells it nothing) and an API guarded by requireScope() alone. */
function appWith(tokens: Issuer) {
  const app = express();
  app.use('/oauth', express.Router().use('/token', tokens));
  app.get('/api', requireScope('read'), (req, res) => { res.json({ client_id: req.auth?.clientId }); });
  return app;
}

async function tokenOf(app: express.Express): Promise<string> {
  const { body } = await request(app).post('/oauth/token').type('form').send({ grant_type: 'client_credentials', client_id: 'svc', client_secret: 'a-secret-of-sixteen' }).expect(200);
  return body.access_token as string;
}

describe('requireScope() alone: an issuer on a Router, the environment, or nothing', () => {
  it("trusts the process's only live issuer, and follows it when that one is closed and another made", async () => {
    const first = anIssuer(SECRET_A, 'https://first.example');
    const app = appWith(first);
    const old = await tokenOf(app);
    await request(app).get('/api').set('Authorization', `Bearer ${old}`).expect(200, { client_id: 'svc' });
    await first.close();
    const second = anIssuer(SECRET_B, 'https://second.example');
    const api = express().use('/oauth', express.Router().use('/token', second));
    api.get('/api', requireScope('read'), (req, res) => { res.json({ client_id: req.auth?.clientId }); });
    const fresh = await tokenOf(api);
    await request(api).get('/api').set('Authorization', `Bearer ${fresh}`).expect(200);
    await request(api).get('/api').set('Authorization', `Bearer ${old}`).expect(401);
    await second.close();
  });

  it("prefers the environment's key to the process's only issuer, as before there was a fallback", async () => {
    Object.assign(process.env, { OAUTH_TOKEN_SECRET: SECRET_B, OAUTH_ISSUER: 'https://env.example' });
    const internal = anIssuer(SECRET_A, 'https://internal.example');
    const app = appWith(internal);
    const internalToken = await tokenOf(app);
    await request(app).get('/api').set('Authorization', `Bearer ${mintToken({ clientId: 'svc', scope: 'read' })}`).expect(200);
    await request(app).get('/api').set('Authorization', `Bearer ${internalToken}`).expect(401);
    await internal.close();
  });

  it('answers a broken environment with a JSON 500 server_error on every request, and says why once', async () => {
    forgetWarnings();
    Object.assign(process.env, { NODE_ENV: 'production', OAUTH_TOKEN_SECRET: SECRET_A });
    delete process.env.OAUTH_ISSUER;
    const app = express().get('/api', requireScope('read'), (_req, res) => { res.json({}); });
    const warning = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    try {
      for (let i = 0; i < 3; i++) {
        const res = await request(app).get('/api').set('Authorization', 'Bearer x');
        expect([res.status, res.body]).toEqual([500, { error: 'server_error', error_description: 'The server could not handle the request' }]);
      }
      expect(warning.mock.calls).toEqual([[expect.stringContaining('needs the `issuer` option or OAUTH_ISSUER under NODE_ENV=production'), { code: 'ECC_NO_GUARD' }]]);
    } finally {
      warning.mockRestore();
    }
  });
});
