// Interop fixture: openid-client v6 (unchanged) discovers the issuer, gets a token, introspects it
// (RFC 7662), revokes it (RFC 7009) and introspects it again.
// Usage: INTEROP_CLIENT_SECRET=… node openid-client-lifecycle.mjs <issuer> <client_id>
// Prints one JSON line: { ok: true, metadata, before, after } or { ok: false, error }.

import * as client from 'openid-client';

const [issuer, clientId] = process.argv.slice(2);
const secret = process.env.INTEROP_CLIENT_SECRET;
if (!issuer || !clientId || !secret) {
  console.error('usage: INTEROP_CLIENT_SECRET=… node openid-client-lifecycle.mjs <issuer> <client_id>');
  process.exit(2);
}

try {
  const config = await client.discovery(new URL(issuer), clientId, undefined, client.ClientSecretBasic(secret), {
    execute: [client.allowInsecureRequests],
    algorithm: 'oauth2',
  });
  const { access_token: token } = await client.clientCredentialsGrant(config, { scope: 'read' });
  const before = await client.tokenIntrospection(config, token, { token_type_hint: 'access_token' });
  await client.tokenRevocation(config, token, { token_type_hint: 'access_token' });
  const after = await client.tokenIntrospection(config, token);
  const metadata = config.serverMetadata();
  console.log(
    JSON.stringify({
      ok: true,
      metadata: { revocation_endpoint: metadata.revocation_endpoint, introspection_endpoint: metadata.introspection_endpoint },
      token,
      before,
      after,
    }),
  );
} catch (error) {
  console.log(JSON.stringify({ ok: false, error: { name: error?.name, message: error?.message, code: error?.code, error: error?.error } }));
}
