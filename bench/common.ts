// Shared by the orchestrator (run.ts), the server children (server.ts) and the load child (load.ts):
// the benchmark's settings, its fixtures (keys, tokens, clients, made once per run), and the messages.

import fs from 'node:fs';

export const HOST = '127.0.0.1';
/** `iss` of every token in the benchmark, and `aud` of the guarded API. */
export const ISSUER = 'https://auth.bench.test';
export const AUDIENCE = 'http://api.bench.test';
export const SCOPE = 'read';
/** The guarded route every guard variant serves, and the token endpoint path of every token variant. */
export const GUARDED_PATH = '/api/data';
export const TOKEN_PATH = '/token';

export type Alg = 'HS256' | 'ES256' | 'RS256';
export const ALGS: readonly Alg[] = ['HS256', 'ES256', 'RS256'];
/** Explicit key ids, so that JWKS-based peers find the key the tokens name. */
export const KIDS: Record<Alg, string> = { HS256: 'bench-hs', ES256: 'bench-es', RS256: 'bench-rs' };

export interface Client {
  readonly id: string;
  readonly secret: string;
  /** bcrypt hash (`$2b$…`) of `secret`. */
  readonly hash: string;
}

/** Everything made once per run by the orchestrator and read by the children from BENCH_FIXTURES. */
export interface Fixtures {
  readonly hsSecret: string;
  /** PKCS#8 PEM private keys and SPKI PEM public keys. */
  readonly keys: Record<'ES256' | 'RS256', { readonly privateKey: string; readonly publicKey: string }>;
  /** One valid RFC 9068 token per algorithm, reused by every request of the guard variants. */
  readonly tokens: Record<Alg, string>;
  /** Repeat clients of the token endpoint variants (bcrypt cost 10). */
  readonly repeatClients: readonly Client[];
  /** First-time clients of the burst test (bcrypt cost 10). */
  readonly burstClients: readonly Client[];
  /** Distinct clients of the memory test (bcrypt cost `memoryHashCost`). */
  readonly memoryClients: readonly Client[];
  readonly memoryHashCost: number;
  /** Distinct ES256 tokens of the memory test, signed with `keys.ES256`. */
  readonly memoryTokens: readonly string[];
  /** A token for the burst test's guarded route, signed with `keys.ES256`. */
  readonly burstToken: string;
}

export function loadFixtures(): Fixtures {
  const file = process.env.BENCH_FIXTURES;
  if (file === undefined) throw new Error('BENCH_FIXTURES is not set: start this through `npm run bench`');
  return JSON.parse(fs.readFileSync(file, 'utf8')) as Fixtures;
}

export const basic = (client: Pick<Client, 'id' | 'secret'>): string =>
  `Basic ${Buffer.from(`${encodeURIComponent(client.id)}:${encodeURIComponent(client.secret)}`).toString('base64')}`;

export const TOKEN_FORM = `grant_type=client_credentials&scope=${SCOPE}`;
export const FORM_TYPE = 'application/x-www-form-urlencoded';

/** One HTTP request, as the load generator sends it. */
export interface RequestSpec {
  readonly method: 'GET' | 'POST';
  readonly path: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body?: string;
}

/** What a server child tells the orchestrator once it listens. */
export type ServerMessage =
  | { type: 'ready'; port: number; notes: readonly string[] }
  | { type: 'error'; message: string }
  | { type: 'memory'; rss: number; heapUsed: number; heapTotal: number; external: number; requests: number };

/** What the orchestrator asks a server child. */
export type ServerRequest = { type: 'memory'; gc: boolean };

/** Load generator results, as the load child reports them. */
export interface LoadResult {
  /** 2xx responses per second over the measured duration. */
  readonly rps: number;
  /** Latencies of 2xx responses in milliseconds. */
  readonly p50: number;
  readonly p99: number;
  readonly total: number;
  readonly non2xx: number;
  readonly errors: number;
  readonly seconds: number;
  readonly tool: 'autocannon' | 'wrk' | 'node:http';
}

export interface ProbeResult {
  /** Milliseconds, measured with process.hrtime (sub-millisecond resolution). */
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
  readonly samples: number;
  readonly failures: number;
}

export type LoadJob =
  | { kind: 'fixed'; port: number; requests: readonly RequestSpec[]; connections: number; warmupSeconds: number; seconds: number; tool: 'autocannon' | 'wrk' }
  | { kind: 'memory'; port: number; amount: number; connections: number; offset: number }
  | { kind: 'probe'; port: number; seconds: number; rate: number }
  | { kind: 'burst'; port: number; connections: number; rate: number };

export type LoadReply =
  | { type: 'fixed'; result: LoadResult }
  | { type: 'memory'; result: LoadResult }
  | { type: 'probe'; result: ProbeResult }
  | { type: 'burst'; probe: ProbeResult; burst: LoadResult; burstSeconds: number }
  | { type: 'error'; message: string };

export const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
