// A redis-server of the test's own, on a free loopback port and in a fresh directory, that a test
// may stall (SIGSTOP), resume, restart and stop: faults that must never touch the machine's Redis.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
// service-probe, not services: no jest globals, so that npm run flood can use this file too.
import { closedPort } from './ports.js';
import { REDIS_URL } from './service-probe.js';

export interface OwnRedisOptions {
  /** Starts Redis with `--appendonly yes`: writes survive a restart. Default: `false`, as the machine's Redis runs. */
  appendonly?: boolean;
}

export interface OwnRedis {
  readonly url: string;
  readonly port: number;
  /** SIGSTOP: the socket stays open and Redis answers nothing, as behind a network partition. */
  stall(): void;
  /** SIGCONT: Redis answers again, the commands it received meanwhile included. */
  resume(): void;
  /** Kills Redis as a crash would (SIGKILL) and starts it again on the same port and directory; resolves once it answers. */
  restart(): Promise<void>;
  /** Kills Redis, waits for it to exit and removes its directory. */
  stop(): Promise<void>;
}

const SHARED_PORT = Number(new URL(REDIS_URL).port || 6379);
/** The servers of this process, killed if it exits without stopping them. */
const running = new Set<ChildProcess>();
const killRunning = (): void => {
  for (const child of running) child.kill('SIGKILL');
};

/**
 * Starts a redis-server (`which redis-server`) without RDB snapshots (`--save ""`), and resolves
 * once it answers PING.
 * @example
 * const redis = await ownRedis({ appendonly: true });
 * try { redis.stall(); … redis.resume(); } finally { await redis.stop(); }
 */
export async function ownRedis(options: OwnRedisOptions = {}): Promise<OwnRedis> {
  const dir = await mkdtemp(join(tmpdir(), 'ecc-own-redis-'));
  let port = 0;
  let child: ChildProcess | undefined;
  try {
    // A free port can be taken between closedPort() and Redis binding it: try another.
    for (let attempt = 1; child === undefined; attempt++) {
      port = await closedPort();
      if (port === SHARED_PORT) continue;
      try {
        child = await start(port, dir, options.appendonly === true);
      } catch (error) {
        if (attempt >= 3) throw error;
      }
    }
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }

  let current: ChildProcess = child;
  const signal = (name: NodeJS.Signals): void => {
    // Only ever the child this helper spawned, never a process found by name or port.
    if (current.exitCode !== null || current.signalCode !== null) throw new Error(`own redis-server on port ${port} is not running`);
    current.kill(name);
  };
  const kill = async (): Promise<void> => {
    if (current.exitCode === null && current.signalCode === null) {
      const exited = new Promise<void>((resolve) => current.once('exit', () => resolve()));
      current.kill('SIGKILL');
      await exited;
    }
    forget(current);
  };
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    stall: () => signal('SIGSTOP'),
    resume: () => signal('SIGCONT'),
    async restart() {
      await kill();
      current = await start(port, dir, options.appendonly === true);
    },
    async stop() {
      await kill();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function start(port: number, dir: string, appendonly: boolean): Promise<ChildProcess> {
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', appendonly ? 'yes' : 'no', '--dir', dir, '--daemonize', 'no'];
  const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const keep = (chunk: Buffer): void => void (output = (output + chunk.toString()).slice(-4000));
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  if (running.size === 0) process.once('exit', killRunning);
  running.add(child);
  const exited = new Promise<never>((_, reject) => {
    child.once('error', (error) => reject(new Error(`cannot start redis-server: ${error.message}`)));
    child.once('exit', (code, signal) => reject(new Error(`redis-server on port ${port} exited (${signal ?? code}) before it answered:\n${output}`)));
  });
  exited.catch(() => undefined);
  try {
    await Promise.race([answers(port), exited]);
  } catch (error) {
    child.kill('SIGKILL');
    forget(child);
    throw error;
  }
  // Its output is not needed once it answers; reading it on keeps the pipes from filling up.
  return child;
}

function forget(child: ChildProcess): void {
  running.delete(child);
  if (running.size === 0) process.off('exit', killRunning);
}

/** Resolves once the server on `port` answers PING with PONG (not LOADING), within five seconds. */
async function answers(port: number, ms = 5000): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    if (await ping(port)) return;
    if (Date.now() > until) throw new Error(`redis-server on port ${port} gave no PONG within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let reply = '';
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.on('error', () => done(false));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      reply += chunk.toString();
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
    });
  });
}

