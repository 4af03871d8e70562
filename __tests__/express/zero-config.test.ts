import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import express from 'express';
import request from 'supertest';
import { authenticate, ConfigurationError, environmentDefaults, issuer, requireScope } from 'express-client-credentials';
import { forgetWarnings } from '../../lib/core/warnings.js';
import { aClient, decodePayload } from '../support/fixtures.js';

const NAMES = ['PORT', 'HOST', 'OAUTH_ISSUER', 'OAUTH_AUDIENCE', 'OAUTH_CLIENTS_FILE', 'OAUTH_SIGNING_KEY_FILE', 'OAUTH_TOKEN_SECRET'];
const saved = Object.fromEntries(NAMES.map((name) => [name, process.env[name]]));
beforeEach(() => NAMES.forEach((name) => delete process.env[name]));
afterAll(() => Object.entries(saved).forEach(([name, value]) => (value === undefined ? delete process.env[name] : (process.env[name] = value))));

describe('zero configuration: issuer() and requireScope() read the OAUTH_* variables', () => {
  it('runs an issuer and a separate resource server from the environment alone', async () => {
    // Cost 10, as create-client makes it: the environment sets no secretHashCost, so the issuer expects its default.
    const client = await aClient({ scope: 'read', cost: 10 });
    const file = join(mkdtempSync(join(tmpdir(), 'ecc-env-')), 'clients.json');
    writeFileSync(file, JSON.stringify([client.record]));
    Object.assign(process.env, { HOST: '10.0.0.5', PORT: '8080', OAUTH_CLIENTS_FILE: file, OAUTH_TOKEN_SECRET: 'an-hs256-secret-of-32-bytes-or-more' });

    forgetWarnings();
    const emitWarning = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    try {
      const authServer = express().use('/token', issuer());
      const api = express().get('/data', requireScope('read'), (req, res) => { res.json({ client_id: req.auth?.clientId }); });

      const { body } = await request(authServer).post('/token').auth(client.id, client.secret).type('form').send({ grant_type: 'client_credentials' }).expect(200);
      expect(decodePayload(body.access_token)).toMatchObject({ iss: 'http://10.0.0.5:8080', aud: 'http://10.0.0.5:8080/api' });
      await request(api).get('/data').set('Authorization', `Bearer ${body.access_token}`).expect(200, { client_id: client.id });
      // Without OAUTH_ISSUER the issuer identifier is HOST and PORT's guess, and said so (how often: the next test).
      expect(emitWarning.mock.calls[0]).toEqual([expect.stringMatching(/^issuer\(\): .*guessed as http:\/\/10\.0\.0\.5:8080.*Set OAUTH_ISSUER/), { code: 'ECC_ISSUER_GUESSED' }]);
      expect(emitWarning.mock.calls).toEqual(emitWarning.mock.calls.map(() => [expect.stringContaining('guessed as http://10.0.0.5:8080'), { code: 'ECC_ISSUER_GUESSED' }]));
    } finally {
      emitWarning.mockRestore();
    }
  });

  it('documents its defaults: no issuer unless OAUTH_ISSUER says so, audience issuer + /api', () => {
    expect(environmentDefaults({})).toEqual({ issuer: undefined, audience: undefined, signingKey: undefined, clientsFile: undefined, production: false });
    expect(environmentDefaults({ OAUTH_ISSUER: 'https://as.example', OAUTH_AUDIENCE: 'https://api.example' })).toMatchObject({
      issuer: 'https://as.example',
      audience: 'https://api.example',
    });
  });

  it('never guesses the issuer identifier silently: a warning once outside production, naming OAUTH_ISSUER', async () => {
    forgetWarnings();
    const client = await aClient();
    const emitWarning = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    try {
      issuer({ clients: [client.record], signingKey: { secret: 'x'.repeat(32) } });
      issuer({ clients: [client.record], signingKey: { secret: 'x'.repeat(32) } });
      authenticate({ secret: 'x'.repeat(32) });
      // Once per factory that guessed: two issuers say it once, the guard once more.
      expect(emitWarning.mock.calls).toEqual([
        [expect.stringMatching(/^issuer\(\): .*guessed as http:\/\/127\.0\.0\.1:3000.*Set OAUTH_ISSUER/), { code: 'ECC_ISSUER_GUESSED' }],
        [expect.stringMatching(/^authenticate\(\): .*guessed as http:\/\/127\.0\.0\.1:3000/), { code: 'ECC_ISSUER_GUESSED' }],
      ]);
    } finally {
      emitWarning.mockRestore();
    }
  });

  it('refuses to guess the issuer identifier under NODE_ENV=production (RFC 8414 §2: an https URL of the server)', async () => {
    const client = await aClient();
    const nodeEnv = process.env.NODE_ENV;
    process.env.NODE_ENV = 'production';
    try {
      expect(() => issuer({ clients: [client.record], signingKey: { secret: 'x'.repeat(32) } })).toThrow(/needs the `issuer` option or OAUTH_ISSUER under NODE_ENV=production/);
      expect(() => authenticate({ secret: 'x'.repeat(32) })).toThrow(ConfigurationError);
      process.env.OAUTH_ISSUER = 'https://as.example';
      expect(() => issuer({ clients: [client.record], signingKey: { secret: 'x'.repeat(32) } })).not.toThrow();
    } finally {
      process.env.NODE_ENV = nodeEnv;
    }
  });

  it('says once per process that it made an ephemeral key, however many issuers have none', async () => {
    forgetWarnings();
    const client = await aClient();
    const emitWarning = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    try {
      for (let i = 0; i < 3; i++) issuer({ issuer: 'https://as.example', clients: [client.record] });
      expect(emitWarning.mock.calls.filter(([, options]) => (options as { code?: string })?.code === 'ECC_EPHEMERAL_KEY')).toHaveLength(1);
    } finally {
      emitWarning.mockRestore();
    }
  });

  it.each([
    ['issuer() without clients or OAUTH_CLIENTS_FILE', {}, () => issuer(), /OAUTH_CLIENTS_FILE/],
    ['authenticate() without any key', {}, () => authenticate(), /OAUTH_SIGNING_KEY_FILE \/ OAUTH_TOKEN_SECRET/],
    ['both OAUTH_SIGNING_KEY_FILE and OAUTH_TOKEN_SECRET', { OAUTH_SIGNING_KEY_FILE: '/k.pem', OAUTH_TOKEN_SECRET: 'x'.repeat(32) }, () => authenticate(), /not both/],
    ['an unreadable OAUTH_SIGNING_KEY_FILE', { OAUTH_SIGNING_KEY_FILE: '/nonexistent/key.pem' }, () => authenticate(), /cannot read OAUTH_SIGNING_KEY_FILE/],
    ['a short OAUTH_TOKEN_SECRET', { OAUTH_TOKEN_SECRET: 'short' }, () => authenticate(), /at least 32 bytes/],
  ])('fails fast on %s, saying what to set', (_name, env, make, message) => {
    // OAUTH_ISSUER too, so that no guess is warned about on the way to the failure.
    Object.assign(process.env, { OAUTH_ISSUER: 'https://as.example' }, env);
    expect(make).toThrow(ConfigurationError);
    expect(make).toThrow(message);
  });
});
