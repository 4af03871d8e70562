// RFC 6749 §2.3.1: "The authorization server MUST require the use of TLS ... when sending requests
// using password authentication", and RFC 8414 §2: the issuer identifier "is a URL that uses the
// "https" scheme". Real Express apps behind a proxy that says how the request arrived.

import express from 'express';
import request from 'supertest';
import { ConfigurationError, issuer, type IssuerOptions } from 'express-client-credentials';
import { forgetWarnings } from '../../lib/core/warnings.js';
import { aClient, SECRET, tokenServer, type TestClient } from '../support/fixtures.js';

const CC = { grant_type: 'client_credentials' };

/** Behind a proxy on loopback that terminates TLS (or not) and says so in X-Forwarded-Proto. */
function proxied(clients: readonly TestClient[], options: IssuerOptions) {
  const server = tokenServer(clients, options);
  const app = express().set('trust proxy', 'loopback').use(server.app);
  const post = (path: string, proto: 'http' | 'https', address = '203.0.113.9') =>
    request(app).post(path).set('X-Forwarded-For', address).set('X-Forwarded-Proto', proto).type('form');
  return { post, app: server.app };
}

describe('requireHttps: client credentials only over TLS (RFC 6749 §2.3.1)', () => {
  let client: TestClient;
  beforeAll(async () => {
    client = await aClient();
  });

  it.each(['/token', '/revoke', '/introspect'])('refuses credentials that came over plain http at %s with 400 invalid_request, before looking at them', async (path) => {
    const { post } = proxied([client], { requireHttps: true, issuer: 'https://as.example' });
    const res = await post(path, 'http').auth(client.id, client.secret).send({ ...CC, token: 'x' });
    expect([res.status, res.body]).toEqual([400, { error: 'invalid_request', error_description: 'Client credentials must be sent over https' }]);
    expect(res.headers['cache-control']).toBe('no-store');
  });

  it('accepts them when TLS ended at a trusted proxy (req.secure, per trust proxy)', async () => {
    const { post } = proxied([client], { requireHttps: true, issuer: 'https://as.example' });
    await post('/token', 'https').auth(client.id, client.secret).send(CC).expect(200);
  });

  it('does not take a request a local proxy forwarded from afar for loopback, and exempts real loopback', async () => {
    const { post, app } = proxied([client], { requireHttps: true, issuer: 'https://as.example' });
    await post('/token', 'http', '198.51.100.7').auth(client.id, client.secret).send(CC).expect(400);
    // A request from this machine itself (a health check, a sidecar): nothing left the machine.
    await request(app).post('/token').auth(client.id, client.secret).type('form').send(CC).expect(200);
  });

  it('is on by default under NODE_ENV=production, and then wants an https issuer identifier (RFC 8414 §2)', async () => {
    const nodeEnv = process.env.NODE_ENV;
    process.env.NODE_ENV = 'production';
    try {
      expect(() => issuer({ issuer: 'http://as.example', signingKey: { secret: SECRET }, clients: [client.record] })).toThrow(ConfigurationError);
      expect(() => issuer({ issuer: 'http://as.example', signingKey: { secret: SECRET }, clients: [client.record] })).toThrow(/`issuer` must be an https URL \(RFC 8414 §2\) while requireHttps is on \(NODE_ENV=production\)/);
      const { post } = proxied([client], { issuer: 'https://as.example' });
      await post('/token', 'http').auth(client.id, client.secret).send(CC).expect(400);
    } finally {
      process.env.NODE_ENV = nodeEnv;
    }
  });

  it('is off by default outside production, so a plain-http development server works', async () => {
    const { post } = proxied([client], {});
    await post('/token', 'http').auth(client.id, client.secret).send(CC).expect(200);
  });

  it('can be turned off with requireHttps: false, which it says once', async () => {
    forgetWarnings();
    const warning = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    const nodeEnv = process.env.NODE_ENV;
    process.env.NODE_ENV = 'production';
    try {
      const { post } = proxied([client], { requireHttps: false, issuer: 'http://as.example' });
      proxied([client], { requireHttps: false, issuer: 'http://as.example' });
      await post('/token', 'http').auth(client.id, client.secret).send(CC).expect(200);
      expect(warning.mock.calls.filter(([, options]) => (options as { code?: string }).code === 'ECC_HTTPS_OFF')).toEqual([
        [expect.stringContaining('client secrets may travel unencrypted'), { code: 'ECC_HTTPS_OFF' }],
      ]);
    } finally {
      process.env.NODE_ENV = nodeEnv;
      warning.mockRestore();
    }
  });
});

describe('requireHttps: the loopback exemption is only for requests that never left the machine', () => {
  let client: TestClient;
  beforeAll(async () => {
    client = await aClient();
  });

  it('refuses plain http forwarded by a proxy on this machine when trust proxy is off, whatever the proxy says', async () => {
    const { app } = tokenServer([client], { requireHttps: true, issuer: 'https://as.example' }); // trust proxy left off, the default
    const res = await request(app).post('/token').set('X-Forwarded-For', '203.0.113.5').set('X-Forwarded-Proto', 'http').auth(client.id, client.secret).type('form').send(CC);
    expect([res.status, res.body.error]).toEqual([400, 'invalid_request']);
    // Without trust proxy, X-Forwarded-Proto cannot claim TLS either.
    await request(app).post('/token').set('X-Forwarded-Proto', 'https').auth(client.id, client.secret).type('form').send(CC).expect(400);
  });

  it('is not fooled by a client that claims to be loopback through a trust proxy set one hop too many', async () => {
    const server = tokenServer([client], { requireHttps: true, issuer: 'https://as.example' });
    const app = express().set('trust proxy', 2).use(server.app);
    const res = await request(app).post('/token').set('X-Forwarded-For', '127.0.0.1').auth(client.id, client.secret).type('form').send(CC);
    expect([res.status, res.body.error]).toEqual([400, 'invalid_request']);
  });
});
