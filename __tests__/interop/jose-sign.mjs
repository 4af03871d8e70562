// Interop fixture: jose v6 (unchanged) signs a JWT, e.g. a private_key_jwt client assertion.
// Input: INTEROP_SIGN = JSON { jwk: <private JWK>, alg, header: {...}, payload: {...} }.
// Prints one line: the compact JWS.

import { importJWK, SignJWT } from 'jose';

const { jwk, alg, header, payload } = JSON.parse(process.env.INTEROP_SIGN ?? '{}');
const key = await importJWK(jwk, alg);
console.log(await new SignJWT(payload).setProtectedHeader({ ...header, alg }).sign(key));
