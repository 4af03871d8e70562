// `npm run bench`: the side-by-side benchmark of issue 6. See bench/README.md for what it measures.
//
// Every server variant runs in a child process of its own (bench/server.ts), started fresh for each
// round and pinned to core 1 where the machine has two cores and `taskset`; the load comes from
// another child (bench/load.ts) pinned to core 0. Variants are interleaved over the rounds, and each
// round starts at another variant. Ratios are taken within a round (variant / floor of the same
// round), then their median over the rounds is reported with min and max.
//
// Environment: BENCH_QUICK=1 (a smoke run of under two minutes), BENCH_DURATION (s, default 4),
// BENCH_WARMUP (s, default 2), BENCH_ROUNDS (default 5), BENCH_CONNECTIONS (default 50),
// BENCH_LOADER (auto | autocannon | wrk; auto takes wrk when installed), BENCH_PIN=0 (no pinning),
// BENCH_ONLY (a regular expression on variant ids), BENCH_SKIP=memory,burst, BENCH_RESULTS (output
// file, default bench/RESULTS.md), BENCH_SERVER_NODE_ARGS (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof"),
// BENCH_QUIET / BENCH_QUIET_WAIT / BENCH_QUIET_BUDGET (see waitForQuiet), BENCH_TOKEN_CACHE / BENCH_SECRET_CACHE / BENCH_FORCE_OPTIONS (see options.ts).

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { generateClientSecret, hashSecret } from '../lib/index.js';
import { mintToken } from '../lib/testing.js';
import {
  AUDIENCE, FORM_TYPE, GUARDED_PATH, HOST, ISSUER, KIDS, SCOPE, TOKEN_FORM, TOKEN_PATH, basic, delay,
  type Alg, type Client, type Fixtures, type LoadJob, type LoadReply, type LoadResult, type RequestSpec, type ServerMessage,
} from './common.js';
import type { ServerConfig } from './server.js';
import { optionSupport } from './options.js';
import { cpuWindow, type CpuWindow } from './cpu.js';
import { report, type BurstOutcome, type MemoryOutcome, type Report, type Variant, type VariantSummary } from './report.js';

