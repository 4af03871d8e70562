// Secret rotation, resource indicators (RFC 8707), custom claims and the policy hook.

import express from 'express';
import request from 'supertest';
import { authenticate, OAuthError, requireScope, type ClientRecord } from 'express-client-credentials';
import { aClient, AUDIENCE, decodePayload, ISSUER, SECRET, tokenServer, type TestClient } from '../support/fixtures.js';

const CC = { grant_type: 'client_credentials' };
const now = () => Math.floor(Date.now() / 1000);
const post = (app: express.Express, client: TestClient, body: Record<string, string> | string = CC) =>
  request(app).post('/token').auth(client.id, client.secret).type('form').send(body);

describe('secret rotation: several live secrets, each with an optional expiry', () => {
  it('accepts the old and the new secret during a roll-over, and reports which one matched', async () => {
    const current = await aClient();
    const next = await aClient({ client_id: current.id });
    const events: { type: string; secretIndex?: number | undefined }[] = [];
    const record: ClientRecord = {
      ...current.record,
      client_secret_hash: [{ hash: current.record.client_secret_hash as string, expires_at: now() + 3600 }, next.record.client_secret_hash as string],
    };
    const { app } = tokenServer([], { clients: [record], onAuditEvent: (event) => events.push(event) });
    await post(app, current).expect(200);
    await post(app, next).expect(200);
    expect(events.filter((e) => e.type === 'token_issued').map((e) => e.secretIndex)).toEqual([0, 1]);
  });

  it('refuses a secret whose hash has expired', async () => {
    const old = await aClient();
    const next = await aClient({ client_id: old.id });
    const record: ClientRecord = {
      ...old.record,
      client_secret_hash: [{ hash: old.record.client_secret_hash as string, expires_at: now() - 1 }, { hash: next.record.client_secret_hash as string }],
    };
    const { app } = tokenServer([], { clients: [record] });
    expect((await post(app, old)).status).toBe(401);
    await post(app, next).expect(200);
  });

  it('refuses malformed hash entries at construction', async () => {
    const client = await aClient();
    expect(() => tokenServer([], { clients: [{ ...client.record, client_secret_hash: [{ hash: 'plain' }] }] })).toThrow(/bcrypt hash/);
    expect(() => tokenServer([], { clients: [{ ...client.record, client_secret_hash: [{ hash: client.record.client_secret_hash as string, expires_at: 'soon' as never }] }] })).toThrow(/expires_at/);
    expect(() => tokenServer([], { clients: [{ ...client.record, client_secret_hash: [{ hash: client.record.client_secret_hash as string, expires_at: Date.now() + 1000 }] }] })).toThrow(/looks like milliseconds/);
  });
});

describe('resource indicators: RFC 8707 §2', () => {
  const REPORTS = 'https://reports.example/api';
  const BILLING = 'https://billing.example/api';
  let client: TestClient;
  let app: express.Express;
  beforeAll(async () => {
    client = await aClient({ audience: [REPORTS, BILLING] });
    ({ app } = tokenServer([client]));
  });

  it("gives the client's default (first) audience without a resource parameter", async () => {
    expect(decodePayload((await post(app, client).expect(200)).body.access_token).aud).toBe(REPORTS);
  });

  it('audience-restricts the token to the requested resource', async () => {
    const res = await post(app, client, { ...CC, resource: BILLING }).expect(200);
    expect(decodePayload(res.body.access_token).aud).toBe(BILLING);
  });

  it('accepts the parameter repeated, giving an audience list', async () => {
    const res = await post(app, client, `grant_type=client_credentials&resource=${encodeURIComponent(REPORTS)}&resource=${encodeURIComponent(BILLING)}`).expect(200);
    expect(decodePayload(res.body.access_token).aud).toEqual([REPORTS, BILLING]);
  });

  it.each([
    ['a resource the client may not get', 'https://admin.example/api'],
    ['a relative URI', '/api'],
    ['a URI with a fragment', `${REPORTS}#x`],
  ])('answers invalid_target to %s', async (_name, resource) => {
    const res = await post(app, client, { ...CC, resource });
    expect(res.status).toBe(400);
    expect(res.body).toEqual({ error: 'invalid_target', error_description: expect.any(String) });
  });

  it("uses the issuer's audience for a client that lists none, and refuses other resources", async () => {
    const plain = await aClient();
    const { app: issuerApp } = tokenServer([plain]);
    expect(decodePayload((await post(issuerApp, plain).expect(200)).body.access_token).aud).toBe(AUDIENCE);
    await post(issuerApp, plain, { ...CC, resource: AUDIENCE }).expect(200);
    expect((await post(issuerApp, plain, { ...CC, resource: REPORTS })).body.error).toBe('invalid_target');
  });

  it('lets a guard accept only tokens for its own audience', async () => {
    const billingApi = express().get('/x', authenticate({ secret: SECRET, issuer: ISSUER, audience: BILLING }), requireScope('read'), (_req, res) => { res.json({}); });
    const forReports = (await post(app, client, { ...CC, resource: REPORTS })).body.access_token as string;
    const forBilling = (await post(app, client, { ...CC, resource: BILLING })).body.access_token as string;
    expect((await request(billingApi).get('/x').set('Authorization', `Bearer ${forReports}`)).status).toBe(401);
    await request(billingApi).get('/x').set('Authorization', `Bearer ${forBilling}`).expect(200);
  });
});

