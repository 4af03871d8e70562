import express from 'express';
import request from 'supertest';
import { authenticate, MemoryRevocationStore } from 'express-client-credentials';
import { aClient, decodePayload, hs256, ISSUER, SECRET, tokenServer, type TestClient } from '../support/fixtures.js';

const CC = { grant_type: 'client_credentials' };
let owner: TestClient;
let stranger: TestClient;
beforeAll(async () => {
  owner = await aClient({ scope: 'read' });
  stranger = await aClient({ scope: 'read' });
});

async function tokenFor(app: Parameters<typeof request>[0], client: TestClient): Promise<string> {
  const res = await request(app).post('/token').auth(client.id, client.secret).type('form').send(CC).expect(200);
  return res.body.access_token as string;
}

describe('token revocation: RFC 7009 §2', () => {
  it('revokes a token for the client it was issued to: 200, then the guard refuses it', async () => {
    const { app } = tokenServer([owner]);
    const token = await tokenFor(app, owner);
    await request(app).get('/api/data').set('Authorization', `Bearer ${token}`).expect(200);
    const res = await request(app).post('/revoke').auth(owner.id, owner.secret).type('form').send({ token, token_type_hint: 'access_token' });
    expect(res.status).toBe(200);
    expect(res.headers['cache-control']).toBe('no-store');
    const refused = await request(app).get('/api/data').set('Authorization', `Bearer ${token}`);
    expect(refused.status).toBe(401);
    expect(refused.headers['www-authenticate']).toContain('error="invalid_token", error_description="The token has been revoked"');
  });

  it('leaves other tokens of the same client valid', async () => {
    const { app } = tokenServer([owner]);
    const [first, second] = [await tokenFor(app, owner), await tokenFor(app, owner)];
    await request(app).post('/revoke').auth(owner.id, owner.secret).type('form').send({ token: first }).expect(200);
    await request(app).get('/api/data').set('Authorization', `Bearer ${second}`).expect(200);
  });

  it.each([
    ['an unknown (garbage) token', () => 'not-a-token'],
    ['a token of another issuer', () => hs256({ iss: 'http://127.0.0.1:9', sub: 'x', client_id: 'x', aud: 'a', iat: 1, exp: 4_000_000_000, jti: 'j' })],
    ['an expired token', () => hs256({ iss: ISSUER, sub: owner.id, client_id: owner.id, aud: 'a', iat: 1, exp: 2, jti: 'old' })],
  ])('answers 200 for %s ("invalid tokens do not cause an error response")', async (_name, token) => {
    const { app } = tokenServer([owner]);
    await request(app).post('/revoke').auth(owner.id, owner.secret).type('form').send({ token: token() }).expect(200);
  });

  it('answers 200 for a token already revoked', async () => {
    const { app } = tokenServer([owner]);
    const token = await tokenFor(app, owner);
    await request(app).post('/revoke').auth(owner.id, owner.secret).type('form').send({ token }).expect(200);
    await request(app).post('/revoke').auth(owner.id, owner.secret).type('form').send({ token }).expect(200);
  });

  it('refuses, with no effect, a revocation by a client the token was not issued to', async () => {
    const { app } = tokenServer([owner, stranger]);
    const token = await tokenFor(app, owner);
    const res = await request(app).post('/revoke').auth(stranger.id, stranger.secret).type('form').send({ token });
    expect(res.status).toBe(400);
    expect(res.body).toEqual({ error: 'invalid_request', error_description: 'The token was not issued to this client' });
    await request(app).get('/api/data').set('Authorization', `Bearer ${token}`).expect(200);
  });

  it('authenticates the client first: 401 invalid_client with a Basic challenge', async () => {
    const { app } = tokenServer([owner]);
    const token = await tokenFor(app, owner);
    const res = await request(app).post('/revoke').auth(owner.id, 'wrong').type('form').send({ token });
    expect([res.status, res.body.error, res.headers['www-authenticate']]).toEqual([401, 'invalid_client', `Basic realm="${ISSUER}"`]);
    await request(app).get('/api/data').set('Authorization', `Bearer ${token}`).expect(200);
  });

  it.each([
    ['no token parameter', {}, 400],
    ['a repeated token parameter', 'token=a&token=b', 400],
  ])('answers invalid_request to %s', async (_name, body, status) => {
    const { app } = tokenServer([owner]);
    const res = await request(app).post('/revoke').auth(owner.id, owner.secret).type('form').send(body);
    expect([res.status, res.body.error]).toEqual([status, 'invalid_request']);
  });

  it('accepts any token_type_hint, which only orders a search (§2.1)', async () => {
    const { app } = tokenServer([owner]);
    const token = await tokenFor(app, owner);
    await request(app).post('/revoke').auth(owner.id, owner.secret).type('form').send({ token, token_type_hint: 'refresh_token' }).expect(200);
    expect((await request(app).get('/api/data').set('Authorization', `Bearer ${token}`)).status).toBe(401);
  });

  it('answers other methods with 405 and Allow: POST', async () => {
    const { app } = tokenServer([owner]);
    const res = await request(app).get('/revoke');
    expect([res.status, res.headers.allow]).toEqual([405, 'POST']);
  });
});