const root = path.resolve(__dirname, '..');
const env = process.env;
const quick = env.BENCH_QUICK === '1';
const number = (name: string, fallback: number): number => {
  const value = env[name] === undefined || env[name] === '' ? fallback : Number(env[name]);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number`);
  return value;
};
const settings = {
  quick,
  seconds: number('BENCH_DURATION', quick ? 1.5 : 4),
  warmupSeconds: number('BENCH_WARMUP', quick ? 0.5 : 2),
  rounds: Math.round(number('BENCH_ROUNDS', quick ? 1 : 5)),
  connections: Math.round(number('BENCH_CONNECTIONS', 50)),
  memoryRequests: quick ? ([5_000, 20_000] as const) : ([10_000, 100_000] as const),
  memoryTokens: 10_000,
  memoryClients: 1_000,
  memoryHashCost: 4,
  burstClients: Math.round(number('BENCH_BURST_CLIENTS', quick ? 32 : 96)),
  burstConnections: 16,
  probeRate: 200,
  idleProbeSeconds: quick ? 1.5 : 4,
  only: env.BENCH_ONLY ? new RegExp(env.BENCH_ONLY) : undefined,
  skip: new Set((env.BENCH_SKIP ?? '').split(',').filter(Boolean)),
  resultsFile: path.resolve(root, env.BENCH_RESULTS ?? 'bench/RESULTS.md'),
  /** Before each run, wait (up to quietWait s) until other processes use less than this many cores. */
  quietCores: number('BENCH_QUIET', 0.2),
  quietWait: number('BENCH_QUIET_WAIT', quick ? 2 : 30),
  /** Total seconds the whole run may spend waiting for quiet, so that a busy machine cannot stretch it without end. */
  quietBudget: number('BENCH_QUIET_BUDGET', quick ? 5 : 120),
};
let quietSpent = 0;

// ---------------------------------------------------------------------------------------------------
// Variants

const short = { HS256: 'hs', ES256: 'es', RS256: 'rs' } as const;
const guardVariants: Variant[] = [
  { id: 'guard-floor', group: 'guard', role: 'floor', label: 'no guard (floor)', kind: 'guard-floor', config: {} },
  ...(['HS256', 'ES256', 'RS256'] as const).flatMap((alg): Variant[] => [
    { id: `ours-${short[alg]}`, group: 'guard', role: 'ours', label: `ours ${alg}, token cache on`, kind: 'guard-ours', config: { alg, cache: 'on' }, alg, cache: 'on' },
    { id: `ours-${short[alg]}-nocache`, group: 'guard', role: 'ours', label: `ours ${alg}, token cache off`, kind: 'guard-ours', config: { alg, cache: 'off' }, alg, cache: 'off' },
  ]),
  ...(['HS256', 'ES256', 'RS256'] as const).map((alg): Variant => ({
    id: `eojb-${short[alg]}`, group: 'guard', role: 'peer', label: `express-oauth2-jwt-bearer ${alg}`, kind: 'guard-eojb', config: { alg }, alg,
  })),
  ...(['HS256', 'RS256'] as const).map((alg): Variant => ({
    id: `express-jwt-${short[alg]}`, group: 'guard', role: 'peer', label: `express-jwt ${alg}`, kind: 'guard-express-jwt', config: { alg }, alg,
  })),
];
const tokenVariants: Variant[] = [
  { id: 'token-floor', group: 'token', role: 'floor', label: 'Express POST floor', kind: 'token-floor', config: {} },
  ...(['HS256', 'ES256'] as const).flatMap((alg): Variant[] => [
    { id: `ours-token-${short[alg]}`, group: 'token', role: 'ours', label: `ours ${alg} (bcrypt 10, secret cache on)`, kind: 'token-ours', config: { alg, cache: 'on' }, alg, cache: 'on' },
    { id: `oidc-provider-${short[alg]}`, group: 'token', role: 'peer', label: `oidc-provider ${alg}`, kind: 'token-oidc-provider', config: { alg }, alg },
    { id: `oauth2-server-${short[alg]}`, group: 'token', role: 'peer', label: `oauth2-server ${alg}`, kind: 'token-oauth2-server', config: { alg }, alg },
  ]),
  { id: 'token-reference-hs', group: 'token', role: 'reference', label: 'reference HS256 (not a product: the least an endpoint does)', kind: 'token-reference', config: { alg: 'HS256' }, alg: 'HS256' },
];
const variants = [...guardVariants, ...tokenVariants].filter((v) => settings.only === undefined || settings.only.test(v.id));

// ---------------------------------------------------------------------------------------------------
// Processes

const hasCommand = (name: string): boolean => spawnSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' }).status === 0;
const cores = os.availableParallelism();
const pinning =
  env.BENCH_PIN !== '0' && cores >= 2 && hasCommand('taskset') && spawnSync('taskset', ['-c', '1', 'true'], { stdio: 'ignore' }).status === 0;
const SERVER_CORE = '1';
const LOAD_CORE = '0';
const loaderTool: 'autocannon' | 'wrk' = (() => {
  const choice = env.BENCH_LOADER ?? 'auto';
  if (choice === 'autocannon') return 'autocannon';
  if (choice === 'wrk') {
    if (!hasCommand('wrk')) throw new Error('BENCH_LOADER=wrk, but wrk is not installed');
    return 'wrk';
  }
  if (choice !== 'auto') throw new Error('BENCH_LOADER must be auto, autocannon or wrk');
  return hasCommand('wrk') ? 'wrk' : 'autocannon';
})();

function spawnNode(script: string, args: readonly string[], core: string, extraNodeArgs: readonly string[], fixturesFile: string): ChildProcess {
  const nodeArgs = [...extraNodeArgs, '--import', 'tsx', path.join(root, 'bench', script), ...args];
  const [command, commandArgs] = pinning ? ['taskset', ['-c', core, process.execPath, ...nodeArgs]] : [process.execPath, nodeArgs];
  return spawn(command, commandArgs, {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    env: { ...process.env, NODE_ENV: 'production', BENCH_FIXTURES: fixturesFile },
  });
}

function collect(child: ChildProcess): () => string {
  let text = '';
  const add = (chunk: Buffer): void => {
    text = (text + chunk.toString()).slice(-20_000);
  };
  child.stdout?.on('data', add);
  child.stderr?.on('data', add);
  return () => text;
}

function nextMessage<T>(child: ChildProcess, output: () => string, timeoutMs: number, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const cleanup = (): void => {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
    };
    const onMessage = (message: T): void => {
      cleanup();
      resolve(message);
    };
    const onExit = (code: number | null, signal: string | null): void => {
      cleanup();
      reject(new Error(`${what}: the process ended (${signal ?? code}) before answering\n${output()}`));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`${what}: no answer within ${timeoutMs / 1000} s\n${output()}`));
    }, timeoutMs);
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

interface RunningServer {
  readonly child: ChildProcess;
  readonly port: number;
  readonly notes: readonly string[];
  readonly output: () => string;
}

async function startServer(kind: string, config: ServerConfig, fixturesFile: string, nodeArgs: readonly string[] = []): Promise<RunningServer> {
  const extra = (env.BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const child = spawnNode('server.ts', [kind, JSON.stringify(config)], SERVER_CORE, [...nodeArgs, ...extra], fixturesFile);
  const output = collect(child);
  let message: ServerMessage;
  try {
    message = await nextMessage<ServerMessage>(child, output, 60_000, `server ${kind}`);
  } catch (error) {
    await stop(child);
    throw error;
  }
  if (message.type !== 'ready') {
    await stop(child);
    throw new Error(message.type === 'error' ? message.message : `unexpected message ${message.type}`);
  }
  return { child, port: message.port, notes: message.notes, output };
}

class Loader {
  private constructor(
    readonly child: ChildProcess,
    private readonly output: () => string,
  ) {}

  static async start(fixturesFile: string): Promise<Loader> {
    const child = spawnNode('load.ts', [], LOAD_CORE, [], fixturesFile);
    const output = collect(child);
    await nextMessage(child, output, 60_000, 'load generator');
    return new Loader(child, output);
  }

  async run<T extends LoadReply['type']>(job: LoadJob, type: T, timeoutMs: number): Promise<Extract<LoadReply, { type: T }>> {
    const reply = nextMessage<LoadReply>(this.child, this.output, timeoutMs, `load job ${job.kind}`);
    this.child.send(job);
    const answer = await reply;
    if (answer.type === 'error') throw new Error(`load job ${job.kind}: ${answer.message}`);
    if (answer.type !== type) throw new Error(`load job ${job.kind}: unexpected answer ${answer.type}`);
    return answer as Extract<LoadReply, { type: T }>;
  }

  stop(): Promise<void> {
    return stop(this.child);
  }
}

// ---------------------------------------------------------------------------------------------------
// Fixtures

/** The native bcrypt package when installed (hashes in the thread pool, on every core), else the library's hashSecret(). */
const hash: (secret: string, cost: number) => Promise<string> = (() => {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const native = require('bcrypt') as { hash: (secret: string, cost: number) => Promise<string> };
    return (secret, cost) => native.hash(secret, cost);
  } catch {
    return hashSecret;
  }
})();

async function makeClients(prefix: string, count: number, cost: number): Promise<Client[]> {
  return Promise.all(
    Array.from({ length: count }, async (_, i) => {
      const secret = generateClientSecret();
      return { id: `${prefix}-${i}`, secret, hash: await hash(secret, cost) };
    }),
  );
}

async function makeFixtures(): Promise<Fixtures> {
  const hsSecret = randomBytes(32).toString('base64url');
  const keys = {
    ES256: generateKeyPairSync('ec', { namedCurve: 'P-256', publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } }),
    RS256: generateKeyPairSync('rsa', { modulusLength: 2048, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } }),
  };
  const signer = (alg: Alg) =>
    alg === 'HS256' ? { secret: hsSecret, kid: KIDS.HS256, issuer: ISSUER, audience: AUDIENCE }
    : { privateKey: keys[alg].privateKey, alg, kid: KIDS[alg], issuer: ISSUER, audience: AUDIENCE };
  // Valid for longer than any run; every guard variant of one algorithm gets the same token.
  const lifetime = 6 * 3600;
  const tokens = {
    HS256: mintToken({ clientId: 'bench-client', scope: SCOPE, expiresIn: lifetime }, signer('HS256')),
    ES256: mintToken({ clientId: 'bench-client', scope: SCOPE, expiresIn: lifetime }, signer('ES256')),
    RS256: mintToken({ clientId: 'bench-client', scope: SCOPE, expiresIn: lifetime }, signer('RS256')),
  };
  const started = Date.now();
  const repeatClients = await makeClients('repeat', 8, 10);
  const burstClients = settings.skip.has('burst') ? [] : await makeClients('burst', settings.burstClients, 10);
  const memoryClients = settings.skip.has('memory') ? [] : await makeClients('memory', settings.memoryClients, settings.memoryHashCost);
  const memoryTokens = settings.skip.has('memory')
    ? []
    : Array.from({ length: settings.memoryTokens }, (_, i) =>
        mintToken({ clientId: `memory-${i % settings.memoryClients}`, scope: SCOPE, expiresIn: lifetime }, signer('ES256')),
      );
  log(`fixtures: keys, tokens, ${repeatClients.length + burstClients.length + memoryClients.length} client hashes, ${memoryTokens.length} memory tokens in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return {
    hsSecret,
    keys,
    tokens,
    repeatClients,
    burstClients,
    memoryClients,
    memoryHashCost: settings.memoryHashCost,
    memoryTokens,
    burstToken: mintToken({ clientId: 'burst-probe', scope: SCOPE, expiresIn: lifetime }, signer('ES256')),
  };
}