describe('custom claims and the policy hook', () => {
  it('adds claims per client (from its record) and per request', async () => {
    const client = await aClient({ metadata: { tenant_id: 'acme' } });
    const { app } = tokenServer([client], {
      extraClaims: ({ client: c, request: req }) => ({ tenant: c.record.metadata?.tenant_id, region: req.get('x-region') }),
    });
    const res = await post(app, client).set('X-Region', 'eu').expect(200);
    expect(decodePayload(res.body.access_token)).toMatchObject({ tenant: 'acme', region: 'eu' });
  });

  it('never lets custom claims override the registered RFC 9068 claims, and warns once', async () => {
    const client = await aClient();
    const { app } = tokenServer([client], {
      extraClaims: () => ({ iss: 'https://evil.example', sub: 'admin', exp: 9_999_999_999, aud: 'anything', client_id: 'admin', scope: 'admin', jti: 'x', tenant: 'ok' }),
    });
    const emitWarning = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    let claims: Record<string, unknown>;
    try {
      claims = decodePayload((await post(app, client).expect(200)).body.access_token);
      await post(app, client).expect(200);
      expect(emitWarning).toHaveBeenCalledTimes(1);
      expect(emitWarning).toHaveBeenCalledWith(expect.stringContaining('registered claims'), { code: 'ECC_REGISTERED_CLAIMS' });
    } finally {
      emitWarning.mockRestore();
    }
    expect(claims).toMatchObject({ iss: ISSUER, sub: client.id, client_id: client.id, aud: AUDIENCE, scope: 'read write', tenant: 'ok' });
    expect(claims.exp).toBeLessThan(now() + 700);
    expect(claims.jti).not.toBe('x');
  });

  it('keeps registered claims even from claims that hide behind toJSON, and takes prototype names as plain claims', async () => {
    const client = await aClient();
    const { app } = tokenServer([client], {
      extraClaims: () => ({ toJSON: () => ({ iss: 'http://evil', sub: 'admin', aud: 'x', exp: 9_999_999_999, constructor: 'c', toString: 's' }) }) as never,
    });
    const emitWarning = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    let claims: Record<string, unknown>;
    try {
      claims = decodePayload((await post(app, client).expect(200)).body.access_token);
    } finally {
      emitWarning.mockRestore();
    }
    expect(claims).toMatchObject({ iss: ISSUER, sub: client.id, aud: AUDIENCE, constructor: 'c', toString: 's' });
  });

  it('gives hooks copies of the grant: changing them changes nothing', async () => {
    const client = await aClient();
    const { app } = tokenServer([client], {
      authorizeGrant: (context) => {
        try {
          (context.scopes as string[]).push('admin');
        } catch {
          // frozen, as it should be
        }
      },
    });
    expect(decodePayload((await post(app, client, { ...CC, scope: 'read' }).expect(200)).body.access_token).scope).toBe('read');
  });

  it('answers 500, not a 4xx, to a hook error that carries a status of its own', async () => {
    const client = await aClient();
    const { app } = tokenServer([client], { authorizeGrant: () => { throw Object.assign(new Error('forbidden'), { status: 403, type: 'whatever' }); }, onInternalError: () => undefined });
    expect((await post(app, client)).status).toBe(500);
  });

  it('refuses a grant with the OAuth error the policy hook throws', async () => {
    const client = await aClient();
    const { app } = tokenServer([client], {
      authorizeGrant: ({ scopes }) => {
        if (scopes.includes('write')) throw new OAuthError('invalid_scope', 400, 'Writing is closed for maintenance');
      },
    });
    const res = await post(app, client, { ...CC, scope: 'read write' });
    expect([res.status, res.body]).toEqual([400, { error: 'invalid_scope', error_description: 'Writing is closed for maintenance' }]);
    await post(app, client, { ...CC, scope: 'read' }).expect(200);
  });

  it('answers 500 server_error, reported, when a hook fails with anything but an OAuthError', async () => {
    const client = await aClient();
    const reports: string[] = [];
    const { app } = tokenServer([client], { extraClaims: () => { throw new Error('tenant lookup failed'); }, onInternalError: (line) => reports.push(line) });
    const res = await post(app, client);
    expect([res.status, res.body.error]).toEqual([500, 'server_error']);
    expect(res.text).not.toContain('tenant lookup failed');
    expect(reports).toEqual([expect.stringContaining('tenant lookup failed')]);
  });
});

describe('the verified-secret cache at the token endpoint', () => {
  it('still refuses a client disabled after its secret was cached', async () => {
    const client = await aClient();
    let record: ClientRecord = client.record;
    const { app } = tokenServer([], { clients: { findClient: async (id) => (id === client.id ? record : undefined) } });
    await post(app, client).expect(200);
    record = { ...client.record, disabled: true };
    expect((await post(app, client)).body.error).toBe('unauthorized_client');
  });

  it('checks its options', () => {
    expect(() => tokenServer([], { secretCache: { ttl: 0 } })).toThrow(/secretCache.ttl/);
    expect(() => tokenServer([], { secretCache: { tll: 5 } as never })).toThrow(/unknown option `tll`/);
  });
});
