// HTTP Basic client credentials (RFC 6749 §2.3.1 and Appendix B): both halves form-urlencoded
// before base64. Its own module: the token client formats them without loading the server.

/**
 * Decodes `Authorization: Basic` credentials. RFC 6749 §2.3.1 has clients form-urlencode the id
 * and the secret before base64 (Appendix B), so both are form-decoded here.
 */
export function parseBasic(header: string): { clientId: string; secret: string } | undefined {
  const match = /^basic +([A-Za-z0-9+/]+={0,2}) *$/i.exec(header);
  if (match === null) return undefined;
  const decoded = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  let pair: string;
  try {
    pair = decoded.decode(Buffer.from(match[1] as string, 'base64'));
  } catch {
    return undefined;
  }
  const colon = pair.indexOf(':');
  if (colon < 0) return undefined;
  const clientId = formDecode(pair.slice(0, colon));
  const secret = formDecode(pair.slice(colon + 1));
  if (clientId === undefined || secret === undefined || clientId === '' || secret === '') return undefined;
  return { clientId, secret };
}

/** The encoding RFC 6749 §2.3.1 asks of clients, for tests and our own token client. */
export function formatBasic(clientId: string, secret: string): string {
  return `Basic ${Buffer.from(`${formEncode(clientId)}:${formEncode(secret)}`).toString('base64')}`;
}

function formEncode(value: string): string {
  return new URLSearchParams([['', value]]).toString().slice(1);
}

function formDecode(value: string): string | undefined {
  try {
    return decodeURIComponent(value.replace(/\+/g, ' '));
  } catch {
    return undefined;
  }
}