// ---------------------------------------------------------------------------------------------------
// Requests and sanity checks

function requestsOf(variant: Variant, fixtures: Fixtures): RequestSpec[] {
  if (variant.group === 'guard') {
    return [{ method: 'GET', path: GUARDED_PATH, headers: { authorization: `Bearer ${fixtures.tokens[variant.alg ?? 'HS256']}` } }];
  }
  return fixtures.repeatClients.map((client) => ({
    method: 'POST',
    path: TOKEN_PATH,
    headers: { authorization: basic(client), 'content-type': FORM_TYPE },
    body: TOKEN_FORM,
  }));
}

function decodeJwtPart(token: string, part: 0 | 1): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[part] ?? '', 'base64url').toString()) as Record<string, unknown>;
}

/** Checks that a variant answers as it should before it is measured: a fast wrong answer is no result. */
async function sanityCheck(variant: Variant, port: number, fixtures: Fixtures): Promise<void> {
  const base = `http://${HOST}:${port}`;
  const [request] = requestsOf(variant, fixtures);
  const send = (spec: RequestSpec) => fetch(`${base}${spec.path}`, { method: spec.method, headers: spec.headers, body: spec.body ?? null });
  const response = await send(request!);
  const text = await response.text();
  if (response.status !== 200) throw new Error(`sanity check: ${response.status} ${text.slice(0, 300)}`);
  if (variant.role === 'floor') return;
  if (variant.group === 'guard') {
    const refused = await send({ ...request!, headers: { authorization: `Bearer ${fixtures.tokens[variant.alg ?? 'HS256']}x` } });
    await refused.text();
    if (refused.status !== 401) throw new Error(`sanity check: a tampered token got ${refused.status}, not 401`);
    return;
  }
  const body = JSON.parse(text) as { access_token?: string };
  if (typeof body.access_token !== 'string') throw new Error(`sanity check: no access_token in ${text.slice(0, 300)}`);
  const header = decodeJwtPart(body.access_token, 0);
  const claims = decodeJwtPart(body.access_token, 1);
  if (header.alg !== variant.alg) throw new Error(`sanity check: a token signed with ${String(header.alg)}, not ${variant.alg}`);
  const aud = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
  if (claims.iss !== ISSUER || !aud.includes(AUDIENCE)) throw new Error(`sanity check: unexpected iss/aud in ${JSON.stringify(claims)}`);
  const last = fixtures.repeatClients.at(-1)!;
  const wrong = await send({ ...request!, headers: { ...request!.headers, authorization: basic({ id: last.id, secret: `${last.secret}x` }) } });
  await wrong.text();
  if (wrong.status !== 401 && wrong.status !== 400) throw new Error(`sanity check: a wrong secret got ${wrong.status}`);
  // Every repeat client once, one after the other: the measured runs are of repeat clients, not of a
  // first-time stampede (50 connections asking for 8 unseen clients at once pay 50 bcrypt compares).
  for (const client of fixtures.repeatClients.slice(1)) {
    const primed = await send({ ...request!, headers: { ...request!.headers, authorization: basic(client) } });
    await primed.text();
    if (primed.status !== 200) throw new Error(`sanity check: client ${client.id} got ${primed.status}`);
  }
}

