// Calls into stores (clients, revocations): a store that throws, rejects or hangs becomes a clean
// 503 within a bound, never a hung request or a silent accept.

import { OAuthError } from './errors.js';

/**
 * Runs a store call with a time limit.
 * @param description the `error_description` of the 503, a constant such as "The client registry is unavailable; try again later"
 */
export async function storeCall<T>(call: () => Promise<T>, ms: number, description: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the store did not answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([call(), timeout]);
  } catch (cause) {
    throw new OAuthError('temporarily_unavailable', 503, description, { 'Retry-After': '5' }, { cause });
  } finally {
    clearTimeout(timer);
  }
}
