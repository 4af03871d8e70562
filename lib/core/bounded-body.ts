// Reading a response body from a server we do not control (a JWKS, an authorization server's
// metadata or token response) without letting it make us hold more than a bound.

/** Thrown when a body passes its bound. */
export class BodyTooLarge extends Error {
  override readonly name = 'BodyTooLarge';
}

/** Thrown when the stream fails while it is read (cut off, past a deadline); the failure is its cause. */
export class BodyCutOff extends Error {
  override readonly name = 'BodyCutOff';
}

/**
 * The body's bytes, at most `maxBytes`: counted as they arrive, since Content-Length may be absent
 * or wrong. The stream is cancelled on every way out, which frees the connection when we stop
 * early. A failure while reading (cut off, timed out) is a BodyCutOff; anything else (a body
 * already read by someone else) is thrown as it came.
 */
export async function readBounded(response: Response, maxBytes: number): Promise<Buffer> {
  const reader = response.body?.getReader();
  try {
    if (Number(response.headers.get('content-length')) > maxBytes) throw new BodyTooLarge();
    const chunks: Uint8Array[] = [];
    let size = 0;
    while (reader !== undefined) {
      const { done, value } = await reader.read().catch((cause: unknown) => {
        throw new BodyCutOff('the body was cut off', { cause });
      });
      if (done) break;
      size += value.byteLength;
      if (size > maxBytes) throw new BodyTooLarge();
      chunks.push(value);
    }
    return Buffer.concat(chunks);
  } finally {
    await reader?.cancel().catch(() => undefined);
  }
}