// ---------------------------------------------------------------------------------------------------
// The run

function log(line: string): void {
  process.stderr.write(`[bench] ${line}\n`);
}

interface Measurement {
  readonly round: number;
  readonly result?: LoadResult;
  readonly error?: string;
  readonly cpu?: CpuWindow;
}

/** Waits until the machine is quiet enough (other processes below BENCH_QUIET cores), at most BENCH_QUIET_WAIT s. */
async function waitForQuiet(loader: Loader): Promise<void> {
  const started = Date.now();
  const wait = Math.min(settings.quietWait, Math.max(0, settings.quietBudget - quietSpent));
  let told = false;
  try {
    for (;;) {
      const window = cpuWindow(undefined, [loader.child.pid!]);
      await delay(300);
      const foreign = window.end().foreignCores;
      if (foreign === undefined || foreign <= settings.quietCores) return;
      if (Date.now() - started >= wait * 1000) {
        log(`other processes use ${foreign.toFixed(2)} cores; measuring anyway${wait === 0 ? ' (waiting budget spent)' : ''}`);
        return;
      }
      if (!told) log(`other processes use ${foreign.toFixed(2)} cores; waiting up to ${wait.toFixed(0)} s for quiet`);
      told = true;
    }
  } finally {
    if (told) quietSpent += (Date.now() - started) / 1000;
  }
}

