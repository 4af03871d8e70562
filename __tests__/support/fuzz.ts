// Property-based fuzzing support: the seed and run counts (FUZZ_SEED, FUZZ_RUNS), a raw HTTP client
// for one loopback server, and arbitraries for hostile requests and tokens.

import http from 'node:http';
import fc from 'fast-check';

/** The seed every property runs with: fixed, so CI is reproducible; `FUZZ_SEED=…` explores others. */
export const FUZZ_SEED = integerFromEnv('FUZZ_SEED', 42);

/** Runs per property: `FUZZ_RUNS` when set (for longer local runs), else the property's own default. */
export function fuzzRuns(defaultRuns: number): number {
  return integerFromEnv('FUZZ_RUNS', defaultRuns);
}

/** fast-check parameters: the fixed seed and the run count. */
export function fuzzParameters<T>(defaultRuns: number): fc.Parameters<T> {
  return { seed: FUZZ_SEED, numRuns: fuzzRuns(defaultRuns) };
}

/** A jest timeout that grows with FUZZ_RUNS: `msPerRun` per run beyond a floor of 30 s. */
export function fuzzTimeout(defaultRuns: number, msPerRun: number): number {
  return Math.max(30_000, fuzzRuns(defaultRuns) * msPerRun * 3);
}

function integerFromEnv(name: string, fallback: number): number {
  const value = process.env[name];
  if (value === undefined || value === '') return fallback;
  const parsed = Number(value);
  if (!Number.isSafeInteger(parsed) || parsed < 0) throw new TypeError(`${name} must be a whole number, not ${JSON.stringify(value)}`);
  return parsed;
}

export interface RawRequest {
  readonly method: string;
  /** Path and query, sent as they are. */
  readonly path: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: Buffer | undefined;
  /** Send the body with Transfer-Encoding: chunked instead of Content-Length. */
  readonly chunked?: boolean;
}

export interface RawResponse {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: Buffer;
}

/**
 * Sends one request as given (any method, header or body bytes) to a loopback server over a
 * keep-alive connection, and reads the whole answer. A request that gets no answer within
 * `timeout` fails: a hung request is a finding too.
 */
export function rawRequest(baseUrl: string, agent: http.Agent, req: RawRequest, timeout = 10_000): Promise<RawResponse> {
  const attempt = (retry: boolean): Promise<RawResponse> =>
    new Promise((resolve, reject) => {
      const url = new URL(baseUrl);
      const headers: Record<string, string> = { ...req.headers };
      if (req.body !== undefined && !req.chunked) headers['Content-Length'] = String(req.body.length);
      // Said outright: Node frames a GET or HEAD body only when told, and would otherwise send its
      // bytes unframed, which the server reads as a second, malformed request.
      if (req.body !== undefined && req.chunked) headers['Transfer-Encoding'] = 'chunked';
      const outgoing = http.request({ host: url.hostname, port: url.port, method: req.method, path: req.path, headers, agent });
      let answered = false;
      const timer = setTimeout(() => {
        outgoing.destroy();
        reject(new Error(`no answer within ${timeout} ms to ${req.method} ${req.path}`));
      }, timeout);
      outgoing.on('response', (res) => {
        answered = true;
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          clearTimeout(timer);
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) });
        });
        res.on('error', (error) => {
          clearTimeout(timer);
          reject(error);
        });
      });
      outgoing.on('error', (error: NodeJS.ErrnoException) => {
        // The server may answer (413) before it has read a body we are still writing.
        if (answered) return;
        clearTimeout(timer);
        // A keep-alive socket the server closed meanwhile: Node's advice is to retry once on a fresh one.
        if (retry && outgoing.reusedSocket && (error.code === 'ECONNRESET' || error.code === 'EPIPE')) {
          resolve(attempt(false));
          return;
        }
        reject(error);
      });
      if (req.body !== undefined && req.body.length > 0) outgoing.write(req.body);
      outgoing.end();
    });
  return attempt(true);
}

/** The characters a header value may hold on the wire (RFC 9110 §5.5): visible ASCII, space, tab, and obs-text. */
export const headerChar = fc.oneof(
  { weight: 8, arbitrary: fc.integer({ min: 0x20, max: 0x7e }) },
  { weight: 1, arbitrary: fc.constant(0x09) },
  { weight: 1, arbitrary: fc.integer({ min: 0x80, max: 0xff }) },
).map((code) => String.fromCharCode(code));

