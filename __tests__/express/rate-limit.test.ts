import express from 'express';
import { MemoryStore } from 'express-rate-limit';
import request from 'supertest';
import type { AuditEvent } from 'express-client-credentials';
import { aClient, tokenServer, type TestClient } from '../support/fixtures.js';

const CC = { grant_type: 'client_credentials' };

describe('brute-force protection: RFC 6749 §2.3.1 "MUST protect against brute force attacks"', () => {
  let client: TestClient;
  let other: TestClient;
  beforeAll(async () => {
    client = await aClient();
    other = await aClient();
  });

  /** Behind a proxy, as production apps are: `trust proxy` makes X-Forwarded-For the client address. */
  function proxiedServer(...args: Parameters<typeof tokenServer>) {
    const server = tokenServer(...args);
    const app = express().set('trust proxy', 'loopback').use(server.app);
    return { app, from: (address: string) => ({ 'X-Forwarded-For': address }) };
  }

  it('locks a client id from one address after 10 failed authentications, the right secret included, until the window ends', async () => {
    const { app, from } = proxiedServer([client, other]);
    for (let i = 0; i < 10; i++) {
      const res = await request(app).post('/token').set(from('203.0.113.7')).auth(client.id, 'wrong').type('form').send(CC);
      expect(res.status).toBe(401);
    }
    const locked = await request(app).post('/token').set(from('203.0.113.7')).auth(client.id, client.secret).type('form').send(CC);
    expect(locked.status).toBe(429);
    expect(locked.body).toEqual({ error: 'temporarily_unavailable', error_description: 'Too many failed authentications; retry later' });
    expect(locked.headers['retry-after']).toMatch(/^\d+$/);
    expect(Number(locked.headers['retry-after'])).toBeGreaterThan(800);
    expect(locked.headers.ratelimit).toMatch(/^"failed-authentication"; r=0; t=\d+$/);
    expect(locked.headers['cache-control']).toBe('no-store');

    // The lock is per (address, client id): the same client elsewhere, and other clients here, go on.
    await request(app).post('/token').set(from('198.51.100.1')).auth(client.id, client.secret).type('form').send(CC).expect(200);
    await request(app).post('/token').set(from('203.0.113.7')).auth(other.id, other.secret).type('form').send(CC).expect(200);
  });

  it('counts only failed authentications, not successful requests or other errors', async () => {
    const { app, from } = proxiedServer([client], { rateLimit: { failedAuthentication: { limit: 2 } } });
    for (let i = 0; i < 5; i++) {
      await request(app).post('/token').set(from('203.0.113.8')).auth(client.id, client.secret).type('form').send(CC).expect(200);
      await request(app).post('/token').set(from('203.0.113.8')).auth(client.id, client.secret).type('form').send({ ...CC, scope: 'admin' }).expect(400);
    }
    await request(app).post('/token').set(from('203.0.113.8')).auth(client.id, 'wrong').type('form').send(CC).expect(401);
    await request(app).post('/token').set(from('203.0.113.8')).auth(client.id, 'wrong').type('form').send(CC).expect(401);
    await request(app).post('/token').set(from('203.0.113.8')).auth(client.id, client.secret).type('form').send(CC).expect(429);
  });

  it('tells a failing client how many attempts remain', async () => {
    const { app, from } = proxiedServer([client]);
    const res = await request(app).post('/token').set(from('203.0.113.20')).auth(client.id, 'wrong').type('form').send(CC).expect(401);
    expect(res.headers.ratelimit).toContain('"failed-authentication"; r=9;');
    expect(res.headers['ratelimit-policy']).toContain('"failed-authentication"; q=10; w=900');
  });

  it('does not count a right secret sent with a method the client is not pinned to: a tutorial request never locks the client out', async () => {
    const pinned = await aClient({ token_endpoint_auth_method: 'client_secret_basic' });
    const events: AuditEvent[] = [];
    const { app, from } = proxiedServer([pinned], { onAuditEvent: (event) => events.push(event) });
    for (let i = 0; i < 15; i++) {
      const res = await request(app).post('/token').set(from('203.0.113.30')).type('form').send({ ...CC, client_id: pinned.id, client_secret: pinned.secret });
      expect([res.status, res.body.error]).toEqual([401, 'invalid_client']);
    }
    await request(app).post('/token').set(from('203.0.113.30')).auth(pinned.id, pinned.secret).type('form').send(CC).expect(200);
    expect(events.filter((event) => event.type === 'client_authentication_failed')).toEqual(
      Array(15).fill(expect.objectContaining({ clientId: pinned.id, authMethod: 'client_secret_post', reason: 'method_not_registered' })),
    );
    const wrong = await request(app).post('/token').set(from('203.0.113.30')).auth(pinned.id, 'wrong').type('form').send(CC).expect(401);
    expect(wrong.headers.ratelimit).toContain('r=9;');
    expect(events.at(-1)).not.toHaveProperty('reason');
  });

  it('never locks out a client whose concurrent requests carry the right secret (a fleet starting at once)', async () => {
    const slowStore = { findClient: async (id: string) => (await new Promise((resolve) => setTimeout(resolve, 100)), id === client.id ? client.record : undefined) };
    const server = tokenServer([], { clients: slowStore });
    const app = express().set('trust proxy', 'loopback').use(server.app);
    const statuses = await Promise.all(
      Array.from({ length: 15 }, () => request(app).post('/token').set('X-Forwarded-For', '203.0.113.21').auth(client.id, client.secret).type('form').send(CC)),
    );
    expect(statuses.map((res) => res.status)).toEqual(Array(15).fill(200));
  });

  it('counts IPv6 clients by /56 network, as express-rate-limit does', async () => {
    const { app, from } = proxiedServer([client], { rateLimit: { failedAuthentication: { limit: 1 } } });
    await request(app).post('/token').set(from('2001:db8:0:1::1')).auth(client.id, 'wrong').type('form').send(CC).expect(401);
    await request(app).post('/token').set(from('2001:db8:0:2::1')).auth(client.id, client.secret).type('form').send(CC).expect(429);
    await request(app).post('/token').set(from('2001:db8:1::1')).auth(client.id, client.secret).type('form').send(CC).expect(200);
  });

  it('refuses a store without get(), which the lock needs', () => {
    const store = { increment: async () => ({ totalHits: 1, resetTime: undefined }), decrement: async () => undefined, resetKey: async () => undefined };
    expect(() => tokenServer([client], { rateLimit: { failedAuthentication: { store } } })).toThrow(/must implement get\(key\)/);
  });

  it('caps all token requests per address (perAddress)', async () => {
    const { app, from } = proxiedServer([client], { rateLimit: { perAddress: { limit: 3 } } });
    for (let i = 0; i < 3; i++) await request(app).post('/token').set(from('203.0.113.9')).type('form').send(CC).expect(401);
    const res = await request(app).post('/token').set(from('203.0.113.9')).auth(client.id, client.secret).type('form').send(CC);
    expect(res.status).toBe(429);
    expect(res.body.error).toBe('temporarily_unavailable');
    await request(app).post('/token').set(from('203.0.113.10')).auth(client.id, client.secret).type('form').send(CC).expect(200);
  });

  it('uses a store passed through the options', async () => {
    const store = new MemoryStore();
    const { app, from } = proxiedServer([client], { rateLimit: { failedAuthentication: { store } } });
    await request(app).post('/token').set(from('203.0.113.11')).auth(client.id, 'wrong').type('form').send(CC).expect(401);
    expect((await store.get(`203.0.113.11|${client.id}`))?.totalHits).toBe(1);
  });

  it('can be turned off', async () => {
    const { app, from } = proxiedServer([client], { rateLimit: false });
    for (let i = 0; i < 12; i++) await request(app).post('/token').set(from('203.0.113.12')).auth(client.id, 'wrong').type('form').send(CC).expect(401);
    const res = await request(app).post('/token').set(from('203.0.113.12')).auth(client.id, client.secret).type('form').send(CC).expect(200);
    expect(res.headers.ratelimit).toBeUndefined();
  });
});