async function measureVariant(variant: Variant, round: number, loader: Loader, fixtures: Fixtures, fixturesFile: string, notes: Map<string, readonly string[]>): Promise<Measurement> {
  let server: RunningServer | undefined;
  try {
    await waitForQuiet(loader);
    server = await startServer(variant.kind, variant.config, fixturesFile);
    notes.set(variant.id, server.notes);
    await sanityCheck(variant, server.port, fixtures);
    const window = cpuWindow(server.child.pid, [loader.child.pid!]);
    const { result } = await loader.run(
      {
        kind: 'fixed',
        port: server.port,
        requests: requestsOf(variant, fixtures),
        connections: settings.connections,
        warmupSeconds: settings.warmupSeconds,
        seconds: settings.seconds,
        tool: loaderTool,
      },
      'fixed',
      (settings.seconds + settings.warmupSeconds + 60) * 1000,
    );
    const cpu = window.end();
    if (result.non2xx > 0 || result.errors > 0) {
      return { round, cpu, error: `${result.non2xx} non-2xx answers and ${result.errors} errors of ${result.total}: not counted` };
    }
    return { round, result, cpu };
  } catch (error) {
    return { round, error: (error instanceof Error ? error.message : String(error)).split('\n').slice(0, 6).join(' | ') };
  } finally {
    if (server !== undefined) await stop(server.child);
  }
}

