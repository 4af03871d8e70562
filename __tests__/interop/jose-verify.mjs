// Interop fixture: jose v6 (unchanged) fetches our JWKS and verifies an access token we issued,
// as an RFC 9068 resource server would.
// Usage: node jose-verify.mjs <jwks_uri> <issuer> <audience>
// The token comes from the INTEROP_ACCESS_TOKEN environment variable.
// Prints one JSON line: { ok: true, protectedHeader, payload } or { ok: false, error }.

import { createRemoteJWKSet, jwtVerify } from 'jose';

const [jwksUri, issuer, audience] = process.argv.slice(2);
const token = process.env.INTEROP_ACCESS_TOKEN;
if (!jwksUri || !issuer || !audience || !token) {
  console.error('usage: INTEROP_ACCESS_TOKEN=… node jose-verify.mjs <jwks_uri> <issuer> <audience>');
  process.exit(2);
}

try {
  const JWKS = createRemoteJWKSet(new URL(jwksUri));
  const { protectedHeader, payload } = await jwtVerify(token, JWKS, { issuer, audience, typ: 'at+jwt' });
  console.log(JSON.stringify({ ok: true, protectedHeader, payload }));
} catch (error) {
  const described =
    error instanceof Error ? { name: error.name, code: error.code, message: error.message, claim: error.claim, reason: error.reason } : { name: 'NonError', message: String(error) };
  console.log(JSON.stringify({ ok: false, error: described }));
}