describe('MemoryRevocationStore: remembered until expiry, then forgotten', () => {
  it('remembers a revoked token until its exp, and forgets expired entries', async () => {
    let now = 1000;
    const store = new MemoryRevocationStore(() => now);
    await store.revoke('a', 1010);
    await store.revoke('already-expired', 999);
    expect(await store.isRevoked('a')).toBe(true);
    expect(await store.isRevoked('already-expired')).toBe(false);
    expect(store.size).toBe(1);
    now = 1011;
    expect(await store.isRevoked('a')).toBe(false);
    await store.revoke('b', 2000);
    expect(store.size).toBe(1);
  });

  it('stays bounded by the tokens revoked within one lifetime', async () => {
    let now = 0;
    const store = new MemoryRevocationStore(() => now);
    for (let i = 0; i < 10_000; i++) {
      now = i;
      await store.revoke(`jti-${i}`, i + 600);
    }
    expect(store.size).toBeLessThanOrEqual(601);
  });

  it('is the issuer store the guard consults in the same process', async () => {
    const revocations = new MemoryRevocationStore();
    const { app } = tokenServer([owner], { revocations });
    const token = await tokenFor(app, owner);
    await revocations.revoke(String(decodePayload(token).jti), Number(decodePayload(token).exp));
    expect((await request(app).get('/api/data').set('Authorization', `Bearer ${token}`)).status).toBe(401);
  });
});