async function memoryTest(loader: Loader, fixtures: Fixtures, fixturesFile: string): Promise<MemoryOutcome> {
  let server: RunningServer | undefined;
  const after: { requests: number; rss: number; heapUsed: number }[] = [];
  const load: LoadResult[] = [];
  try {
    await waitForQuiet(loader);
    server = await startServer('memory', {}, fixturesFile, ['--expose-gc']);
    const running = server;
    await delay(1000); // the issuer's start-up work (its dummy hash) out of the way
    const base = `http://${HOST}:${running.port}`;
    const get = await fetch(`${base}${GUARDED_PATH}`, { headers: { authorization: `Bearer ${fixtures.memoryTokens[0]}` } });
    const post = await fetch(`${base}${TOKEN_PATH}`, { method: 'POST', headers: { authorization: basic(fixtures.memoryClients[0]!), 'content-type': FORM_TYPE }, body: TOKEN_FORM });
    if (get.status !== 200 || post.status !== 200) throw new Error(`sanity check: GET ${get.status}, POST ${post.status}: ${await post.text()}`);
    let offset = 0;
    const window = cpuWindow(running.child.pid, [loader.child.pid!]);
    for (const target of settings.memoryRequests) {
      const amount = target - offset;
      const { result } = await loader.run({ kind: 'memory', port: running.port, amount, connections: settings.connections, offset }, 'memory', 600_000);
      if (result.non2xx > 0 || result.errors > 0) throw new Error(`${result.non2xx} non-2xx answers and ${result.errors} errors of ${result.total}`);
      load.push(result);
      offset = target;
      const reply = nextMessage<ServerMessage>(running.child, running.output, 30_000, 'memory reading');
      running.child.send({ type: 'memory', gc: true });
      const message = await reply;
      if (message.type !== 'memory') throw new Error(`unexpected message ${message.type}`);
      after.push({ requests: target, rss: message.rss, heapUsed: message.heapUsed });
      log(`memory: after ${target} requests (${message.requests} served) rss ${(message.rss / 2 ** 20).toFixed(1)} MiB, heap ${(message.heapUsed / 2 ** 20).toFixed(1)} MiB`);
    }
    return { after, load, notes: running.notes, foreignCores: window.end().foreignCores };
  } catch (error) {
    return { after, load, notes: server?.notes ?? [], error: error instanceof Error ? error.message.split('\n').slice(0, 6).join(' | ') : String(error) };
  } finally {
    if (server !== undefined) await stop(server.child);
  }
}

/** Whether the native bcrypt package loads here; if so the burst also runs with it hidden, to measure bcryptjs too. */
const nativeBcrypt = (() => {
  try {
    require('bcrypt');
    return true;
  } catch {
    return false;
  }
})();

