// Calls into stores (clients, revocations): a store that throws, rejects or hangs becomes a clean
// 503 within a bound, never a hung request or a silent accept.

import { OAuthError } from './errors.js';

/**
 * Runs a store call with a time limit. A store that answers at once (in memory) costs no timer:
 * the limit is armed only when the answer is still pending after a microtask.
 * @param description the `error_description` of the 503, a constant such as "The client registry is unavailable; try again later"
 */
export async function storeCall<T>(call: () => Promise<T> | T, ms: number, description: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    const answer = Promise.resolve(call());
    let settled = false;
    answer.then(
      () => (settled = true),
      () => (settled = true),
    );
    await undefined; // lets an answer that is already there settle first
    if (settled) return await answer;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`the store did not answer within ${ms} ms`)), ms);
    });
    return await Promise.race([answer, timeout]);
  } catch (cause) {
    throw new OAuthError('temporarily_unavailable', 503, description, { 'Retry-After': '5' }, { cause });
  } finally {
    clearTimeout(timer);
  }
}
