// npm run flood: the attacks of the availability issue against a real server process, bounded in
// time, on loopback only (sources 127.0.0.2–127.0.0.251, legitimate clients on .252–.254). For each
// scenario it prints the legitimate clients' success rate and p99, the comparison queue's peak, the
// server's RSS before and after, and any 5xx other than the intended 503s. Not part of npm test.

import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { tokenClient } from '../lib/index.js';
import { formatBasic } from '../lib/core/basic-auth.js';
import type { FloodClient, FloodServerStats } from './flood-server.js';

const QUICK = process.env.FLOOD_QUICK === '1';
const ATTACKERS = Array.from({ length: 250 }, (_, i) => `127.0.0.${2 + i}`);
const CC = 'grant_type=client_credentials';

interface Server {
  readonly url: string;
  readonly child: ChildProcess;
  stats(): Promise<FloodServerStats>;
  stop(): Promise<void>;
}

async function startServer(clients: readonly FloodClient[], env: Record<string, string> = {}): Promise<Server> {
  const child = fork(join(__dirname, 'flood-server.ts'), [], {
    execArgv: ['--import', 'tsx', ...(process.env.FLOOD_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${process.env.FLOOD_PROFILE}`] : [])],
    env: { ...process.env, FLOOD_CLIENTS: JSON.stringify(clients), ...env },
    stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
  });
  let log = '';
  child.stderr!.on('data', (chunk: Buffer) => (log += chunk.toString()));
  const port = await new Promise<number>((resolve, reject) => {
    child.once('message', (message: { port: number }) => resolve(message.port));
    child.once('exit', (code) => reject(new Error(`the flood server exited (${code}): ${log}`)));
  });
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    child,
    stats: async () => JSON.parse((await send(url, { method: 'GET', path: '/__flood/stats' }, agentFor('127.0.0.1'))).body) as FloodServerStats,
    stop: async () => {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.disconnect();
      await Promise.race([exited, sleep(5000).then(() => child.kill('SIGKILL'))]);
      const lines = log.trim().split('\n').filter(Boolean);
      if (lines.length > 0) console.log(`  server log: ${lines.length} line(s); first: ${lines[0]!.slice(0, 160)}`);
    },
  };
}

const agents = new Map<string, http.Agent>();
function agentFor(address: string): http.Agent {
  let agent = agents.get(address);
  if (agent === undefined) {
    agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
    agents.set(address, agent);
  }
  return agent;
}

interface Spec {
  readonly method: 'GET' | 'POST';
  readonly path: string;
  readonly headers?: Record<string, string>;
  readonly body?: string;
}

/** One request from one source address; resolves with status, body and milliseconds, or status 0 on a network error. */
function send(base: string, spec: Spec, agent: http.Agent, localAddress?: string): Promise<{ status: number; body: string; ms: number }> {
  const started = performance.now();
  return new Promise((resolve) => {
    const req = http.request(
      `${base}${spec.path}`,
      {
        method: spec.method,
        agent,
        localAddress,
        headers: { ...(spec.body === undefined ? {} : { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(spec.body) }), ...spec.headers },
        timeout: 60_000,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, ms: performance.now() - started }));
        res.on('error', () => resolve({ status: 0, body, ms: performance.now() - started }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve({ status: 0, body: '', ms: performance.now() - started }));
    req.end(spec.body);
  });
}

/** What an attacker process sends: made up there, so that the closures need not cross a process boundary. */
type Attack =
  | { readonly kind: 'unknown-ids' }
  | { readonly kind: 'guesses'; readonly clientId: string }
  | { readonly kind: 'forgeries'; readonly token: string }
  | { readonly kind: 'mixed'; readonly client: FloodClient; readonly token: string };

function attackSpec(attack: Attack): (i: number) => Spec {
  switch (attack.kind) {
    case 'unknown-ids':
      return (i) => guessSpec(`unknown-${i}-${randomBytes(6).toString('hex')}`);
    case 'guesses':
      return () => guessSpec(attack.clientId);
    case 'forgeries': {
      const [header, payload] = attack.token.split('.');
      const forgeries = [
        (i: number) => `${header}.${payload}.${randomBytes(64).toString('base64url')}${i}`,
        () => `${Buffer.from('{"alg":"none","typ":"at+jwt"}').toString('base64url')}.${payload}.`,
        (i: number) => `${randomBytes(40 + (i % 400)).toString('base64url')}`,
        () => `${Buffer.from('{"alg":"HS256","typ":"at+jwt","kid":"x"}').toString('base64url')}.${payload}.${randomBytes(32).toString('base64url')}`,
      ];
      return (i) => ({ method: 'GET', path: '/api/data', headers: { authorization: `Bearer ${forgeries[i % forgeries.length]!(i)}` } });
    }
    case 'mixed':
      return (i) => (i % 2 === 0 ? basicSpec(attack.client) : { method: 'GET', path: '/api/data', headers: { authorization: `Bearer ${attack.token}` } });
  }
}

/**
 * Sends `count` requests over `seconds` from a process of its own (its work must not slow the
 * legitimate clients measured here), evenly and without waiting for answers: an open loop.
 */
async function blast(base: string, count: number, seconds: number, attack: Attack): Promise<Record<string, number>> {
  const child = fork(__filename, ['--attacker'], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  child.send({ base, count, seconds, attack });
  return new Promise((resolve, reject) => {
    child.once('message', (statuses: Record<string, number>) => (resolve(statuses), child.disconnect()));
    child.once('exit', (code) => reject(new Error(`the attacker process exited (${code})`)));
  });
}

/**
 * The attacker's loop, on raw sockets (one per source address, requests pipelined): a Node HTTP
 * client would spend a core of this two-core machine making the load, and starve the server.
 */
async function attackLoop(base: string, count: number, seconds: number, attack: Attack): Promise<Record<string, number>> {
  const spec = attackSpec(attack);
  const { hostname, port } = new URL(base);
  const statuses: Record<string, number> = {};
  const tally = (status: string): void => void (statuses[status] = (statuses[status] ?? 0) + 1);
  let outstanding = 0;
  let allSent = false;
  let finish!: () => void;
  const finished = new Promise<void>((resolve) => (finish = resolve));
  const answered = (status: string): void => {
    tally(status);
    outstanding -= 1;
    if (allSent && outstanding === 0) finish();
  };
  const sockets = new Map<string, { socket: Socket; waiting: number }>();
  const socketFor = (address: string) => {
    let entry = sockets.get(address);
    if (entry !== undefined && !entry.socket.destroyed) return entry;
    const socket = connect({ host: hostname, port: Number(port), localAddress: address });
    const state = { socket, waiting: 0 };
    let buffered = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      for (;;) {
        const end = buffered.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buffered.subarray(0, end).toString('latin1');
        const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
        if (buffered.length < end + 4 + length) return;
        buffered = buffered.subarray(end + 4 + length);
        state.waiting -= 1;
        answered(head.slice(9, 12));
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      for (; state.waiting > 0; state.waiting--) answered('0');
    });
    entry = state;
    sockets.set(address, entry);
    return entry;
  };
  const started = performance.now();
  for (let i = 0; i < count; i++) {
    const due = started + (i * seconds * 1000) / count;
    const wait = due - performance.now();
    if (wait > 1) await sleep(wait);
    const request = spec(i);
    const entry = socketFor(ATTACKERS[i % ATTACKERS.length]!);
    const headers = Object.entries({ host: `${hostname}:${port}`, ...(request.body === undefined ? {} : { 'content-type': 'application/x-www-form-urlencoded', 'content-length': String(Buffer.byteLength(request.body)) }), ...request.headers });
    outstanding += 1;
    entry.waiting += 1;
    entry.socket.write(`${request.method} ${request.path} HTTP/1.1\r\n${headers.map(([name, value]) => `${name}: ${value}\r\n`).join('')}\r\n${request.body ?? ''}`);
  }
  allSent = true;
  if (outstanding > 0) await Promise.race([finished, sleep(60_000)]);
  for (const { socket } of sockets.values()) socket.destroy();
  return statuses;
}

/** Repeats `call` every `everyMs` until `until` resolves; collects each answer. */
async function probe<T>(everyMs: number, until: Promise<unknown>, call: () => Promise<T>): Promise<T[]> {
  const results: T[] = [];
  let done = false;
  void until.then(() => (done = true));
  while (!done) {
    results.push(await call());
    await sleep(everyMs);
  }
  return results;
}

function p99(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * 0.99) - 1)]!;
}

const mb = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(0)} MB`;
const ms = (value: number): string => `${value.toFixed(0)} ms`;
const rate = (ok: number, all: number): string => `${((100 * ok) / Math.max(1, all)).toFixed(1)} % (${ok}/${all})`;

function unexpected5xx(statuses: Record<string, number>): number {
  return Object.entries(statuses).filter(([status]) => Number(status) >= 500 && status !== '503').reduce((sum, [, n]) => sum + n, 0);
}

const results: { scenario: string; target: string; measured: string; pass: boolean }[] = [];
function check(scenario: string, target: string, measured: string, pass: boolean): void {
  results.push({ scenario, target, measured, pass });
  console.log(`  ${pass ? 'PASS' : 'FAIL'}  ${target}: ${measured}`);
}

const clientOf = (id: string): FloodClient => ({ id, secret: randomBytes(24).toString('base64url') });
const basicSpec = (client: FloodClient): Spec => ({ method: 'POST', path: '/token', headers: { authorization: formatBasic(client.id, client.secret) }, body: CC });
const guessSpec = (id: string): Spec => ({ method: 'POST', path: '/token', headers: { authorization: formatBasic(id, randomBytes(12).toString('base64url')) }, body: CC });

async function tokenOf(base: string, client: FloodClient): Promise<string> {
  const { body } = await send(base, basicSpec(client), agentFor('127.0.0.252'), '127.0.0.252');
  return (JSON.parse(body) as { access_token: string }).access_token;
}

const guarded = (base: string, token: string) => send(base, { method: 'GET', path: '/api/data', headers: { authorization: `Bearer ${token}` } }, agentFor('127.0.0.254'), '127.0.0.254');

/** Unknown client ids with wrong secrets from 250 addresses, while a repeat client, a first-time client and the guarded route go on. */
async function unknownIds(): Promise<void> {
  const [count, seconds] = QUICK ? [Number(process.env.FLOOD_COUNT ?? 4000), 4] : [20_000, 20];
  console.log(`\nunknown ids: ${count} token requests in ${seconds} s, random client ids, from ${ATTACKERS.length} addresses`);
  const repeat = clientOf('repeat');
  const firstTime = clientOf('first-time');
  const server = await startServer([repeat, firstTime]);
  try {
    const token = await tokenOf(server.url, repeat); // the repeat client's secret is now verified and cached
    const idle = (await probe(20, sleep(3000), () => guarded(server.url, token))).map((r) => r.ms);
    const before = await server.stats();
    const flood = blast(server.url, count, seconds, { kind: 'unknown-ids' });
    const repeatAnswers = probe(100, flood, () => send(server.url, basicSpec(repeat), agentFor('127.0.0.252'), '127.0.0.252'));
    const guardAnswers = probe(50, flood, () => guarded(server.url, token));
    const firstStart = performance.now();
    const firstAttempts: string[] = [];
    const first = sleep(1000).then(() =>
      tokenClient({
        tokenUrl: `${server.url}/token`, clientId: firstTime.id, clientSecret: firstTime.secret, timeout: 30_000,
        fetch: async (url, init) => {
          const sent = performance.now();
          const res = await fetch(url, init);
          firstAttempts.push(`${res.status} after ${ms(performance.now() - sent)}`);
          return res;
        },
      })
        .getToken()
        .then(() => performance.now() - firstStart - 1000, () => Infinity),
    );
    const statuses = await flood;
    const [repeats, guards, firstMs] = await Promise.all([repeatAnswers, guardAnswers, first]);
    await sleep(1000);
    const after = await server.stats();
    console.log(`  attacker answers: ${JSON.stringify(statuses)}; comparison queue peak ${after.peakQueued}; RSS ${mb(before.rss)} -> ${mb(after.rss)}`);
    console.log(`  server CPU per attack request: ${((after.cpu - before.cpu) / count).toFixed(0)} µs in all, ${((after.mainThread - before.mainThread) / count).toFixed(0)} µs on the event loop's thread; its delay p99 ${after.loopDelayP99.toFixed(1)} ms`);
    check('unknown ids', 'repeat client success 100 %', rate(repeats.filter((r) => r.status === 200).length, repeats.length), repeats.every((r) => r.status === 200));
    check('unknown ids', 'repeat client p99 < 1 s', ms(p99(repeats.map((r) => r.ms))), p99(repeats.map((r) => r.ms)) < 1000);
    check('unknown ids', 'first-time client (tokenClient) gets its token within 30 s', `${Number.isFinite(firstMs) ? ms(firstMs) : 'never'} (${firstAttempts.join(', ')})`, firstMs < 30_000);
    const ratio = p99(guards.map((r) => r.ms)) / p99(idle);
    check('unknown ids', 'guarded route p99 < 5 x idle p99', `${ms(p99(guards.map((r) => r.ms)))} vs idle ${p99(idle).toFixed(1)} ms (${ratio.toFixed(1)} x), ${guards.filter((r) => r.status === 200).length}/${guards.length} ok`, ratio < 5 && guards.every((r) => r.status === 200));
    check('unknown ids', 'RSS grows < 100 MB', `${mb(after.rss - before.rss)}`, after.rss - before.rss < 100 * 1024 * 1024);
    check('unknown ids', 'no 5xx but the intended 503s', String(unexpected5xx(after.statuses)), unexpected5xx(after.statuses) === 0);
  } finally {
    await server.stop();
  }
}

/** A burst of guesses at one known client's secret from 250 addresses, while that client goes on working. */
async function guessBurst(): Promise<void> {
  const [count, seconds] = QUICK ? [2000, 4] : [10_000, 10];
  console.log(`\none known id under a guess burst: ${count} wrong secrets for one client in ${seconds} s, from ${ATTACKERS.length} addresses`);
  const target = clientOf('target');
  const server = await startServer([target]);
  try {
    await tokenOf(server.url, target);
    const before = await server.stats();
    const burst = blast(server.url, count, seconds, { kind: 'guesses', clientId: target.id });
    const legit = probe(100, burst, () => send(server.url, basicSpec(target), agentFor('127.0.0.253'), '127.0.0.253'));
    const statuses = await burst;
    const answers = await legit;
    const after = await server.stats();
    const judged = statuses['401'] ?? 0;
    console.log(`  attacker answers: ${JSON.stringify(statuses)}; comparison queue peak ${after.peakQueued}; RSS ${mb(before.rss)} -> ${mb(after.rss)}`);
    check('guess burst', 'guesses judged <= 10 per address', `${judged} judged of ${count} (bound ${10 * ATTACKERS.length})`, judged <= 10 * ATTACKERS.length);
    check('guess burst', 'the client itself keeps 100 % success', rate(answers.filter((r) => r.status === 200).length, answers.length), answers.every((r) => r.status === 200));
    check('guess burst', 'its p99 < 1 s', ms(p99(answers.map((r) => r.ms))), p99(answers.map((r) => r.ms)) < 1000);
    check('guess burst', 'no 5xx but the intended 503s', String(unexpected5xx(after.statuses)), unexpected5xx(after.statuses) === 0);
  } finally {
    await server.stop();
  }
}

/** Forged and malformed Bearer tokens at the guarded route from 250 addresses. */
async function forgedTokens(): Promise<void> {
  const [count, seconds] = QUICK ? [4000, 4] : [20_000, 20];
  console.log(`\nforged tokens: ${count} guarded requests in ${seconds} s with forged tokens, from ${ATTACKERS.length} addresses`);
  const client = clientOf('api-client');
  const server = await startServer([client]);
  try {
    const token = await tokenOf(server.url, client);
    const idle = (await probe(20, sleep(3000), () => guarded(server.url, token))).map((r) => r.ms);
    const before = await server.stats();
    const flood = blast(server.url, count, seconds, { kind: 'forgeries', token });
    const answers = probe(50, flood, () => guarded(server.url, token));
    const statuses = await flood;
    const legit = await answers;
    const after = await server.stats();
    console.log(`  attacker answers: ${JSON.stringify(statuses)}; RSS ${mb(before.rss)} -> ${mb(after.rss)}`);
    const ratio = p99(legit.map((r) => r.ms)) / p99(idle);
    check('forged tokens', 'every forgery refused (401)', `${statuses['401'] ?? 0}/${count}`, statuses['401'] === count);
    check('forged tokens', 'guarded route keeps 100 % success, p99 < 5 x idle', `${rate(legit.filter((r) => r.status === 200).length, legit.length)}, p99 ${ms(p99(legit.map((r) => r.ms)))} vs idle ${p99(idle).toFixed(1)} ms (${ratio.toFixed(1)} x)`, ratio < 5 && legit.every((r) => r.status === 200));
    check('forged tokens', 'RSS grows < 100 MB', mb(after.rss - before.rss), after.rss - before.rss < 100 * 1024 * 1024);
  } finally {
    await server.stop();
  }
}

/** Redis stalled (SIGSTOP: the socket stays open, nothing answers) under load, then resumed. */
async function stalledRedis(): Promise<void> {
  console.log('\na stalled Redis: its own redis-server, SIGSTOPped for 6 s under load, then resumed');
  const { ownRedis } = await import('../__tests__/support/own-redis.js');
  const redis = await ownRedis();
  const client = clientOf('redis-client');
  const server = await startServer([client], { REDIS_URL: redis.url, FLOOD_STORE_TIMEOUT: '2000' });
  try {
    const token = await tokenOf(server.url, client);
    const stall = (async () => {
      await sleep(2000);
      redis.stall();
      await sleep(6000);
      redis.resume();
      await sleep(4000);
    })();
    const timeline: { at: number; status: number; ms: number; what: string }[] = [];
    const started = performance.now();
    const record = (what: string) => (r: { status: number; ms: number }) => timeline.push({ at: performance.now() - started - r.ms, status: r.status, ms: r.ms, what });
    const load = blast(server.url, QUICK ? 1000 : 2400, 12, { kind: 'mixed', client, token });
    await Promise.all([
      probe(100, stall, () => send(server.url, basicSpec(client), agentFor('127.0.0.252'), '127.0.0.252').then((r) => (record('token')(r), r))),
      probe(100, stall, () => guarded(server.url, token).then((r) => (record('guard')(r), r))),
      probe(200, stall, () => send(server.url, { method: 'POST', path: '/revoke', headers: { authorization: formatBasic(client.id, client.secret) }, body: 'token=not-a-token' }, agentFor('127.0.0.253'), '127.0.0.253').then((r) => (record('revoke')(r), r))),
    ]);
    const statuses = await load;
    const after = await server.stats();
    const slowest = Math.max(...timeline.map((t) => t.ms));
    const recovered = timeline.filter((t) => t.at > 8000 + 2000);
    console.log(`  load answers: ${JSON.stringify(statuses)}; legit answers: ${JSON.stringify(countBy(timeline.map((t) => `${t.what} ${t.status}`)))}`);
    check('stalled Redis', 'every answer within storeTimeout (2 s) + 1 s', ms(slowest), slowest < 3000);
    check('stalled Redis', 'recovers by itself within 2 s of SIGCONT', `${recovered.filter((t) => t.status === 200).length}/${recovered.length} ok from 2 s after resume`, recovered.length > 0 && recovered.every((t) => t.status === 200));
    check('stalled Redis', 'no 5xx but the intended 503s', String(unexpected5xx(after.statuses)), unexpected5xx(after.statuses) === 0);
  } finally {
    await server.stop();
    await redis.stop();
  }
}

function countBy(values: readonly string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const value of values) counts[value] = (counts[value] ?? 0) + 1;
  return counts;
}

async function main(): Promise<void> {
  const only = process.argv[2];
  const scenarios: Record<string, () => Promise<void>> = { 'unknown-ids': unknownIds, 'guess-burst': guessBurst, 'forged-tokens': forgedTokens, 'stalled-redis': stalledRedis };
  for (const [name, run] of Object.entries(scenarios)) if (only === undefined || only === name) await run();
  for (const agent of agents.values()) agent.destroy();
  const failed = results.filter((r) => !r.pass);
  console.log(`\n${results.length - failed.length} passed, ${failed.length} failed`);
  process.exitCode = failed.length === 0 ? 0 : 1;
}

if (process.argv[2] === '--attacker') {
  process.once('message', ({ base, count, seconds, attack }: { base: string; count: number; seconds: number; attack: Attack }) => {
    void attackLoop(base, count, seconds, attack).then((statuses) => {
      for (const agent of agents.values()) agent.destroy();
      process.send!(statuses);
    });
  });
} else {
  void main();
}