async function burstTest(loader: Loader, fixtures: Fixtures, fixturesFile: string, label: string, nodeArgs: readonly string[]): Promise<BurstOutcome> {
  let server: RunningServer | undefined;
  try {
    await waitForQuiet(loader);
    server = await startServer('burst', {}, fixturesFile, nodeArgs);
    await delay(1000);
    const probe = (seconds: number) => loader.run({ kind: 'probe', port: server!.port, seconds, rate: settings.probeRate }, 'probe', (seconds + 60) * 1000);
    await probe(1); // warm-up
    const { result: idle } = await probe(settings.idleProbeSeconds);
    const window = cpuWindow(server.child.pid, [loader.child.pid!]);
    const reply = await loader.run({ kind: 'burst', port: server.port, connections: settings.burstConnections, rate: settings.probeRate }, 'burst', 600_000);
    const cpu = window.end();
    log(
      `burst (${label}): ${fixtures.burstClients.length} first-time clients in ${reply.burstSeconds.toFixed(1)} s; guarded p99 ${reply.probe.p99.toFixed(2)} ms ` +
        `against ${idle.p99.toFixed(2)} ms idle (others ${cpu.foreignCores?.toFixed(2) ?? '?'} cores)`,
    );
    if (reply.burst.non2xx > 0) throw new Error(`${reply.burst.non2xx} of the burst's token requests were refused`);
    return { label, idle, during: reply.probe, burst: reply.burst, notes: server.notes, foreignCores: cpu.foreignCores };
  } catch (error) {
    return { label, notes: server?.notes ?? [], error: error instanceof Error ? error.message.split('\n').slice(0, 6).join(' | ') : String(error) };
  } finally {
    if (server !== undefined) await stop(server.child);
  }
}

function summarize(variant: Variant, measurements: readonly Measurement[], all: Map<string, Measurement[]>): VariantSummary {
  const ok = measurements.filter((m) => m.result !== undefined);
  const floorId = variant.group === 'guard' ? 'guard-floor' : 'token-floor';
  const floorByRound = new Map((all.get(floorId) ?? []).filter((m) => m.result !== undefined).map((m) => [m.round, m.result!]));
  const rpsRatios: number[] = [];
  const p99Ratios: number[] = [];
  for (const m of ok) {
    const floor = floorByRound.get(m.round);
    if (floor === undefined) continue;
    rpsRatios.push(m.result!.rps / floor.rps);
    p99Ratios.push(m.result!.p99 / floor.p99);
  }
  return {
    variant,
    rps: ok.map((m) => m.result!.rps),
    p99: ok.map((m) => m.result!.p99),
    rpsRatios,
    p99Ratios,
    errors: measurements.filter((m) => m.error !== undefined).map((m) => `round ${m.round}: ${m.error}`),
    serverCores: ok.map((m) => m.cpu?.serverCores).filter((v): v is number => v !== undefined),
    foreignCores: ok.map((m) => m.cpu?.foreignCores).filter((v): v is number => v !== undefined),
    byRound: new Map(ok.map((m) => [m.round, m.result!])),
  };
}

