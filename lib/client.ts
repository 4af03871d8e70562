// The calling side alone, imported from 'express-client-credentials/client': tokenClient() gets and
// renews tokens for a service that calls an API. It loads no server code: no bcrypt, no JWS.

export { tokenClient, TokenRequestError, type TokenClient, type TokenClientOptions } from './client/token-client.js';
