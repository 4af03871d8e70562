// Declares `req.auth` on Express's Request, once, for every user of the package.

import type { AuthInfo } from '../core/token-verification.js';

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      /** Set by `authenticate()` (or `requireScope()` alone) once the Bearer token is verified. */
      auth?: AuthInfo | undefined;
    }
  }
}
