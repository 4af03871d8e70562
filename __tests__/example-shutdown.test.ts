// The example server shuts down gracefully: on SIGTERM or SIGINT it stops accepting, lets the
// requests in flight finish, closes the issuer, and exits 0; under npm start the signal reaches it.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { closedPort as freePort } from './support/ports.js';

const ROOT = join(__dirname, '..');
const EXAMPLE_VARIABLES = /^(OAUTH_\w+|REDIS_URL|DATABASE_URL|PORT|HOST|SHUTDOWN_TIMEOUT_MS)$/;

/** The example's environment: a demo client, and none of this process's example variables. */
function exampleEnv(port: number, vars: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !EXAMPLE_VARIABLES.test(name)));
  return { ...env, PORT: String(port), HOST: '127.0.0.1', OAUTH_TOKEN_SECRET: 'a-32-byte-secret-for-the-example!', ...vars };
}

const children: ChildProcess[] = [];
const sockets: Socket[] = [];
afterEach(() => {
  for (const socket of sockets.splice(0)) socket.destroy();
  // Each child leads a process group of its own (detached): this also kills what npm started.
  for (const child of children.splice(0)) {
    if (child.pid === undefined) continue;
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      // The group is gone already.
    }
  }
});

/** Spawns `command` in the repository, in a process group of its own, and collects what it prints. */
function run(command: string, args: readonly string[], env: NodeJS.ProcessEnv) {
  const child = spawn(command, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  children.push(child);
  const output = { text: '' };
  child.stdout!.on('data', (chunk: Buffer) => (output.text += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output.text += chunk.toString()));
  // Resolves with the demo client's secret once the server prints it.
  const started = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${command} printed: ${output.text}`)), 15_000);
    child.stdout!.on('data', () => {
      const secret = /client_secret=(\S+)/.exec(output.text)?.[1];
      if (secret !== undefined) (clearTimeout(timer), resolve(secret));
    });
    child.once('exit', (code) => (clearTimeout(timer), reject(new Error(`${command} exited (${code}): ${output.text}`))));
  });
  return { child, output, started };
}

/** The example server run as `node --import tsx examples/server.ts`, as npm start runs it. */
async function startExample(vars: Record<string, string> = {}) {
  const port = await freePort();
  const example = run(process.execPath, ['--import', 'tsx', 'examples/server.ts'], exampleEnv(port, vars));
  return { ...example, port, secret: await example.started };
}

function exited(child: ChildProcess, ms: number): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`still running after ${ms} ms`)), ms);
    child.once('exit', (code) => (clearTimeout(timer), resolve(code)));
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Whether something accepts connections on the port. */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
  });
}

/**
 * A keep-alive token request on a socket of its own, its last bytes held back until `release()`:
 * the server has read its headers, so it is a request in flight. `reply` resolves when the server
 * closes the connection, with the status it answered (0 for none: the connection was cut).
 */
async function heldTokenRequest(port: number, secret: string) {
  const socket = connect(port, '127.0.0.1');
  sockets.push(socket);
  let text = '';
  socket.on('data', (chunk: Buffer) => (text += chunk.toString()));
  socket.on('error', () => undefined); // a reset shows as status 0
  const reply = new Promise<number>((resolve) => socket.once('close', () => resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0))));
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  const body = 'grant_type=client_credentials';
  const basic = Buffer.from(`demo:${secret}`).toString('base64');
  socket.write(`POST /token HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic ${basic}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ${body.length}\r\n\r\n${body.slice(0, 11)}`);
  return { reply, release: () => socket.write(body.slice(11)) };
}

/** All processes below `pid`, children first. */
function descendants(pid: number): number[] {
  const out = spawnSync('ps', ['-o', 'pid=', '--ppid', String(pid)]).stdout.toString().trim();
  return out === '' ? [] : out.split(/\s+/).map(Number).flatMap((child) => [child, ...descendants(child)]);
}

/** Whether the process runs (a zombie does not). */
function alive(pid: number): boolean {
  const state = spawnSync('ps', ['-o', 'stat=', '-p', String(pid)]).stdout.toString().trim();
  return state !== '' && !state.startsWith('Z');
}

describe('the example server shuts down gracefully', () => {
  it.each([
    ['SIGTERM', 'SIGTERM', 1],
    // A Ctrl-C under npm start comes from the terminal, and again forwarded by npm.
    ['SIGINT sent twice, 20 ms apart', 'SIGINT', 2],
  ] as const)('on %s: refuses new connections, answers the 20 token requests in flight with 200, then exits 0 and frees its port', async (_name, signal, times) => {
    const { child, port, secret, output } = await startExample();
    const inFlight = await Promise.all(Array.from({ length: 20 }, () => heldTokenRequest(port, secret)));
    await sleep(300); // the server reads their headers
    for (let i = 0; i < times; i++) {
      child.kill(signal);
      await sleep(20);
    }
    await sleep(200);
    expect(await listening(port)).toBe(false);
    expect([child.exitCode, child.signalCode]).toEqual([null, null]); // still serving the requests in flight
    const released = Date.now();
    for (const request of inFlight) request.release();
    // Each connection is closed right after its answer, not kept alive until keepAliveTimeout (5 s).
    expect(await Promise.all(inFlight.map((request) => request.reply))).toEqual(Array(20).fill(200));
    expect(await exited(child, 5000)).toBe(0);
    expect(Date.now() - released).toBeLessThan(4000);
    expect(output.text).toContain(`${signal}: shutting down\nclosed\n`);
    expect(await listening(port)).toBe(false);
  });

  it('cuts the requests still in flight after SHUTDOWN_TIMEOUT_MS, then exits 0', async () => {
    const { child, port, secret } = await startExample({ SHUTDOWN_TIMEOUT_MS: '300' });
    const stuck = await heldTokenRequest(port, secret);
    await sleep(300);
    const signalled = Date.now();
    child.kill('SIGTERM');
    expect(await stuck.reply).toBe(0);
    expect(await exited(child, 5000)).toBe(0);
    expect(Date.now() - signalled).toBeLessThan(2000);
  });

  it('exits 1 at once on a second signal, without waiting for the requests in flight', async () => {
    const { child, port, secret } = await startExample();
    const stuck = await heldTokenRequest(port, secret);
    await sleep(300);
    child.kill('SIGTERM');
    await sleep(700); // a repeat within 500 ms is taken for the same signal, delivered twice
    expect([child.exitCode, child.signalCode]).toEqual([null, null]);
    child.kill('SIGTERM');
    expect(await exited(child, 1000)).toBe(1);
    expect(await stuck.reply).toBe(0);
  });
});

describe('npm start runs the example server as its only child, so that signals reach it', () => {
  it.each([
    ['SIGTERM to npm alone', false],
    // A terminal sends SIGINT to the whole group, and npm forwards it again: the server gets it twice.
    ['Ctrl-C: SIGINT to the process group', true],
  ] as const)('%s: the request in flight is answered, and no process or port is left behind', async (_name, group) => {
    const port = await freePort();
    const npm = run('npm', ['start', '--silent'], exampleEnv(port));
    const request = await heldTokenRequest(port, await npm.started);
    const below = descendants(npm.child.pid!);
    expect(below.length).toBeGreaterThan(0);
    await sleep(300);
    if (group) process.kill(-npm.child.pid!, 'SIGINT');
    else npm.child.kill('SIGTERM');
    await sleep(200);
    request.release();
    expect(await request.reply).toBe(200);
    await exited(npm.child, 5000);
    for (let i = 0; i < 50 && below.some(alive); i++) await sleep(100);
    expect(below.filter(alive)).toEqual([]);
    expect(await listening(port)).toBe(false);
    // The server itself got the signal: it shut down rather than being killed.
    expect(npm.output.text).toContain(`${group ? 'SIGINT' : 'SIGTERM'}: shutting down\nclosed\n`);
  });
});