function versions(): Record<string, string> {
  const names = [
    'express', 'express-oauth2-jwt-bearer', 'express-jwt', 'jwks-rsa', 'jsonwebtoken', 'oidc-provider', '@node-oauth/oauth2-server',
    'bcryptjs', 'bcrypt', 'helmet', 'express-rate-limit', 'autocannon', 'tsx',
  ];
  const found: Record<string, string> = {};
  const own = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { name: string; version: string };
  const commit = spawnSync('git', ['describe', '--always', '--dirty'], { cwd: root, encoding: 'utf8' });
  found[own.name] = `${own.version}${commit.status === 0 ? ` (${commit.stdout.trim()})` : ''}`;
  for (const name of names) {
    try {
      found[name] = (JSON.parse(fs.readFileSync(path.join(root, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
    } catch {
      // not installed (bcrypt is optional)
    }
  }
  if (loaderTool === 'wrk') found.wrk = spawnSync('wrk', ['-v'], { encoding: 'utf8' }).stdout.split('\n')[0]?.trim() ?? 'wrk';
  return found;
}

async function main(): Promise<void> {
  const startedAt = new Date();
  const support = optionSupport();
  log(
    `${quick ? 'quick' : 'full'} run: ${variants.length} variants × ${settings.rounds} round(s), ${settings.connections} connections, ` +
      `${settings.warmupSeconds} s warm-up + ${settings.seconds} s each, load by ${loaderTool}, ` +
      (pinning ? `servers on core ${SERVER_CORE}, load on core ${LOAD_CORE}` : `no pinning (${cores} core(s)${hasCommand('taskset') ? '' : ', no taskset'})`),
  );
  log(`options in this version: tokenCache ${support.tokenCache ? 'yes' : 'no'}, secretCache ${support.secretCache ? 'yes' : 'no'}`);
  const fixtures = await makeFixtures();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-'));
  const fixturesFile = path.join(dir, 'fixtures.json');
  fs.writeFileSync(fixturesFile, JSON.stringify(fixtures), { mode: 0o600 });
  const loader = await Loader.start(fixturesFile);
  const measurements = new Map<string, Measurement[]>(variants.map((v) => [v.id, []]));
  const notes = new Map<string, readonly string[]>();
  try {
    for (let round = 1; round <= settings.rounds; round += 1) {
      // Another starting point each round, so that no variant always follows the same one.
      const shift = ((round - 1) * Math.ceil(variants.length / settings.rounds)) % Math.max(1, variants.length);
      const order = [...variants.slice(shift), ...variants.slice(0, shift)];
      for (const variant of order) {
        const m = await measureVariant(variant, round, loader, fixtures, fixturesFile, notes);
        measurements.get(variant.id)!.push(m);
        log(
          `round ${round}/${settings.rounds} ${variant.id.padEnd(22)} ` +
            (m.result ? `${m.result.rps.toFixed(0).padStart(6)} req/s  p99 ${m.result.p99.toFixed(2)} ms` : `FAILED: ${m.error}`) +
            (m.cpu?.serverCores === undefined ? '' : `  (server ${m.cpu.serverCores.toFixed(2)} cores, others ${m.cpu.foreignCores?.toFixed(2) ?? '?'})`),
        );
      }
    }
    const memory = settings.skip.has('memory') ? undefined : await memoryTest(loader, fixtures, fixturesFile);
    const bursts: BurstOutcome[] = [];
    if (!settings.skip.has('burst')) {
      bursts.push(await burstTest(loader, fixtures, fixturesFile, nativeBcrypt ? 'native bcrypt (the default when installed)' : 'bcryptjs', []));
      if (nativeBcrypt && !quick) {
        bursts.push(await burstTest(loader, fixtures, fixturesFile, 'bcryptjs (native bcrypt hidden)', ['--require', path.join(root, 'bench', 'without-native-bcrypt.cjs')]));
      }
    }
    const finishedAt = new Date();
    const summaries = variants.map((v) => summarize(v, measurements.get(v.id)!, measurements));
    const result: Report = {
      startedAt,
      finishedAt,
      machine: {
        cpu: os.cpus()[0]?.model.trim() ?? 'unknown',
        cpus: os.cpus().length,
        memoryGiB: os.totalmem() / 2 ** 30,
        node: process.version,
        os: `${os.type()} ${os.release()} ${os.arch()}`,
      },
      settings: {
        quick,
        rounds: settings.rounds,
        seconds: settings.seconds,
        warmupSeconds: settings.warmupSeconds,
        connections: settings.connections,
        loader: loaderTool,
        pinning: pinning ? `servers on core ${SERVER_CORE}, load on core ${LOAD_CORE} (taskset)` : 'none',
        memoryRequests: [...settings.memoryRequests],
        memoryTokens: settings.memoryTokens,
        memoryClients: settings.memoryClients,
        memoryHashCost: settings.memoryHashCost,
        burstClients: fixtures.burstClients.length,
        burstConnections: settings.burstConnections,
        probeRate: settings.probeRate,
        filtered: settings.only !== undefined,
        quietCores: settings.quietCores,
      },
      versions: versions(),
      support,
      summaries,
      notes,
      memory,
      bursts,
    };
    const { markdown, table } = report(result);
    fs.writeFileSync(settings.resultsFile, markdown);
    process.stdout.write(`\n${table}\n\nWritten to ${path.relative(process.cwd(), settings.resultsFile)} (${((finishedAt.getTime() - startedAt.getTime()) / 1000).toFixed(0)} s)\n`);
  } finally {
    await loader.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
