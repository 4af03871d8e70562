// The test helpers, used the way the README shows: a user's own jest + supertest suite.

import express from 'express';
import request from 'supertest';
import { authenticate, requireScope } from 'express-client-credentials';
import { mintToken, testIssuer } from 'express-client-credentials/testing';
import { forgetWarnings } from '../lib/core/warnings.js';

// --- README: testing your routes ---------------------------------------------------------------
const test = testIssuer();
const app = express();
app.get('/reports', authenticate(test.guardOptions), requireScope('read'), (req, res) => {
  res.json({ client: req.auth?.clientId });
});

it('serves reports to a client with the read scope', async () => {
  const token = test.token({ clientId: 'billing', scope: 'read' });
  await request(app).get('/reports').set('Authorization', `Bearer ${token}`).expect(200, { client: 'billing' });
});

it('refuses a client without it', async () => {
  const token = test.token({ clientId: 'billing', scope: 'write' });
  await request(app).get('/reports').set('Authorization', `Bearer ${token}`).expect(403);
});
// ------------------------------------------------------------------------------------------------

describe('testIssuer()', () => {
  it.each(['ES256', 'RS256', 'EdDSA'] as const)('mints %s tokens its guard options accept', async (alg) => {
    const own = testIssuer({ alg, issuer: 'https://as.test', audience: 'https://api.test' });
    const guarded = express().get('/x', authenticate(own.guardOptions), (req, res) => { res.json(req.auth?.claims); });
    const res = await request(guarded).get('/x').set('Authorization', `Bearer ${own.token({ scope: ['a', 'b'] })}`).expect(200);
    expect(res.body).toMatchObject({ iss: 'https://as.test', aud: 'https://api.test', client_id: 'test-client', scope: 'a b' });
  });

  it('mints tokens a guard refuses, for testing refusals', async () => {
    const expired = await request(app).get('/reports').set('Authorization', `Bearer ${test.token({ scope: 'read', expiresIn: -60 })}`);
    expect(expired.body.error_description).toBe('The token has expired');
    const elsewhere = await request(app).get('/reports').set('Authorization', `Bearer ${test.token({ scope: 'read', claims: { aud: 'https://other.test' } })}`);
    expect(elsewhere.body.error_description).toBe('The token audience is not this resource');
    const other = testIssuer();
    expect((await request(app).get('/reports').set('Authorization', `Bearer ${other.token({ scope: 'read' })}`)).status).toBe(401);
  });
});

describe('mintToken()', () => {
  const SECRET = 'a-secret-of-thirty-two-bytes-or-more!';

  it('signs for a guard configured with a shared secret', async () => {
    const guarded = express().get('/x', authenticate({ secret: SECRET, issuer: 'https://as.test', audience: 'https://api.test' }), requireScope('read'), (_req, res) => { res.json({}); });
    const token = mintToken({ clientId: 'svc', scope: 'read' }, { secret: SECRET, issuer: 'https://as.test', audience: 'https://api.test' });
    await request(guarded).get('/x').set('Authorization', `Bearer ${token}`).expect(200);
  });

  it("signs with the environment's key for requireScope() alone, and the issuer the guard guesses", async () => {
    const saved = { secret: process.env.OAUTH_TOKEN_SECRET, issuer: process.env.OAUTH_ISSUER };
    process.env.OAUTH_TOKEN_SECRET = SECRET;
    delete process.env.OAUTH_ISSUER;
    forgetWarnings();
    const emitWarning = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    try {
      const guarded = express().get('/x', requireScope('read'), (req, res) => { res.json({ client: req.auth?.clientId }); });
      await request(guarded).get('/x').set('Authorization', `Bearer ${mintToken({ clientId: 'svc', scope: 'read' })}`).expect(200, { client: 'svc' });
      // The guess is the server's to say, once; mintToken says nothing.
      expect(emitWarning.mock.calls).toEqual([[expect.stringMatching(/^authenticate\(\): no `issuer` option or OAUTH_ISSUER/), { code: 'ECC_ISSUER_GUESSED' }]]);
    } finally {
      emitWarning.mockRestore();
      if (saved.secret === undefined) delete process.env.OAUTH_TOKEN_SECRET;
      else process.env.OAUTH_TOKEN_SECRET = saved.secret;
      if (saved.issuer !== undefined) process.env.OAUTH_ISSUER = saved.issuer;
    }
  });

  it('needs a key from somewhere', () => {
    const saved = { secret: process.env.OAUTH_TOKEN_SECRET, file: process.env.OAUTH_SIGNING_KEY_FILE };
    delete process.env.OAUTH_TOKEN_SECRET;
    delete process.env.OAUTH_SIGNING_KEY_FILE;
    try {
      expect(() => mintToken()).toThrow(/needs a signer/);
    } finally {
      if (saved.secret !== undefined) process.env.OAUTH_TOKEN_SECRET = saved.secret;
      if (saved.file !== undefined) process.env.OAUTH_SIGNING_KEY_FILE = saved.file;
    }
  });
});
