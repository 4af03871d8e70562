// The longest access token lifetime, shared by client records, issuance and verification; a file
// of its own so that reading records does not load the JWS code.

/** One day: the longest access token lifetime issued or accepted by default (RFC 9700 §2.2: short-lived tokens). */
export const MAX_TOKEN_LIFETIME = 86_400;
