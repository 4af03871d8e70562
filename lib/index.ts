// express-client-credentials: the OAuth 2.0 client credentials grant for Express (RFC 6749 §4.4, RFC 6750, RFC 9068).

export { issuer, type Issuer, type IssuerOptions, type ResolvedEndpoints, type SigningKeys, type TrustedIssuer } from './express/issuer.js';
export {
  authenticate,
  requireScope,
  requireAnyScope,
  type AuthenticateOptions,
  type GuardIssuerOptions,
  type GuardSecretOptions,
  type GuardPublicKeyOptions,
  type GuardRemoteOptions,
  type GuardEnvironmentOptions,
  type TokenLocation,
} from './express/guard.js';
export { sendError } from './express/exchange.js';
export { OAuthError, ConfigurationError, type OAuthErrorCode } from './core/errors.js';
export { hashSecret, generateClientSecret, type ClientRecord, type ClientAuthMethod } from './core/client.js';
export { type AuthInfo } from './core/token-verification.js';
export { type SigningKeyInput, type VerificationKeyInput, type KeyMaterial, type Jwk, type JwsAlgorithm } from './core/signing-keys.js';
export { type ClientStore, type RevocationStore, type ReplayCache } from './core/stores.js';
export { MemoryClientStore } from './stores/memory-client-store.js';
export { MemoryRevocationStore } from './stores/memory-revocation-store.js';
export { MemoryReplayCache } from './stores/memory-replay-cache.js';
export { type IntrospectionResponse } from './core/token-introspection.js';
export { type GrantContext } from './core/token-issuance.js';
export { type AuditEvent } from './core/audit.js';
export { type EndpointUrls } from './core/metadata.js';
export { environmentDefaults, type EnvironmentDefaults } from './env.js';
export { tokenClient, TokenRequestError, type TokenClient, type TokenClientOptions } from './client/token-client.js';
export { protectedResource, type ProtectedResource, type ProtectedResourceOptions } from './express/protected-resource.js';
