// bcrypt comparisons off the event loop when the native `bcrypt` package is installed (an optional
// dependency: it runs in libuv's thread pool); bcryptjs, pure JavaScript, otherwise. Same hashes.

import bcryptjs from 'bcryptjs';

type Compare = (secret: string, hash: string) => Promise<boolean>;

/** The native module, if it loads on this platform; `undefined` otherwise. */
function nativeCompare(): Compare | undefined {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const native = require('bcrypt') as { compare: Compare };
    return typeof native.compare === 'function' ? (secret, hash) => native.compare(secret, hash) : undefined;
  } catch {
    return undefined;
  }
}

/** Which implementation compares secrets in this process. */
export const bcryptImplementation: 'bcrypt' | 'bcryptjs' = nativeCompare() === undefined ? 'bcryptjs' : 'bcrypt';

/** Compares a secret with a bcrypt hash, in the thread pool when it can. */
export const compareSecret: Compare = nativeCompare() ?? ((secret, hash) => bcryptjs.compare(secret, hash));