describe('revocation edge cases', () => {
  /** A test double that records revocations and can be made to hang. */
  class RecordingStore {
    readonly revoked = new Map<string, number>();
    hang = false;
    async revoke(jti: string, expiresAt: number): Promise<void> {
      if (this.hang) return new Promise(() => undefined);
      this.revoked.set(jti, expiresAt);
    }
    async isRevoked(jti: string): Promise<boolean> {
      if (this.hang) return new Promise(() => undefined);
      return this.revoked.has(jti);
    }
  }

  it("keeps a revocation past the token's exp by the largest clock tolerance a guard may use", async () => {
    const store = new RecordingStore();
    const { app } = tokenServer([owner], { revocations: store });
    const token = await tokenFor(app, owner);
    await request(app).post('/revoke').auth(owner.id, owner.secret).type('form').send({ token }).expect(200);
    expect(store.revoked.get(String(decodePayload(token).jti))).toBe(Number(decodePayload(token).exp) + 300);
  });

  it('still records the revocation of a token that expired moments ago, which lenient guards accept', async () => {
    const store = new RecordingStore();
    const { app } = tokenServer([owner], { revocations: store });
    const now = Math.floor(Date.now() / 1000);
    const justExpired = hs256({ iss: ISSUER, sub: owner.id, client_id: owner.id, aud: 'a', iat: now - 100, exp: now - 10, jti: 'just-expired' });
    await request(app).post('/revoke').auth(owner.id, owner.secret).type('form').send({ token: justExpired }).expect(200);
    expect(store.revoked.has('just-expired')).toBe(true);
  });

  it('answers 503 within storeTimeout, at the guard, revocation and introspection, when the store hangs', async () => {
    const store = new RecordingStore();
    const reports: string[] = [];
    const { app } = tokenServer([owner], { revocations: store, storeTimeout: 200, onInternalError: (line) => reports.push(line) });
    const token = await tokenFor(app, owner);
    store.hang = true;
    const started = Date.now();
    const answers = await Promise.all([
      request(app).get('/api/data').set('Authorization', `Bearer ${token}`),
      request(app).post('/revoke').auth(owner.id, owner.secret).type('form').send({ token }),
      request(app).post('/introspect').auth(owner.id, owner.secret).type('form').send({ token }),
    ]);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(answers.map((res) => [res.status, res.body.error])).toEqual(Array(3).fill([503, 'temporarily_unavailable']));
    // One line per failing part and interval: the two endpoints' 503s make one, the guard's another.
    expect(reports).toEqual([
      expect.stringMatching(/^express-client-credentials: The revocation list is unavailable/),
      expect.stringMatching(/^express-client-credentials: The revocation list is unavailable/),
    ]);
  });

  it('lets a disabled client revoke its tokens', async () => {
    const client = await aClient({ scope: 'read' });
    const revocations = new MemoryRevocationStore();
    const { app } = tokenServer([client], { revocations });
    const token = await tokenFor(app, client);
    const disabled = tokenServer([{ ...client, record: { ...client.record, disabled: true } }], { revocations }).app;
    await request(disabled).post('/revoke').auth(client.id, client.secret).type('form').send({ token }).expect(200);
    expect(await revocations.isRevoked(String(decodePayload(token).jti))).toBe(true);
  });
});

describe('revocationFailure: what a failed revocation lookup means at the guard', () => {
  const failing = { revoke: async () => undefined, isRevoked: async (): Promise<boolean> => { throw new Error('store down'); } };
  /** What the guards told `onInternalError`. */
  let reports: string[] = [];
  beforeEach(() => void (reports = []));
  const guarded = (revocationFailure?: 'unavailable' | 'invalid_token' | 'allow') => {
    const app = express();
    app.get('/x', authenticate({ secret: SECRET, issuer: ISSUER, revocations: failing, onInternalError: (line) => reports.push(line), ...(revocationFailure === undefined ? {} : { revocationFailure }) }), (_req, res) => { res.json({}); });
    return app;
  };
  const token = () => hs256({ iss: ISSUER, sub: 'a', client_id: 'a', aud: `${ISSUER}/api`, iat: Math.floor(Date.now() / 1000), exp: Math.floor(Date.now() / 1000) + 60, jti: 'j' });

  it('fails closed with 503 by default', async () => {
    const res = await request(guarded()).get('/x').set('Authorization', `Bearer ${token()}`);
    expect([res.status, res.body.error]).toEqual([503, 'temporarily_unavailable']);
    expect(reports).toEqual([expect.stringMatching(/^express-client-credentials: The revocation list is unavailable; try again later \(Error: store down\)/)]);
  });

  it("answers 401 invalid_token with 'invalid_token'", async () => {
    const res = await request(guarded('invalid_token')).get('/x').set('Authorization', `Bearer ${token()}`);
    expect([res.status, res.body.error_description]).toEqual([401, 'The token could not be checked for revocation']);
  });

  it("accepts, never silently, with 'allow'", async () => {
    const emitWarning = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    try {
      await request(guarded('allow')).get('/x').set('Authorization', `Bearer ${token()}`).expect(200);
      expect(emitWarning).toHaveBeenCalledWith(expect.stringContaining('accepted unchecked'), { code: 'ECC_REVOCATION_UNCHECKED' });
    } finally {
      emitWarning.mockRestore();
    }
  });
});
