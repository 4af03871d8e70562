// The token, revocation and introspection endpoints as the core runs them: no Express, no socket,
// a ProtocolRequest made by hand.

import { auditor, type AuditEvent, type Exchange } from '../../lib/core/audit.js';
import { ClientKeys } from '../../lib/core/client-assertion.js';
import { clientAuthenticator } from '../../lib/core/client-authentication.js';
import type { ClientEndpointContext } from '../../lib/core/client-endpoint.js';
import type { ProtocolRequest } from '../../lib/core/exchange.js';
import { issuerEndpoints } from '../../lib/core/issuer-endpoints.js';
import { KeyRing } from '../../lib/core/key-ring.js';
import { MemoryClientStore } from '../../lib/stores/memory-client-store.js';
import { MemoryReplayCache } from '../../lib/stores/memory-replay-cache.js';
import { MemoryRevocationStore } from '../../lib/stores/memory-revocation-store.js';
import { aClient, ISSUER, SECRET, type TestClient } from '../support/fixtures.js';

let client: TestClient;
beforeAll(async () => {
  client = await aClient({ scope: 'read' });
});

function endpoints(events: AuditEvent[] = []) {
  const store = new MemoryClientStore([client.record]);
  const keys = new KeyRing({ signingKey: { secret: SECRET } });
  const context: ClientEndpointContext = {
    authenticateClient: clientAuthenticator({
      store,
      storeTimeout: 1000,
      hashCost: 4,
      assertions: { audiences: () => [ISSUER], replayCache: new MemoryReplayCache(), maxLifetime: 300, clockTolerance: 5, storeTimeout: 1000 },
      clientKeys: new ClientKeys(),
    }),
    audit: auditor((event) => events.push(event), () => undefined),
    requireHttps: true,
    basicChallenge: 'Basic realm="test"',
    onInternalError: () => undefined,
    addressKey: (address) => address,
  };
  const revocations = new MemoryRevocationStore();
  return issuerEndpoints(context, { issuer: ISSUER, audience: `${ISSUER}/api`, accessTokenTtl: 600, signingKey: () => keys.active }, {
    verifier: { issuer: ISSUER, audiences: undefined, keys: () => keys.all, clockTolerance: 0, strict: true },
    revocations,
    clientIsActive: async () => true,
    storeTimeout: 1000,
  });
}

/** A request as an adapter would hand it over. */
function exchange(endpoint: Exchange['endpoint'], body: string, overrides: Partial<ProtocolRequest> & { headers?: Record<string, string> } = {}): Exchange {
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded', ...overrides.headers };
  const request: ProtocolRequest = {
    method: 'POST',
    header: (name) => headers[name],
    secure: true,
    socketAddress: '203.0.113.9',
    clientAddress: '203.0.113.9',
    queryNames: () => [],
    body: async () => new TextEncoder().encode(body),
    native: undefined,
    ...overrides,
  };
  return { endpoint, request };
}

const basic = (id: string, secret: string) => ({ authorization: `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}` });