/** A header value; Node trims the surrounding whitespace on both ends, as RFC 9110 §5.5 allows. */
export const headerValue = (maxLength = 200) => fc.string({ unit: headerChar, maxLength });

const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
export const base64urlChar = fc.constantFrom(...B64URL.split(''));
/** A run of base64url characters, like a JWS segment. */
export const base64urlSegment = (maxLength = 120) => fc.string({ unit: base64urlChar, maxLength });

/** Any well-formed Unicode string (no lone surrogates), of code points from the whole range. */
export const unicodeString = (constraints: { minLength?: number; maxLength?: number } = {}) => fc.string({ unit: 'binary', ...constraints });

/** A scope-token of RFC 6749 §3.3: 1*( %x21 / %x23-5B / %x5D-7E ). */
export const scopeToken = fc.string({
  unit: fc.oneof(fc.constant(0x21), fc.integer({ min: 0x23, max: 0x5b }), fc.integer({ min: 0x5d, max: 0x7e })).map((code) => String.fromCharCode(code)),
  minLength: 1,
  maxLength: 20,
});

/** One edit of a token string: the ways a careless or hostile client damages a valid JWS. */
export type TokenEdit =
  | { readonly kind: 'replace' | 'insert'; readonly at: number; readonly char: string }
  | { readonly kind: 'delete' | 'truncate' | 'flipCase'; readonly at: number }
  | { readonly kind: 'segment'; readonly part: number; readonly value: string }
  | { readonly kind: 'swap'; readonly a: number; readonly b: number }
  | { readonly kind: 'append'; readonly value: string };

export const tokenEdit: fc.Arbitrary<TokenEdit> = fc.oneof(
  fc.record({ kind: fc.constantFrom('replace' as const, 'insert' as const), at: fc.nat(), char: fc.oneof(base64urlChar, fc.constantFrom('.', '=', '+', '/', '~')) }),
  fc.record({ kind: fc.constantFrom('delete' as const, 'truncate' as const, 'flipCase' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('segment' as const), part: fc.nat({ max: 2 }), value: base64urlSegment() }),
  fc.record({ kind: fc.constant('swap' as const), a: fc.nat({ max: 2 }), b: fc.nat({ max: 2 }) }),
  fc.record({ kind: fc.constant('append' as const), value: fc.constantFrom('.', '.c2ln', '=', '==', 'A', '..') }),
);

/** Applies an edit; positions wrap around the token's length. */
export function applyEdit(token: string, edit: TokenEdit): string {
  const at = (n: number) => (token.length === 0 ? 0 : n % token.length);
  switch (edit.kind) {
    case 'replace':
      return token.slice(0, at(edit.at)) + edit.char + token.slice(at(edit.at) + 1);
    case 'insert':
      return token.slice(0, at(edit.at)) + edit.char + token.slice(at(edit.at));
    case 'delete':
      return token.slice(0, at(edit.at)) + token.slice(at(edit.at) + 1);
    case 'truncate':
      return token.slice(0, at(edit.at));
    case 'flipCase': {
      const char = token.charAt(at(edit.at));
      const flipped = char === char.toUpperCase() ? char.toLowerCase() : char.toUpperCase();
      return token.slice(0, at(edit.at)) + flipped + token.slice(at(edit.at) + 1);
    }
    case 'segment': {
      const parts = token.split('.');
      parts[edit.part % Math.max(parts.length, 1)] = edit.value;
      return parts.join('.');
    }
    case 'swap': {
      const parts = token.split('.');
      const a = parts[edit.a];
      const b = parts[edit.b];
      if (a === undefined || b === undefined) return token;
      parts[edit.a] = b;
      parts[edit.b] = a;
      return parts.join('.');
    }
    case 'append':
      return token + edit.value;
  }
}

/** Counts outcomes, so a property can show it reached the paths it claims to cover. */
export class Tally {
  readonly #counts = new Map<string, number>();

  add(outcome: string): void {
    this.#counts.set(outcome, (this.#counts.get(outcome) ?? 0) + 1);
  }

  count(outcome: string): number {
    return this.#counts.get(outcome) ?? 0;
  }

  toJSON(): Record<string, number> {
    return Object.fromEntries([...this.#counts].sort());
  }
}
