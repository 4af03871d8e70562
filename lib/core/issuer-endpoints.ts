// The issuer's three client endpoints as named steps: token (RFC 6749 §4.4), revocation
// (RFC 7009 §2) and introspection (RFC 7662 §2), which share their first steps.

import { clientEndpoint, clientSteps, formSteps, type ClientEndpoint, type ClientEndpointContext } from './client-endpoint.js';
import { OAuthError } from './errors.js';
import { jsonResponse, NO_STORE } from './exchange.js';
import { introspectToken, requireTokenParameter, revokeToken, type OwnTokens } from './token-introspection.js';
import { checkGrantType, issueAccessToken, type IssuanceConfig } from './token-issuance.js';

export interface IssuerEndpoints {
  readonly token: ClientEndpoint;
  readonly revocation: ClientEndpoint;
  readonly introspection: ClientEndpoint;
}

/** `N` is the framework's request, which the grant hooks receive. */
export function issuerEndpoints<N>(context: ClientEndpointContext, issuance: IssuanceConfig<N>, own: OwnTokens): IssuerEndpoints {
  const { audit } = context;
  const token = clientSteps(
    context,
    formSteps(context, ['grant_type', 'scope'], ['resource']).then('grantType', ({ params }) => checkGrantType(params.values.grant_type)),
  ).then('response', async (state) => {
    const { client, secretIndex, method } = state.authenticated;
    const request = { scope: state.params.values.scope, resources: state.params.lists.resource ?? [] };
    let issued: Awaited<ReturnType<typeof issueAccessToken>>;
    try {
      issued = await issueAccessToken(client, request, issuance, state.request.native as N);
    } catch (error) {
      if (error instanceof OAuthError) audit(state, { type: 'token_refused', clientId: client.id, error: error.error });
      throw error;
    }
    const { claims } = issued;
    audit(state, {
      type: 'token_issued',
      clientId: client.id,
      authMethod: method,
      secretIndex,
      scope: claims.scope as string | undefined,
      audience: claims.aud,
      jti: claims.jti as string,
      expiresAt: claims.exp as number,
    });
    return jsonResponse(200, issued.response);
  });

  // The hint only orders a search (RFC 7009 §2.1); with one kind of token there is nothing to order.
  const tokenSteps = clientSteps(context, formSteps(context, ['token', 'token_type_hint']).then('token', ({ params }) => requireTokenParameter(params.values.token)));
  const revocation = tokenSteps.then('response', async (state) => {
    const { client } = state.authenticated;
    const jti = await revokeToken(state.token, client, own);
    if (jti !== undefined) audit(state, { type: 'token_revoked', clientId: client.id, jti });
    return { status: 200, headers: NO_STORE };
  });
  const introspection = tokenSteps.then('response', async (state) => jsonResponse(200, await introspectToken(state.token, state.authenticated.client, own)));

  return {
    token: clientEndpoint('token', context, token),
    revocation: clientEndpoint('revocation', context, revocation),
    introspection: clientEndpoint('introspection', context, introspection),
  };
}
