// Interop fixture: openid-client v6 (unchanged) authenticates with PrivateKeyJwt (RFC 7523) and
// runs the client credentials grant against an issuer it discovers.
// Usage: INTEROP_PRIVATE_JWK='<private JWK with kid and alg>' node openid-client-private-key-jwt.mjs <issuer> <client_id> [scope]
// Prints one JSON line: { ok: true, tokens } or { ok: false, error }.

import * as client from 'openid-client';

const [issuer, clientId, scope] = process.argv.slice(2);
const jwk = JSON.parse(process.env.INTEROP_PRIVATE_JWK ?? '{}');
const algorithm = jwk.alg === 'ES256' ? { name: 'ECDSA', namedCurve: 'P-256' } : { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };

try {
  const key = await crypto.subtle.importKey('jwk', jwk, algorithm, false, ['sign']);
  const config = await client.discovery(new URL(issuer), clientId, undefined, client.PrivateKeyJwt({ key, kid: jwk.kid }), {
    execute: [client.allowInsecureRequests],
    algorithm: 'oauth2',
  });
  const tokens = await client.clientCredentialsGrant(config, scope === undefined ? {} : { scope });
  console.log(JSON.stringify({ ok: true, tokens: { access_token: tokens.access_token, token_type: tokens.token_type, scope: tokens.scope } }));
} catch (error) {
  console.log(JSON.stringify({ ok: false, error: { name: error?.name, message: error?.message, code: error?.code, error: error?.error } }));
}
