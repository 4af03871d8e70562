// Interop fixture: openid-client v6 (unchanged) discovers our RFC 8414 metadata and runs the
// client credentials grant against our token endpoint.
// Usage: node openid-client-token.mjs <issuer> <client_id> <basic|post> [scope]
// The client secret comes from the INTEROP_CLIENT_SECRET environment variable.
// Prints one JSON line: { ok: true, metadata, tokens } or { ok: false, error }.

import * as client from 'openid-client';

const [issuer, clientId, method, scope] = process.argv.slice(2);
const secret = process.env.INTEROP_CLIENT_SECRET;
if (!issuer || !clientId || !['basic', 'post'].includes(method ?? '') || !secret) {
  console.error('usage: INTEROP_CLIENT_SECRET=… node openid-client-token.mjs <issuer> <client_id> <basic|post> [scope]');
  process.exit(2);
}

try {
  const auth = method === 'basic' ? client.ClientSecretBasic(secret) : client.ClientSecretPost(secret);
  const config = await client.discovery(new URL(issuer), clientId, undefined, auth, {
    execute: [client.allowInsecureRequests],
    algorithm: 'oauth2',
  });
  const tokens = await client.clientCredentialsGrant(config, scope === undefined ? {} : { scope });
  const metadata = config.serverMetadata();
  console.log(
    JSON.stringify({
      ok: true,
      metadata: { issuer: metadata.issuer, token_endpoint: metadata.token_endpoint, jwks_uri: metadata.jwks_uri },
      tokens: {
        access_token: tokens.access_token,
        token_type: tokens.token_type,
        expires_in: tokens.expiresIn(),
        scope: tokens.scope,
      },
    }),
  );
} catch (error) {
  console.log(JSON.stringify({ ok: false, error: await describe(error) }));
}

async function describe(error) {
  if (!(error instanceof Error)) return { name: 'NonError', message: String(error) };
  // WWWAuthenticateChallengeError keeps the unread response: its body is the RFC 6749 §5.2 error.
  const response = error.response instanceof Response && !error.response.bodyUsed ? error.response : undefined;
  return {
    name: error.name,
    message: error.message,
    code: error.code,
    // ResponseBodyError (an OAuth error response) and WWWAuthenticateChallengeError carry these.
    status: error.status,
    error: error.error,
    error_description: error.error_description,
    cause: error.cause instanceof Error ? { name: error.cause.name, message: error.cause.message, code: error.cause.code } : undefined,
    // WWWAuthenticateChallengeError: the parsed challenges, as openid-client exposes them.
    challenges: Array.isArray(error.cause) ? error.cause : undefined,
    body: response === undefined ? undefined : await response.json().catch(() => undefined),
  };
}
