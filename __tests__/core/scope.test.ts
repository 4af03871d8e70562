import { formatScope, grantScope, parseScope } from '../../lib/core/scope.js';
import { OAuthError } from '../../lib/core/errors.js';

describe('scope syntax: RFC 6749 §3.3', () => {
  it.each([
    ['read', ['read']],
    ['read write', ['read', 'write']],
    ['read read write', ['read', 'write']],
    ['urn:example:reports.read https://api.example/x', ['urn:example:reports.read', 'https://api.example/x']],
    ['', []],
  ])('parses the space-delimited list %j', (value, scopes) => {
    expect(parseScope(value)).toEqual(scopes);
  });

  it.each([['read  write'], [' read'], ['read '], ['re"ad'], ['re\\ad'], ['réad'], ['read\twrite']])(
    'rejects %j, which breaks scope-token = 1*( %%x21 / %%x23-5B / %%x5D-7E )',
    (value) => {
      expect(parseScope(value)).toBeUndefined();
    },
  );

  it('formats scopes back into the string it parsed', () => {
    expect(formatScope(parseScope('a b c') ?? [])).toBe('a b c');
  });
});

describe('granting scope: RFC 6749 §3.3', () => {
  it('grants exactly the requested scopes when all are allowed', () => {
    expect(grantScope('write', ['read', 'write'], ['read'])).toEqual(['write']);
  });

  it('uses the documented default when the client omits the scope parameter', () => {
    expect(grantScope(undefined, ['read', 'write'], ['read'])).toEqual(['read']);
  });

  it.each([
    ['admin', 'The requested scope exceeds the scope granted to the client'],
    ['read admin', 'The requested scope exceeds the scope granted to the client'],
    ['READ', 'The requested scope exceeds the scope granted to the client'],
    ['read  write', 'The scope parameter is malformed'],
  ])('answers invalid_scope for %j (scopes are case-sensitive)', (requested, description) => {
    expect(() => grantScope(requested, ['read', 'write'], [])).toThrow(new OAuthError('invalid_scope', 400, description));
  });
});
