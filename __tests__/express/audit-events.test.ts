// Audit events: structured, with client id, scope, jti and request id, and never a secret, a hash or a token.

import request from 'supertest';
import type { AuditEvent } from '../../lib/core/audit.js';
import { aClient, tokenServer } from '../support/fixtures.js';

const CC = { grant_type: 'client_credentials' };

describe('audit events', () => {
  it('reports issuance, refusals, failed authentication, revocation and rate limiting, without secrets or tokens', async () => {
    const client = await aClient({ scope: 'read' });
    const events: AuditEvent[] = [];
    const { app } = tokenServer([client], { onAuditEvent: (event) => events.push(event), rateLimit: { failedAuthentication: { limit: 2 } } });
    const issued = await request(app).post('/token').set('X-Request-Id', 'req-1').auth(client.id, client.secret).type('form').send({ ...CC, scope: 'read' }).expect(200);
    const token = issued.body.access_token as string;
    await request(app).post('/token').auth(client.id, client.secret).type('form').send({ ...CC, scope: 'admin' }).expect(400);
    await request(app).post('/revoke').auth(client.id, client.secret).type('form').send({ token }).expect(200);
    await request(app).post('/token').auth(client.id, 'wrong-1').type('form').send(CC).expect(401);
    await request(app).post('/token').auth(client.id, 'wrong-2').type('form').send(CC).expect(401);
    await request(app).post('/token').auth(client.id, client.secret).type('form').send(CC).expect(429);

    const jti = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString()).jti as string;
    expect(events).toEqual([
      {
        type: 'token_issued', requestId: 'req-1', address: expect.any(String), endpoint: 'token', clientId: client.id,
        authMethod: 'client_secret_basic', secretIndex: 0, scope: 'read', audience: expect.any(String), jti, expiresAt: expect.any(Number),
      },
      { type: 'token_refused', requestId: expect.any(String), address: expect.any(String), endpoint: 'token', clientId: client.id, error: 'invalid_scope' },
      { type: 'token_revoked', requestId: expect.any(String), address: expect.any(String), endpoint: 'revocation', clientId: client.id, jti },
      { type: 'client_authentication_failed', requestId: expect.any(String), address: expect.any(String), endpoint: 'token', clientId: client.id, authMethod: 'client_secret_basic' },
      { type: 'client_authentication_failed', requestId: expect.any(String), address: expect.any(String), endpoint: 'token', clientId: client.id, authMethod: 'client_secret_basic' },
      { type: 'rate_limited', requestId: expect.any(String), address: expect.any(String), endpoint: 'token', limiter: 'failed-authentication', clientId: client.id },
    ]);
    // Every event, serialized as a logger would: no secret, no hash, no token.
    const logged = events.map((event) => JSON.stringify(event)).join('\n');
    for (const secret of [client.secret, 'wrong-1', 'wrong-2', client.record.client_secret_hash as string, token, token.split('.')[2] as string]) {
      expect(logged).not.toContain(secret);
    }
    expect(new Set(events.map((event) => event.requestId)).size).toBe(events.length);
  });

  it('reports the per-address limiter too', async () => {
    const client = await aClient();
    const events: AuditEvent[] = [];
    const { app } = tokenServer([client], { onAuditEvent: (event) => events.push(event), rateLimit: { perAddress: { limit: 1 } } });
    await request(app).post('/introspect').auth(client.id, client.secret).type('form').send({ token: 'x' }).expect(200);
    await request(app).post('/introspect').auth(client.id, client.secret).type('form').send({ token: 'x' }).expect(429);
    expect(events).toEqual([expect.objectContaining({ type: 'rate_limited', limiter: 'per-address', endpoint: 'introspection' })]);
  });

  it('keeps answering when an async listener rejects, reporting the failure', async () => {
    const client = await aClient();
    const reports: string[] = [];
    const { app } = tokenServer([client], { onAuditEvent: async () => { throw new Error('async logger down'); }, onInternalError: (line) => reports.push(line) });
    await request(app).post('/token').auth(client.id, client.secret).type('form').send(CC).expect(200);
    await new Promise((resolve) => setImmediate(resolve));
    expect(reports).toEqual([expect.stringContaining('async logger down')]);
  });

  it('keeps control characters and lengthy ids presented by a client out of the log', async () => {
    const events: AuditEvent[] = [];
    const { app } = tokenServer([], { onAuditEvent: (event) => events.push(event) });
    const header = `Basic ${Buffer.from(`evil%0Aline:x`).toString('base64')}`;
    await request(app).post('/token').set('Authorization', header).type('form').send(CC).expect(401);
    await request(app).post('/token').type('form').send({ ...CC, client_id: 'x'.repeat(5000), client_secret: 's' }).expect(401);
    expect(events.map((event) => (event as { clientId?: string }).clientId)).toEqual(['evil?line', 'x'.repeat(256)]);
  });

  it('keeps answering when the listener throws, reporting the failure', async () => {
    const client = await aClient();
    const reports: string[] = [];
    const { app } = tokenServer([client], { onAuditEvent: () => { throw new Error('logger down'); }, onInternalError: (line) => reports.push(line) });
    await request(app).post('/token').auth(client.id, client.secret).type('form').send(CC).expect(200);
    expect(reports).toEqual([expect.stringContaining('logger down')]);
  });
});