describe('the client endpoints as named steps over a framework-neutral request (RFC 6749 §3.2, §4.4)', () => {
  it('names its steps in the order they run, revocation and introspection sharing all but their own', () => {
    const { token, revocation, introspection } = endpoints();
    expect(token.steps).toEqual(['postOnly', 'requireTls', 'formUtf8', 'body', 'params', 'grantType', 'credentials', 'authenticated', 'response']);
    expect(revocation.steps).toEqual(['postOnly', 'requireTls', 'formUtf8', 'body', 'params', 'token', 'credentials', 'authenticated', 'response']);
    expect(introspection.steps).toEqual(revocation.steps);
  });

  it('issues a token to an authenticated client: 200 JSON, no-store, and an audit event', async () => {
    const events: AuditEvent[] = [];
    const response = await endpoints(events).token.handle(exchange('token', 'grant_type=client_credentials', { headers: basic(client.id, client.secret) }));
    expect(response.status).toBe(200);
    expect(response.headers).toMatchObject({ 'Cache-Control': 'no-store', Pragma: 'no-cache', 'Content-Type': 'application/json; charset=utf-8' });
    expect(JSON.parse(response.body!)).toMatchObject({ token_type: 'Bearer', expires_in: 600, scope: 'read' });
    expect(events.map((event) => [event.type, event.address, event.endpoint])).toEqual([['token_issued', '203.0.113.9', 'token']]);
  });

  it('"The client MUST use the HTTP POST method": 405 with Allow, before reading the body', async () => {
    const body = jest.fn(async () => new Uint8Array());
    const response = await endpoints().token.handle(exchange('token', '', { method: 'PUT', body }));
    expect([response.status, response.headers.Allow, JSON.parse(response.body!).error]).toEqual([405, 'POST', 'invalid_request']);
    expect(body).not.toHaveBeenCalled();
  });

  it('"MUST require the use of TLS" (§2.3.1): 400 without TLS, unless the socket is loopback and nothing forwarded it', async () => {
    const { token } = endpoints();
    const plain = await token.handle(exchange('token', 'grant_type=client_credentials', { secure: false }));
    expect([plain.status, JSON.parse(plain.body!).error_description]).toEqual([400, 'Client credentials must be sent over https']);
    const local = await token.handle(exchange('token', 'grant_type=client_credentials', { secure: false, socketAddress: '127.0.0.1', headers: basic(client.id, client.secret) }));
    expect(local.status).toBe(200);
    const forwarded = await token.handle(exchange('token', 'grant_type=client_credentials', { secure: false, socketAddress: '127.0.0.1', headers: { 'x-forwarded-for': '198.51.100.1' } }));
    expect(forwarded.status).toBe(400);
  });

  it('refuses a body that is not a UTF-8 form, and a repeated parameter (§3.2)', async () => {
    const { token } = endpoints();
    for (const contentType of ['application/json', 'application/x-www-form-urlencoded; charset=iso-8859-1']) {
      expect((await token.handle(exchange('token', 'grant_type=client_credentials', { headers: { 'content-type': contentType } }))).status).toBe(400);
    }
    const repeated = await token.handle(exchange('token', 'grant_type=client_credentials&grant_type=client_credentials'));
    expect(JSON.parse(repeated.body!).error_description).toBe('A request parameter is repeated or malformed');
  });

  it('answers a failed client authentication 401 invalid_client with the Basic challenge, and audits it', async () => {
    const events: AuditEvent[] = [];
    const response = await endpoints(events).token.handle(exchange('token', 'grant_type=client_credentials', { headers: basic(client.id, 'wrong-secret-wrong') }));
    expect([response.status, response.headers['WWW-Authenticate'], JSON.parse(response.body!).error]).toEqual([401, 'Basic realm="test"', 'invalid_client']);
    expect(events.map((event) => event.type)).toEqual(['client_authentication_failed']);
  });

  it('revokes a token for its client (RFC 7009 §2.2: 200, empty), after which introspection says inactive', async () => {
    const all = endpoints();
    const issued = JSON.parse((await all.token.handle(exchange('token', 'grant_type=client_credentials', { headers: basic(client.id, client.secret) }))).body!);
    const active = await all.introspection.handle(exchange('introspection', `token=${issued.access_token}`, { headers: basic(client.id, client.secret) }));
    expect(JSON.parse(active.body!)).toMatchObject({ active: true, client_id: client.id });
    const revoked = await all.revocation.handle(exchange('revocation', `token=${issued.access_token}`, { headers: basic(client.id, client.secret) }));
    expect([revoked.status, revoked.body]).toEqual([200, undefined]);
    const inactive = await all.introspection.handle(exchange('introspection', `token=${issued.access_token}`, { headers: basic(client.id, client.secret) }));
    expect(JSON.parse(inactive.body!)).toEqual({ active: false });
  });
});
