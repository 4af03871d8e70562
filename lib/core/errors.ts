// OAuth errors and their wire form: RFC 6749 §5.2 (token endpoint), RFC 6750 §3 (resource server).

/** Error codes of RFC 6749 §5.2, RFC 6750 §3.1, RFC 8707 §2, and `temporarily_unavailable`/`server_error` for our own faults. */
export type OAuthErrorCode =
  | 'invalid_request'
  | 'invalid_client'
  | 'invalid_grant'
  | 'unauthorized_client'
  | 'unsupported_grant_type'
  | 'invalid_scope'
  | 'invalid_target'
  | 'invalid_token'
  | 'insufficient_scope'
  | 'temporarily_unavailable'
  | 'server_error';

/**
 * An error a client caused (or our store failed with), carrying everything needed to answer it:
 * status, `error` code, an ASCII description that never echoes input, and extra headers
 * such as `WWW-Authenticate`. Express's default error handler honours `status` and `headers` too.
 */
export class OAuthError extends Error {
  override readonly name = 'OAuthError';

  constructor(
    readonly error: OAuthErrorCode,
    readonly status: number,
    description: string,
    readonly headers: Readonly<Record<string, string>> = {},
    options?: ErrorOptions,
  ) {
    // No stack: these are answers to clients, made by the thousand under a flood, and a stack
    // says nothing about a client's mistake (a store's failure keeps its own, in `cause`).
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(description, options);
    Error.stackTraceLimit = limit;
  }

  /** The same error with headers added; used where the transport decides the challenge. */
  withHeaders(headers: Record<string, string>): OAuthError {
    return new OAuthError(this.error, this.status, this.message, { ...this.headers, ...headers }, { cause: this.cause });
  }

  toJSON(): { error: OAuthErrorCode; error_description: string } {
    return { error: this.error, error_description: this.message };
  }
}

/** One `invalid_client` for every failure, so a caller learns nothing about which part was wrong. */
export function invalidClient(cause?: unknown): OAuthError {
  return new OAuthError('invalid_client', 401, 'Client authentication failed', {}, cause === undefined ? undefined : { cause });
}

/** A mistake in the options a developer passed; thrown at construction, never sent to a client. */
export class ConfigurationError extends Error {
  override readonly name = 'ConfigurationError';
}

/**
 * Builds a `WWW-Authenticate` challenge (RFC 7235 §2.1, RFC 6750 §3). Values are our own
 * constants or validated options, so none contains `"` or `\`; that is checked, not assumed.
 */
export function wwwAuthenticate(scheme: 'Basic' | 'Bearer', fields: Record<string, string | undefined>): string {
  const params = Object.entries(fields)
    .filter((entry): entry is [string, string] => entry[1] !== undefined)
    .map(([name, value]) => {
      if (!isQuotable(value)) throw new TypeError(`cannot quote the ${name} challenge parameter`);
      return `${name}="${value}"`;
    });
  return params.length === 0 ? scheme : `${scheme} ${params.join(', ')}`;
}

/** True when `value` can stand in a quoted-string without escapes: printable ASCII, no `"` or `\`. */
export function isQuotable(value: string): boolean {
  return /^[\x20\x21\x23-\x5B\x5D-\x7E]*$/.test(value);
}
